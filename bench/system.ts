/**
 * Benchmark of the whole system as `npm start` runs it (not a test: it prints figures and asserts
 * nothing). It starts the supervised processes (Temporal dev server, FerretDB on PostgreSQL, intake,
 * log service, delivery worker) on free loopback ports in a throwaway folder, sets up one source and
 * one buyer with N webhook endpoints at a local fake that answers 200 at once, posts leads open-loop
 * at a fixed rate, and reports latency, throughput and where the CPU went (per process, from /proc).
 * Then, on the same Temporal server in the same run, the textbook reference shape (one workflow,
 * N parallel no-op activities) at the same rate, and the ratio.
 *
 *   npm run bench -- --rate 10 --seconds 30 --endpoints 3
 *   npm run bench -- --rate 30 --leads 600 --mode both
 *   npm run bench -- --mode system --profile /tmp/prof   # then: npx tsx bench/profile-top.ts /tmp/prof
 *
 * It stops by itself (BENCH_TIMEOUT_MS, default 15 min) and targets loopback only.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker, bundleWorkflowCode } from '@temporalio/worker';
import { startLocalSystem, type LocalSystem } from '../deploy/local/system';
import { dropPgDatabase } from '../deploy/local/ferretdb';
import { startFakeBuyer, type FakeBuyer } from '../test/fakes/buyer';
import { phoneFor } from '../test/fakes/person';
import { admin, type Endpoints } from '../test/chaos/driver';
import { dataConverter } from '../shared/codec';
import { leadWorkflowId } from '../shared/delivery';
import { createReferenceActivities } from './reference/activities';
import { cpuMsOf, postgresPids, rssMbOf, type CpuSample } from './proc-stats';
import { runMain } from './run-main';

const { values: args } = parseArgs({
  options: {
    rate: { type: 'string', default: '10' },
    leads: { type: 'string' },
    seconds: { type: 'string', default: '30' },
    endpoints: { type: 'string', default: '3' },
    mode: { type: 'string', default: 'both' },
    /** Which Temporal: dev (the CLI's dev server on SQLite) or server (the Temporal server on PostgreSQL). */
    temporal: { type: 'string', default: 'dev' },
    /** Write a V8 CPU profile of every Node service (intake, log, workers) into this folder. */
    profile: { type: 'string' },
  },
});
const RATE = Number(args.rate);
const LEADS = args.leads ? Number(args.leads) : Math.round(RATE * Number(args.seconds));
const ENDPOINTS = Number(args.endpoints);
const MODE = args.mode as 'system' | 'reference' | 'both';
const TEMPORAL_MODE = args.temporal as 'dev' | 'server';
const LIMIT_MS = Number(process.env.BENCH_TIMEOUT_MS ?? 15 * 60_000);
if (!(RATE > 0 && LEADS > 0 && ENDPOINTS >= 1 && ENDPOINTS <= 10) || !['system', 'reference', 'both'].includes(MODE) || !['dev', 'server'].includes(TEMPORAL_MODE)) {
  console.error('usage: bench/system.ts [--rate N] [--leads N | --seconds N] [--endpoints 1..10] [--mode system|reference|both] [--temporal dev|server]');
  process.exit(2);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}
const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : '–');

/** Calls fn(i) `count` times at a fixed rate (open loop); resolves when every call has settled. */
async function atRate<T>(count: number, perSecond: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const started = Date.now();
  const calls: Array<Promise<T>> = [];
  for (let i = 0; i < count; i++) {
    const wait = started + (i * 1000) / perSecond - Date.now();
    if (wait > 0) await sleep(wait);
    calls.push(fn(i));
  }
  return Promise.all(calls);
}

/** CPU of every process that works for a lead: the supervised ones, PostgreSQL's, and this one. */
function sampleCpu(system: LocalSystem): CpuSample {
  const sample: CpuSample = {};
  for (const proc of system.processes) {
    const pid = proc.pid();
    if (pid) sample[proc.name] = cpuMsOf([pid]);
  }
  sample.postgresql = cpuMsOf(postgresPids());
  const self = process.cpuUsage();
  sample['bench (load, fakes; reference worker)'] = (self.user + self.system) / 1000;
  return sample;
}

