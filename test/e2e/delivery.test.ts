/**
 * The spine, end to end on real servers: intake → Temporal workflow → signed webhook at a
 * fake buyer → attempts in the delivery log. Backoff schedules are second-long.
 */
import assert from 'node:assert/strict';
import { Webhook } from 'standardwebhooks';
import { startFakeBuyer, type FakeBuyer } from '../fakes/buyer';
import { eventually, startSystem, type TestSystem } from '../support/system';

describe('delivery (intake → workflow → webhook → log)', function () {
  let system: TestSystem;
  let buyer: FakeBuyer;
  let source: { id: string; apiKey: string };

  before(async function () {
    this.timeout(180_000);
    system = await startSystem();
    buyer = await startFakeBuyer();
  });
  after(async () => {
    await buyer?.close();
    await system?.stop();
  });

  /** A fresh source whose waterfall is one buyer with one webhook endpoint at the fake. */
  async function route(endpoint: Record<string, unknown> = {}) {
    source = await system.createSource();
    const buyerId = await system.createBuyer();
    const created = await system.addEndpoint(buyerId, { kind: 'webhook', url: buyer.url, backoff: ['1s', '1s', '1s'], ...endpoint });
    await system.setWaterfall(source.id, [buyerId]);
    buyer.requests.length = 0;
    return { buyerId, endpointId: created.id, signingSecret: String(created.signingSecret) };
  }

  const lead = (extra: Record<string, unknown> = {}) => ({ first_name: 'Ada', last_name: 'Lovelace', email: 'ada@example.com', phone: '+15550100000', custom: { loan_amount: 25000 }, ...extra });

  it('When a buyer answers 200, then the lead is delivered on the first attempt, signed, and recorded', async () => {
    const { endpointId, signingSecret } = await route({ mapping: { firstname: 'first_name', email: 'email', amount: 'custom.loan_amount', vendor: { const: 'acme' } } });
    buyer.script([{ status: 200, body: { id: 'crm-1' } }]);
    const res = await system.postLead(source.apiKey, lead());
    assert.equal(res.status, 202);
    assert.equal(res.body.status, 'accepted');
    const leadId = String(res.body.leadId);
    assert.equal(res.body.workflowId, `lead-${leadId}`);

    const view = await system.waitForLead(leadId, (v) => v.status === 'delivered');
    assert.equal(view.endpoints[0]!.attempts, 1);

    const [received] = await buyer.waitForRequests(1);
    assert.deepEqual(JSON.parse(received!.body), { firstname: 'Ada', email: 'ada@example.com', amount: 25000, vendor: 'acme' });
    assert.equal(received!.headers['webhook-id'], `msg_${leadId}_${endpointId}`);
    const verified = new Webhook(signingSecret).verify(received!.body, {
      'webhook-id': String(received!.headers['webhook-id']),
      'webhook-timestamp': String(received!.headers['webhook-timestamp']),
      'webhook-signature': String(received!.headers['webhook-signature']),
    });
    assert.equal((verified as { firstname: string }).firstname, 'Ada');

    const attempts = await system.attempts(leadId);
    assert.equal(attempts.length, 1);
    const attempt = attempts[0]!;
    assert.equal(attempt.outcome, 'success');
    assert.equal(attempt.attempt, 1);
    assert.equal(attempt.endpointId, endpointId);
    assert.equal((attempt.response as { status: number }).status, 200);
    assert.equal((attempt.response as { body: string }).body, '{"id":"crm-1"}');
    assert.ok(Number(attempt.finishedAt) >= Number(attempt.startedAt));
    assert.equal(attempt.latencyMs, Number(attempt.finishedAt) - Number(attempt.startedAt));
    assert.equal((attempt.request as { body: string }).body, received!.body);
  });

  it('When a buyer answers 503 then 200, then two attempts are recorded a backoff apart', async () => {
    await route({ backoff: ['2s'] });
    buyer.script([{ status: 503, body: 'down' }, { status: 200 }]);
    const res = await system.postLead(source.apiKey, lead());
    const leadId = String(res.body.leadId);
    const view = await system.waitForLead(leadId, (v) => v.status === 'delivered');
    assert.equal(view.endpoints[0]!.attempts, 2);
    const [first, second] = await buyer.waitForRequests(2);
    assert.ok(second!.receivedAt - first!.receivedAt >= 2_000, `backoff elapsed: ${second!.receivedAt - first!.receivedAt} ms`);
    assert.equal(first!.headers['webhook-id'], second!.headers['webhook-id'], 'webhook-id is stable across retries');
    // The journal is written after the status changes: wait for both records.
    const attempts = await eventually(async () => {
      const items = await system.attempts(leadId);
      return items.length >= 2 ? items : undefined;
    }, 20_000, 'both attempt records');
    assert.deepEqual(attempts.map((a) => [a.attempt, a.outcome, a.code]), [[1, 'transient', 'http_503'], [2, 'success', 'ok']]);
  });

  it('When a buyer answers 404, then there is one attempt and the failure is permanent', async () => {
    await route();
    buyer.script([{ status: 404, body: 'no such list' }]);
    const res = await system.postLead(source.apiKey, lead());
    const leadId = String(res.body.leadId);
    const view = await system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
    assert.equal(view.endpoints[0]!.status, 'failed');
    assert.equal(view.endpoints[0]!.attempts, 1);
    const attempts = await system.attempts(leadId);
    assert.deepEqual(attempts.map((a) => [a.outcome, a.code]), [['permanent', 'http_404']]);
    assert.equal(buyer.requests.length, 1);
  });
});
