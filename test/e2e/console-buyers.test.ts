/**
 * The console's Buyers section, through the running system in a headless Chromium: an operator
 * signs in through the form, adds a buyer and a webhook endpoint through the forms (a bad URL is
 * refused on the url field and nothing is stored; a good one shows the signing secret once), edits
 * it beside its mapping preview; a failing buyer trips the endpoint's breaker, which the buyer page
 * and the overview show open, and a reset through the page (confirmed first) closes it. A
 * cross-site form post is refused and changes nothing; every page escapes a hostile buyer name.
 */
import assert from 'node:assert/strict';
import { chromium, type APIResponse, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startFakeBuyer, type FakeBuyer } from '../fakes/buyer';
import { rememberSecret } from '../support/secrets';
import { eventually, startSystem, type TestSystem } from '../support/system';
import { SESSION_COOKIE } from '../../shared/http/pages/session';

// The same headless Chromium as dispute-page.test.ts (never downloaded by a tool).
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const HOSTILE = '<script>alert(1)</script>';

interface EndpointApiView {
  id: string;
  url?: string;
  signingSecret?: string;
  auth?: { type: string; token?: string };
  backoff: string[];
  timeoutMs: number;
  breaker: { threshold: number; coolDown: string };
  mapping?: Record<string, unknown>;
}

