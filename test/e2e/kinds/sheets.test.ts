/**
 * The sheets kind end to end: intake → workflow → activity → the real `googleapis` SDK (Sheets v4,
 * self-signed service-account JWTs) → a local Sheets API that verifies each JWT with the service
 * account's public key, checks every request against Google's discovery document and counts
 * Google's per-minute quotas. Backoffs are second-long. The kind contract (./contract.ts) runs from
 * the table below (a fresh spreadsheet per endpoint); the cases after it are Sheets' own.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { ReadBack } from '../../../shared/delivery';
import { newServiceAccount, startGoogleSheetsFake, type ServiceAccount, type SheetsFake } from '../../fakes/google-sheets';
import { eventually } from '../../support/system';
import { describeKind, type Endpoint, type KindTable, type Run } from './contract';

interface Fixtures {
  sheets: SheetsFake;
  buyerAccount: ServiceAccount;
  sharedAccount: ServiceAccount;
}

const MAPPING = {
  received: { field: 'received_at', transform: 'date:YYYY-MM-DD' },
  name: { template: '{first_name} {last_name}' },
  email: 'email',
  phone: { field: 'phone', transform: 'e164' },
  note: 'custom.note',
};
const NOTE = '=HYPERLINK("https://evil.example","click")';

/** A fresh spreadsheet, shared with the buyer's service account unless told otherwise. */
function spreadsheet(f: Fixtures, options: { sharedWith?: string[]; rows?: Record<string, Array<Array<string | number | boolean>>> } = {}): string {
  const id = `sheet_${randomBytes(8).toString('hex')}`;
  f.sheets.createSpreadsheet(id, { tabs: ['Leads', 'Other'], sharedWith: options.sharedWith ?? [f.buyerAccount.key.client_email], ...(options.rows ? { rows: options.rows } : {}) });
  return id;
}

const idOf = (endpoint: Endpoint) => String(endpoint.spreadsheetId);
const requestsFor = (f: Fixtures, id: string, op?: string) => f.sheets.requests.filter((r) => r.path.includes(`/spreadsheets/${id}/`) && (!op || r.op === op));
const privateKeyBody = (account: ServiceAccount) => account.key.private_key.split('\n')[1]!;
const today = () => new Date().toISOString().slice(0, 10);

