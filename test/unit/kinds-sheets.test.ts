/**
 * The sheets kind's parts: classification of Google's answers, the quota limiter (with a clock of
 * our own), and the batcher against the local Sheets fake with a small quota, to show the limiter
 * is what keeps a stream of flushes under it (and that the fake does catch a client that is not).
 */
import assert from 'node:assert/strict';
import { classifySheets, quoteSheet, QuotaLimiter, SheetsBatcher, SheetsReadBackError, accountOf, type QuotaLimits } from '../../activities/sheets';
import { newServiceAccount, startGoogleSheetsFake, type SheetsFake } from '../fakes/google-sheets';

describe('sheets kind: classification of Google answers', () => {
  it('2xx is success; a lead already in the sheet is a success too', () => {
    assert.equal(classifySheets({ status: 200 }).code, 'ok');
    assert.deepEqual([classifySheets({ status: 200, providerCode: 'already_present' }).outcome, classifySheets({ status: 200, providerCode: 'already_present' }).code], ['success', 'already_present']);
  });
  it('429 (and a 403 that is a rate limit) and 5xx are transient, Retry-After kept', () => {
    assert.deepEqual(classifySheets({ status: 429, headers: { 'retry-after': '5' }, providerCode: 'RESOURCE_EXHAUSTED' }), { outcome: 'transient', code: 'http_429', reason: '429 RESOURCE_EXHAUSTED', countsAgainstEndpoint: true, retryAfterMs: 5_000 });
    assert.equal(classifySheets({ status: 403, providerCode: 'RESOURCE_EXHAUSTED' }).outcome, 'transient');
    assert.equal(classifySheets({ status: 403, providerMessage: 'User Rate Limit Exceeded' }).outcome, 'transient');
    assert.equal(classifySheets({ status: 500 }).outcome, 'transient');
    assert.equal(classifySheets({ status: 503 }).outcome, 'transient');
  });
  it('401, 403 (not shared), 404, a missing tab and a foreign header are permanent', () => {
    assert.deepEqual([401, 403, 404].map((status) => classifySheets({ status, providerCode: 'X' }).outcome), ['permanent', 'permanent', 'permanent']);
    assert.equal(classifySheets({ status: 403, providerCode: 'PERMISSION_DENIED', providerMessage: 'The caller does not have permission — share the spreadsheet with a@b.iam.gserviceaccount.com' }).reason.includes('share the spreadsheet with a@b'), true);
    assert.equal(classifySheets({ status: 400, providerMessage: "Unable to parse range: 'Nope'!1:1" }).code, 'sheets_tab_not_found');
    assert.equal(classifySheets({ providerCode: 'header_mismatch', providerMessage: 'x' }).code, 'sheets_header_mismatch');
  });
  it('our own limiter asking to wait is transient with its wait', () => {
    assert.deepEqual(classifySheets({ providerCode: 'quota_wait', providerMessage: 'wait', retryAfterMs: 12_000 }), { outcome: 'transient', code: 'sheets_quota_wait', reason: 'wait', countsAgainstEndpoint: true, retryAfterMs: 12_000 });
  });
  it('tab names are quoted in A1 notation', () => {
    assert.equal(quoteSheet("Bob's leads"), "'Bob''s leads'");
  });
});

