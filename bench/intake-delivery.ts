/**
 * Benchmark (not a test): N leads at a fixed rate into intake, one webhook endpoint at a local
 * fake buyer, on a throwaway Temporal dev server and FerretDB. Then, in the same run and on the
 * same servers, the bare ceiling: the same workflow shape with no-op activities, started straight
 * from a client. Prints figures; asserts nothing.
 *
 *   npm run bench                          # 300 leads at 30/s
 *   BENCH_LEADS=1000 BENCH_RATE=60 npm run bench
 */
import { randomBytes } from 'node:crypto';
import { Worker } from '@temporalio/worker';
import { NativeConnection } from '@temporalio/worker';
import { startFakeBuyer } from '../test/fakes/buyer';
import { startSystem, workflowBundle } from '../test/support/system';
import { stopInfra } from '../test/support/infra';
import { leadWorkflowId, type AppendJournalInput, type AttemptInput, type AttemptResult, type BuyerCheck, type RoutingPlan } from '../shared/delivery';
import type { deliverLead } from '../workflows/deliverLead';
import { dataConverter } from '../shared/codec';

const LEADS = Number(process.env.BENCH_LEADS ?? 300);
const RATE = Number(process.env.BENCH_RATE ?? 30);
/** The bench stops by itself: a stuck run (e.g. a workflow waiting on an activity nobody serves) gives up. */
const LIMIT_MS = Number(process.env.BENCH_TIMEOUT_MS ?? 15 * 60_000);

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}
const ms = (n: number) => `${n.toFixed(1)} ms`;

/** Calls `fn(i)` N times at a fixed rate; resolves when every call has settled. */
async function atRate<T>(count: number, perSecond: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const started = Date.now();
  const calls: Array<Promise<T>> = [];
  for (let i = 0; i < count; i++) {
    const due = started + (i * 1000) / perSecond;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    calls.push(fn(i));
  }
  return Promise.all(calls);
}