const table: KindTable<Fixtures> = {
  kind: 'sheets',
  title: 'sheets kind (Google Sheets) through the whole system',
  async start() {
    const sheets = await startGoogleSheetsFake();
    const buyerAccount = newServiceAccount({ name: 'buyer-sheets', projectId: 'buyer-project' });
    const sharedAccount = newServiceAccount({ name: 'lead-delivery', projectId: 'our-project' });
    sheets.registerServiceAccount(buyerAccount);
    sheets.registerServiceAccount(sharedAccount);
    return { sheets, buyerAccount, sharedAccount };
  },
  providers: (f) => ({ googleApiRootUrl: f.sheets.rootUrl, googleServiceAccount: JSON.stringify(f.sharedAccount.key) }),
  stop: (f) => f.sheets.close(),
  fake: (f) => ({
    // The lead's row of each append (a first append also carries the header row).
    sends: (endpoint) =>
      requestsFor(f, idOf(endpoint), 'append').map((r) => {
        const body = r.body as { majorDimension?: string; values: unknown[][] };
        return { body: { majorDimension: body.majorDimension, values: body.values.filter((row) => row[0] !== 'lead_id') }, receivedAt: r.receivedAt };
      }),
    requestCount: () => f.sheets.requests.length,
    held: (run) => f.sheets.rows(idOf(run.endpoint), 'Leads').filter((r) => r[0] === run.leadId).length,
    violations: () => [...f.sheets.violations, ...f.sheets.quotaViolations],
  }),
  endpoint: (f) => ({ kind: 'sheets', spreadsheetId: spreadsheet(f), sheet: 'Leads', serviceAccount: JSON.stringify(f.buyerAccount.key), mapping: MAPPING, backoff: ['1s', '1s'], timeoutMs: 1500 }),
  lead: () => ({ first_name: 'Ada', last_name: 'Lovelace', email: 'ada@example.com', phone: '(555) 010-0000', custom: { note: NOTE } }),
  secretFields: ['serviceAccount'],
  secrets: (f) => [privateKeyBody(f.buyerAccount)],
  maskedHeaders: ['authorization'],
  parse: (body) => JSON.parse(body) as unknown,
  request: (f, run) => ({
    method: 'POST',
    url: `${f.sheets.rootUrl}v4/spreadsheets/${idOf(run.endpoint)}/values/%27Leads%27%21A1:append?valueInputOption=RAW&insertDataOption=INSERT_ROWS`,
    body: { majorDimension: 'ROWS', values: [[run.leadId, today(), 'Ada Lovelace', 'ada@example.com', '+15550100000', NOTE]] },
  }),
  readsBack: true,
  firstSend: {
    when: 'a first lead arrives (the header row created, the row written RAW: a "=" value is text)',
    status: 200,
    messageId: () => 'Leads!A2',
    check(h, run, [attempt]) {
      const f = h.fixtures;
      const id = idOf(run.endpoint);
      assert.deepEqual(f.sheets.rows(id, 'Leads'), [
        ['lead_id', 'received', 'name', 'email', 'phone', 'note'],
        [run.leadId, today(), 'Ada Lovelace', 'ada@example.com', '+15550100000', NOTE],
      ]);
      assert.ok(f.sheets.cells(id, 'Leads').flat().every((c) => !c?.formula), 'no cell became a formula');
      const appends = requestsFor(f, id, 'append');
      assert.equal(appends.length, 1, 'header and row in one append');
      assert.deepEqual(appends[0]!.query.valueInputOption, ['RAW']);
      assert.deepEqual(requestsFor(f, id).map((r) => r.op), ['batchGet', 'append'], 'one read (header + lead ids), one write');
      assert.equal(attempt!.request.headers.authorization, 'Bear********');
      assert.equal(attempt!.request.url, `${f.sheets.rootUrl}v4/spreadsheets/${id}${appends[0]!.path.slice(appends[0]!.path.indexOf('/values/'))}?valueInputOption=RAW&insertDataOption=INSERT_ROWS`, 'the record names the path the SDK wrote to');
    },
  },
  transient: {
    when: 'Google answers 500 to the append',
    script: (f) => f.sheets.script([{ op: 'append', type: 'error', status: 500, message: 'Internal error encountered.' }]),
    codes: ['http_500'],
    check: (h, run) => assert.equal(h.fixtures.sheets.rows(idOf(run.endpoint), 'Leads').length, 2, 'header + one row'),
  },
  refusal: {
    when: 'the spreadsheet is not shared with the service account (the refusal comes at the first read: nothing appended)',
    settings: (f) => ({ spreadsheetId: spreadsheet(f, { sharedWith: [] }) }),
    attempts: [['permanent', 'http_403']],
    status: 403,
    sends: 0,
    check(h, run, [attempt]) {
      assert.match(attempt!.reason, new RegExp(`share the spreadsheet with ${h.fixtures.buyerAccount.key.client_email.replace(/[.]/g, '\\.')}`));
      assert.equal(requestsFor(h.fixtures, idOf(run.endpoint)).length, 1, 'not retried');
    },
  },
  timeout: {
    when: 'Google applies the append but answers after our timeout (the retry reads the lead id back)',
    settings: () => ({ backoff: ['1s'] }),
    script: (f) => f.sheets.script([{ op: 'append', type: 'slow', delayMs: 3_000 }]),
    check(h, run, attempts) {
      const f = h.fixtures;
      const id = idOf(run.endpoint);
      assert.match((attempts[1]!.readBack as ReadBack).detail, /the lead id is in row 2 of Leads/);
      assert.equal(f.sheets.rows(id, 'Leads').length, 2, 'one header, one row');
      assert.deepEqual(requestsFor(f, id).map((r) => r.op), ['batchGet', 'append', 'get'], 'the retry only read column A');
      assert.equal(decodeURIComponent(requestsFor(f, id, 'get')[0]!.path.split('/values/')[1]!), "'Leads'!A:A");
    },
  },
  hangUp: {
    when: 'the connection drops after the append was sent and Google applied nothing',
    settings: () => ({ backoff: ['1s'] }),
    script: (f) => f.sheets.script([{ op: 'append', type: 'hangUp' }]),
    code: 'connection_reset',
    check(h, run, attempts) {
      const f = h.fixtures;
      const id = idOf(run.endpoint);
      assert.match((attempts[1]!.readBack as ReadBack).detail, /Leads is empty/);
      assert.deepEqual(f.sheets.rows(id, 'Leads').map((r) => r[0]), ['lead_id', run.leadId]);
      assert.deepEqual(requestsFor(f, id).map((r) => r.op), ['batchGet', 'append', 'get', 'batchGet', 'append']);
    },
  },
};