describe('console: buyers, their endpoints and breakers', function () {
  let system: TestSystem;
  let fake: FakeBuyer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const dialogs: string[] = [];
  // Filled by the first test, used by the next ones.
  let buyerId = '';
  let endpointId = '';

  const url = (p: string) => `${system.intakeUrl}${p}`;
  const buyerIdOf = (href: string) => new URL(href).pathname.split('/')[3] ?? '';
  /** Submits a form by clicking; the status of the page it ends on (after a redirect, the page redirected to). */
  async function submit(selector: string): Promise<number> {
    const [response] = await Promise.all([page.waitForResponse((r) => r.request().isNavigationRequest() && r.request().frame() === page.mainFrame() && (r.status() < 300 || r.status() >= 400)), page.click(selector)]);
    await page.waitForLoadState('domcontentloaded');
    return response.status();
  }
  const endpoints = async (id: string) => (await system.admin<{ items: EndpointApiView[] }>('GET', `/buyers/${id}/endpoints`)).body.items;
  const breakerState = async (id: string) => String((await system.admin<{ state: string }>('GET', `/endpoints/${id}/breaker`)).body.state);

  before(async function () {
    this.timeout(180_000);
    system = await startSystem();
    fake = await startFakeBuyer({ steps: [{ status: 503, body: { error: 'down for maintenance' } }] });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
  });
  after(async () => {
    await browser?.close();
    await fake?.close();
    await system?.stop();
  });

  it('When an operator signs in and adds a buyer and a webhook endpoint through the forms, then a bad URL is refused on the url field with nothing stored, and a good one is saved with its signing secret shown once; a reload of that page adds no second endpoint', async function () {
    this.timeout(90_000);
    await page.goto(url('/console/buyers'));
    assert.equal(new URL(page.url()).pathname, '/console/login', 'no session: the login form');
    await page.fill('#token', system.adminToken);
    await Promise.all([page.waitForURL((u) => u.pathname === '/console/buyers'), page.click('button[type=submit]')]);
    assert.ok((await context.cookies()).some((c) => c.name === SESSION_COOKIE), 'signed in');

    // A buyer without a name is refused on the name field, and none is stored.
    assert.equal(await submit('#add-buyer-submit'), 400);
    assert.match(await page.locator('#field-name #error-name').innerText(), /must not be empty/);
    assert.equal((await system.admin<{ items: unknown[] }>('GET', '/buyers')).body.items.length, 0);

    await page.fill('#name', 'Console Buyer Co');
    await page.selectOption('#accept', 'any');
    assert.equal(await submit('#add-buyer-submit'), 200);
    buyerId = buyerIdOf(page.url());
    assert.match(buyerId, /^buy_/);
    assert.match(await page.locator('#flash').innerText(), /Buyer added/);
    assert.equal(await page.locator('#buyer-name').innerText(), 'Console Buyer Co');
    assert.equal((await system.admin<{ accept: string }>('GET', `/buyers/${buyerId}`)).body.accept, 'any');
    assert.equal(await page.locator('#no-endpoints').count(), 1);

    // The webhook form; the first submit has an ftp:// URL.
    await Promise.all([page.waitForURL(/\/endpoints\/new\?kind=webhook$/), page.click('#add-webhook')]);
    const token = 'console-bearer-token-9f2c1a77';
    rememberSecret(token);
    await page.fill('#url', 'ftp://x');
    await page.selectOption('#authType', 'bearer');
    await page.fill('#authToken', token);
    await page.fill('#mapping', '{"email": "email", "first": "first_name"}');
    await page.fill('#backoff', '1s');
    await page.fill('#breakerThreshold', '1');
    await page.fill('#breakerCoolDown', '10m');
    assert.equal(await submit('#save'), 400);
    const urlError = page.locator('#field-url > #error-url');
    assert.match(await urlError.innerText(), /must be an http\(s\) URL/, 'the error under the url input');
    assert.equal(await page.locator('#url').getAttribute('aria-describedby'), 'error-url');
    assert.match(String(await page.locator('#field-url').getAttribute('class')), /\binvalid\b/);
    assert.equal(await page.locator('.field-error').count(), 1, 'only the url is wrong');
    assert.equal(await page.inputValue('#url'), 'ftp://x', 're-filled with what was typed');
    assert.equal(await page.inputValue('#breakerThreshold'), '1');
    assert.equal(await page.inputValue('#mapping'), '{"email": "email", "first": "first_name"}');
    assert.equal(await page.inputValue('#authType'), 'bearer');
    assert.equal(await page.inputValue('#authToken'), '', 'a secret is never sent back');
    assert.ok(!(await page.content()).includes(token), 'nor anywhere in the page');
    assert.deepEqual(await endpoints(buyerId), [], 'nothing stored');

    await page.fill('#url', fake.url);
    await page.fill('#authToken', token);
    assert.equal(await submit('#save'), 200);
    const secret = (await page.locator('#signing-secret').innerText()).trim();
    rememberSecret(secret);
    assert.match(secret, /^whsec_[A-Za-z0-9+/=]{20,}$/, 'the generated signing secret, in clear this once');
    endpointId = (await page.locator('#endpoint-id').innerText()).trim();
    const [stored] = await endpoints(buyerId);
    assert.ok(stored);
    assert.equal(stored.id, endpointId);
    assert.equal(stored.url, fake.url);
    assert.deepEqual(stored.backoff, ['1s']);
    assert.deepEqual(stored.breaker, { threshold: 1, coolDown: '10m' });
    assert.deepEqual(stored.mapping, { email: 'email', first: 'first_name' });
    assert.equal(stored.auth?.type, 'bearer');
    assert.notEqual(stored.signingSecret, secret, 'masked from now on');
    // A reload of that page posts the form again: refused, no second endpoint, the secret not shown again.
    assert.equal((await page.reload())?.status(), 409);
    assert.match(await page.locator('#refusal').innerText(), /already sent[\s\S]*nothing was done again/);
    assert.ok(!(await page.content()).includes(secret), 'the secret is not on the refusal');
    assert.equal((await endpoints(buyerId)).length, 1, 'one endpoint, not two');

    // The buyer's page lists it (closed breaker, masked secrets); the secret is not shown again.
    await Promise.all([page.waitForURL((u) => u.pathname === `/console/buyers/${buyerId}`), page.click('#back')]);
    const card = page.locator(`#endpoint-${endpointId}`);
    assert.equal(await card.count(), 1);
    const cardText = await card.innerText();
    assert.ok(cardText.includes(fake.url), 'its URL');
    assert.match(cardText, /webhook/);
    assert.match(cardText, /threshold 1, cool-down 10m/);
    assert.equal((await card.locator('.breaker-state').innerText()).trim(), 'closed');
    const html = await page.content();
    assert.ok(!html.includes(secret) && !html.includes(token), 'no secret in clear on the buyer page');
    assert.match(await card.locator('a[href*="/namespaces/default/workflows/breaker-"]').getAttribute('href') ?? '', new RegExp(`/workflows/breaker-${endpointId}$`), 'its breaker in the Temporal UI');
  });

  it('When the operator edits the endpoint, then the mapping preview beside the form shows the request the sample lead would produce, a bad value is refused on its field, and a good one is saved', async function () {
    this.timeout(60_000);
    await page.goto(url(`/console/buyers/${buyerId}/endpoints/${endpointId}/edit`));
    assert.equal(await page.inputValue('#url'), fake.url, 'the stored settings');
    assert.equal(await page.inputValue('#signingSecret'), '', 'secrets: empty keeps them');
    assert.equal(await page.inputValue('#authType'), 'keep');
    assert.equal((await page.locator('#preview-request').innerText()).trim(), `POST ${fake.url}`);
    assert.deepEqual(JSON.parse(await page.locator('#preview-body').innerText()), { email: 'ada@example.com', first: 'Ada' }, 'the sample lead through the mapping');
    const previewHeaders = await page.locator('#preview-headers').innerText();
    assert.match(previewHeaders, /authorization/);
    assert.ok(!previewHeaders.includes('console-bearer-token-9f2c1a77'), 'the auth header masked');

    await page.fill('#timeoutMs', 'soon');
    assert.equal(await submit('#save'), 400);
    assert.match(await page.locator('#field-timeoutMs > #error-timeoutMs').innerText(), /must be a number/);
    assert.equal((await endpoints(buyerId))[0]!.timeoutMs, 10_000, 'unchanged');
    await page.fill('#timeoutMs', '50');
    assert.equal(await submit('#save'), 400);
    assert.match(await page.locator('#error-timeoutMs').innerText(), /at least 100/, 'the API’s own rule');
    await page.fill('#timeoutMs', '4000');
    await page.fill('#mapping', '{"email": "email", "city": "city"}');
    assert.equal(await submit('#save'), 200);
    assert.match(await page.locator('#flash').innerText(), /Endpoint saved/);
    const [saved] = await endpoints(buyerId);
    assert.equal(saved!.timeoutMs, 4000);
    assert.equal(saved!.auth?.type, 'bearer', 'auth kept');
    assert.deepEqual(saved!.breaker, { threshold: 1, coolDown: '10m' }, 'the rest kept');
    assert.deepEqual(JSON.parse(await page.locator('#preview-body').innerText()), { email: 'ada@example.com', city: 'London' }, 'the preview of the saved mapping');
  });

  it('When the operator changes the buyer’s settings, then the API’s errors are shown on their fields with nothing saved, and good values are saved and shown with their usage', async function () {
    this.timeout(60_000);
    await page.goto(url(`/console/buyers/${buyerId}`));
    await Promise.all([page.waitForURL(/\/settings$/), page.click('#edit-settings')]);
    assert.equal(await page.inputValue('#timeZone'), 'UTC', 'the defaults as stored');
    assert.equal(await page.inputValue('#returnWindow'), '7d');
    await page.fill('[id="caps.daily"]', '0');
    await page.fill('#timeZone', 'Mars/Olympus_Mons');
    await page.fill('#schedule', '{"hours": {"mon": [["20:00", "08:00"]]}}');
    assert.equal(await submit('#save'), 400);
    assert.match(await page.locator('[id="field-caps.daily"] > [id="error-caps.daily"]').innerText(), /at least 1/);
    assert.match(await page.locator('#field-timeZone > #error-timeZone').innerText(), /IANA time zone/);
    assert.match(await page.locator('#field-schedule > #error-schedule').innerText(), /schedule\.hours\.mon\.0: must start before it ends/);
    assert.equal(await page.inputValue('#timeZone'), 'Mars/Olympus_Mons', 're-filled with what was typed');
    let stored = (await system.admin<{ timeZone: string; caps: Record<string, number>; schedule?: unknown }>('GET', `/buyers/${buyerId}`)).body;
    assert.equal(stored.timeZone, 'UTC', 'nothing saved');
    assert.deepEqual(stored.caps, {});

    // Open all week (the next test's leads must reach the buyer), 50 a day.
    const allDay = Object.fromEntries(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => [d, [['00:00', '24:00']]]));
    await page.fill('[id="caps.daily"]', '50');
    await page.fill('#timeZone', 'America/Chicago');
    await page.fill('#schedule', JSON.stringify({ hours: allDay }));
    await page.fill('#capWarning', '80');
    assert.equal(await submit('#save'), 200);
    assert.equal(new URL(page.url()).pathname, `/console/buyers/${buyerId}`);
    assert.match(await page.locator('#flash').innerText(), /Settings saved/);
    stored = (await system.admin<{ timeZone: string; caps: Record<string, number>; schedule?: unknown }>('GET', `/buyers/${buyerId}`)).body;
    assert.equal(stored.timeZone, 'America/Chicago');
    assert.deepEqual(stored.caps, { daily: 50 });
    const settings = await page.locator('#settings').innerText();
    assert.match(settings, /daily 0 \/ 50/);
    assert.match(settings, /America\/Chicago/);
    assert.match(settings, /80 %/);
    assert.match(await page.locator('#hours-now').innerText(), /open/);
    // Emptying a cap removes it.
    await page.goto(url(`/console/buyers/${buyerId}/settings`));
    assert.equal(await page.inputValue('[id="caps.daily"]'), '50');
    await page.fill('#capWarning', '');
    assert.equal(await submit('#save'), 200);
    assert.equal((await system.admin<{ capWarning?: number }>('GET', `/buyers/${buyerId}`)).body.capWarning, undefined);
  });

  it('When the buyer fails until the breaker opens, then the buyer page and the overview show it open; a reset through the page, confirmed first, closes it', async function () {
    this.timeout(120_000);
    const source = await system.createSource('console buyers source');
    await system.setWaterfall(source.id, [buyerId]);
    fake.script([{ status: 503, body: { error: 'down for maintenance' } }]);
    // Leads until the breaker (threshold 1) opens.
    await eventually(async () => {
      const res = await system.postLead(source.apiKey, { email: `trip.${Date.now()}@example.com`, first_name: 'Trip' });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      try {
        return await eventually(async () => ((await breakerState(endpointId)) === 'open' ? true : undefined), 10_000, 'breaker open');
      } catch {
        return undefined;
      }
    }, 60_000, 'the breaker to open');

    await page.goto(url(`/console/buyers/${buyerId}`));
    const card = page.locator(`#endpoint-${endpointId}`);
    assert.equal((await card.locator('.breaker-state').innerText()).trim(), 'open');
    assert.match(await card.innerText(), /consecutive failures\s+\d+ of 1/);
    assert.match(await card.innerText(), /http_503/, 'the last error');
    // The breaker pauses an accept endpoint's buyer (its workflow does, a moment later).
    await eventually(async () => {
      await page.reload();
      return (await page.locator('[data-buyer-state=paused]').count()) === 1 ? true : undefined;
    }, 20_000, 'buyer paused by the breaker');
    assert.match(await page.locator('#buyer-state').innerText(), /by breaker/);

    // The list and the overview (from the state the breaker publishes).
    await page.goto(url('/console/buyers'));
    assert.equal(await page.locator(`tr[data-buyer="${buyerId}"] [data-endpoint="${endpointId}"] [data-breaker=open]`).count(), 1);
    await eventually(async () => {
      await page.goto(url('/console'));
      return (await page.locator('#alarms').innerText()).includes(endpointId) ? true : undefined;
    }, 20_000, 'the overview lists the open breaker');
    assert.match(await page.locator('#alarms').innerText(), /Breaker open at Console Buyer Co/);

    // Reset: the first click asks; nothing has happened yet.
    fake.script([{ status: 200, body: { ok: true } }]);
    await page.goto(url(`/console/buyers/${buyerId}`));
    await page.fill(`form[action$="/endpoints/${endpointId}/breaker/reset"] input[name=reason]`, 'buyer fixed their server');
    assert.equal(await submit(`#breaker-reset-${endpointId}`), 200);
    assert.equal(await page.locator('h1').innerText(), 'Reset this breaker?');
    assert.match(await page.locator('main').innerText(), /now open/);
    assert.match(await page.locator('main').innerText(), /buyer fixed their server/);
    assert.equal(await breakerState(endpointId), 'open', 'the confirmation step changes nothing');
    assert.equal(await submit('#confirm'), 200);
    assert.equal(new URL(page.url()).pathname, `/console/buyers/${buyerId}`);
    assert.match(await page.locator('#flash').innerText(), /Breaker reset/);
    assert.equal((await page.locator(`#endpoint-${endpointId} .breaker-state`).innerText()).trim(), 'closed');
    assert.equal(await breakerState(endpointId), 'closed');
    // Closing resumes the buyer the breaker had paused.
    await eventually(async () => ((await system.admin<{ paused: boolean }>('GET', `/buyers/${buyerId}`)).body.paused === false ? true : undefined), 20_000, 'buyer resumed');

    // A delivery now succeeds: the list shows it as the buyer's last success, and no failing endpoint.
    const res = await system.postLead(source.apiKey, { email: 'after.reset@example.com', first_name: 'Ok' });
    assert.equal(res.status, 202);
    const leadId = String(res.body.leadId);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    await page.goto(url('/console/buyers'));
    const row = page.locator(`tr[data-buyer="${buyerId}"]`);
    const lastSuccess = row.locator('td').nth(3);
    assert.ok((await lastSuccess.innerText()).includes(leadId), 'the last success links its lead');
    const at = Date.parse(String(await lastSuccess.locator('time').getAttribute('datetime')));
    assert.ok(Date.now() - at < 60_000, 'and when it was');
    assert.equal(await row.locator('[data-breaker=closed]').count(), 1);
    assert.equal(await row.locator('[data-failing]').count(), 0, 'no failure since the success');
    assert.equal(await row.locator('[data-cap=daily]').innerText(), 'daily 1 / 50', 'the delivered lead counts in today’s cap (the failed ones were released)');
  });

  it('When a form post comes from another site, then it is refused with 403 and changes nothing; the same post from the console’s own origin goes through its confirmation', async function () {
    this.timeout(30_000);
    const cookie = (await context.cookies()).find((c) => c.name === SESSION_COOKIE);
    assert.ok(cookie);
    const post = (path: string, fields: Record<string, string>, headers: Record<string, string>) =>
      fetch(url(path), { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `${SESSION_COOKIE}=${cookie.value}`, ...headers }, body: new URLSearchParams(fields).toString() });

    const paused = async () => (await system.admin<{ paused: boolean }>('GET', `/buyers/${buyerId}`)).body.paused;
    assert.equal(await paused(), false);
    const foreign = await post(`/console/buyers/${buyerId}/pause`, { reason: 'forged', confirm: 'yes' }, { origin: 'https://evil.example' });
    assert.equal(foreign.status, 403);
    assert.match(await foreign.text(), /Refused/);
    assert.equal((await post(`/console/buyers/${buyerId}/pause`, { reason: 'forged', confirm: 'yes' }, {})).status, 403, 'no Origin, no Referer');
    assert.equal((await post(`/console/buyers/${buyerId}/pause`, { reason: 'forged', confirm: 'yes' }, { origin: system.intakeUrl, 'sec-fetch-site': 'cross-site' })).status, 403);
    const forgedReset = await post(`/console/buyers/${buyerId}/endpoints/${endpointId}/breaker/open`, { confirm: 'yes' }, { origin: 'https://evil.example' });
    assert.equal(forgedReset.status, 403);
    const forgedEndpoint = await post(`/console/buyers/${buyerId}/endpoints`, { kind: 'webhook', url: fake.url }, { origin: 'https://evil.example' });
    assert.equal(forgedEndpoint.status, 403);
    assert.equal(await paused(), false, 'not paused');
    assert.equal(await breakerState(endpointId), 'closed', 'breaker untouched');
    assert.equal((await endpoints(buyerId)).length, 1, 'no endpoint added');

    // From the console's origin: without confirm=yes it only asks; with it, it acts.
    const ask = await post(`/console/buyers/${buyerId}/pause`, { reason: 'maintenance window' }, { origin: system.intakeUrl });
    assert.equal(ask.status, 200);
    assert.match(await ask.text(), /name="confirm" value="yes"/);
    assert.equal(await paused(), false);
    const done = await post(`/console/buyers/${buyerId}/pause`, { reason: 'maintenance window', confirm: 'yes' }, { origin: system.intakeUrl });
    assert.equal(done.status, 303);
    assert.equal(done.headers.get('location'), `/console/buyers/${buyerId}?done=paused`);
    assert.equal(await paused(), true);
    // Resumed through the page (confirmed).
    await page.goto(url(`/console/buyers/${buyerId}`));
    assert.match(await page.locator('#buyer-state').innerText(), /by operator: maintenance window/);
    assert.equal(await submit('#resume'), 200);
    assert.equal(await submit('#confirm'), 200);
    assert.match(await page.locator('#flash').innerText(), /Buyer resumed/);
    assert.equal(await paused(), false);
  });

  it('When a buyer and its endpoint are named <script>alert(1)</script>, then every buyers page escapes them and no script runs', async function () {
    this.timeout(60_000);
    const own = { origin: system.intakeUrl };
    const check = async (what: string, response: APIResponse, status = 200) => {
      assert.equal(response.status(), status, what);
      const body = await response.text();
      assert.ok(!body.includes('<script'), `${what}: no raw script tag`);
      assert.ok(body.includes('&lt;script&gt;alert(1)&lt;/script&gt;') || body.includes('&lt;script&gt;alert(2)&lt;/script&gt;'), `${what}: the name, escaped`);
    };
    // The buyer added through the form in the browser.
    await page.goto(url('/console/buyers'));
    await page.fill('#name', HOSTILE);
    assert.equal(await submit('#add-buyer-submit'), 200);
    const hostileId = buyerIdOf(page.url());
    assert.equal(await page.locator('#buyer-name').innerText(), HOSTILE, 'shown as text');
    const endpoint = await system.addEndpoint(hostileId, { kind: 'webhook', name: '<script>alert(2)</script>', url: fake.url, mapping: { '<script>alert(2)</script>': 'email' } });
    const base = `/console/buyers/${hostileId}`;
    const request = page.request;

    await check('list', await request.get(url('/console/buyers')));
    await check('buyer page', await request.get(url(base)));
    await check('settings', await request.get(url(`${base}/settings`)));
    await check('new endpoint', await request.get(url(`${base}/endpoints/new?kind=webhook`)));
    await check('kind chooser', await request.get(url(`${base}/endpoints/new`)));
    await check('edit endpoint', await request.get(url(`${base}/endpoints/${endpoint.id}/edit`)));
    await check('pause confirmation', await request.post(url(`${base}/pause`), { form: { reason: HOSTILE }, headers: own }));
    await check('reset confirmation', await request.post(url(`${base}/endpoints/${endpoint.id}/breaker/reset`), { form: { reason: HOSTILE }, headers: own }));
    await check('archive confirmation', await request.post(url(`${base}/endpoints/${endpoint.id}/archive`), { form: {}, headers: own }));
    await check('endpoint form refused', await request.post(url(`${base}/endpoints`), { form: { kind: 'webhook', name: HOSTILE, url: HOSTILE, mapping: HOSTILE }, headers: own }), 400);
    await check('settings refused', await request.post(url(`${base}/settings`), { form: { name: HOSTILE, timeZone: HOSTILE, schedule: HOSTILE }, headers: own }), 400);
    await check('buyer form refused', await request.post(url('/console/buyers'), { form: { name: '', accept: HOSTILE }, headers: own }), 400);
    // The endpoint form's one-time token (a post without one adds nothing).
    const once = /name="once" value="([\w-]+)"/.exec(await (await request.get(url(`${base}/endpoints/new?kind=webhook`))).text())?.[1];
    assert.ok(once, 'the endpoint form carries a one-time token');
    await check('endpoint added', await request.post(url(`${base}/endpoints`), { form: { kind: 'webhook', name: HOSTILE, url: fake.url, once }, headers: own }));
    const saved = await request.post(url(`${base}/settings`), { form: { name: HOSTILE }, headers: own, maxRedirects: 0 });
    assert.equal(saved.status(), 303, 'settings saved');
    assert.equal(saved.headers().location, `${base}?done=settings`);
    await check('the buyer page after a save', await request.get(url(`${base}?done=settings`)));
    // The archive, confirmed.
    const archived = await request.post(url(`${base}/endpoints/${endpoint.id}/archive`), { form: { confirm: 'yes' }, headers: own, maxRedirects: 0 });
    assert.equal(archived.status(), 303);
    assert.equal(archived.headers().location, `${base}?done=endpoint-archived`);
    assert.ok((await system.admin<{ archivedAt?: string }>('GET', `/buyers/${hostileId}/endpoints/${endpoint.id}`)).body.archivedAt, 'archived');
    await check('the buyer page after an archive', await request.get(url(`${base}?done=endpoint-archived`)));
    assert.equal((await request.get(url(`${base}/endpoints/${endpoint.id}/edit`))).status(), 200);
    assert.match(await (await request.get(url(`${base}/endpoints/${endpoint.id}/edit`))).text(), /Archived .*it cannot be changed/, 'an archived endpoint has no form');
    // A flash is one of a fixed set: anything else shows none.
    const odd = await (await request.get(url(`${base}?done=${encodeURIComponent(HOSTILE)}`))).text();
    assert.ok(!odd.includes('id="flash"'));

    // In the browser, no dialog opened on any of these pages.
    for (const p of ['/console/buyers', base, `${base}/settings`, `${base}/endpoints/${endpoint.id}/edit`, '/console']) await page.goto(url(p));
    assert.deepEqual(dialogs, []);
    assert.equal((await system.admin<{ name: string }>('GET', `/buyers/${hostileId}`)).body.name, HOSTILE, 'stored as given');
  });
});