async function main(): Promise<void> {
  console.log(`bench: ${LEADS} leads at ${RATE}/s, one webhook endpoint, fake buyer on loopback`);
  const system = await startSystem();
  const buyer = await startFakeBuyer({ steps: [{ status: 200, body: { ok: true } }] });
  try {
    const source = await system.createSource('bench');
    const buyerId = await system.createBuyer({ name: 'bench buyer' });
    await system.addEndpoint(buyerId, { kind: 'webhook', url: buyer.url });
    await system.setWaterfall(source.id, [buyerId]);

    // ---- through the system ---------------------------------------------------------------------
    const acceptedAt = new Map<string, number>();
    const intakeLatency: number[] = [];
    const t0 = Date.now();
    const accepted = await atRate(LEADS, RATE, async (i) => {
      const start = performance.now();
      const res = await system.postLead(source.apiKey, { email: `bench${i}@example.com`, first_name: 'Bench', custom: { i } });
      intakeLatency.push(performance.now() - start);
      if (res.status !== 202) throw new Error(`intake answered ${res.status}: ${JSON.stringify(res.body)}`);
      acceptedAt.set(String(res.body.leadId), Date.now());
      return String(res.body.leadId);
    });
    const intakeDone = Date.now();
    await Promise.all(accepted.map((leadId) => system.client.workflow.getHandle(leadWorkflowId(leadId)).result()));
    const allDelivered = Date.now();
    const toBuyer: number[] = [];
    for (const request of buyer.requests) {
      const leadId = /^msg_(ld_[a-z0-9]+)_/.exec(String(request.headers['webhook-id']))?.[1];
      const at = leadId ? acceptedAt.get(leadId) : undefined;
      if (at) toBuyer.push(request.receivedAt - at);
    }
    const sample = accepted.slice(0, 10);
    const events = await Promise.all(sample.map(async (id) => (await system.client.workflow.getHandle(leadWorkflowId(id)).fetchHistory()).events?.length ?? 0));

    // ---- bare ceiling: same workflow, no-op activities ------------------------------------------
    const queue = `bare-${randomBytes(3).toString('hex')}`;
    const connection = await NativeConnection.connect({ address: system.temporalAddress });
    const plan: RoutingPlan = { sourceId: 'src_bare', freshnessMs: 600_000, unroutable: [], buyers: [{ buyerId: 'buy_bare', name: 'bare', accept: 'all', endpoints: [{ endpointId: 'ep_bare', buyerId: 'buy_bare', kind: 'webhook', role: 'accept', version: 1, backoffMs: [1000], timeoutMs: 10_000 }] }] };
    const noop = {
      loadRoutingPlan: () => Promise.resolve(plan),
      checkBuyer: (): Promise<BuyerCheck> => Promise.resolve({ breakers: { ep_bare: 'closed' } }),
      deliverAttempt: (input: AttemptInput): Promise<AttemptResult> => {
        const now = Date.now();
        return Promise.resolve({ outcome: 'success', code: 'ok', reason: '200', status: 200, record: { attemptId: 'x', leadId: input.leadId, sourceId: input.sourceId, buyerId: input.buyerId, endpointId: input.endpointId, kind: 'webhook', role: 'accept', attempt: input.attempt, startedAt: now, finishedAt: now, latencyMs: 0, outcome: 'success', code: 'ok', reason: '200' } });
      },
      appendJournal: (input: AppendJournalInput) => Promise.resolve({ head: 'h', written: input.entries.length }),
    };
    const bare = await Worker.create({ connection, taskQueue: queue, workflowBundle: await workflowBundle(), dataConverter: dataConverter(system.payloadKeys), activities: noop, maxCachedWorkflows: 2000, maxConcurrentActivityTaskExecutions: 200 });
    const bareStart = Date.now();
    await bare.runUntil(async () => {
      const handles = await atRate(LEADS, RATE, (i) =>
        system.client.workflow.start<typeof deliverLead>('deliverLead', {
          taskQueue: queue,
          workflowId: `bare-${queue}-${i}`,
          args: [{ leadId: `ld_bare${i}`, sourceId: 'src_bare', receivedAt: Date.now(), lead: { email: `b${i}@example.com` } }, { logTaskQueue: queue }],
        }),
      );
      await Promise.all(handles.map((h) => h.result()));
    });
    const bareDone = Date.now();
    await connection.close();

    // ---- report ---------------------------------------------------------------------------------
    const systemRate = LEADS / ((allDelivered - t0) / 1000);
    const bareRate = LEADS / ((bareDone - bareStart) / 1000);
    console.log(`
through intake → workflow → webhook → delivery log
  offered rate              ${RATE}/s for ${LEADS} leads
  accepted/s                ${(LEADS / ((intakeDone - t0) / 1000)).toFixed(1)}
  intake latency            p50 ${ms(percentile(intakeLatency, 50))}   p99 ${ms(percentile(intakeLatency, 99))}
  intake 2xx → buyer        p50 ${ms(percentile(toBuyer, 50))}   p99 ${ms(percentile(toBuyer, 99))}   (${toBuyer.length} first bytes matched)
  delivered/s               ${systemRate.toFixed(1)}   (all ${LEADS} delivered ${((allDelivered - t0) / 1000).toFixed(1)} s after the first post)
  history events per lead   ${(events.reduce((a, b) => a + b, 0) / events.length).toFixed(1)}   (mean of ${events.length})
bare ceiling: same workflow shape, no-op activities, started from a client
  completed/s               ${bareRate.toFixed(1)}
overhead: system / ceiling  ${(systemRate / bareRate).toFixed(2)}`);
  } finally {
    await buyer.close();
    await system.stop();
    await stopInfra();
  }
}

const limit = setTimeout(() => {
  console.error(`bench: gave up after ${LIMIT_MS / 60_000} min (BENCH_TIMEOUT_MS)`);
  void stopInfra().finally(() => process.exit(2));
}, LIMIT_MS);
limit.unref();

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
