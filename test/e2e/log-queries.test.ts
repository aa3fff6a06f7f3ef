/**
 * Queries over the delivery log, through the running system: `GET /v1/attempts` by lead, buyer,
 * endpoint, source, outcome and period; keyset pagination that neither repeats nor skips an entry
 * while new ones are written; `GET /v1/attempts.csv` equal to the API row for row, RFC 4180 quoting
 * and spreadsheet-formula neutralisation; bad queries answered 400 with the field; no token, 401.
 */
import assert from 'node:assert/strict';
import { startFakeBuyer, type FakeBuyer } from '../fakes/buyer';
import { eventually, http, startSystem, type TestSystem } from '../support/system';
import { leadWorkflowId } from '../../shared/delivery';
import { parseCsv } from '../../shared/csv';
import { ATTEMPT_CSV_COLUMNS } from '../../services/log/attempts';

interface AttemptItem {
  seq: number;
  leadId: string;
  sourceId: string;
  buyerId: string;
  endpointId: string;
  clientId?: string;
  kind: string;
  attempt: number;
  startedAt: number;
  finishedAt: number;
  latencyMs: number;
  firstAttemptAt?: number;
  final?: boolean;
  outcome: string;
  code: string;
  reason: string;
  response?: { status?: number };
  /** The entry's time, ms (the attempt's end). */
  at: number;
  hash: string;
}
interface Page {
  items: AttemptItem[];
  next: string | null;
}
interface ErrorBody {
  error: string;
  fields?: Array<{ path: string; message: string }>;
}