function cpuDelta(before: CpuSample, after: CpuSample): CpuSample {
  const out: CpuSample = {};
  for (const [name, ms] of Object.entries(after)) out[name] = ms - (before[name] ?? 0);
  return out;
}

interface PhaseFigures {
  label: string;
  leads: number;
  acceptedPerS: number;
  acceptMs?: number[];
  toBuyerMs: number[];
  deliveriesPerS: number;
  leadsPerS: number;
  wallS: number;
  cpu: CpuSample;
}

async function countHistory(client: Client, workflowIds: string[]): Promise<{ events: number; workflowTasks: number; activityTasks: number; localActivities: number }> {
  let events = 0, workflowTasks = 0, activityTasks = 0, localActivities = 0;
  for (const id of workflowIds) {
    const history = await client.workflow.getHandle(id).fetchHistory();
    for (const event of history.events ?? []) {
      events++;
      if (event.workflowTaskCompletedEventAttributes) workflowTasks++;
      if (event.activityTaskScheduledEventAttributes) activityTasks++;
      if (event.markerRecordedEventAttributes?.markerName === 'core_local_activity') localActivities++;
    }
  }
  const n = workflowIds.length || 1;
  return { events: events / n, workflowTasks: workflowTasks / n, activityTasks: activityTasks / n, localActivities: localActivities / n };
}

async function runSystem(system: LocalSystem, client: Client, buyers: FakeBuyer[]): Promise<PhaseFigures & { history: Awaited<ReturnType<typeof countHistory>> }> {
  const api: Endpoints = { intakeUrl: system.intakeUrl, logUrl: system.logUrl, adminToken: system.adminToken };
  const buyerId = String((await admin(api, 'POST', '/buyers', { name: 'bench buyer', accept: 'all' })).id);
  for (const buyer of buyers) await admin(api, 'POST', `/buyers/${buyerId}/endpoints`, { kind: 'webhook', url: buyer.url, backoff: ['1s', '5s', '30s'] });
  const created = await admin(api, 'POST', '/sources', { name: 'bench source', freshness: '10m', waterfall: [buyerId] });
  const apiKey = String(created.apiKey);
  // A few leads first so caches, connections and JIT are warm; not counted.
  for (let i = 0; i < 5; i++) await postOne(system, apiKey, `warm${i}`);
  await sleep(3_000);
  for (const buyer of buyers) buyer.requests.length = 0;

  const acceptedAt = new Map<string, number>();
  const acceptMs: number[] = [];
  const before = sampleCpu(system);
  const t0 = Date.now();
  const leadIds = await atRate(LEADS, RATE, async (i) => {
    const start = performance.now();
    const leadId = await postOne(system, apiKey, `b${i}`);
    acceptMs.push(performance.now() - start);
    acceptedAt.set(leadId, Date.now());
    return leadId;
  });
  const acceptedDone = Date.now();
  // Delivered = every endpoint received it (the fake answers 200 at once), then the workflow closed.
  const deadline = Date.now() + LIMIT_MS;
  while (buyers.some((b) => uniqueLeads(b, acceptedAt) < LEADS) && Date.now() < deadline) await sleep(200);
  const lastRequest = Math.max(...buyers.flatMap((b) => b.requests.map((r) => r.receivedAt)));
  for (const id of leadIds) await client.workflow.getHandle(leadWorkflowId(id)).result().catch(() => undefined);
  const after = sampleCpu(system);
  const toBuyerMs: number[] = [];
  for (const buyer of buyers) {
    for (const request of buyer.requests) {
      const leadId = leadIdOf(request);
      const at = leadId ? acceptedAt.get(leadId) : undefined;
      if (at) toBuyerMs.push(request.receivedAt - at);
    }
  }
  const wallS = (lastRequest - t0) / 1000;
  const history = await countHistory(client, leadIds.slice(0, 20).map(leadWorkflowId));
  return {
    label: 'system', leads: LEADS, acceptMs, toBuyerMs, wallS,
    acceptedPerS: LEADS / ((acceptedDone - t0) / 1000),
    deliveriesPerS: toBuyerMs.length / wallS,
    leadsPerS: LEADS / wallS,
    cpu: cpuDelta(before, after),
    history,
  };
}

