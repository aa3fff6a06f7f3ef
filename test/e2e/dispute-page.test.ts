/**
 * The dispute page, through the running system: an operator signs in with the admin token in a
 * headless Chromium, finds a lead by its email and reads its timeline — a 503 then a 200, both
 * with ms timestamps, the decisions, the final status and the verified hash chain — with a
 * screenshot kept in test-artifacts/ (copied to docs/ for the README with UPDATE_SCREENSHOTS=1); the print view, the
 * receipt link (verified offline), the login's refusals, search results, escaping of hostile
 * lead fields and buyer answers, provider events, a broken chain and an expired lead.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startFakeBuyer, type FakeBuyer } from '../fakes/buyer';
import { http, startSystem, type TestSystem } from '../support/system';
import { leadWorkflowId } from '../../shared/delivery';
import { EXPIRED } from '../../services/log/pii';
import { createSession, SESSION_COOKIE } from '../../shared/http/pages/session';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '../..');
const ARTIFACTS = path.join(ROOT, 'test-artifacts');
// The same headless Chromium as ui-codec.test.ts (never downloaded by a tool).
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const SCREENSHOT = path.join(ARTIFACTS, 'dispute-page.png');
const iso = (ms: unknown) => new Date(Number(ms)).toISOString();

/** The little of the DOM these checks use (the project compiles without the DOM lib); run in the browser. */
interface DomElement {
  getAttribute(name: string): string | null;
}
const borderColour = (el: unknown): string => (globalThis as unknown as { getComputedStyle(e: unknown): { borderLeftColor: string } }).getComputedStyle(el).borderLeftColor;