describe('sheets kind: quota limiter', () => {
  const limits: QuotaLimits = { perAccount: 60, perProject: 300, windowMs: 61_000 };
  const a = { email: 'a@p.iam.gserviceaccount.com', projectId: 'p' };

  /** Reserves `count` slots as fast as allowed; returns the granted times. */
  function drain(limiter: QuotaLimiter, clock: { now: number }, count: number, account = a, kind: 'read' | 'write' = 'write'): number[] {
    const times: number[] = [];
    for (let i = 0; i < count; i++) {
      const r = limiter.reserve(kind, account, Infinity);
      assert.ok(r.ok);
      clock.now += r.waitMs;
      times.push(clock.now);
    }
    return times;
  }
  const maxInWindow = (times: number[], windowMs: number) => Math.max(...times.map((t) => times.filter((u) => u > t - windowMs && u <= t).length));

  it('never lets more than the limit into any window, pacing a burst to one request per window/limit', () => {
    const clock = { now: 0 };
    const limiter = new QuotaLimiter(limits, () => clock.now);
    const times = drain(limiter, clock, 200);
    assert.ok(maxInWindow(times, 60_000) <= 60);
    assert.ok(maxInWindow(times, 61_000) <= 60);
    assert.ok(times[1]! - times[0]! >= 61_000 / 60 - 1);
    assert.equal(limiter.reserve('read', a, 0).ok, true, 'reads are counted apart from writes');
  });

  it('the per-project limit holds across service accounts of one project', () => {
    const clock = { now: 0 };
    const limiter = new QuotaLimiter({ perAccount: 60, perProject: 90, windowMs: 61_000 }, () => clock.now);
    const accounts = Array.from({ length: 5 }, (_, i) => ({ email: `sa${i}@p.iam.gserviceaccount.com`, projectId: 'p' }));
    const times: number[] = [];
    for (let round = 0; round < 60; round++) {
      for (const account of accounts) {
        const r = limiter.reserve('write', account, Infinity);
        assert.ok(r.ok);
        times.push(clock.now + r.waitMs);
      }
    }
    times.sort((x, y) => x - y);
    assert.ok(maxInWindow(times, 61_000) <= 90, `at most 90 per project in a window (${maxInWindow(times, 61_000)})`);
  });

  it('refuses (with the time to wait) a slot that would come after the caller\'s deadline', () => {
    const clock = { now: 0 };
    const limiter = new QuotaLimiter({ perAccount: 2, perProject: 300, windowMs: 10_000 }, () => clock.now);
    assert.deepEqual(limiter.reserve('write', a, 0), { ok: true, waitMs: 0 });
    const refused = limiter.reserve('write', a, 1_000);
    assert.deepEqual(refused, { ok: false, retryAfterMs: 5_000 });
    assert.deepEqual(limiter.reserve('write', a, 5_000), { ok: true, waitMs: 5_000 }, 'a refusal reserves nothing');
  });
});

describe('sheets kind: batcher against the Sheets fake with a small quota', function () {
  this.timeout(60_000);
  let fake: SheetsFake;
  const sa = newServiceAccount({ name: 'unit', projectId: 'unit-project' });
  before(async () => {
    // A quota of 4 writes (and reads) in any 4 seconds: small enough for a unit test.
    fake = await startGoogleSheetsFake({ quota: { perAccount: 4, perProject: 100, windowMs: 4_000 } });
    fake.registerServiceAccount(sa);
  });
  after(() => fake.close());

  function rowsFor(count: number, spreadsheetId: string) {
    const account = accountOf(sa.key);
    return Array.from({ length: count }, (_, i) => ({ spreadsheetId, sheet: 'Leads', leadId: `ld_${i}`, columns: ['lead_id', 'n'], cells: [`ld_${i}`, i], account }));
  }

  /** 30 rows arriving 100 ms apart, each attempt with 10 s. */
  async function stream(batcher: SheetsBatcher, spreadsheetId: string) {
    const answers = [];
    for (const row of rowsFor(30, spreadsheetId)) {
      answers.push(batcher.submit(row, { signal: new AbortController().signal, timeoutMs: 10_000 }).catch((e: unknown) => e));
      await new Promise((r) => setTimeout(r, 100));
    }
    return Promise.all(answers);
  }

  it('When rows keep coming faster than the quota allows, then the limiter spaces the flushes and every row is written once', async () => {
    fake.createSpreadsheet('unit_sheet_limited', { tabs: ['Leads'], sharedWith: [sa.key.client_email] });
    const batcher = new SheetsBatcher(fake.rootUrl, new QuotaLimiter({ perAccount: 4, perProject: 100, windowMs: 4_200 }), { windowMs: 50, maxRows: 100 });
    const answers = await stream(batcher, 'unit_sheet_limited');
    assert.ok(answers.every((a) => typeof a === 'object' && a !== null && (a as { status?: number }).status === 200), JSON.stringify(answers.filter((a) => (a as { status?: number }).status !== 200)));
    assert.deepEqual(fake.quotaViolations, []);
    assert.deepEqual(fake.violations, []);
    const rows = fake.rows('unit_sheet_limited', 'Leads');
    assert.equal(rows.length, 31);
    assert.equal(new Set(rows.slice(1).map((r) => r[0])).size, 30);
  });

  it('When the limiter is as loose as no limiter, then the fake refuses the excess with 429 (the check above is not vacuous)', async () => {
    fake.createSpreadsheet('unit_sheet_loose', { tabs: ['Leads'], sharedWith: [sa.key.client_email] });
    const before = fake.quotaViolations.length;
    const batcher = new SheetsBatcher(fake.rootUrl, new QuotaLimiter({ perAccount: 10_000, perProject: 10_000, windowMs: 1 }), { windowMs: 50, maxRows: 100 });
    const answers = await stream(batcher, 'unit_sheet_loose');
    assert.ok(fake.quotaViolations.length > before, 'the fake counted the quota and refused');
    assert.ok(answers.some((a) => (a as { status?: number }).status === 429));
  });
});