/** The lead a webhook request carried (its Standard Webhooks id is msg_<leadId>_…). */
function leadIdOf(request: FakeBuyer['requests'][number]): string | undefined {
  return /^msg_(ld_[a-z0-9]+)_/.exec(String(request.headers['webhook-id']))?.[1];
}

function uniqueLeads(buyer: FakeBuyer, accepted: Map<string, number>): number {
  const seen = new Set<string>();
  for (const r of buyer.requests) {
    const id = leadIdOf(r);
    if (id && accepted.has(id)) seen.add(id);
  }
  return seen.size;
}

async function postOne(system: LocalSystem, apiKey: string, clientId: string): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(`${system.intakeUrl}/v1/leads`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', 'idempotency-key': `${clientId}-${randomBytes(4).toString('hex')}` },
      body: JSON.stringify({ email: `${clientId}@example.com`, first_name: 'Bench', phone: phoneFor(clientId), custom: { clientId } }),
    });
    const body = (await res.json()) as { leadId?: string };
    if (res.status === 202 && body.leadId) return body.leadId;
    if (attempt >= 3) throw new Error(`intake answered ${res.status}: ${JSON.stringify(body)}`);
    await sleep(500);
  }
}

async function runReference(system: LocalSystem): Promise<PhaseFigures> {
  const queue = `reference-${randomBytes(3).toString('hex')}`;
  const native = await NativeConnection.connect({ address: system.temporalAddress });
  const connection = await Connection.connect({ address: system.temporalAddress });
  const client = new Client({ connection, dataConverter: dataConverter(system.secrets.payloadKeys) });
  const worker = await Worker.create({
    connection: native,
    taskQueue: queue,
    workflowBundle: await bundleWorkflowCode({ workflowsPath: require.resolve('./reference/workflow'), logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error: console.error } }),
    dataConverter: dataConverter(system.secrets.payloadKeys),
    activities: createReferenceActivities(),
  });
  const before = sampleCpu(system);
  const t0 = Date.now();
  let finished = 0;
  await worker.runUntil(async () => {
    const handles = await atRate(LEADS, RATE, (i) => client.workflow.start('referenceLead', { taskQueue: queue, workflowId: `${queue}-${i}`, args: [{ leadId: `ref${i}`, endpoints: ENDPOINTS }] }));
    await Promise.all(handles.map(async (h) => { await h.result(); finished = Date.now(); }));
  });
  const after = sampleCpu(system);
  await connection.close();
  await native.close();
  const wallS = (finished - t0) / 1000;
  return { label: 'reference', leads: LEADS, toBuyerMs: [], wallS, acceptedPerS: NaN, deliveriesPerS: (LEADS * ENDPOINTS) / wallS, leadsPerS: LEADS / wallS, cpu: cpuDelta(before, after) };
}