describe('dispute page: one lead’s timeline settles a dispute', function () {
  let system: TestSystem;
  let buyer: FakeBuyer;
  let browser: Browser;
  let source: { id: string; apiKey: string };
  let leadId: string;
  const email = 'dispute.page@example.com';
  const phone = '+1 (555) 010-9911';

  async function deliver(lead: Record<string, unknown>, apiKey = source.apiKey): Promise<string> {
    const res = await system.postLead(apiKey, lead);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const id = String(res.body.leadId);
    await system.client.workflow.getHandle(leadWorkflowId(id)).result();
    return id;
  }
  const pageUrl = (p: string) => `${system.logUrl}${p}`;
  /** A page fetched with the admin token as Bearer (curl's way), without following redirects. */
  const fetchPage = (p: string, headers: Record<string, string> = { authorization: `Bearer ${system.adminToken}` }) => fetch(pageUrl(p), { headers, redirect: 'manual' });
  const postLogin = (fields: Record<string, string>, headers: Record<string, string>) =>
    fetch(pageUrl('/login'), { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(fields).toString() });

  /** A browser context signed in through the login form. */
  async function signIn(next = '/'): Promise<{ context: BrowserContext; page: Page; dialogs: string[] }> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const dialogs: string[] = [];
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    await page.goto(pageUrl(next));
    assert.equal(new URL(page.url()).pathname, '/login', 'a page without a session goes to the login form');
    await page.fill('#token', system.adminToken);
    await Promise.all([page.waitForURL((u) => u.pathname !== '/login'), page.click('button[type=submit]')]);
    return { context, page, dialogs };
  }

  before(async function () {
    this.timeout(180_000);
    system = await startSystem();
    buyer = await startFakeBuyer();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    mkdirSync(ARTIFACTS, { recursive: true });
    ({ source } = await system.route([{ kind: 'webhook', url: buyer.url, backoff: ['1s'] }], { name: 'Acme Insurance CRM' }));
    buyer.script([
      { status: 503, headers: { 'retry-after': '1', 'x-request-id': 'req-503-busy' }, body: { error: 'busy, try again' } },
      { status: 200, headers: { 'x-request-id': 'req-200-ok' }, body: { accepted: true, crm_id: 'CRM-42' } },
    ]);
    leadId = await deliver({ email, phone, first_name: 'Ada', last_name: 'Lovelace', city: 'London', consent: { granted: true, text: 'I agree to be contacted.' } });
  });
  after(async () => {
    await browser?.close();
    await buyer?.close();
    await system?.stop();
  });

  it('When an operator signs in and searches by the lead’s email, then the page shows both attempts (503 then 200, ms timestamps), the decisions, the final status and the verified chain', async function () {
    this.timeout(90_000);
    const attempts = await system.attempts(leadId);
    assert.deepEqual(attempts.map((a) => [a.attempt, a.outcome, (a.response as { status: number }).status]), [[1, 'transient', 503], [2, 'success', 200]]);
    const { context, page, dialogs } = await signIn('/');
    try {
      const cookie = (await context.cookies()).find((c) => c.name === SESSION_COOKIE);
      assert.ok(cookie, 'a session cookie is set');
      assert.equal(cookie.httpOnly, true);
      assert.equal(cookie.sameSite, 'Strict');
      assert.ok(cookie.expires * 1000 - Date.now() > 11 * 3_600_000 && cookie.expires * 1000 - Date.now() <= 12 * 3_600_000 + 5_000, '12 h');

      await page.fill('main input[name=q]', email.toUpperCase());
      await Promise.all([page.waitForURL(/\/leads\//), page.press('main input[name=q]', 'Enter')]);
      assert.equal(new URL(page.url()).pathname, `/leads/${leadId}`, 'one match goes straight to the lead');

      const first = page.locator('li[data-type=attempt][data-attempt="1"]');
      const second = page.locator('li[data-type=attempt][data-attempt="2"]');
      const firstText = await first.innerText();
      const secondText = await second.innerText();
      assert.match(firstText, /transient/);
      assert.match(firstText, /HTTP 503/);
      assert.match(firstText, /http_503/);
      assert.match(firstText, /busy, try again/);
      assert.match(firstText, /req-503-busy/);
      assert.ok(firstText.includes(iso(attempts[0]!.startedAt)) && firstText.includes(iso(attempts[0]!.finishedAt)), 'attempt 1 started and finished, to the ms');
      assert.match(secondText, /success/);
      assert.match(secondText, /HTTP 200/);
      assert.match(secondText, /CRM-42/);
      assert.ok(secondText.includes(iso(attempts[1]!.startedAt)) && secondText.includes(iso(attempts[1]!.finishedAt)), 'attempt 2 started and finished, to the ms');
      assert.match(firstText, new RegExp(`${String(attempts[0]!.latencyMs)} ms`));
      assert.match(secondText, new RegExp(`Waited\\s+${Number(attempts[1]!.startedAt) - Number(attempts[0]!.finishedAt)} ms after attempt 1`), 'the backoff between them');
      assert.match(firstText, /POST http:\/\/127\.0\.0\.1:\d+\/leads/, 'the request as sent');
      assert.match(firstText, /dispute\.page@example\.com/, 'its body');
      assert.equal(await first.evaluate(borderColour), 'rgb(217, 154, 0)', 'transient in amber');
      assert.equal(await second.evaluate(borderColour), 'rgb(31, 122, 58)', 'success in green');

      for (const decision of ['trying', 'accepted']) assert.equal(await page.locator(`li[data-decision=${decision}]`).count(), 1, decision);
      assert.equal(await page.locator('#final-status').innerText(), 'delivered');
      const intake = await page.locator('li[data-type=intake]').innerText();
      assert.match(intake, /Ada/);
      assert.match(intake, /consent\.granted/);
      const body = await page.locator('body').innerText();
      assert.match(body, /Acme Insurance CRM/, 'the buyer that took it');
      const verify = await http<{ ok: boolean; records: number; head: string }>('GET', `${system.logUrl}/v1/leads/${leadId}/verify`, { token: system.adminToken });
      assert.equal((await page.locator('[data-chain=ok]').innerText()).trim(), `verified: ${verify.body.records} records, head ${verify.body.head}`);
      const order = await page.locator('ol.timeline > li').evaluateAll((items: DomElement[]) => items.map((li) => li.getAttribute('data-decision') ?? li.getAttribute('data-status') ?? li.getAttribute('data-type')));
      const journal = await http<{ items: Array<{ type: string; decision?: string; status?: string }> }>('GET', `${system.logUrl}/v1/leads/${leadId}/log`, { token: system.adminToken });
      assert.deepEqual(order, journal.body.items.map((e) => e.decision ?? e.status ?? e.type), 'the timeline is the journal, in order');
      assert.deepEqual(order, ['intake', 'delivering', 'trying', 'attempt', 'attempt', 'delivered', 'accepted']);

      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      // The README's copy changes only on request: a test run never edits tracked files.
      if (process.env.UPDATE_SCREENSHOTS) copyFileSync(SCREENSHOT, path.join(ROOT, 'docs/dispute-page.png'));

      // The receipt behind the page's link, with the same session; it verifies offline.
      const receiptRes = await page.request.get(pageUrl(String(await page.locator('#receipt-link').getAttribute('href'))));
      assert.equal(receiptRes.status(), 200);
      const receipt = (await receiptRes.json()) as { leadId: string; chain: { head: string; records: number } };
      assert.equal(receipt.leadId, leadId);
      assert.equal(receipt.chain.head, verify.body.head);
      const keys = await (await fetch(pageUrl('/.well-known/delivery-receipt-keys.json'))).json();
      writeFileSync(path.join(ARTIFACTS, 'dispute-page.receipt.json'), JSON.stringify(receipt, null, 2));
      writeFileSync(path.join(ARTIFACTS, 'dispute-page.keys.json'), JSON.stringify(keys));
      const offline = await run(process.execPath, [path.join(ROOT, 'scripts/verify-receipt.mjs'), path.join(ARTIFACTS, 'dispute-page.receipt.json'), path.join(ARTIFACTS, 'dispute-page.keys.json')]);
      assert.match(offline.stdout, /VALID/);

      // The print view: no navigation, no forms, everything else; and it prints to a PDF.
      await Promise.all([page.waitForURL(/print=1/), page.click('#print-link')]);
      assert.equal(await page.locator('header.nav').isVisible(), false);
      assert.equal(await page.locator('#print-link').isVisible(), false);
      assert.equal(await page.locator('li[data-type=attempt]').count(), 2);
      assert.match(await page.locator('body').innerText(), /Delivery record of lead/);
      await page.emulateMedia({ media: 'print' });
      await page.screenshot({ path: path.join(ARTIFACTS, 'dispute-page-print.png'), fullPage: true });
      await page.pdf({ path: path.join(ARTIFACTS, 'dispute-page.pdf'), format: 'A4', printBackground: true });
      await page.emulateMedia({ media: 'screen' });

      // Signing out ends the session in this browser.
      await page.goto(pageUrl(`/leads/${leadId}`));
      await Promise.all([page.waitForURL(/\/login/), page.click('#sign-out')]);
      await page.goto(pageUrl(`/leads/${leadId}`));
      assert.equal(new URL(page.url()).pathname, '/login');
      assert.equal(new URL(page.url()).searchParams.get('next'), `/leads/${leadId}`);
      assert.deepEqual(dialogs, []);
    } finally {
      await context.close();
    }
  });

  it('When a request has no session, then it is sent to the login; a wrong token is refused; forged or cross-site posts are refused', async function () {
    this.timeout(60_000);
    for (const p of [`/leads/${leadId}`, `/leads/${leadId}/receipt.json`, `/?q=${encodeURIComponent(email)}`, '/']) {
      const res = await fetchPage(p, {});
      assert.equal(res.status, 302, p);
      assert.equal(res.headers.get('location'), `/login?next=${encodeURIComponent(p)}`, p);
    }
    // curl with the admin token; the HTML security headers.
    const ok = await fetchPage(`/leads/${leadId}`);
    assert.equal(ok.status, 200);
    assert.match(ok.headers.get('content-type') ?? '', /text\/html/);
    assert.match(ok.headers.get('content-security-policy') ?? '', /default-src 'self'.*frame-ancestors 'none'/);
    assert.equal(ok.headers.get('x-frame-options'), 'DENY');
    assert.equal(ok.headers.get('cache-control'), 'no-store');
    assert.ok(!(await ok.text()).includes('<script'), 'no scripts at all');
    assert.equal((await fetchPage(`/leads/${leadId}`, { authorization: 'Bearer not-the-token' })).status, 401);

    const own = { origin: system.logUrl };
    const wrong = await postLogin({ token: 'not-the-admin-token', next: '/' }, own);
    assert.equal(wrong.status, 401);
    assert.equal(wrong.headers.get('set-cookie'), null);
    const wrongPage = await wrong.text();
    assert.match(wrongPage, /not the admin token/);
    assert.match(wrongPage, /<form method="post" action="\/login">/);

    const crossSite = await postLogin({ token: system.adminToken }, { origin: 'https://evil.example' });
    assert.equal(crossSite.status, 403);
    assert.equal(crossSite.headers.get('set-cookie'), null);
    assert.equal((await postLogin({ token: system.adminToken }, {})).status, 403, 'no Origin and no Referer');
    assert.equal((await postLogin({ token: system.adminToken }, { origin: system.logUrl, 'sec-fetch-site': 'cross-site' })).status, 403);
    assert.equal((await postLogin({ token: system.adminToken }, { referer: `${system.logUrl}/login` })).status, 303, 'Referer of this origin');
    const proxied = await postLogin({ token: system.adminToken }, { origin: 'https://disputes.example.com', 'x-forwarded-host': 'disputes.example.com', 'x-forwarded-proto': 'https' });
    assert.equal(proxied.status, 303, 'behind a TLS proxy');
    assert.match(proxied.headers.get('set-cookie') ?? '', /; Secure$/);

    const good = await postLogin({ token: system.adminToken, next: `/leads/${leadId}?print=1` }, own);
    assert.equal(good.status, 303);
    assert.equal(good.headers.get('location'), `/leads/${leadId}?print=1`);
    const setCookie = good.headers.get('set-cookie') ?? '';
    assert.match(setCookie, new RegExp(`^${SESSION_COOKIE}=[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+; Path=/; Max-Age=43200; HttpOnly; SameSite=Strict`));
    const session = setCookie.split(';')[0]!;
    assert.equal((await fetchPage(`/leads/${leadId}`, { cookie: session })).status, 200);
    for (const next of ['//evil.example/x', 'https://evil.example/', '/\\evil.example', '/login?next=/x']) {
      const res = await postLogin({ token: system.adminToken, next }, own);
      assert.equal(res.headers.get('location'), '/', `next=${next} is not followed`);
    }
    // Logout is a same-origin POST as well.
    assert.equal((await fetch(pageUrl('/logout'), { method: 'POST', redirect: 'manual', headers: { cookie: session, origin: 'https://evil.example' } })).status, 403);

    // Forged sessions: a far expiry, another token's MAC, an expired one.
    const forged = `${Buffer.from(String(Date.now() + 86_400_000)).toString('base64url')}.${createSession(system.adminToken).value.split('.')[1]}`;
    const other = createSession('some-other-token').value;
    const expired = createSession(system.adminToken, Date.now() - 13 * 3_600_000).value;
    for (const value of [forged, other, expired, 'garbage']) assert.equal((await fetchPage(`/leads/${leadId}`, { cookie: `${SESSION_COOKIE}=${value}` })).status, 302, value);

    // In the browser: the form again, with the error, as a 401.
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(pageUrl(`/leads/${leadId}`));
      await page.fill('#token', 'not-the-admin-token');
      const [answer] = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/login') && r.request().method() === 'POST'), page.click('button[type=submit]')]);
      assert.equal(answer.status(), 401);
      assert.match(await page.locator('[role=alert]').innerText(), /not the admin token/);
      assert.equal(await page.locator('input[name=next]').inputValue(), `/leads/${leadId}`, 'the form keeps where to go');
      assert.equal((await context.cookies()).length, 0);
    } finally {
      await context.close();
    }
  });

  it('When a lead is searched, then several matches are listed, none is said so clearly, and phone and id work too', async function () {
    this.timeout(60_000);
    const second = await deliver({ email, phone: '+1 555 010 2222', first_name: 'Ada' });
    const list = await fetchPage(`/?q=${encodeURIComponent(email)}`);
    assert.equal(list.status, 200);
    const listHtml = await list.text();
    for (const id of [leadId, second]) assert.ok(listHtml.includes(`href="/leads/${id}"`), id);
    assert.match(listHtml, /2 leads/);
    assert.match(listHtml, /delivered/);
    assert.match(listHtml, /Acme Insurance CRM/);

    const byPhone = await fetchPage(`/?q=${encodeURIComponent('15550109911')}`);
    assert.equal(byPhone.status, 303);
    assert.equal(byPhone.headers.get('location'), `/leads/${leadId}`);
    assert.equal((await fetchPage(`/?phone=${encodeURIComponent(phone)}`)).headers.get('location'), `/leads/${leadId}`);
    assert.equal((await fetchPage(`/?q=${leadId}`)).headers.get('location'), `/leads/${leadId}`);

    for (const q of ['nobody@example.com', 'ld_01NOSUCHLEAD', '+44 20 7946 0000']) {
      const none = await fetchPage(`/?q=${encodeURIComponent(q)}`);
      assert.equal(none.status, 404, q);
      assert.match(await none.text(), /No lead found/, q);
    }
    assert.equal((await fetchPage(`/leads/ld_01NOSUCHLEAD`)).status, 404);
  });

  it('When lead fields and buyer answers hold HTML, then they are shown as text and never run', async function () {
    this.timeout(60_000);
    buyer.script([{ status: 200, headers: { 'x-request-id': '<img src=x onerror=alert(3)>' }, body: '<script>alert(2)</script></pre><b>bold</b>' }]);
    const hostile = await deliver({
      email: 'xss@example.com',
      first_name: '<script>alert(1)</script>',
      last_name: '"><img src=x onerror=alert(4)>',
      custom: { note: '</td></table><script>alert(5)</script>' },
    });
    const res = await fetchPage(`/leads/${hostile}`);
    const page = await res.text();
    assert.ok(!/<script/i.test(page), 'no script element anywhere');
    assert.ok(!/<img/i.test(page) && !/<b>bold/.test(page), 'no injected markup');
    assert.ok(page.includes('&lt;script&gt;alert(1)&lt;/script&gt;'), 'the first name as text');

    const { context, page: tab, dialogs } = await signIn(`/leads/${hostile}`);
    try {
      assert.equal(new URL(tab.url()).pathname, `/leads/${hostile}`, 'back to the page asked for');
      assert.ok(await tab.getByText('<script>alert(1)</script>', { exact: true }).isVisible());
      assert.ok(await tab.getByText('"><img src=x onerror=alert(4)>', { exact: true }).isVisible());
      assert.match(await tab.locator('li[data-type=attempt]').innerText(), /<script>alert\(2\)<\/script><\/pre><b>bold<\/b>/);
      assert.match(await tab.locator('li[data-type=attempt]').innerText(), /<img src=x onerror=alert\(3\)>/);
      assert.equal(await tab.locator('script, img, b').count(), 0);
      assert.deepEqual(dialogs, []);
    } finally {
      await context.close();
    }
  });

  it('When a provider reports on a lead (carrier outcome, bounce), then the report is on the timeline at its time', async function () {
    const attempts = await system.attempts(leadId);
    const at = new Date(Number(attempts[1]!.finishedAt) + 1_500);
    // As the Twilio callback route stores it (services/intake/callbacks/twilio.ts).
    await system.models.ProviderEvent.create({
      _id: `twilio:SM0123:undelivered`,
      provider: 'twilio',
      messageId: 'SM0123',
      type: 'undelivered',
      leadId,
      endpointId: String(attempts[1]!.endpointId),
      at,
      data: { MessageStatus: 'undelivered', ErrorCode: '30003', errorCode: 30003, carrierOutcome: 'Unreachable destination handset' },
    });
    const res = await fetchPage(`/leads/${leadId}`);
    const page = await res.text();
    assert.match(page, /twilio: undelivered/);
    assert.match(page, /Unreachable destination handset/);
    assert.ok(page.includes(at.toISOString()));
    assert.ok(page.indexOf('twilio: undelivered') > page.indexOf('data-decision="accepted"'), 'after the acceptance, at its time');
  });

  it('When a record is edited in the database, then the page names the broken link in red and offers no receipt', async function () {
    buyer.script([{ status: 200 }]);
    const victim = await deliver({ email: 'tampered@example.com', first_name: 'Tam' });
    const entry = await system.models.LogEntry.findOne({ leadId: victim, type: 'attempt' }).lean();
    await system.models.LogEntry.updateOne({ _id: entry!._id }, { $set: { 'data.response.status': 201 } });
    const page = await (await fetchPage(`/leads/${victim}`)).text();
    assert.match(page, new RegExp(`class="chain broken" data-chain="broken">BROKEN at entry ${entry!.seq} `));
    assert.match(page, /edited/);
    assert.ok(!page.includes('id="receipt-link"'));
    assert.equal((await fetchPage(`/leads/${victim}/receipt.json`)).status, 409);
  });

  it('When a lead’s personal data expired, then the page shows the removed marker instead of its fields, and the chain still verifies', async function () {
    const retention = await http<{ shredded: number }>('POST', `${system.logUrl}/v1/retention/run`, { token: system.adminToken, body: { at: new Date(Date.now() + 3 * 365 * 86_400_000).toISOString() } });
    assert.ok(retention.body.shredded >= 1, JSON.stringify(retention.body));
    const page = await (await fetchPage(`/leads/${leadId}`)).text();
    assert.ok(page.includes(EXPIRED), 'the removed marker');
    assert.ok(!page.includes('Lovelace') && !page.includes(email) && !page.includes('Unreachable destination handset'), 'no personal data left on the page');
    assert.match(page, /data-chain="ok">verified: \d+ records/);
    assert.match(page, /removed at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/);
    assert.equal((await fetchPage(`/?q=${encodeURIComponent(email)}`)).status, 404, 'no longer found by email');
    assert.equal((await fetchPage(`/leads/${leadId}/receipt.json`)).status, 200, 'the receipt is still issued');
  });
});
