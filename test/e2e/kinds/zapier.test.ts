/**
 * The zapier kind end to end: intake → workflow → activity → io.outbound → a local catch hook
 * that answers like Zapier. Any non-2xx is retried along the endpoint's schedule.
 */
import assert from 'node:assert/strict';
import { startZapierFake, HOOK_PATH, type ZapierFake } from '../../fakes/zapier';
import { startSystem, type TestSystem } from '../../support/system';
import { waitForAttempts, summary } from '../../support/attempts';


describe('zapier kind through the whole system', function () {
  let system: TestSystem;
  let zap: ZapierFake;
  const HOOK_SECRET = HOOK_PATH.split('/')[4]!;

  before(async function () {
    this.timeout(180_000);
    system = await startSystem();
    zap = await startZapierFake();
  });
  after(async () => {
    await zap?.close();
    await system?.stop();
  });
  beforeEach(() => {
    zap.requests.length = 0;
    zap.ids.length = 0;
    zap.script([]);
  });
  afterEach(function () {
    if (this.currentTest?.state === 'passed') assert.deepEqual(zap.violations, [], 'every request was a JSON POST to the catch hook');
  });

  async function route(settings: Record<string, unknown> = {}) {
    const { source, endpoints } = await system.route([
      {
        kind: 'zapier',
        url: zap.hookUrl,
        mapping: { lead_id: 'lead_id', name: { template: '{first_name} {last_name}' }, email: 'email', phone: { field: 'phone', transform: 'e164' }, amount: 'custom.loan_amount' },
        backoff: ['1s'],
        timeoutMs: 1500,
        ...settings,
      },
    ]);
    return { apiKey: source.apiKey, endpoint: endpoints[0]! };
  }

  async function post(apiKey: string): Promise<string> {
    const res = await system.postLead(apiKey, { first_name: 'Ada', last_name: 'Lovelace', email: 'ada@example.com', phone: '(555) 010-0000', custom: { loan_amount: 25000 } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return String(res.body.leadId);
  }

  const attemptsOf = (leadId: string, count: number) => waitForAttempts(system, leadId, count);

  it("When the catch hook answers success, then the mapped lead is posted once as JSON and Zapier's id is kept; the hook URL is a masked secret", async () => {
    const { apiKey, endpoint } = await route();
    assert.ok(!JSON.stringify(endpoint).includes(HOOK_SECRET), 'the hook URL is shown masked');
    const stored = await system.models.Endpoint.findById(endpoint.id).lean();
    assert.ok(!JSON.stringify(stored).includes(HOOK_SECRET), 'and stored sealed');

    const leadId = await post(apiKey);
    const view = await system.waitForLead(leadId, (v) => v.status === 'delivered');
    assert.equal(view.endpoints[0]!.attempts, 1);
    const [received] = await zap.waitForRequests(1);
    assert.deepEqual(JSON.parse(received!.body), { lead_id: leadId, name: 'Ada Lovelace', email: 'ada@example.com', phone: '+15550100000', amount: 25000 });
    assert.equal(received!.headers['content-type'], 'application/json');

    const [attempt] = await attemptsOf(leadId, 1);
    assert.deepEqual([attempt!.outcome, attempt!.code, attempt!.response?.status, attempt!.response?.messageId], ['success', 'ok', 200, zap.ids[0]]);
    assert.equal(attempt!.request.body, received!.body);
    assert.equal(attempt!.request.url, `${new URL(zap.hookUrl).origin}/hooks/****/****/****/`);
    assert.ok(!JSON.stringify(await system.attempts(leadId)).includes(HOOK_SECRET), 'no hook secret in the delivery log');
  });

  it('When the catch hook answers 500 and then success, then two attempts are recorded and the lead is delivered', async () => {
    const { apiKey } = await route();
    zap.script([{ status: 500, body: 'oops' }]);
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    assert.deepEqual(summary(await attemptsOf(leadId, 2)), [[1, 'transient', 'http_500'], [2, 'success', 'ok']]);
    assert.equal(zap.requests.length, 2);
  });

  it('When the catch hook answers 404 every time, then it is still retried (transient) until the schedule ends', async () => {
    const { apiKey } = await route({ backoff: ['1s', '1s'] });
    zap.script([{ status: 404, body: { status: 'failure' } }, { status: 404 }, { status: 404 }]);
    const leadId = await post(apiKey);
    const view = await system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
    assert.equal(view.endpoints[0]!.status, 'failed');
    assert.equal(view.endpoints[0]!.attempts, 3);
    assert.deepEqual(summary(await attemptsOf(leadId, 3)), [[1, 'transient', 'http_404'], [2, 'transient', 'http_404'], [3, 'transient', 'http_404']]);
    assert.equal(zap.requests.length, 3);
  });

  it('When the connection drops without an answer after the request was sent, then the attempt is unknown (the Zap may have run) and a later attempt delivers', async () => {
    // Two hang-ups: io.outbound retries once on a fresh socket when a reused keep-alive socket is
    // reset (a stale connection looks the same), so one hang-up alone may not fail the attempt.
    const { apiKey } = await route({ backoff: ['1s', '1s'] });
    zap.script([{ status: 200, hangUp: true }, { status: 200, hangUp: true }]);
    const leadId = await post(apiKey);
    const view = await system.waitForLead(leadId, (v) => v.status === 'delivered');
    const attempts = await attemptsOf(leadId, view.endpoints[0]!.attempts);
    assert.ok(attempts.length >= 2, JSON.stringify(summary(attempts)));
    assert.deepEqual([attempts[0]!.outcome, attempts[0]!.code], ['unknown', 'connection_reset']);
    assert.deepEqual([attempts.at(-1)!.outcome, attempts.at(-1)!.code], ['success', 'ok']);
  });

  it('When Zapier answers after our timeout, then the attempt is unknown and the lead is sent again with the same body (Zapier has no idempotency key and no read-back: the Zap can drop it by lead_id)', async () => {
    const { apiKey } = await route();
    zap.script([{ status: 200, delayMs: 2_500, body: { status: 'success', id: 'late' } }]);
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    const attempts = await attemptsOf(leadId, 2);
    assert.deepEqual(summary(attempts), [[1, 'unknown', 'timeout'], [2, 'success', 'ok']]);
    assert.equal(attempts[1]!.readBack, undefined, 'nothing read back');
    assert.equal(zap.requests.length, 2);
    assert.equal(zap.requests[0]!.body, zap.requests[1]!.body);
    assert.equal((JSON.parse(zap.requests[1]!.body) as { lead_id: string }).lead_id, leadId);
  });

  it('When the hook URL is not http(s) or a mapping names an unknown field, then the endpoint is refused when saved', async () => {
    const buyerId = await system.createBuyer();
    const bad = await system.admin<{ fields: Array<{ path: string }> }>('POST', `/buyers/${buyerId}/endpoints`, { kind: 'zapier', url: 'ftp://hooks.zapier.com/x' });
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.body.fields.map((f) => f.path), ['url']);
    const mapping = await system.admin<{ fields: Array<{ path: string }> }>('POST', `/buyers/${buyerId}/endpoints`, { kind: 'zapier', url: 'https://hooks.zapier.com/hooks/catch/1/abc/', mapping: { a: 'frist_name' } });
    assert.deepEqual(mapping.body.fields.map((f) => f.path), ['mapping.a']);
    const extra = await system.admin<{ fields: Array<{ path: string }> }>('POST', `/buyers/${buyerId}/endpoints`, { kind: 'zapier', url: 'https://hooks.zapier.com/hooks/catch/1/abc/', format: 'form' });
    assert.equal(extra.status, 400);
  });
});
