/**
 * The sheets kind end to end: intake → workflow → activity → the real `googleapis` SDK (Sheets v4,
 * self-signed service-account JWTs) → a local Sheets API that verifies each JWT with the service
 * account's public key, checks every request against Google's discovery document and counts
 * Google's per-minute quotas. Backoffs are second-long.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { ReadBack } from '../../../shared/delivery';
import { newServiceAccount, startGoogleSheetsFake, type ServiceAccount, type SheetsFake } from '../../fakes/google-sheets';
import { capturedLogLines, eventually, http as request, startSystem, type TestSystem } from '../../support/system';
import { waitForAttempts } from '../../support/attempts';


describe('sheets kind (Google Sheets) through the whole system', function () {
  let system: TestSystem;
  let sheets: SheetsFake;
  let buyerAccount: ServiceAccount;
  let sharedAccount: ServiceAccount;

  before(async function () {
    this.timeout(180_000);
    sheets = await startGoogleSheetsFake();
    buyerAccount = newServiceAccount({ name: 'buyer-sheets', projectId: 'buyer-project' });
    sharedAccount = newServiceAccount({ name: 'lead-delivery', projectId: 'our-project' });
    sheets.registerServiceAccount(buyerAccount);
    sheets.registerServiceAccount(sharedAccount);
    system = await startSystem({ providers: { googleApiRootUrl: sheets.rootUrl, googleServiceAccount: JSON.stringify(sharedAccount.key) } });
  });
  after(async () => {
    await system?.stop();
    await sheets?.close();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'passed') {
      assert.deepEqual(sheets.violations, [], 'every request matched the Sheets discovery document');
      assert.deepEqual(sheets.quotaViolations, [], 'never over quota');
    }
  });

  /** A fresh spreadsheet per test, shared with the buyer's service account unless told otherwise. */
  function spreadsheet(options: { sharedWith?: string[]; rows?: Record<string, Array<Array<string | number | boolean>>> } = {}): string {
    const id = `sheet_${randomBytes(8).toString('hex')}`;
    sheets.createSpreadsheet(id, { tabs: ['Leads', 'Other'], sharedWith: options.sharedWith ?? [buyerAccount.key.client_email], ...(options.rows ? { rows: options.rows } : {}) });
    return id;
  }

  const MAPPING = {
    received: { field: 'received_at', transform: 'date:YYYY-MM-DD' },
    name: { template: '{first_name} {last_name}' },
    email: 'email',
    phone: { field: 'phone', transform: 'e164' },
    note: 'custom.note',
  };

  async function route(spreadsheetId: string, settings: Record<string, unknown> = {}) {
    const { source, endpoints } = await system.route([
      { kind: 'sheets', spreadsheetId, sheet: 'Leads', serviceAccount: JSON.stringify(buyerAccount.key), mapping: MAPPING, backoff: ['1s', '1s'], timeoutMs: 1500, ...settings },
    ]);
    return { apiKey: source.apiKey, endpoint: endpoints[0]! };
  }

  async function post(apiKey: string, extra: Record<string, unknown> = {}): Promise<string> {
    const res = await system.postLead(apiKey, { first_name: 'Ada', last_name: 'Lovelace', email: 'ada@example.com', phone: '(555) 010-0000', custom: { note: '=HYPERLINK("https://evil.example","click")' }, ...extra });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return String(res.body.leadId);
  }

  const attemptsOf = (leadId: string, count: number) => waitForAttempts(system, leadId, count);

  const requestsFor = (id: string, op?: string) => sheets.requests.filter((r) => r.path.includes(`/spreadsheets/${id}/`) && (!op || r.op === op));

  it('When a first lead arrives, then the header row is created, the row is written RAW (a "=" value is text), and the record masks the credentials', async () => {
    const id = spreadsheet();
    const { apiKey } = await route(id);
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');

    const today = new Date().toISOString().slice(0, 10);
    assert.deepEqual(sheets.rows(id, 'Leads'), [
      ['lead_id', 'received', 'name', 'email', 'phone', 'note'],
      [leadId, today, 'Ada Lovelace', 'ada@example.com', '+15550100000', '=HYPERLINK("https://evil.example","click")'],
    ]);
    assert.ok(sheets.cells(id, 'Leads').flat().every((c) => !c?.formula), 'no cell became a formula');
    const appends = requestsFor(id, 'append');
    assert.equal(appends.length, 1, 'header and row in one append');
    assert.deepEqual(appends[0]!.query.valueInputOption, ['RAW']);
    assert.deepEqual(requestsFor(id).map((r) => r.op), ['batchGet', 'append'], 'one read (header + lead ids), one write');

    const [attempt] = await attemptsOf(leadId, 1);
    assert.equal(attempt!.outcome, 'success');
    assert.equal(attempt!.code, 'ok');
    assert.equal(attempt!.response?.messageId, 'Leads!A2');
    assert.equal(attempt!.request.headers.authorization, 'Bear********');
    assert.equal(attempt!.request.url, `${sheets.rootUrl}v4/spreadsheets/${id}${appends[0]!.path.slice(appends[0]!.path.indexOf('/values/'))}?valueInputOption=RAW&insertDataOption=INSERT_ROWS`);
    assert.deepEqual(JSON.parse(attempt!.request.body), { majorDimension: 'ROWS', values: [sheets.rows(id, 'Leads')[1]] });
    const keyBody = buyerAccount.key.private_key.split('\n')[1]!;
    assert.ok(!JSON.stringify(await system.attempts(leadId)).includes(keyBody), 'no private key in the attempt record');
    assert.ok(!capturedLogLines.some((line) => line.includes(keyBody)), 'no private key in any log line');
  });

  it('When the tab already has a header without a mapped column, then the column is added to the header and rows line up by name', async () => {
    const id = spreadsheet({ rows: { Leads: [['lead_id', 'email', 'name'], ['ld_earlier', 'x@example.com', 'X']] } });
    const { apiKey } = await route(id);
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    const rows = sheets.rows(id, 'Leads');
    assert.deepEqual(rows[0], ['lead_id', 'email', 'name', 'received', 'phone', 'note']);
    assert.deepEqual(rows[2]!.slice(0, 3), [leadId, 'ada@example.com', 'Ada Lovelace']);
    assert.equal(rows.length, 3);
  });

  it('When the endpoint brings no key, then the shared service account writes the row', async () => {
    const id = spreadsheet({ sharedWith: [sharedAccount.key.client_email] });
    const { apiKey } = await route(id, { serviceAccount: undefined });
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    assert.equal(sheets.rows(id, 'Leads').length, 2);
    assert.ok(requestsFor(id).every((r) => r.email === sharedAccount.key.client_email));
  });

  it('When Google answers 500 to the append, then the attempt is transient and the retry writes exactly one row', async () => {
    const id = spreadsheet();
    const { apiKey } = await route(id);
    sheets.script([{ op: 'append', type: 'error', status: 500, message: 'Internal error encountered.' }]);
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    const attempts = await attemptsOf(leadId, 2);
    assert.deepEqual(attempts.map((a) => [a.attempt, a.outcome, a.code]), [[1, 'transient', 'http_500'], [2, 'success', 'ok']]);
    assert.equal(sheets.rows(id, 'Leads').length, 2, 'header + one row');
  });

  it('When Google answers 429 with Retry-After, then the attempt is transient, the wait is honoured, and the retry succeeds', async () => {
    const id = spreadsheet();
    const { apiKey } = await route(id);
    sheets.script([{ op: 'batchGet', type: 'error', status: 429, message: "Quota exceeded for quota metric 'Read requests'", headers: { 'retry-after': '2' } }]);
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    const attempts = await attemptsOf(leadId, 2);
    assert.deepEqual(attempts.map((a) => [a.attempt, a.outcome, a.code, a.retryAfterMs]), [[1, 'transient', 'http_429', 2000], [2, 'success', 'ok', undefined]]);
    const [first, second] = requestsFor(id, 'batchGet');
    assert.ok(second!.receivedAt - first!.receivedAt >= 2_000, 'Retry-After (2 s) outweighed the 1 s backoff');
  });

  it('When the spreadsheet is not shared with the service account, then the failure is permanent and says whom to share it with', async () => {
    const id = spreadsheet({ sharedWith: [] });
    const { apiKey } = await route(id);
    const leadId = await post(apiKey);
    const view = await system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
    assert.equal(view.endpoints[0]!.attempts, 1);
    const [attempt] = await attemptsOf(leadId, 1);
    assert.equal(attempt!.outcome, 'permanent');
    assert.equal(attempt!.code, 'http_403');
    assert.match(attempt!.reason, new RegExp(`share the spreadsheet with ${buyerAccount.key.client_email.replace(/[.]/g, '\\.')}`));
    assert.equal(requestsFor(id).length, 1, 'not retried');
  });

  it('When the spreadsheet does not exist (404) or the tab does not, then the failure is permanent', async () => {
    const missing = `sheet_${randomBytes(8).toString('hex')}`;
    const a = await route(missing);
    const lead1 = await post(a.apiKey);
    await system.waitForLead(lead1, (v) => v.status === 'dead_lettered');
    assert.deepEqual((await attemptsOf(lead1, 1)).map((x) => [x.outcome, x.code]), [['permanent', 'http_404']]);

    const id = spreadsheet();
    const b = await route(id, { sheet: 'No such tab' });
    const lead2 = await post(b.apiKey);
    await system.waitForLead(lead2, (v) => v.status === 'dead_lettered');
    assert.deepEqual((await attemptsOf(lead2, 1)).map((x) => [x.outcome, x.code]), [['permanent', 'sheets_tab_not_found']]);
  });

  it('When Google applies the append but answers after our timeout, then the attempt is unknown and the retry reads the lead id back: success found_on_read_back, no second row', async () => {
    const id = spreadsheet();
    const { apiKey } = await route(id, { backoff: ['1s'] });
    sheets.script([{ op: 'append', type: 'slow', delayMs: 3_000 }]);
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    const attempts = await attemptsOf(leadId, 2);
    assert.deepEqual(attempts.map((a) => [a.attempt, a.outcome, a.code]), [[1, 'unknown', 'timeout'], [2, 'success', 'found_on_read_back']]);
    assert.equal(attempts[1]!.response?.messageId, 'Leads!A2');
    const readBack = attempts[1]!.readBack as ReadBack;
    assert.deepEqual([readBack.found, readBack.messageId], [true, 'Leads!A2']);
    assert.match(readBack.detail, /the lead id is in row 2 of Leads/);
    const rows = sheets.rows(id, 'Leads');
    assert.equal(rows.length, 2, 'one header, one row');
    assert.equal(rows.filter((r) => r[0] === leadId).length, 1);
    assert.deepEqual(requestsFor(id).map((r) => r.op), ['batchGet', 'append', 'get'], 'the retry only read column A');
    assert.equal(decodeURIComponent(requestsFor(id, 'get')[0]!.path.split('/values/')[1]!), "'Leads'!A:A");
  });

  it('When the connection drops after the append was sent and Google applied nothing, then the attempt is unknown, the read-back does not find the lead id, and the retry appends one row', async () => {
    const id = spreadsheet();
    const { apiKey } = await route(id, { backoff: ['1s'] });
    sheets.script([{ op: 'append', type: 'hangUp' }]);
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    const attempts = await attemptsOf(leadId, 2);
    assert.deepEqual(attempts.map((a) => [a.attempt, a.outcome, a.code]), [[1, 'unknown', 'connection_reset'], [2, 'success', 'ok']]);
    const readBack = attempts[1]!.readBack as ReadBack;
    assert.equal(readBack.found, false);
    assert.match(readBack.detail, /Leads is empty/);
    assert.deepEqual(sheets.rows(id, 'Leads').map((r) => r[0]), ['lead_id', leadId]);
    assert.deepEqual(requestsFor(id).map((r) => r.op), ['batchGet', 'append', 'get', 'batchGet', 'append']);
  });

  it('When the read-back is refused for good (403: the spreadsheet is no longer shared), then it does not block: the send runs its own check and fails permanently', async () => {
    const id = spreadsheet();
    const { apiKey } = await route(id, { backoff: ['2s'] });
    sheets.script([{ op: 'append', type: 'hangUp' }]);
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => (v.endpoints[0]?.attempts ?? 0) >= 1);
    const refused = { type: 'error', status: 403, message: 'The caller does not have permission', googleStatus: 'PERMISSION_DENIED' } as const;
    sheets.script([{ op: 'get', ...refused }, { op: 'batchGet', ...refused }]);
    await system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
    const attempts = await attemptsOf(leadId, 2);
    assert.deepEqual(attempts.map((a) => [a.attempt, a.outcome, a.code]), [[1, 'unknown', 'connection_reset'], [2, 'permanent', 'http_403']]);
    const readBack = attempts[1]!.readBack as ReadBack;
    assert.equal(readBack.found, false);
    assert.match(readBack.detail, /could not read back \(http_403: .*share the spreadsheet with/);
    assert.equal(requestsFor(id, 'append').length, 1, 'nothing appended after the refusal');
  });

  it('When 200 leads arrive at once for one spreadsheet, then appends are batched within quota and the sheet has one header and exactly 200 rows', async function () {
    this.timeout(240_000);
    const id = spreadsheet();
    const { apiKey } = await route(id, { timeoutMs: 10_000, backoff: ['2s', '5s', '10s'] });
    const started = Date.now();
    const leadIds: string[] = [];
    for (let i = 0; i < 200; i += 20) {
      const batch = await Promise.all(Array.from({ length: 20 }, (_, j) => post(apiKey, { first_name: `Lead${i + j}`, email: `lead${i + j}@example.com` })));
      leadIds.push(...batch);
    }
    const posted = Date.now();
    // Cheap checks while the burst runs (no workflow queries): the fake's rows, then the leads' summaries.
    await eventually(() => Promise.resolve(sheets.rows(id, 'Leads').length >= 201 ? true : undefined), 180_000, 'all 200 rows written');
    const written = Date.now();
    await eventually(async () => ((await system.models.Lead.countDocuments({ _id: { $in: leadIds }, status: 'delivered' })) === 200 ? true : undefined), 120_000, 'all 200 leads delivered');
    const finished = Date.now();
    for (const leadId of leadIds.slice(0, 5)) assert.equal((await system.leadState(leadId)).status, 'delivered');

    const rows = sheets.rows(id, 'Leads');
    assert.equal(rows.length, 201, 'one header and 200 rows');
    assert.equal(rows.filter((r) => r[0] === 'lead_id').length, 1, 'one header row');
    assert.deepEqual(new Set(rows.slice(1).map((r) => r[0])), new Set(leadIds), 'every lead once');
    const appends = requestsFor(id, 'append');
    const reads = requestsFor(id, 'batchGet');
    const email = buyerAccount.key.client_email;
    assert.deepEqual(sheets.quotaViolations, [], 'the fake saw no quota violation');
    assert.ok(sheets.peak(email, 'write') <= 60, `writes in any minute: ${sheets.peak(email, 'write')}`);
    assert.ok(sheets.peak(email, 'read') <= 60, `reads in any minute: ${sheets.peak(email, 'read')}`);
    assert.ok(appends.length < 60, `batched: ${appends.length} appends for 200 rows`);
    if (process.env.BURST_DEBUG) console.log(appends.map((a) => `${a.receivedAt - started}ms:${(a.body as { values: unknown[] }).values.length}`).join(' '));
    const attempts = await Promise.all(leadIds.map((leadId) => system.attempts(leadId)));
    const retried = attempts.filter((a) => a.length > 1).length;
    console.log(
      `      burst: 200 leads posted in ${posted - started} ms, all rows written after ${written - started} ms, all leads delivered after ${finished - started} ms; ` +
        `${appends.length} appends, ${reads.length} reads (peak ${sheets.peak(email, 'write')} writes / ${sheets.peak(email, 'read')} reads per minute), ${retried} leads needed a retry`,
    );
  });

  it('When an endpoint is saved with a lead_id column, a bad key or a bad spreadsheet id, then each is a field error', async () => {
    const buyerId = await system.createBuyer();
    const base = { kind: 'sheets', spreadsheetId: 'sheet_0123456789', sheet: 'Leads', serviceAccount: buyerAccount.key, mapping: { email: 'email' } };
    const paths = async (body: Record<string, unknown>) => {
      const res = await system.admin<{ fields: Array<{ path: string; message: string }> }>('POST', `/buyers/${buyerId}/endpoints`, body);
      assert.equal(res.status, 400, JSON.stringify(res.body));
      return res.body.fields.map((f) => f.path).sort();
    };
    assert.deepEqual(await paths({ ...base, mapping: { lead_id: 'email', email: 'email' } }), ['mapping.lead_id']);
    assert.deepEqual(await paths({ ...base, mapping: { email: 'emial' } }), ['mapping.email']);
    assert.deepEqual(await paths({ ...base, serviceAccount: '{"client_email":"x@y.iam.gserviceaccount.com","private_key":"nope"}' }), ['serviceAccount.private_key']);
    assert.deepEqual(await paths({ ...base, serviceAccount: 'not json' }), ['serviceAccount']);
    assert.deepEqual(await paths({ ...base, spreadsheetId: 'https://docs.google.com/x' }), ['spreadsheetId']);
    const ok = await system.admin<Record<string, unknown>>('POST', `/buyers/${buyerId}/endpoints`, base);
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    assert.ok(!JSON.stringify(ok.body).includes(buyerAccount.key.private_key.split('\n')[1]!), 'the key is masked when shown');
  });

  it('When the preview is asked for, then it shows the append the SDK would send, the token masked, and sends nothing', async () => {
    const id = spreadsheet();
    const { endpoint } = await route(id);
    const before = sheets.requests.length;
    const res = await request<{ request: { method: string; url: string; headers: Record<string, string>; body: string } }>('POST', `${system.intakeUrl}/v1/buyers/${String(endpoint.buyerId)}/endpoints/${endpoint.id}/preview`, {
      token: system.adminToken,
      body: { lead: { first_name: 'Ada', last_name: 'Lovelace', email: 'ada@example.com' } },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.request.method, 'POST');
    assert.equal(res.body.request.url, `${sheets.rootUrl}v4/spreadsheets/${id}/values/%27Leads%27%21A1:append?valueInputOption=RAW&insertDataOption=INSERT_ROWS`);
    assert.deepEqual((JSON.parse(res.body.request.body) as { values: unknown[][] }).values[0]!.slice(0, 4), ['ld_preview', new Date().toISOString().slice(0, 10), 'Ada Lovelace', 'ada@example.com']);
    assert.equal(sheets.requests.length, before);
  });
});
