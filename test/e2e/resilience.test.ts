/**
 * What happens when parts fail: slow buyers, Retry-After, Temporal down at intake, the store
 * down mid-delivery, the worker killed mid-backoff. Each outage gets its own throwaway server.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { startFakeBuyer, type FakeBuyer } from '../fakes/buyer';
import { startStore, startTemporal, sharedInfra } from '../support/infra';
import type { TemporalDevServer } from '../../deploy/local/temporal';
import { eventually, startSystem, type TestSystem } from '../support/system';

const ROOT = path.resolve(__dirname, '../..');

async function routeTo(system: TestSystem, url: string, endpoint: Record<string, unknown> = {}) {
  const source = await system.createSource();
  const buyerId = await system.createBuyer();
  const created = await system.addEndpoint(buyerId, { kind: 'webhook', url, ...endpoint });
  await system.setWaterfall(source.id, [buyerId]);
  return { source, buyerId, endpointId: created.id };
}

describe('resilience', function () {
  let buyer: FakeBuyer;
  before(async () => {
    buyer = await startFakeBuyer();
  });
  after(async () => {
    await buyer?.close();
  });

  describe('on the shared servers', function () {
    let system: TestSystem;
    before(async function () {
      this.timeout(180_000);
      system = await startSystem();
    });
    after(async () => {
      await system?.stop();
    });

    it('When a buyer takes 12 s to answer, then the attempt times out at 10 s as unknown (it may have arrived) and the retry to the same buyer delivers', async function () {
      this.timeout(60_000);
      const { source } = await routeTo(system, buyer.url, { backoff: ['1s'] });
      buyer.requests.length = 0;
      buyer.script([{ status: 200, delayMs: 12_000 }, { status: 200 }]);
      const res = await system.postLead(source.apiKey, { email: 'slow@example.com' });
      const leadId = String(res.body.leadId);
      await system.waitForLead(leadId, (v) => v.status === 'delivered', 45_000);
      const attempts = await eventually(async () => {
        const items = await system.attempts(leadId);
        return items.length === 2 ? items : undefined;
      });
      assert.deepEqual(attempts.map((a) => [a.outcome, a.code]), [['unknown', 'timeout'], ['success', 'ok']]);
      const latency = Number(attempts[0]!.latencyMs);
      assert.ok(latency >= 10_000 && latency < 11_500, `timed out after ${latency} ms`);
    });

    it('When a buyer sends Retry-After: 3, then the next attempt waits 3 s although the schedule says 1 s', async function () {
      this.timeout(60_000);
      const { source } = await routeTo(system, buyer.url, { backoff: ['1s'] });
      buyer.requests.length = 0;
      buyer.script([{ status: 429, headers: { 'retry-after': '3' } }, { status: 200 }]);
      const res = await system.postLead(source.apiKey, { email: 'later@example.com' });
      const leadId = String(res.body.leadId);
      await system.waitForLead(leadId, (v) => v.status === 'delivered');
      const [first, second] = await buyer.waitForRequests(2);
      const gap = second!.receivedAt - first!.receivedAt;
      assert.ok(gap >= 3_000, `waited ${gap} ms`);
      const attempts = await system.attempts(leadId);
      assert.equal(attempts[0]!.retryAfterMs, 3_000);
    });
  });

  it('When Temporal cannot be reached, then intake answers 503 with Retry-After, stays ready (it can answer), and accepts again once it is back', async function () {
    this.timeout(120_000);
    const temporal = await startTemporal();
    const { mongoBase } = await sharedInfra();
    const system = await startSystem({ temporalAddress: temporal.address, mongoUrl: `${mongoBase}/t_temporal_down_${Date.now()}`, temporalTimeoutMs: 2_000 });
    let back: TemporalDevServer | undefined;
    try {
      const { source } = await routeTo(system, buyer.url, { backoff: ['1s'] });
      await system.stopDeliveryWorker();
      temporal.kill();
      const refused = await system.postLead(source.apiKey, { email: 'down@example.com' });
      assert.equal(refused.status, 503);
      assert.equal(refused.headers.get('retry-after'), '5');
      assert.equal(refused.body.error, 'unavailable');
      // Readiness stays 200 (this replica can serve: it answers the 503 above itself) and says Temporal is down.
      const ready = await fetch(`${system.intakeUrl}/readyz`);
      assert.equal(ready.status, 200);
      assert.deepEqual(await ready.json(), { status: 'ready', temporal: false, store: true });
      // The server comes back on the same address (dev mode: in memory, so empty): intake accepts again.
      back = await temporal.startAgain();
      const accepted = await eventually(async () => {
        const res = await system.postLead(source.apiKey, { email: 'down@example.com' });
        return res.status === 202 ? res : undefined;
      }, 30_000, 'intake accepts again');
      assert.equal(accepted.body.status, 'accepted');
    } finally {
      await system.stop().catch(() => undefined);
      await back?.stop();
    }
  });

  it('When the store is down during delivery and comes back, then every attempt is recorded exactly once', async function () {
    this.timeout(180_000);
    const store = await startStore();
    const { temporalAddress } = await sharedInfra();
    const system = await startSystem({ temporalAddress, mongoUrl: store.url.replace(/\/[^/]*$/, '/t_store_down') });
    try {
      const { source } = await routeTo(system, buyer.url, { backoff: ['1s', '1s', '1s'] });
      buyer.requests.length = 0;
      buyer.script([{ status: 500 }, { status: 502 }, { status: 200 }]);
      // Warm the worker's endpoint cache so attempts need no store read while it is down.
      const warm = await system.postLead(source.apiKey, { email: 'warm@example.com' });
      buyer.script([{ status: 500 }, { status: 502 }, { status: 200 }]);
      await system.waitForLead(String(warm.body.leadId), (v) => v.status === 'delivered', 60_000);
      buyer.requests.length = 0;
      buyer.script([{ status: 500 }, { status: 502 }, { status: 200 }]);

      const res = await system.postLead(source.apiKey, { email: 'outage@example.com' });
      const leadId = String(res.body.leadId);
      await system.waitForLead(leadId, (v) => v.endpoints.length > 0);
      await store.stop();
      await buyer.waitForRequests(3, 60_000);
      await new Promise((r) => setTimeout(r, 2_000));
      await store.restart();
      await system.waitForLead(leadId, (v) => v.status === 'delivered', 90_000);
      const entries = await eventually(async () => {
        const docs = await system.models.LogEntry.find({ leadId }).sort({ seq: 1 }).lean();
        return docs.some((d) => d.type === 'status' && (d.data as { status?: string }).status === 'delivered') ? docs : undefined;
      }, 90_000, 'the journal is complete');
      const attempts = entries.filter((e) => e.type === 'attempt');
      assert.deepEqual(attempts.map((a) => (a.data as { attempt: number }).attempt), [1, 2, 3]);
      assert.deepEqual(entries.map((e) => e.seq), entries.map((_, i) => i + 1), 'no gap and no duplicate in the journal');
    } finally {
      await system.stop().catch(() => undefined);
    }
  });

  it('When the worker is killed during a backoff and restarted, then the lead still completes', async function () {
    this.timeout(180_000);
    const system = await startSystem({ deliveryWorker: false });
    const spawnWorker = (): ChildProcess =>
      spawn(process.execPath, ['--require', 'tsx/cjs', path.join(ROOT, 'services/worker/main.ts')], {
        cwd: ROOT,
        env: {
          ...process.env,
          TEMPORAL_ADDRESS: system.temporalAddress,
          MONGO_URL: system.mongoUrl,
          DELIVERY_TASK_QUEUE: system.deliveryTaskQueue,
          LOG_TASK_QUEUE: system.logTaskQueue,
          ADMIN_TOKEN: system.adminToken,
          CREDENTIALS_KEYS: system.credentialsKeys,
          PAYLOAD_KEYS: system.payloadKeys,
          OUTBOUND_ALLOW: '127.0.0.0/8',
          LOG_LEVEL: 'warn',
        },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
    let worker = spawnWorker();
    try {
      const { source } = await routeTo(system, buyer.url, { backoff: ['8s'] });
      buyer.requests.length = 0;
      buyer.script([{ status: 503 }, { status: 200 }]);
      const res = await system.postLead(source.apiKey, { email: 'crash@example.com' });
      const leadId = String(res.body.leadId);
      await system.waitForLead(leadId, (v) => v.endpoints[0]?.status === 'backoff', 60_000);
      worker.kill('SIGKILL');
      await new Promise((r) => worker.once('exit', r));
      worker = spawnWorker();
      const view = await system.waitForLead(leadId, (v) => v.status === 'delivered', 90_000);
      assert.equal(view.endpoints[0]!.attempts, 2);
      assert.equal(buyer.requests.length, 2);
    } finally {
      worker.kill('SIGKILL');
      await system.stop().catch(() => undefined);
    }
  });
});
