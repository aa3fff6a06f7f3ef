/**
 * The console's sign-in and overview, through the running system in Debian's Chromium: a page
 * without a session goes to the console's login form, a wrong token is refused, the admin token
 * signs in (and the same session opens the dispute pages); the overview puts an open breaker and the
 * buyer it paused first, in red, counts the leads per source, the attempts by outcome, and draws the
 * deliveries and failures per minute. A screenshot is kept in test-artifacts/ (copied to docs/ for
 * the README with UPDATE_SCREENSHOTS=1).
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { startFakeBuyer, type FakeBuyer } from '../fakes/buyer';
import { startSystem, type TestSystem } from '../support/system';
import { SESSION_COOKIE } from '../../shared/http/pages/session';

const ROOT = path.resolve(__dirname, '../..');
const ARTIFACTS = path.join(ROOT, 'test-artifacts');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const SCREENSHOT = path.join(ARTIFACTS, 'console.png');

describe('console: sign-in and the overview', function () {
  let system: TestSystem;
  let down: FakeBuyer;
  let up: FakeBuyer;
  let browser: Browser;
  let primary: string;
  let endpointId: string;

  before(async function () {
    this.timeout(180_000);
    system = await startSystem();
    [down, up] = await Promise.all([startFakeBuyer({ steps: [{ status: 503 }] }), startFakeBuyer()]);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    mkdirSync(ARTIFACTS, { recursive: true });
    // A primary that is down (its breaker opens at the first failure and pauses it) and a backup.
    const source = await system.createSource('Web forms');
    primary = await system.createBuyer({ name: 'Primary Loans' });
    endpointId = (await system.addEndpoint(primary, { kind: 'webhook', url: down.url, backoff: [], breaker: { threshold: 1, coolDown: '1h' } })).id;
    const backup = await system.createBuyer({ name: 'Backup Loans' });
    await system.addEndpoint(backup, { kind: 'webhook', url: up.url });
    await system.setWaterfall(source.id, [primary, backup]);
    const deliver = async (n: number) => {
      const res = await system.postLead(source.apiKey, { email: `overview${n}@example.com` });
      await system.waitForLead(String(res.body.leadId), (v) => v.status === 'delivered');
    };
    await deliver(1); // the primary answers 503: its breaker opens, the backup takes the lead
    const deadline = Date.now() + 30_000;
    while ((await system.admin<{ state: string }>('GET', `/endpoints/${endpointId}/breaker`)).body.state !== 'open') {
      if (Date.now() > deadline) throw new Error('the breaker did not open');
      await new Promise((r) => setTimeout(r, 200));
    }
    await deliver(2); // the primary is skipped (breaker open, buyer paused)
  });
  after(async () => {
    await browser?.close();
    await Promise.all([down?.close(), up?.close()]);
    await system?.stop();
  });

  it('When a browser without a session opens the console, then it is sent to the console login; a wrong token is refused; a cross-site form post is refused', async () => {
    const res = await fetch(`${system.intakeUrl}/console/buyers?x=1`, { redirect: 'manual' });
    assert.equal(res.status, 302);
    assert.equal(res.headers.get('location'), '/console/login?next=%2Fconsole%2Fbuyers%3Fx%3D1');
    const post = (headers: Record<string, string>, token: string) =>
      fetch(`${system.intakeUrl}/console/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams({ token, next: '/console' }).toString() });
    const wrong = await post({ origin: system.intakeUrl }, 'not-the-token');
    assert.equal(wrong.status, 401);
    assert.match(await wrong.text(), /That is not the admin token/);
    const foreign = await post({ origin: 'https://evil.example' }, system.adminToken);
    assert.equal(foreign.status, 403);
    assert.equal(foreign.headers.get('set-cookie'), null, 'no session from a cross-site post');
    const csp = (await fetch(`${system.intakeUrl}/console/login`)).headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'self'/);
    assert.doesNotMatch(csp, /script-src[^;]*unsafe-inline/);
  });

  it('When an operator signs in, then the overview shows the open breaker and the paused buyer first, the counts, the outcomes and the chart; the session also opens the dispute pages', async function () {
    this.timeout(90_000);
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    try {
      const page = await context.newPage();
      await page.goto(`${system.intakeUrl}/console`);
      assert.equal(new URL(page.url()).pathname, '/console/login');
      await page.fill('#token', system.adminToken);
      await Promise.all([page.waitForURL((u) => u.pathname === '/console'), page.click('button[type=submit]')]);

      const alarms = await page.textContent('#alarms');
      assert.match(alarms ?? '', /Breaker open at Primary Loans/);
      assert.ok(alarms?.includes(endpointId), 'the endpoint is named');
      assert.match(alarms ?? '', /Buyer Primary Loans paused by breaker/);
      assert.equal(await page.getAttribute('#alarms', 'class'), 'alarm', 'in red');
      assert.match((await page.textContent('#accepted')) ?? '', /^2 \/ 2$/);
      assert.match((await page.textContent('#delivered')) ?? '', /^2 \/ 2$/);
      const outcomes = await page.$$eval('#outcomes td', (cells) => cells.map((c) => (c as unknown as { textContent: string }).textContent));
      assert.deepEqual(outcomes.map(Number).slice(0, 2), [2, 1], 'two successes at the backup, one 503 at the primary (then its breaker skipped it)');
      const bars = await page.$$eval('#chart title', (titles) => titles.map((t) => (t as unknown as { textContent: string }).textContent));
      assert.equal(bars.length, 60, 'one bar per minute');
      const sum = (re: RegExp) => bars.reduce((n, t) => n + Number(re.exec(t)?.[1] ?? 0), 0);
      assert.deepEqual([sum(/(\d+) delivered/), sum(/(\d+) failed/)], [2, 1], bars.filter((t) => !/0 delivered, 0 failed/.test(t)).join(' | '));
      assert.match((await page.textContent('#sources')) ?? '', /Web forms/);
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      if (process.env.UPDATE_SCREENSHOTS) copyFileSync(SCREENSHOT, path.join(ROOT, 'docs/console.png'));

      // One sign-in for the operator's pages on this host: the cookie opens the log service's pages too.
      const cookie = (await context.cookies()).find((c) => c.name === SESSION_COOKIE);
      assert.ok(cookie);
      const dispute = await fetch(`${system.logUrl}/`, { headers: { cookie: `${SESSION_COOKIE}=${cookie.value}` }, redirect: 'manual' });
      assert.equal(dispute.status, 200);

      await Promise.all([page.waitForURL((u) => u.pathname === '/console/login'), page.click('#sign-out')]);
      const after = await fetch(`${system.intakeUrl}/console`, { redirect: 'manual' });
      assert.equal(after.status, 302, 'no session without the cookie');
    } finally {
      await context.close();
    }
  });
});
