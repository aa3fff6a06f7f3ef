/**
 * The promise under faults, end to end on real servers: a worker lost mid-send, a buyer that
 * resets after reading the request, a broken notify endpoint, a busy endpoint with scattered
 * errors, a source removed under a dead letter, and leads that stop making progress.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { startFakeBuyer, type FakeBuyer } from '../fakes/buyer';
import { capturedLogLines, eventually, startSystem, testLogger, type TestSystem } from '../support/system';
import { leadWorkflowId, type LeadView } from '../../shared/delivery';
import { SA } from '../../shared/search-attributes';
import { createStuckLeadActivities } from '../../activities/stuck-leads';
import { createAlerter } from '../../activities/alerts';
import { createRegistry } from '../../activities/registry';
import { createOutbound } from '../../shared/http/outbound';
import { generateKeySpec, parseKeyRing } from '../../shared/crypto';
import { dataConverter } from '../../shared/codec';
import { Client } from '@temporalio/client';
import { redeliverUpdate } from '../../workflows/messages';

const ROOT = path.resolve(__dirname, '../..');
const terminal = (v: LeadView) => ['delivered', 'dead_lettered', 'discarded'].includes(v.status);

describe('the promise under faults (end to end)', function () {
  this.timeout(180_000);
  let system: TestSystem;
  let b1: FakeBuyer;
  let b2: FakeBuyer;
  let alerts: FakeBuyer;

  before(async function () {
    this.timeout(180_000);
    system = await startSystem({ horizonSlackMs: 500, stuckNotStartedAfterMs: 1_000 });
    [b1, b2, alerts] = await Promise.all([startFakeBuyer(), startFakeBuyer(), startFakeBuyer()]);
    const channel = await system.admin('POST', '/alert-channels', { kind: 'webhook', name: 'ops', url: alerts.url });
    assert.equal(channel.status, 201, JSON.stringify(channel.body));
  });
  after(async () => {
    await Promise.all([b1?.close(), b2?.close(), alerts?.close()]);
    await system?.stop();
  });
  beforeEach(() => {
    for (const fake of [b1, b2, alerts]) {
      fake.requests.length = 0;
      fake.script([{ status: 200 }]);
    }
  });

  async function waterfall(options: { b1?: Record<string, unknown>; b1Extra?: Array<Record<string, unknown>>; accept?: 'all' | 'any'; freshness?: string } = {}) {
    const source = await system.admin<{ id: string; apiKey: string }>('POST', '/sources', { name: 'promise', ...(options.freshness ? { freshness: options.freshness } : {}) });
    const buyer1 = await system.createBuyer({ name: 'B1', ...(options.accept ? { accept: options.accept } : {}) });
    const buyer2 = await system.createBuyer({ name: 'B2' });
    const ep1 = await system.addEndpoint(buyer1, { kind: 'webhook', url: b1.url, backoff: ['1s'], ...options.b1 });
    const extra = [];
    for (const body of options.b1Extra ?? []) extra.push(await system.addEndpoint(buyer1, body));
    await system.addEndpoint(buyer2, { kind: 'webhook', url: b2.url, backoff: [] });
    await system.setWaterfall(source.body.id, [buyer1, buyer2]);
    return { source: source.body, buyer1, buyer2, ep1: ep1.id, extra };
  }
  const post = async (apiKey: string, n: string) => {
    const res = await system.postLead(apiKey, { id: `promise-${n}-${randomBytes(3).toString('hex')}`, email: `p${n}@example.com`, first_name: 'Ada' });
    assert.ok(res.status === 202, JSON.stringify(res.body));
    return String(res.body.leadId);
  };

  it('When the worker dies after the buyer read the request, then the retried execution records the lost send as unknown, ignores a breaker opened meanwhile, and the lead stays with that buyer', async function () {
    this.timeout(150_000);
    const { source, buyer1, ep1 } = await waterfall({ b1: { timeoutMs: 2_000, backoff: ['1s', '1s'] } });
    await system.stopDeliveryWorker();
    const child = startWorkerProcess(system);
    try {
      // The first request is held open until the worker is gone; the next one answers 200.
      b1.script((_req, index) => (index === 0 ? { status: 200, delayMs: 60_000 } : { status: 200 }));
      const leadId = await post(source.apiKey, 'lost');
      await b1.waitForRequests(1, 60_000);
      child.kill('SIGKILL');
      await system.startDeliveryWorker();
      // An operator opens the breaker while the send's fate is unknown: the retry must not skip.
      const forced = await system.admin('POST', `/endpoints/${ep1}/breaker/open`, { reason: 'maintenance' });
      assert.equal(forced.status, 200, JSON.stringify(forced.body));
      const view = await system.waitForLead(leadId, terminal, 90_000);
      assert.deepEqual([view.status, view.buyerId], ['delivered', buyer1]);
      assert.equal(b2.requests.length, 0, 'the other buyer never got the lead');
      assert.equal(b1.requests.length, 2);
      assert.equal(b1.requests[0]!.headers['webhook-id'], b1.requests[1]!.headers['webhook-id'], 'the same idempotency key');
      const attempts = await eventually(async () => {
        const items = await system.attempts(leadId);
        return items.length >= 2 ? items : undefined;
      }, 20_000, 'both records');
      assert.deepEqual(attempts.map((a) => [a.outcome, a.code, a.execution]), [['unknown', 'interrupted', 1], ['success', 'ok', 2]]);
    } finally {
      child.kill('SIGKILL');
      await system.startDeliveryWorker();
      await system.admin('POST', `/endpoints/${ep1}/breaker/reset`, {});
    }
  });

  it('When the buyer resets the connection after reading the request, then the attempt is unknown, the lead is never offered to the next buyer, and the same endpoint is retried with the same key', async () => {
    const { source, buyer1 } = await waterfall();
    b1.script([{ status: 200, hangUp: true }, { status: 200 }]);
    const leadId = await post(source.apiKey, 'reset');
    const view = await system.waitForLead(leadId, terminal, 60_000);
    assert.deepEqual([view.status, view.buyerId], ['delivered', buyer1]);
    assert.equal(b2.requests.length, 0);
    const attempts = await eventually(async () => {
      const items = await system.attempts(leadId);
      return items.length >= 2 ? items : undefined;
    }, 20_000, 'both records');
    assert.deepEqual(attempts.map((a) => [a.outcome, a.code]), [['unknown', 'connection_reset'], ['success', 'ok']]);
    assert.equal(b1.requests[0]!.headers['webhook-id'], b1.requests[1]!.headers['webhook-id']);
  });

  it('When a buyer with two accept endpoints (accept: all) gets the lead on one and a refusal on the other, then it is dead-lettered partial_at_buyer, held by that buyer, and never reaches the next', async () => {
    const other = await startFakeBuyer({ steps: [{ status: 422, body: 'missing field' }] });
    try {
      const { source, buyer1 } = await waterfall({ accept: 'all', b1Extra: [{ kind: 'webhook', url: other.url, backoff: [] }] });
      const leadId = await post(source.apiKey, 'partial');
      const view = await system.waitForLead(leadId, terminal, 60_000);
      assert.deepEqual([view.status, view.reasonCode, view.heldBy], ['dead_lettered', 'partial_at_buyer', buyer1]);
      assert.equal(b2.requests.length, 0);
      const summary = await eventually(async () => (await system.models.Lead.findById(leadId).lean())?.reasonCode === 'partial_at_buyer' || undefined, 20_000, 'dead letter listed');
      assert.ok(summary);
      // The operator fixes the second endpoint and redelivers: it goes to B1, and B1's first endpoint is not sent again.
      other.script([{ status: 200 }]);
      const redeliver = await system.admin('POST', `/leads/${leadId}/redeliver`, {});
      assert.equal(redeliver.status, 202, JSON.stringify(redeliver.body));
      const done = await system.waitForLead(leadId, (v) => v.status === 'delivered', 60_000);
      assert.equal(done.buyerId, buyer1);
      assert.equal(b1.requests.length, 1, 'the endpoint that had the lead did not get it twice');
      assert.equal(other.requests.length, 2);
    } finally {
      await other.close();
    }
  });

  it('When a notify endpoint keeps failing, then its breaker opens and alerts, but the buyer is not paused and keeps taking leads', async function () {
    this.timeout(120_000);
    const notify = await startFakeBuyer({ steps: [{ status: 500 }] });
    try {
      const { source, buyer1, extra } = await waterfall({ b1Extra: [{ kind: 'webhook', url: notify.url, role: 'notify', backoff: [], breaker: { threshold: 2, coolDown: '1h' } }] });
      const notifyId = extra[0]!.id;
      for (let i = 0; i < 2; i++) {
        const leadId = await post(source.apiKey, `notify${i}`);
        const view = await system.waitForLead(leadId, (v) => v.status === 'delivered' && v.notify?.pending === 0, 60_000);
        assert.equal(view.buyerId, buyer1);
      }
      await eventually(async () => ((await system.admin<{ state: string }>('GET', `/endpoints/${notifyId}/breaker`)).body.state === 'open' ? true : undefined), 20_000, 'notify breaker open');
      const opened = await eventually(() => Promise.resolve(alerts.requests.map((r) => JSON.parse(r.body) as { type: string; endpoint_id?: string; title: string }).find((a) => a.type === 'breaker_opened' && a.endpoint_id === notifyId)), 20_000, 'alert');
      assert.match(opened.title, /notify endpoint/);
      const buyer = await system.admin<{ paused: boolean }>('GET', `/buyers/${buyer1}`);
      assert.equal(buyer.body.paused, false, 'a notify breaker never pauses the buyer');
      const before = notify.requests.length;
      const leadId = await post(source.apiKey, 'notify-after');
      const view = await system.waitForLead(leadId, (v) => v.status === 'delivered' && v.notify?.pending === 0, 60_000);
      assert.equal(view.buyerId, buyer1, 'the buyer still takes leads');
      assert.equal(view.endpoints.find((e) => e.endpointId === notifyId)?.status, 'skipped', 'the broken copy is not sent while open');
      assert.equal(notify.requests.length, before);
    } finally {
      await notify.close();
    }
  });

  it('When 20 leads at a time meet a 5 % random error rate, then the breaker (threshold 5) never trips and counts every failure', async function () {
    this.timeout(240_000);
    const { source, ep1 } = await waterfall({ b1: { backoff: ['1s', '1s', '1s'], breaker: { threshold: 5, coolDown: '1h' } } });
    let seed = 7;
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    let errors = 0;
    b1.script(() => {
      if (random() < 0.05) {
        errors++;
        return { status: 503 };
      }
      return { status: 200 };
    });
    for (let round = 0; round < 10; round++) {
      const ids = await Promise.all(Array.from({ length: 20 }, (_, i) => post(source.apiKey, `busy${round}-${i}`)));
      await Promise.all(ids.map((id) => system.waitForLead(id, terminal, 90_000)));
    }
    const state = await system.admin<{ state: string; counts: { failures: number; opened: number } }>('GET', `/endpoints/${ep1}/breaker`);
    assert.ok(errors >= 5, `the run had errors (${errors})`);
    assert.equal(state.body.state, 'closed', JSON.stringify(state.body));
    assert.equal(state.body.counts.opened, 0);
    assert.equal(state.body.counts.failures, errors, 'every failure reached the breaker');
    assert.equal(b2.requests.length, 0, 'nothing failed over');
  });

  it('When the source is removed under a dead-lettered lead, then a redeliver dead-letters it again with the reason; the workflow never fails', async () => {
    b1.script([{ status: 404 }]);
    b2.script([{ status: 404 }]);
    const { source } = await waterfall();
    const leadId = await post(source.apiKey, 'gone');
    await system.waitForLead(leadId, (v) => v.status === 'dead_lettered', 60_000);
    await system.models.Source.deleteOne({ _id: source.id }); // removed by hand, behind the API's back
    await system.client.workflow.getHandle(leadWorkflowId(leadId)).executeUpdate(redeliverUpdate, { args: [{ by: 'test' }] });
    const view = await system.waitForLead(leadId, (v) => v.status === 'dead_lettered' && v.decisions.some((d) => d.decision === 'redeliver'), 60_000);
    assert.equal(view.reasonCode, 'no_buyers');
    const description = await system.client.workflow.getHandle(leadWorkflowId(leadId)).describe();
    assert.equal(description.status.name, 'RUNNING');
  });

  it('When a lead stops making progress past its horizon, or its workflow never starts, then it is listed as stuck and alerted once', async function () {
    this.timeout(120_000);
    const { source } = await waterfall({ freshness: '1s', b1: { backoff: [] } });
    b1.script([{ status: 200, delayMs: 1_500 }]);
    const leadId = await post(source.apiKey, 'stuck');
    await b1.waitForRequests(1, 30_000);
    await system.stopDeliveryWorker(); // nobody moves the lead on
    // A lead workflow that no worker ever polls (its task queue is served by nobody).
    const orphanId = `ld_orphan${randomBytes(4).toString('hex')}`;
    await system.client.workflow.start('deliverLead', {
      workflowId: leadWorkflowId(orphanId),
      taskQueue: `nobody-${randomBytes(3).toString('hex')}`,
      args: [{ leadId: orphanId, sourceId: source.id, receivedAt: Date.now(), lead: { email: 'o@example.com' } }, { logTaskQueue: system.logTaskQueue }],
      typedSearchAttributes: [{ key: SA.LeadId, value: orphanId }, { key: SA.LeadStatus, value: 'accepted' }],
    });
    // And one whose memo is sealed with a key this deployment does not hold (a retired key, or another
    // deployment on the namespace): the listing reads no memo, so it neither fails nor hides the rest.
    const foreignId = `ld_foreign${randomBytes(4).toString('hex')}`;
    const foreign = new Client({ connection: system.client.connection, dataConverter: dataConverter(generateKeySpec('pk1')) });
    await foreign.workflow.start('deliverLead', {
      workflowId: leadWorkflowId(foreignId),
      taskQueue: `nobody-${randomBytes(3).toString('hex')}`,
      args: [],
      memo: { bodyHash: 'sealed with another key' },
      typedSearchAttributes: [{ key: SA.LeadId, value: foreignId }, { key: SA.LeadStatus, value: 'accepted' }],
    });
    try {
      const listed = await eventually(async () => {
        const res = await system.admin<{ items: Array<{ leadId: string; why: string; expectedBy?: string }> }>('GET', '/leads?state=stuck&limit=500');
        if (res.status !== 200) throw new Error(`stuck listing answered ${res.status}: ${JSON.stringify(res.body)}; logged: ${capturedLogLines.filter((l) => l.includes('/leads')).slice(-1).join('')}`);
        const ours = res.body.items.filter((i) => i.leadId === leadId || i.leadId === orphanId || i.leadId === foreignId);
        return ours.length === 3 ? ours : undefined;
      }, 60_000, 'the three leads listed as stuck');
      assert.equal(listed.find((i) => i.leadId === leadId)?.why, 'past_horizon');
      assert.equal(listed.find((i) => i.leadId === orphanId)?.why, 'not_started');
      assert.equal(listed.find((i) => i.leadId === foreignId)?.why, 'not_started');
      const bad = await system.admin('GET', '/leads?state=running');
      assert.equal(bad.status, 400);
      // The sweep (what the schedule runs) alerts once per stuck lead.
      const logger = testLogger('sweep');
      const sendAlert = createAlerter({ models: system.models, registry: createRegistry({ outbound: createOutbound({ allow: '127.0.0.0/8' }) }), credentials: parseKeyRing(system.credentialsKeys), logger });
      const sweep = createStuckLeadActivities({ client: system.client, sendAlert, logger, notStartedAfterMs: 1_000 });
      const first = await sweep.sweepStuckLeads({ limit: 500 });
      assert.ok(first.stuck >= 2 && first.alerted >= 2, JSON.stringify(first));
      const again = await sweep.sweepStuckLeads({ limit: 500 });
      assert.equal(again.alerted, 0, 'no second alert for the same lead and horizon');
      const stuckAlerts = alerts.requests.map((r) => JSON.parse(r.body) as { type: string; title: string }).filter((a) => a.type === 'stuck_lead');
      assert.ok(stuckAlerts.some((a) => a.title.includes(leadId)) && stuckAlerts.some((a) => a.title.includes(orphanId)));
    } finally {
      await system.client.workflow.getHandle(leadWorkflowId(orphanId)).terminate('test done');
      await foreign.workflow.getHandle(leadWorkflowId(foreignId)).terminate('test done');
      await system.startDeliveryWorker();
      await system.waitForLead(leadId, terminal, 60_000);
    }
  });
});

/** The delivery worker as its own process (services/worker/main.ts), so a test can kill -9 it. */
function startWorkerProcess(system: TestSystem): ChildProcess {
  const child = spawn(process.execPath, ['--require', 'tsx/cjs', path.join(ROOT, 'services/worker/main.ts')], {
    cwd: ROOT,
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: system.temporalAddress,
      MONGO_URL: system.mongoUrl,
      ADMIN_TOKEN: system.adminToken,
      CREDENTIALS_KEYS: system.credentialsKeys,
      PAYLOAD_KEYS: system.payloadKeys,
      DELIVERY_TASK_QUEUE: system.deliveryTaskQueue,
      LOG_TASK_QUEUE: system.logTaskQueue,
      OUTBOUND_ALLOW: '127.0.0.0/8,::1/128',
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return child;
}