function printPhase(p: PhaseFigures, extra: string[] = []): void {
  const total = Object.values(p.cpu).reduce((a, b) => a + b, 0);
  const notBench = Object.entries(p.cpu).filter(([n]) => !n.startsWith('bench')).reduce((a, [, v]) => a + v, 0);
  console.log(`\n${p.label}: ${p.leads} leads offered at ${RATE}/s × ${ENDPOINTS} endpoints`);
  if (p.acceptMs) console.log(`  accepted/s                 ${fmt(p.acceptedPerS, 1)}`);
  if (p.acceptMs) console.log(`  accept p50 / p99 / max     ${fmt(percentile(p.acceptMs, 50))} / ${fmt(percentile(p.acceptMs, 99))} / ${fmt(Math.max(...p.acceptMs))} ms`);
  if (p.toBuyerMs.length) console.log(`  accept → buyer p50/p99/max ${fmt(percentile(p.toBuyerMs, 50))} / ${fmt(percentile(p.toBuyerMs, 99))} / ${fmt(Math.max(...p.toBuyerMs))} ms (${p.toBuyerMs.length} requests)`);
  console.log(`  leads/s, deliveries/s      ${fmt(p.leadsPerS, 1)}, ${fmt(p.deliveriesPerS, 1)}   (${fmt(p.wallS, 1)} s from the first post to the last delivery)`);
  console.log(`  CPU-ms per lead            ${fmt(notBench / p.leads, 1)} all processes but the bench (${fmt(total / p.leads, 1)} with it)`);
  for (const [name, ms] of Object.entries(p.cpu).sort((a, b) => b[1] - a[1])) console.log(`    ${name.padEnd(40)} ${fmt(ms / p.leads, 1)}`);
  for (const line of extra) console.log(line);
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lead-bench-'));
  const pgDatabase = `ld_bench_${randomBytes(4).toString('hex')}`;
  console.log(`bench: ${LEADS} leads at ${RATE}/s, ${ENDPOINTS} webhook endpoints, mode ${MODE}, Temporal ${TEMPORAL_MODE === 'server' ? 'server on PostgreSQL' : 'dev server'}, ${os.cpus().length} cores; data ${dataDir}`);
  const buyers = await Promise.all(Array.from({ length: ENDPOINTS }, () => startFakeBuyer({ steps: [{ status: 200, body: { ok: true } }] })));
  let system: LocalSystem | undefined;
  try {
    system = await startLocalSystem({ dataDir, ports: 'free', pgDatabase, temporalMode: TEMPORAL_MODE, temporalServer: { database: `${pgDatabase}_temporal` }, quiet: true, seedDemoSource: false, env: { OUTBOUND_ALLOW: '127.0.0.0/8', INTAKE_RATE_LIMIT: '1000000' }, ...(args.profile ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${path.resolve(args.profile)}`] } : {}) });
    const connection = await Connection.connect({ address: system.temporalAddress });
    const client = new Client({ connection, dataConverter: dataConverter(system.secrets.payloadKeys) });
    const idle = Object.fromEntries(system.processes.map((p) => [p.name, rssMbOf(p.pid())]));
    let systemFigures: Awaited<ReturnType<typeof runSystem>> | undefined;
    if (MODE !== 'reference') {
      systemFigures = await runSystem(system, client, buyers);
      const rss = system.processes.map((p) => `${p.name} ${fmt(idle[p.name] ?? NaN)} → ${fmt(rssMbOf(p.pid()))}`).join(', ');
      printPhase(systemFigures, [
        `  per lead (mean of 20)      ${fmt(systemFigures.history.events, 1)} history events, ${fmt(systemFigures.history.workflowTasks, 1)} workflow tasks, ${fmt(systemFigures.history.activityTasks, 1)} activity tasks, ${fmt(systemFigures.history.localActivities, 1)} local activities`,
        `  RSS MB idle → after        ${rss}`,
      ]);
    }
    await connection.close();
    if (MODE !== 'system') {
      const reference = await runReference(system);
      printPhase(reference);
      if (systemFigures) console.log(`\nsystem / reference throughput (leads/s): ${fmt(systemFigures.leadsPerS / reference.leadsPerS, 2)}  (offered rate ${RATE}/s: at or below saturation both only follow the offered rate)`);
    }
  } finally {
    await system?.stop();
    for (const buyer of buyers) await buyer.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
    for (const db of [pgDatabase, `${pgDatabase}_temporal`, `${pgDatabase}_temporal_visibility`]) {
      await dropPgDatabase(process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres', db).catch(() => undefined);
    }
  }
}

runMain('bench', LIMIT_MS, main);