describe('sheets kind: read-back (lookup) against the Sheets fake', function () {
  this.timeout(60_000);
  let fake: SheetsFake;
  const sa = newServiceAccount({ name: 'lookup', projectId: 'lookup-project' });
  const io = () => ({ signal: new AbortController().signal, timeoutMs: 5_000 });
  const payload = (spreadsheetId: string, leadId: string, sheet = "Bob's leads") => ({ spreadsheetId, sheet, leadId, columns: ['lead_id', 'n'], cells: [leadId, 1], account: accountOf(sa.key) });
  before(async () => {
    fake = await startGoogleSheetsFake();
    fake.registerServiceAccount(sa);
  });
  after(() => fake.close());
  afterEach(() => assert.deepEqual(fake.violations, [], 'every read matched the discovery document'));

  it('When the lead id is in column A, then it is found with its row; the read is one values.get of column A', async () => {
    fake.createSpreadsheet('lookup_found', { tabs: ["Bob's leads"], sharedWith: [sa.key.client_email], rows: { "Bob's leads": [['lead_id', 'n'], ['ld_a', 1], ['', ''], ['ld_b', 2]] } });
    const batcher = new SheetsBatcher(fake.rootUrl, new QuotaLimiter());
    const before = fake.requests.length;
    const readBack = await batcher.lookup(payload('lookup_found', 'ld_b'), io());
    assert.deepEqual(readBack, { found: true, messageId: "Bob's leads!A4", detail: "the lead id is in row 4 of Bob's leads (values.get 'Bob''s leads'!A:A)" });
    const reads = fake.requests.slice(before);
    assert.deepEqual(reads.map((r) => [r.op, decodeURIComponent(r.path.split('/values/')[1]!)]), [['get', "'Bob''s leads'!A:A"]]);
  });

  it('When the lead id is not there, the tab is empty, or column A is not lead_id, then it is not found (the send still checks before appending)', async () => {
    fake.createSpreadsheet('lookup_missing', { tabs: ['Leads', 'Empty', 'Foreign'], sharedWith: [sa.key.client_email], rows: { Leads: [['lead_id'], ['ld_a']], Foreign: [['email'], ['x@example.com']] } });
    const batcher = new SheetsBatcher(fake.rootUrl, new QuotaLimiter());
    const missing = await batcher.lookup(payload('lookup_missing', 'ld_z', 'Leads'), io());
    assert.deepEqual([missing.found, missing.detail], [false, "the lead id is not in column A of Leads (1 row read, values.get 'Leads'!A:A)"]);
    assert.match((await batcher.lookup(payload('lookup_missing', 'ld_z', 'Empty'), io())).detail, /Empty is empty/);
    assert.match((await batcher.lookup(payload('lookup_missing', 'ld_z', 'Foreign'), io())).detail, /column A of Foreign is not headed lead_id/);
  });

  it('When Google refuses the read for good (not shared: 403), then it does not block; when it says "later" (500) or our quota is used up, then it throws', async () => {
    fake.createSpreadsheet('lookup_refused', { tabs: ['Leads'], sharedWith: [] });
    const batcher = new SheetsBatcher(fake.rootUrl, new QuotaLimiter());
    const refused = await batcher.lookup(payload('lookup_refused', 'ld_a', 'Leads'), io());
    assert.equal(refused.found, false);
    assert.match(refused.detail, /could not read back \(http_403: .*share the spreadsheet with lookup@lookup-project\.iam\.gserviceaccount\.com/);

    fake.share('lookup_refused', sa.key.client_email);
    fake.script([{ op: 'get', type: 'error', status: 500, message: 'Internal error encountered.' }]);
    await assert.rejects(batcher.lookup(payload('lookup_refused', 'ld_a', 'Leads'), io()), (e: unknown) => e instanceof SheetsReadBackError && e.classification.code === 'http_500');

    const starved = new SheetsBatcher(fake.rootUrl, new QuotaLimiter({ perAccount: 1, perProject: 100, windowMs: 60_000 }));
    await starved.lookup(payload('lookup_refused', 'ld_a', 'Leads'), io());
    await assert.rejects(starved.lookup(payload('lookup_refused', 'ld_a', 'Leads'), io()), (e: unknown) => e instanceof SheetsReadBackError && e.classification.code === 'sheets_quota_wait' && (e.classification.retryAfterMs ?? 0) > 50_000);
  });
});