describe('log queries: the attempts API and the CSV export', function () {
  let system: TestSystem;
  let buyerA: FakeBuyer;
  let buyerB: FakeBuyer;
  let routeA: Awaited<ReturnType<TestSystem['route']>>;
  let routeB: Awaited<ReturnType<TestSystem['route']>>;
  /** Before any of this suite's leads. */
  let t0: string;
  const leads: Record<'retried' | 'plain' | 'rejected', string> = { retried: '', plain: '', rejected: '' };

  const get = <T = Page>(p: string, token: string | undefined = system.adminToken) => http<T>('GET', `${system.logUrl}${p}`, token ? { token } : {});
  const ids = (items: AttemptItem[]) => items.map((i) => `${i.leadId}#${i.seq}`);

  /** Waits until the lead's attempts are in the log (the journal is written in batches). */
  async function attemptsOf(leadId: string, count: number): Promise<AttemptItem[]> {
    return eventually(
      async () => {
        const page = await get(`/v1/attempts?leadId=${leadId}`);
        return page.body.items.length >= count ? page.body.items : undefined;
      },
      30_000,
      `${count} attempts of ${leadId} in the log`,
    );
  }
  async function post(apiKey: string, lead: Record<string, unknown>): Promise<string> {
    const res = await system.postLead(apiKey, lead);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return String(res.body.leadId);
  }
  async function walk(query: string, limit: number, between?: (pageNo: number) => Promise<void>): Promise<{ items: AttemptItem[]; pages: number }> {
    const items: AttemptItem[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: Page = (await get(`/v1/attempts?${query}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`)).body;
      assert.ok(page.items.length <= limit);
      items.push(...page.items);
      cursor = page.next;
      pages++;
      if (between) await between(pages);
    } while (cursor);
    return { items, pages };
  }

  before(async function () {
    this.timeout(180_000);
    system = await startSystem();
    buyerA = await startFakeBuyer();
    buyerB = await startFakeBuyer();
    t0 = new Date(Date.now() - 1000).toISOString();
    routeA = await system.route([{ kind: 'webhook', url: buyerA.url, backoff: ['1s'] }], { name: 'Buyer A' });
    routeB = await system.route([{ kind: 'webhook', url: buyerB.url }], { name: 'Buyer B' });

    // A: a 503 then a 200 (two attempts), then a plain 200. The first lead carries the source's own
    // id, which starts with "-": a spreadsheet would read it as a formula.
    buyerA.script([{ status: 503, body: 'busy' }, { status: 200, body: 'ok' }]);
    leads.retried = await post(routeA.source.apiKey, { id: '-2-3', email: 'queries-1@example.com' });
    await system.client.workflow.getHandle(leadWorkflowId(leads.retried)).result();
    buyerA.script([{ status: 200, body: 'ok' }]);
    leads.plain = await post(routeA.source.apiKey, { email: 'queries-2@example.com' });
    await system.client.workflow.getHandle(leadWorkflowId(leads.plain)).result();
    // B: a permanent refusal whose reason phrase needs RFC 4180 quoting.
    buyerB.script([{ status: 422, statusText: 'Rejected, "duplicate" lead', body: 'dup' }]);
    leads.rejected = await post(routeB.source.apiKey, { email: 'queries-3@example.com' });
    await system.waitForLead(leads.rejected, (v) => v.status === 'dead_lettered', 30_000);
    await attemptsOf(leads.retried, 2);
    await attemptsOf(leads.plain, 1);
    await attemptsOf(leads.rejected, 1);
  });
  after(async () => {
    await buyerA?.close();
    await buyerB?.close();
    await system?.stop();
  });

  it('When attempts are queried by lead, buyer, endpoint, source, outcome or period, then each answer holds exactly the matching attempts, oldest first', async function () {
    this.timeout(30_000);
    const byLead = (await get(`/v1/attempts?leadId=${leads.retried}`)).body;
    assert.deepEqual(
      byLead.items.map((i) => [i.attempt, i.outcome, i.code, i.response?.status, i.clientId]),
      [
        [1, 'transient', 'http_503', 503, '-2-3'],
        [2, 'success', 'ok', 200, '-2-3'],
      ],
    );
    assert.equal(byLead.next, null);
    const [first, second] = byLead.items;
    assert.ok(first!.finishedAt <= second!.finishedAt);
    assert.equal(first!.final, false);
    assert.equal(second!.final, true);

    const byBuyer = (await get(`/v1/attempts?buyerId=${routeA.buyerId}`)).body;
    assert.deepEqual(byBuyer.items.map((i) => i.leadId), [leads.retried, leads.retried, leads.plain]);
    const byEndpoint = (await get(`/v1/attempts?endpointId=${routeB.endpoints[0]!.id}`)).body;
    assert.deepEqual(byEndpoint.items.map((i) => [i.leadId, i.outcome, i.code]), [[leads.rejected, 'permanent', 'http_422']]);
    assert.equal(byEndpoint.items[0]!.reason, '422 Rejected, "duplicate" lead');
    const bySource = (await get(`/v1/attempts?sourceId=${routeB.source.id}`)).body;
    assert.deepEqual(bySource.items.map((i) => i.leadId), [leads.rejected]);
    const transient = (await get(`/v1/attempts?outcome=transient&from=${t0}`)).body;
    assert.deepEqual(transient.items.map((i) => [i.leadId, i.attempt]), [[leads.retried, 1]]);
    const permanent = (await get(`/v1/attempts?outcome=permanent&buyerId=${routeB.buyerId}`)).body;
    assert.deepEqual(permanent.items.map((i) => i.leadId), [leads.rejected]);
    const none = (await get(`/v1/attempts?outcome=success&buyerId=${routeB.buyerId}`)).body;
    assert.deepEqual(none, { items: [], next: null });

    // The period: `from` inclusive, `to` exclusive, on the entry's time (the attempt's end, ms).
    assert.equal(first!.at, first!.finishedAt);
    const at = new Date(first!.at).toISOString();
    const atPlus1 = new Date(first!.at + 1).toISOString();
    const exact = (await get(`/v1/attempts?from=${at}&to=${atPlus1}&sourceId=${routeA.source.id}`)).body;
    assert.deepEqual(ids(exact.items), ids([first!]));
    const before = (await get(`/v1/attempts?from=${t0}&to=${at}&sourceId=${routeA.source.id}`)).body;
    assert.deepEqual(before.items, []);
    const all = (await get(`/v1/attempts?from=${t0}&limit=1000`)).body;
    assert.equal(all.items.length, 4);
    assert.deepEqual(
      all.items.map((i) => i.at),
      all.items.map((i) => i.at).sort((a, b) => a - b),
      'oldest first',
    );
  });

  it('When attempts are paged while new ones are written, then every entry that existed comes exactly once and in order, and the new one comes at the end', async function () {
    this.timeout(60_000);
    const query = `from=${t0}`;
    const snapshot = (await get(`/v1/attempts?${query}&limit=1000`)).body.items;
    assert.equal(snapshot.length, 4);
    let added = '';
    const walked = await walk(query, 1, async (pageNo) => {
      if (pageNo !== 2) return;
      // Between the second and third page: a new lead is delivered and its attempt written.
      added = await post(routeA.source.apiKey, { email: 'queries-4@example.com' });
      await system.client.workflow.getHandle(leadWorkflowId(added)).result();
      await attemptsOf(added, 1);
    });
    const seen = ids(walked.items);
    assert.equal(new Set(seen).size, seen.length, `no entry twice: ${seen.join(', ')}`);
    assert.deepEqual(seen.slice(0, 4), ids(snapshot), 'the entries that existed, in the same order');
    assert.deepEqual(walked.items.slice(4).map((i) => i.leadId), [added], 'the new entry, once, at the end');
    assert.equal(walked.pages, 5, 'five one-item pages, the last without a next cursor');
  });

  it('When many entries share one millisecond, then the cursor pages through them by id without repeating or skipping any', async function () {
    this.timeout(30_000);
    // Written straight into the store: the same instant for all (the API cannot be made to do it).
    const at = new Date(Date.UTC(2020, 0, 1, 12));
    const docs = Array.from({ length: 7 }, (_, n) => ({
      _id: `ld_tie${n}:000002`,
      leadId: `ld_tie${n}`,
      seq: 2,
      type: 'attempt',
      at,
      sourceId: 'src_tie',
      buyerId: 'buy_tie',
      endpointId: 'ep_tie',
      outcome: 'success',
      data: { leadId: `ld_tie${n}`, attempt: 1, outcome: 'success', code: 'ok', reason: '200', finishedAt: at.getTime() },
      prevHash: 'x',
      hash: `h${n}`,
    }));
    await system.models.LogEntry.insertMany(docs.reverse(), { lean: true });
    const walked = await walk('sourceId=src_tie', 3);
    assert.deepEqual(
      walked.items.map((i) => i.leadId),
      Array.from({ length: 7 }, (_, n) => `ld_tie${n}`),
    );
    assert.equal(walked.pages, 3);
  });

  it('When a period is exported as CSV, then it equals the attempts API row for row, quoted per RFC 4180, with formula-looking cells neutralised', async function () {
    this.timeout(30_000);
    const to = new Date(Date.now() + 1000).toISOString();
    const api = (await walk(`from=${t0}&to=${to}`, 2)).items;
    assert.ok(api.length >= 4);

    const response = await fetch(`${system.logUrl}/v1/attempts.csv?from=${t0}&to=${to}`, { headers: { authorization: `Bearer ${system.adminToken}` } });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/csv; charset=utf-8/);
    assert.match(response.headers.get('content-disposition') ?? '', /^attachment; filename="attempts-[\d-]+T[\d-]+Z\.csv"$/);
    const text = await response.text();
    assert.ok(text.endsWith('\r\n'), 'CRLF line ends');
    const [header, ...rows] = parseCsv(text);
    assert.deepEqual(header, [...ATTEMPT_CSV_COLUMNS]);
    assert.equal(rows.length, api.length, 'one row per attempt');

    const col = (row: string[], name: (typeof ATTEMPT_CSV_COLUMNS)[number]) => row[ATTEMPT_CSV_COLUMNS.indexOf(name)];
    const iso = (ms: number | undefined) => (ms === undefined ? '' : new Date(ms).toISOString());
    rows.forEach((row, n) => {
      const item = api[n]!;
      const expected = {
        lead_id: item.leadId,
        source_lead_id: item.clientId ? (/^[-=+@]/.test(item.clientId) ? `'${item.clientId}` : item.clientId) : '',
        source_id: item.sourceId,
        buyer_id: item.buyerId,
        endpoint_id: item.endpointId,
        kind: item.kind,
        attempt: String(item.attempt),
        first_attempt_at: iso(item.firstAttemptAt),
        started_at: iso(item.startedAt),
        finished_at: iso(item.finishedAt),
        accepted_at: item.outcome === 'success' ? iso(item.finishedAt) : '',
        attempts: String(item.attempt),
        final: String(item.final),
        outcome: item.outcome,
        final_outcome: item.final ? item.outcome : '',
        code: item.code,
        reason: item.reason,
        buyer_status: String(item.response?.status ?? ''),
        latency_ms: String(item.latencyMs),
        // No lead here is returned (test/e2e/returns.test.ts covers the returned rows).
        returned: 'false',
        return_reason: '',
      };
      const actual = Object.fromEntries(ATTEMPT_CSV_COLUMNS.map((c) => [c, col(row, c)]));
      assert.deepEqual(actual, expected, `row ${n + 1} (${item.leadId} attempt ${item.attempt})`);
    });

    // The hostile and the awkward cells, as they are on the wire.
    const retried = rows.filter((r) => col(r, 'lead_id') === leads.retried);
    assert.deepEqual(retried.map((r) => col(r, 'source_lead_id')), ["'-2-3", "'-2-3"]);
    assert.ok(!/(^|,)-2-3(,|\r\n)/m.test(text), 'no cell starts with "-" unneutralised');
    assert.ok(text.includes(`,"422 Rejected, ""duplicate"" lead",422,`), 'commas and quotes are quoted per RFC 4180');
    const accepted = rows.filter((r) => col(r, 'lead_id') === leads.retried && col(r, 'final_outcome') === 'success');
    assert.equal(accepted.length, 1);
    assert.equal(col(accepted[0]!, 'accepted_at'), iso(api.find((i) => i.leadId === leads.retried && i.outcome === 'success')!.finishedAt));
    assert.ok(!text.includes('queries-1@example.com'), 'no PII in the export');
  });

  it('When a filtered export is asked for, then it holds only the matching rows; an empty one is just the header', async function () {
    this.timeout(30_000);
    const byBuyer = await fetch(`${system.logUrl}/v1/attempts.csv?buyerId=${routeB.buyerId}`, { headers: { authorization: `Bearer ${system.adminToken}` } });
    const [, ...rows] = parseCsv(await byBuyer.text());
    assert.deepEqual(rows.map((r) => r[ATTEMPT_CSV_COLUMNS.indexOf('lead_id')]), [leads.rejected]);
    const empty = await fetch(`${system.logUrl}/v1/attempts.csv?buyerId=buy_nobody`, { headers: { authorization: `Bearer ${system.adminToken}` } });
    assert.equal(empty.status, 200);
    assert.equal(await empty.text(), `${ATTEMPT_CSV_COLUMNS.join(',')}\r\n`);
  });

  it('When a query is malformed, then the answer is 400 naming the field, for the API and the export alike', async function () {
    this.timeout(30_000);
    const cases: Array<[string, string]> = [
      ['outcome=maybe', 'query.outcome'],
      ['from=yesterday', 'query.from'],
      ['from=2025-02-30T00:00:00Z', 'query.from'],
      ['to=2025-01-01T00:00:00', 'query.to'],
      ['from=2025-02-01T00:00:00Z&to=2025-01-01T00:00:00Z', 'query.to'],
      ['buyerId=a%20b', 'query.buyerId'],
      ['buyerId=a&buyerId=b', 'query.buyerId'],
      ['buyerId[$ne]=x', 'query.buyerId[$ne]'],
      ['colour=red', 'query.colour'],
    ];
    for (const [query, field] of cases) {
      for (const route of ['/v1/attempts', '/v1/attempts.csv']) {
        const res = await get<ErrorBody>(`${route}?${query}`);
        assert.equal(res.status, 400, `${route}?${query}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.error, 'validation_failed');
        assert.ok(res.body.fields?.some((f) => f.path === field), `${route}?${query} names ${field}: ${JSON.stringify(res.body.fields)}`);
      }
    }
    for (const [query, field] of [
      ['limit=0', 'query.limit'],
      ['limit=1001', 'query.limit'],
      ['limit=ten', 'query.limit'],
      ['cursor=not-a-cursor', 'query.cursor'],
      [`cursor=${Buffer.from('{"$gt":""}').toString('base64url')}`, 'query.cursor'],
    ] as const) {
      const res = await get<ErrorBody>(`/v1/attempts?${query}`);
      assert.equal(res.status, 400, query);
      assert.ok(res.body.fields?.some((f) => f.path === field), `${query} names ${field}: ${JSON.stringify(res.body.fields)}`);
    }
    // Paging parameters mean nothing to the export: named, not ignored.
    const paged = await get<ErrorBody>('/v1/attempts.csv?limit=10');
    assert.equal(paged.status, 400);
    assert.ok(paged.body.fields?.some((f) => f.path === 'query.limit'));
  });

  it('When the admin token is missing or wrong, or a source key is used, then both routes answer 401 or 403 and nothing else', async function () {
    this.timeout(30_000);
    for (const route of ['/v1/attempts', '/v1/attempts.csv']) {
      const none = await get<ErrorBody>(route, '');
      assert.equal(none.status, 401, route);
      const wrong = await get<ErrorBody>(route, 'admin-wrong');
      assert.equal(wrong.status, 401, route);
      const source = await get<ErrorBody>(route, routeA.source.apiKey);
      assert.ok(source.status === 401 || source.status === 403, `${route} with a source key: ${source.status}`);
      assert.ok(!JSON.stringify(source.body).includes(leads.retried), 'no data in the refusal');
    }
  });
});