describeKind(table, (h) => {
  const rowsOf = (run: Pick<Run, 'endpoint'>) => h.fixtures.sheets.rows(idOf(run.endpoint), 'Leads');

  it('When the tab already has a header without a mapped column, then the column is added to the header and rows line up by name', async () => {
    const id = spreadsheet(h.fixtures, { rows: { Leads: [['lead_id', 'email', 'name'], ['ld_earlier', 'x@example.com', 'X']] } });
    const run = await h.send({ spreadsheetId: id });
    await h.system.waitForLead(run.leadId, (v) => v.status === 'delivered');
    const rows = rowsOf(run);
    assert.deepEqual(rows[0], ['lead_id', 'email', 'name', 'received', 'phone', 'note']);
    assert.deepEqual(rows[2]!.slice(0, 3), [run.leadId, 'ada@example.com', 'Ada Lovelace']);
    assert.equal(rows.length, 3);
  });

  it('When the endpoint brings no key, then the shared service account writes the row', async () => {
    const { sharedAccount } = h.fixtures;
    const id = spreadsheet(h.fixtures, { sharedWith: [sharedAccount.key.client_email] });
    const run = await h.send({ spreadsheetId: id, serviceAccount: undefined });
    await h.system.waitForLead(run.leadId, (v) => v.status === 'delivered');
    assert.equal(rowsOf(run).length, 2);
    assert.ok(requestsFor(h.fixtures, id).every((r) => r.email === sharedAccount.key.client_email));
  });

  it('When Google answers 429 with Retry-After, then the attempt is transient, the wait is honoured, and the retry succeeds', async () => {
    h.fixtures.sheets.script([{ op: 'batchGet', type: 'error', status: 429, message: "Quota exceeded for quota metric 'Read requests'", headers: { 'retry-after': '2' } }]);
    const run = await h.send();
    await h.system.waitForLead(run.leadId, (v) => v.status === 'delivered');
    const attempts = await h.attemptsOf(run.leadId, 2);
    assert.deepEqual(attempts.map((a) => [a.attempt, a.outcome, a.code, a.retryAfterMs]), [[1, 'transient', 'http_429', 2000], [2, 'success', 'ok', undefined]]);
    const [first, second] = requestsFor(h.fixtures, idOf(run.endpoint), 'batchGet');
    assert.ok(second!.receivedAt - first!.receivedAt >= 2_000, 'Retry-After (2 s) outweighed the 1 s backoff');
  });

  it('When the spreadsheet does not exist (404) or the tab does not, then the failure is permanent', async () => {
    const missing = `sheet_${randomBytes(8).toString('hex')}`;
    const a = await h.send({ spreadsheetId: missing });
    await h.system.waitForLead(a.leadId, (v) => v.status === 'dead_lettered');
    assert.deepEqual((await h.attemptsOf(a.leadId, 1)).map((x) => [x.outcome, x.code]), [['permanent', 'http_404']]);

    const b = await h.send({ sheet: 'No such tab' });
    await h.system.waitForLead(b.leadId, (v) => v.status === 'dead_lettered');
    assert.deepEqual((await h.attemptsOf(b.leadId, 1)).map((x) => [x.outcome, x.code]), [['permanent', 'sheets_tab_not_found']]);
  });

  it('When the read-back is refused for good (403: the spreadsheet is no longer shared), then it does not block: the send runs its own check and fails permanently', async () => {
    const { sheets } = h.fixtures;
    sheets.script([{ op: 'append', type: 'hangUp' }]);
    const run = await h.send({ backoff: ['2s'] });
    await h.system.waitForLead(run.leadId, (v) => (v.endpoints[0]?.attempts ?? 0) >= 1);
    const refused = { type: 'error', status: 403, message: 'The caller does not have permission', googleStatus: 'PERMISSION_DENIED' } as const;
    sheets.script([{ op: 'get', ...refused }, { op: 'batchGet', ...refused }]);
    await h.system.waitForLead(run.leadId, (v) => v.status === 'dead_lettered');
    const attempts = await h.attemptsOf(run.leadId, 2);
    assert.deepEqual(attempts.map((a) => [a.attempt, a.outcome, a.code]), [[1, 'unknown', 'connection_reset'], [2, 'permanent', 'http_403']]);
    const readBack = attempts[1]!.readBack as ReadBack;
    assert.equal(readBack.found, false);
    assert.match(readBack.detail, /could not read back \(http_403: .*share the spreadsheet with/);
    assert.equal(requestsFor(h.fixtures, idOf(run.endpoint), 'append').length, 1, 'nothing appended after the refusal');
  });

  it('When 200 leads arrive at once for one spreadsheet, then appends are batched within quota and the sheet has one header and exactly 200 rows', async function () {
    this.timeout(240_000);
    const { sheets, buyerAccount } = h.fixtures;
    const { system } = h;
    const { apiKey, endpoint } = await h.route({ timeoutMs: 10_000, backoff: ['2s', '5s', '10s'] });
    const id = idOf(endpoint);
    const started = Date.now();
    const leadIds: string[] = [];
    for (let i = 0; i < 200; i += 20) {
      const batch = await Promise.all(Array.from({ length: 20 }, (_, j) => h.post(apiKey, { first_name: `Lead${i + j}`, email: `lead${i + j}@example.com` })));
      leadIds.push(...batch.map((b) => b.leadId));
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
    const appends = requestsFor(h.fixtures, id, 'append');
    const reads = requestsFor(h.fixtures, id, 'batchGet');
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
    const { buyerAccount } = h.fixtures;
    const buyerId = await h.system.createBuyer();
    const base = { kind: 'sheets', spreadsheetId: 'sheet_0123456789', sheet: 'Leads', serviceAccount: buyerAccount.key, mapping: { email: 'email' } };
    const paths = async (body: Record<string, unknown>) => {
      const res = await h.system.admin<{ fields: Array<{ path: string; message: string }> }>('POST', `/buyers/${buyerId}/endpoints`, body);
      assert.equal(res.status, 400, JSON.stringify(res.body));
      return res.body.fields.map((f) => f.path).sort();
    };
    assert.deepEqual(await paths({ ...base, mapping: { lead_id: 'email', email: 'email' } }), ['mapping.lead_id']);
    assert.deepEqual(await paths({ ...base, mapping: { email: 'emial' } }), ['mapping.email']);
    assert.deepEqual(await paths({ ...base, serviceAccount: '{"client_email":"x@y.iam.gserviceaccount.com","private_key":"nope"}' }), ['serviceAccount.private_key']);
    assert.deepEqual(await paths({ ...base, serviceAccount: 'not json' }), ['serviceAccount']);
    assert.deepEqual(await paths({ ...base, spreadsheetId: 'https://docs.google.com/x' }), ['spreadsheetId']);
    const ok = await h.system.admin<Record<string, unknown>>('POST', `/buyers/${buyerId}/endpoints`, base);
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    assert.ok(!JSON.stringify(ok.body).includes(privateKeyBody(buyerAccount)), 'the key is masked when shown (given as an object)');
  });
});
