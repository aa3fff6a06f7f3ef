/**
 * The console's dead letters, sources and alerts, through the running system in Debian's
 * Chromium: an operator signs in through the form, finds a dead letter (its buyer answered 400),
 * filters the list by source, redelivers it through the waterfall once the buyer is back (confirmation,
 * result page, the lead delivered and the operator's decision in its journal), discards another with
 * a reason, sees a 409 for a lead no longer dead-lettered, and follows a bulk redelivery; creates a
 * source whose key is shown once and never again, reorders a waterfall (and is refused when it changed
 * meanwhile), rotates and revokes a key; a cross-site form post is refused and changes nothing; the
 * alerts page lists an alert (escaped) with its channel's outcome and the channels with masked secrets.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startFakeBuyer, type FakeBuyer } from '../fakes/buyer';
import { rememberSecret, rememberSecretsIn } from '../support/secrets';
import { startSystem, type TestSystem } from '../support/system';
import { SESSION_COOKIE } from '../../shared/http/pages/session';
import { layout } from '../../services/intake/console/layout';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const ARTIFACTS = path.resolve(__dirname, '../../test-artifacts');
/** A page as it looked, kept in test-artifacts/ (not tracked) for a look by eye. */
const shot = (page: Page, name: string) => page.screenshot({ path: path.join(ARTIFACTS, `console-${name}.png`), fullPage: true });

describe('console: dead letters, sources and alerts', function () {
  let system: TestSystem;
  let flaky: FakeBuyer;
  let steady: FakeBuyer;
  let refuser: FakeBuyer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let source: { id: string; apiKey: string };
  let empty: { id: string; apiKey: string };
  let flakyBuyer: string;
  let flakyEndpoint: string;
  let steadyBuyer: string;
  /** Dead-lettered at the flaky buyer (source "Console Web Forms"): redelivered, then discarded. */
  let redeliverId: string;
  let discardId: string;
  /** Dead-lettered at once: its source's waterfall is empty (no_buyers). */
  let noBuyersId: string;
  /** Taken by one of its buyer's two endpoints, refused by the other (accept: all): held by that buyer. */
  let heldId: string;
  let splitBuyer: string;

  const url = (p: string) => `${system.intakeUrl}${p}`;
  async function post(apiKey: string, email: string): Promise<string> {
    const res = await system.postLead(apiKey, { email, first_name: 'Ada' });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return String(res.body.leadId);
  }
  const deadLettered = (leadId: string) => system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
  /** Submits a form by clicking and waits for the page it leads to. */
  async function click(selector: string): Promise<void> {
    await Promise.all([page.waitForNavigation(), page.click(selector)]);
  }
  const text = async (selector: string) => (await page.locator(selector).innerText()).trim();
  const sessionCookie = async () => {
    const cookie = (await context.cookies()).find((c) => c.name === SESSION_COOKIE);
    assert.ok(cookie, 'signed in');
    return `${SESSION_COOKIE}=${cookie.value}`;
  };
  const formPost = (p: string, fields: Array<[string, string]>, origin: string) =>
    fetch(url(p), { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', origin }, body: new URLSearchParams(fields).toString() });

  before(async function () {
    this.timeout(180_000);
    system = await startSystem();
    [flaky, steady, refuser] = await Promise.all([startFakeBuyer({ steps: [{ status: 400, body: { error: 'bad lead' } }] }), startFakeBuyer(), startFakeBuyer({ steps: [{ status: 422, body: 'missing field' }] })]);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    mkdirSync(ARTIFACTS, { recursive: true });
    source = await system.createSource('Console Web Forms');
    empty = await system.createSource('Console Empty Source');
    flakyBuyer = await system.createBuyer({ name: 'Flaky Loans' });
    // No retries (backoff []): a 400 dead-letters the lead at once; the breaker stays closed.
    flakyEndpoint = (await system.addEndpoint(flakyBuyer, { kind: 'webhook', url: flaky.url, backoff: [], breaker: { threshold: 50, coolDown: '1m' } })).id;
    steadyBuyer = await system.createBuyer({ name: 'Steady Loans' });
    await system.addEndpoint(steadyBuyer, { kind: 'webhook', url: steady.url, backoff: [] });
    await system.setWaterfall(source.id, [flakyBuyer]);
    const split = await system.createSource('Console Split Source');
    splitBuyer = await system.createBuyer({ name: 'Split Loans', accept: 'all' });
    for (const target of [steady, refuser]) await system.addEndpoint(splitBuyer, { kind: 'webhook', url: target.url, backoff: [] });
    await system.setWaterfall(split.id, [splitBuyer, steadyBuyer]);
    heldId = await post(split.apiKey, 'held@example.com');
    redeliverId = await post(source.apiKey, 'redeliver.me@example.com');
    discardId = await post(source.apiKey, 'discard.me@example.com');
    noBuyersId = await post(empty.apiKey, 'nobody@example.com');
    await Promise.all([redeliverId, discardId, noBuyersId, heldId].map(deadLettered));

    // Sign in through the console's login form.
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    await page.goto(url('/console/dead-letters'));
    assert.equal(new URL(page.url()).pathname, '/console/login', 'no session: the login form');
    await page.fill('#token', system.adminToken);
    await Promise.all([page.waitForURL((u) => u.pathname === '/console/dead-letters'), page.click('button[type=submit]')]);
  });
  after(async () => {
    await context?.close();
    await browser?.close();
    await Promise.all([flaky?.close(), steady?.close(), refuser?.close()]);
    await system?.stop();
  });

  it('When an operator opens the dead letters, then each is listed with its lead links, source, buyers tried, reason and time; the source filter narrows the list; a bad filter is shown on its field', async () => {
    await page.goto(url('/console/dead-letters'));
    for (const id of [redeliverId, discardId, noBuyersId]) assert.equal(await page.locator(`tr[data-lead="${id}"]`).count(), 1, `${id} is listed`);
    const row = await text(`tr[data-lead="${redeliverId}"]`);
    assert.match(row, /Console Web Forms/);
    assert.match(row, /Flaky Loans/);
    assert.match(row, /all_failed/);
    assert.equal(await page.locator(`tr[data-lead="${redeliverId}"] a[href="/console/buyers/${flakyBuyer}"]`).count(), 1, 'the buyer links to its console page');
    assert.equal(await page.locator(`tr[data-lead="${redeliverId}"] a[href="/console/sources/${source.id}"]`).count(), 1);
    assert.equal(await page.locator(`tr[data-lead="${redeliverId}"] a[href="${system.logUrl}/leads/${redeliverId}"]`).count(), 1, 'the dispute page');
    assert.equal(await page.locator(`tr[data-lead="${redeliverId}"] a[href$="/workflows/lead-${redeliverId}"]`).count(), 1, 'the workflow in the Temporal UI');
    assert.match(await text(`tr[data-lead="${noBuyersId}"]`), /no_buyers/);
    const held = await text(`tr[data-lead="${heldId}"]`);
    assert.match(held, /partial_at_buyer/);
    assert.match(held, /held by Split Loans/, 'the buyer that holds the lead');
    assert.equal(await page.locator(`tr[data-lead="${heldId}"] a[href="/console/buyers/${splitBuyer}"]`).count(), 2, 'tried, and holding it');
    await shot(page, 'dead-letters');

    await page.selectOption('#f-source', source.id);
    await click('#apply-filter');
    assert.equal(new URL(page.url()).searchParams.get('sourceId'), source.id);
    const listed = await page.locator('#dead-letters tr[data-lead]').evaluateAll((rows) => rows.map((r) => (r as unknown as { getAttribute(n: string): string }).getAttribute('data-lead')));
    assert.deepEqual(new Set(listed), new Set([redeliverId, discardId]), 'only the source’s dead letters');

    await click('#select-all');
    assert.equal(await page.locator('#dead-letters input[name=leadId]:checked').count(), 2, 'every row of the page selected (no script: a link)');

    const bad = await page.goto(url(`/console/dead-letters?sourceId=${source.id}&olderThan=soon`));
    assert.equal(bad?.status(), 400);
    assert.match(await text('[id="error-query.olderThan"]'), /must be a duration/);
    assert.equal(await page.inputValue('#f-older'), 'soon', 'the filter is shown as typed');
    assert.equal(await page.locator('#dead-letters').count(), 0, 'nothing listed for a bad filter');
  });

  it('When the buyer is back and the operator redelivers the selected lead through the waterfall (confirming), then the result page says redelivered, the lead is delivered and its journal has the operator’s redeliver decision', async function () {
    this.timeout(90_000);
    flaky.script([{ status: 200, body: { accepted: true } }]);
    await page.goto(url(`/console/dead-letters?sourceId=${source.id}`));
    await page.check(`#select-${redeliverId}`);
    await click('#redeliver-waterfall');
    assert.match(await text('h1'), /Redeliver dead letters/, 'a confirmation first');
    assert.match(await text('#affected'), new RegExp(redeliverId));
    await shot(page, 'dead-letters-confirm');
    assert.equal((await system.leadState(redeliverId)).status, 'dead_lettered', 'nothing happened before the confirmation');
    await click('#confirm');
    const outcome = await text(`#outcomes tr[data-lead="${redeliverId}"]`);
    assert.equal(await page.getAttribute(`#outcomes tr[data-lead="${redeliverId}"]`, 'data-outcome'), 'ok', outcome);
    assert.match(outcome, /redelivered/);
    await shot(page, 'dead-letters-result');

    const view = await system.waitForLead(redeliverId, (v) => v.status === 'delivered');
    assert.equal(view.buyerId, flakyBuyer);
    assert.ok(view.decisions.some((d) => d.decision === 'redeliver' && /operator/.test(d.reason)), JSON.stringify(view.decisions));
    const entry = await system.models.LogEntry.findOne({ leadId: redeliverId, type: 'decision', 'data.decision': 'redeliver' }).lean();
    assert.ok(entry, 'the redeliver decision is in the delivery log');
    assert.match(String(entry.data.reason), /redelivery by operator through the waterfall/);
    assert.equal(await system.models.LogEntry.countDocuments({ leadId: redeliverId, type: 'decision', 'data.decision': 'redeliver' }), 1, 'once');

    // The same action again on a lead that is no longer dead-lettered: its 409 on the result page.
    await page.goto(url('/console/dead-letters'));
    const again = await page.request.post(url('/console/dead-letters/actions'), { headers: { origin: system.intakeUrl }, form: { action: 'redeliver', leadId: redeliverId, confirm: 'yes', back: '/console/dead-letters' } });
    assert.equal(again.status(), 200);
    const html = await again.text();
    assert.match(html, new RegExp(`data-lead="${redeliverId}" data-outcome="refused"`));
    assert.match(html, /not dead-lettered/);
  });

  it('When the operator discards a selected lead, then a reason is required, the confirmation names the lead and the reason, and the lead ends discarded with that reason', async function () {
    this.timeout(60_000);
    await page.goto(url(`/console/dead-letters?sourceId=${source.id}`));
    assert.equal(await page.locator(`tr[data-lead="${redeliverId}"]`).count(), 0, 'the redelivered lead left the list');
    await page.check(`#select-${discardId}`);
    await click('#discard');
    assert.match(await text('#refusal'), /Say why/, 'no reason: refused before anything happens');
    await page.click('#back');
    await page.waitForURL((u) => u.pathname === '/console/dead-letters');
    await page.check(`#select-${discardId}`);
    await page.fill('#discard-reason', 'test submission, not a customer');
    await click('#discard');
    assert.match(await text('main'), /Discard 1 lead with the reason “test submission, not a customer”/);
    assert.match(await text('#affected'), new RegExp(discardId));
    await click('#confirm');
    assert.equal(await page.getAttribute(`#outcomes tr[data-lead="${discardId}"]`, 'data-outcome'), 'ok');
    assert.match(await text(`#outcomes tr[data-lead="${discardId}"]`), /discarded/);
    const view = await system.waitForLead(discardId, (v) => v.status === 'discarded');
    assert.equal(view.reason, 'test submission, not a customer');
    assert.ok(view.decisions.some((d) => d.decision === 'discarded' && /operator/.test(d.reason)), JSON.stringify(view.decisions));
  });

  it('When the operator redelivers a lead held by one buyer to another (confirming the override), then it is delivered there and the journal has the override', async function () {
    this.timeout(60_000);
    await page.goto(url('/console/dead-letters?reason=partial_at_buyer'));
    await page.check(`#select-${heldId}`);
    await page.selectOption('#to-buyer', steadyBuyer);
    await click('#redeliver-to');
    assert.match(await text('main'), /to Steady Loans[\s\S]*held by another buyer is taken from it/);
    await click('#confirm');
    assert.match(await text(`#outcomes tr[data-lead="${heldId}"]`), /redelivered: now delivering at Steady Loans/);
    const view = await system.waitForLead(heldId, (v) => v.status === 'delivered');
    assert.equal(view.buyerId, steadyBuyer);
    assert.ok(view.decisions.some((d) => d.decision === 'override' && d.buyerId === steadyBuyer), JSON.stringify(view.decisions));
  });

  it('When a form post comes from another site, then it is refused with 403 and nothing changes', async () => {
    const cookie = await sessionCookie();
    const foreign = await fetch(url('/console/dead-letters/actions'), {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example', cookie },
      body: new URLSearchParams({ action: 'discard', leadId: noBuyersId, reason: 'cross-site', confirm: 'yes' }).toString(),
    });
    assert.equal(foreign.status, 403);
    const waterfall = await fetch(url(`/console/sources/${source.id}/waterfall`), {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example', cookie },
      body: new URLSearchParams([['from', flakyBuyer], ['buyers', steadyBuyer], ['confirm', 'yes']]).toString(),
    });
    assert.equal(waterfall.status, 403);
    // Without the session, from this site: the login, not the action.
    const anonymous = await formPost('/console/dead-letters/actions', [['action', 'discard'], ['leadId', noBuyersId], ['reason', 'x'], ['confirm', 'yes']], system.intakeUrl);
    assert.equal(anonymous.status, 302);
    assert.equal((await system.leadState(noBuyersId)).status, 'dead_lettered', 'the lead is untouched');
    assert.deepEqual((await system.admin<{ buyers: string[] }>('GET', `/sources/${source.id}/waterfall`)).body.buyers, [flakyBuyer], 'the waterfall is untouched');
  });

  it('When the operator redelivers all dead letters matching a filter, then the confirmation counts them and the progress page follows the bulk to done', async function () {
    this.timeout(90_000);
    await page.goto(url(`/console/dead-letters?sourceId=${empty.id}`));
    await click('#bulk-redeliver');
    assert.match(await text('main'), /from source Console Empty Source/);
    assert.equal(await text('#bulk-count'), '1');
    await click('#confirm');
    assert.match(new URL(page.url()).pathname, /^\/console\/bulk\/bulk-/);
    const deadline = Date.now() + 60_000;
    while (!/done/.test(await text('#bulk-status'))) {
      if (Date.now() > deadline) throw new Error('the bulk did not finish');
      await page.waitForTimeout(500);
      await page.goto(page.url());
    }
    assert.equal(await text('#matched'), '1');
    assert.equal(await text('#redelivered'), '1');
    await shot(page, 'bulk');
    assert.equal(await page.locator('meta[http-equiv=refresh]').count(), 0, 'a finished bulk’s page stays');
    // A bulk of one lead finishes before a page can catch it running: the running page's reload, as rendered.
    assert.match(layout({ title: 'Bulk redelivery', body: '', refresh: 2 }), /<head>[\s\S]*<meta http-equiv="refresh" content="2">[\s\S]*<\/head>/);
    // Redelivered into an empty waterfall: dead-lettered again, by the operator's redelivery.
    const view = await system.waitForLead(noBuyersId, (v) => v.status === 'dead_lettered' && v.decisions.some((d) => d.decision === 'redeliver'));
    assert.ok(view.decisions.some((d) => d.decision === 'redeliver' && /operator/.test(d.reason)));
  });

  it('When a source is created through the form, then its key is shown once with a warning, works, no page shows it again, and a reload creates nothing more', async () => {
    await page.goto(url('/console/sources'));
    // A bad setting comes back on its field, the form as typed.
    await page.fill('#source-name', 'Console Created Source');
    await page.fill('#source-freshness', 'soon');
    await click('#create-source button[type=submit]');
    await click('#confirm');
    assert.match(await text('#error-freshness'), /must be/);
    assert.equal(await page.inputValue('#source-name'), 'Console Created Source');
    assert.equal((await system.models.Source.countDocuments({ name: 'Console Created Source' })), 0, 'nothing created');

    await page.fill('#source-freshness', '5m');
    await click('#create-source button[type=submit]');
    assert.match(await text('main'), /Create the source Console Created Source, freshness 5m/);
    await click('#confirm');
    const apiKey = await text('#new-key');
    rememberSecret(apiKey);
    assert.match(apiKey, /^lds_/);
    assert.match(await text('#key-warning'), /shown this once/);
    // Reloading that page posts the form again: nothing is created twice.
    assert.equal((await page.reload())?.status(), 409);
    assert.match(await text('#refusal'), /already sent/);
    assert.equal(await system.models.Source.countDocuments({ name: 'Console Created Source' }), 1, 'one source, not two');
    const created = await system.models.Source.findOne({ name: 'Console Created Source' }).lean();
    assert.ok(created);
    assert.equal(created.freshness, '5m');
    assert.equal((await system.postLead(apiKey, { email: 'created.source@example.com' })).status, 202, 'the key shown authenticates');

    const archived = await system.createSource('Console Archived Source');
    assert.equal((await system.admin('DELETE', `/sources/${archived.id}`)).status, 204);
    await page.goto(url('/console/sources'));
    assert.equal(await page.locator(`#sources-list tr[data-source="${archived.id}"]`).count(), 0, 'archived sources are hidden');
    assert.equal(await page.locator(`#sources-list tr[data-source="${created._id}"]`).count(), 1);
    assert.match(await text(`#sources-list tr[data-source="${created._id}"]`), /1 active/);
    assert.ok(!(await page.content()).includes(apiKey), 'the list does not show the key');
    await click(`#sources-list tr[data-source="${created._id}"] a`);
    assert.ok(!(await page.content()).includes(apiKey), 'the source’s page does not show it');
    assert.ok(!(await page.content()).includes(apiKey.slice(-20)), 'nor any part of it');
    assert.match(await text('#keys'), new RegExp(created.keys[0]!.keyId));
  });

  it('When the operator moves a buyer down the waterfall and adds one (each confirmed), then the order is saved; a form made from an order changed meanwhile is refused', async function () {
    this.timeout(60_000);
    await system.setWaterfall(source.id, [flakyBuyer, steadyBuyer]);
    await page.goto(url(`/console/sources/${source.id}`));
    assert.deepEqual(await page.locator('#waterfall tr[data-buyer]').evaluateAll((rows) => rows.map((r) => (r as unknown as { getAttribute(n: string): string }).getAttribute('data-buyer'))), [flakyBuyer, steadyBuyer]);
    assert.match(await text('#waterfall'), /Flaky Loans[\s\S]*Steady Loans/, 'buyers by name');
    await click(`#down-${flakyBuyer}`);
    assert.match(await text('#current-order'), /Flaky Loans[\s\S]*Steady Loans/);
    assert.match(await text('#new-order'), /Steady Loans[\s\S]*Flaky Loans/);
    assert.deepEqual((await system.admin<{ buyers: string[] }>('GET', `/sources/${source.id}/waterfall`)).body.buyers, [flakyBuyer, steadyBuyer], 'not before the confirmation');
    await click('#confirm');
    assert.match(await text('#flash'), /waterfall is saved/);
    assert.deepEqual((await system.admin<{ buyers: string[] }>('GET', `/sources/${source.id}/waterfall`)).body.buyers, [steadyBuyer, flakyBuyer]);

    const third = await system.createBuyer({ name: 'Third Loans' });
    await page.goto(url(`/console/sources/${source.id}`));
    await page.selectOption('#add-buyer', third);
    await click('#add-buyer-submit');
    await click('#confirm');
    assert.deepEqual((await system.admin<{ buyers: string[] }>('GET', `/sources/${source.id}/waterfall`)).body.buyers, [steadyBuyer, flakyBuyer, third]);

    // Someone else changes the order after the page was shown: the stale form changes nothing.
    await page.goto(url(`/console/sources/${source.id}`));
    await system.setWaterfall(source.id, [third]);
    await shot(page, 'source');
    await click(`#up-${flakyBuyer}`);
    assert.match(await text('#refusal'), /changed since the page was shown/);
    assert.deepEqual((await system.admin<{ buyers: string[] }>('GET', `/sources/${source.id}/waterfall`)).body.buyers, [third]);
  });

  it('When the operator rotates a source’s key and revokes the old one (each confirmed), then the new key is shown once and works, a reload adds no second key, and the old one is refused', async () => {
    await page.goto(url(`/console/sources/${source.id}`));
    const oldKeyId = (await system.models.Source.findById(source.id).lean())!.keys[0]!.keyId;
    await click('#rotate');
    await click('#confirm');
    const apiKey = await text('#new-key');
    rememberSecret(apiKey);
    assert.match(apiKey, /^lds_/);
    assert.notEqual(apiKey, source.apiKey);
    const keyCount = async () => (await system.models.Source.findById(source.id).lean())!.keys.length;
    const keys = await keyCount();
    // A reload of the page that showed the key posts its form again: refused, no second key, the key not shown.
    const reloaded = await page.reload();
    assert.equal(reloaded?.status(), 409);
    assert.match(await text('#refusal'), /already sent[\s\S]*nothing was done again/);
    assert.ok(!(await page.content()).includes(apiKey), 'not shown again on the reload');
    assert.equal(await keyCount(), keys, 'no second key');
    // A confirmed post without the confirmation page's one-time token does nothing either.
    const tokenless = await fetch(url(`/console/sources/${source.id}/keys`), {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: system.intakeUrl, cookie: await sessionCookie() },
      body: new URLSearchParams({ confirm: 'yes' }).toString(),
    });
    assert.equal(tokenless.status, 400);
    assert.match(await tokenless.text(), /no valid one-time token/);
    assert.equal(await keyCount(), keys, 'no key from the tokenless post');
    await click('#back');
    assert.ok(!(await page.content()).includes(apiKey), 'not shown again');
    await click(`#revoke-${oldKeyId}`);
    assert.match(await text('main'), new RegExp(`Revoke the key ${oldKeyId}`));
    await click('#confirm');
    assert.match(await text('#flash'), /revoked/);
    assert.match(await text(`#keys tr[data-key="${oldKeyId}"]`), /revoked/);
    assert.equal((await system.postLead(source.apiKey, { email: 'old.key@example.com' })).status, 401, 'the revoked key');
    assert.equal((await system.postLead(apiKey, { email: 'new.key@example.com' })).status, 202, 'the new key');
  });

  it('When an alert was sent, then the alerts page lists it (escaped) with its buyer and its channel’s outcome, and the channels with their secrets masked', async () => {
    const channel = await system.admin<Record<string, unknown> & { id: string }>('POST', '/alert-channels', { kind: 'webhook', name: 'ops-hook', url: steady.url });
    assert.equal(channel.status, 201, JSON.stringify(channel.body));
    rememberSecretsIn(channel.body);
    const secrets = Object.entries(channel.body).filter(([k, v]) => /secret/i.test(k) && typeof v === 'string').map(([, v]) => String(v));
    assert.ok(secrets.length > 0, 'the webhook channel has a generated signing secret');
    await system.models.Alert.create({
      _id: 'al_console_test_1',
      type: 'breaker_opened',
      title: 'Breaker opened at Flaky Loans <img src=x>',
      message: `5 failures in a row at ${flakyEndpoint}`,
      buyerId: flakyBuyer,
      endpointId: flakyEndpoint,
      at: new Date(),
      deliveries: [{ channelId: channel.body.id, kind: 'webhook', outcome: 'success', code: 'http_200', at: new Date() }],
    });
    await page.goto(url('/console/alerts'));
    const row = page.locator('#alerts tr[data-alert="al_console_test_1"]');
    assert.match(await row.innerText(), /Breaker opened at Flaky Loans <img src=x>/, 'the title as text');
    assert.equal(await row.locator('img').count(), 0, 'not as markup');
    assert.match(await row.innerText(), /breaker_opened/);
    assert.match(await row.innerText(), /success[\s\S]*ops-hook[\s\S]*http_200/);
    assert.equal(await row.locator(`a[href="/console/buyers/${flakyBuyer}"]`).count(), 1);
    assert.equal(await row.locator(`a[href="/console/buyers/${flakyBuyer}#endpoint-${flakyEndpoint}"]`).count(), 1, 'the endpoint, on its buyer’s page');
    assert.match(await row.innerText(), /Flaky Loans/);
    assert.match(await text(`#channels tr[data-channel="${channel.body.id}"]`), /webhook[\s\S]*ops-hook/);
    const content = await page.content();
    for (const secret of secrets) assert.ok(!content.includes(secret), 'no channel secret on the page');
    assert.match(await text(`#channels tr[data-channel="${channel.body.id}"]`), /\*{8}/, 'masked');
    await shot(page, 'alerts');

    await page.selectOption('#f-type', 'dead_letter_digest');
    await click('#filter button[type=submit]');
    assert.equal(await page.locator('#alerts tr[data-alert="al_console_test_1"]').count(), 0, 'filtered by type');
  });
});
