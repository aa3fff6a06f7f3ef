/**
 * Parked-leads benchmark (not a test: it prints figures and asserts nothing). Starts the system as
 * `npm start` does, with one buyer whose webhook answers 503: every lead makes its first attempt and
 * parks in a durable backoff. It reports the delivery worker's RSS while the leads park, then stops
 * every process, lets the buyer answer 200, starts every process again on the same data (Temporal's
 * database, the store, the keys) and reports how long the parked leads take to drain, and whether
 * every one of them was delivered and no lead workflow is left running.
 *
 *   npm run bench:park                         # 10,000 leads at 30/s
 *   npm run bench:park -- --leads 1000 --rate 40
 *
 * The backoff is chosen so that every lead is parked before the first one is due (posting time +
 * 60 % + 120 s, or --backoff). It stops by itself (BENCH_TIMEOUT_MS, default 60 min) and targets loopback only.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { startLocalSystem, type LocalSystem } from '../deploy/local/system';
import { dropPgDatabase } from '../deploy/local/ferretdb';
import { startFakeBuyer, type FakeBuyer } from '../test/fakes/buyer';
import { admin, type Endpoints } from '../test/chaos/driver';
import { dataConverter } from '../shared/codec';
import { rssMbOf } from './proc-stats';
import { runMain } from './run-main';

const { values: args } = parseArgs({
  options: {
    leads: { type: 'string', default: '10000' },
    rate: { type: 'string', default: '30' },
    /** Seconds of the one backoff step (default: posting time + 60 % + 120 s). */
    backoff: { type: 'string' },
    /** The worker's sticky cache (WORKER_CACHED_WORKFLOWS; default: the system's default). */
    cache: { type: 'string' },
  },
});
const LEADS = Number(args.leads);
const RATE = Number(args.rate);
// First attempts lag behind the posting when the offered rate is near the box's ceiling: room for that.
const BACKOFF_S = args.backoff ? Number(args.backoff) : Math.ceil((1.6 * LEADS) / RATE) + 120;
const LIMIT_MS = Number(process.env.BENCH_TIMEOUT_MS ?? 60 * 60_000);
if (!(LEADS > 0 && RATE > 0 && BACKOFF_S > 0)) {
  console.error('usage: bench/park.ts [--leads N] [--rate N] [--backoff SECONDS]');
  process.exit(2);
}
// The retry must fall after the restart: posting, the last first answer, 15 s of RSS watching and the stop.
if (BACKOFF_S < LEADS / RATE + 45) {
  console.error(`bench:park: --backoff ${BACKOFF_S} s would let retries run (and fail) before the restart; use at least ${Math.ceil(LEADS / RATE + 45)} s`);
  process.exit(2);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : '–');
const leadIdOf = (request: FakeBuyer['requests'][number]) => /^msg_(ld_[a-z0-9]+)_/.exec(String(request.headers['webhook-id']))?.[1];

function workerRss(system: LocalSystem): number {
  const worker = system.processes.find((p) => p.name.startsWith('worker'));
  return worker ? rssMbOf(worker.pid()) : NaN;
}

/** Leads (of `ids`) the buyer has seen in requests it answered with `status`. */
function seen(buyer: FakeBuyer, ids: Set<string>, answered: Map<FakeBuyer['requests'][number], number>, status: number): number {
  const out = new Set<string>();
  for (const r of buyer.requests) {
    const id = leadIdOf(r);
    if (id && ids.has(id) && answered.get(r) === status) out.add(id);
  }
  return out.size;
}

async function post(intakeUrl: string, apiKey: string, i: number): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(`${intakeUrl}/v1/leads`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', 'idempotency-key': `park-${i}-${randomBytes(4).toString('hex')}` },
      body: JSON.stringify({ email: `park${i}@example.com`, first_name: 'Park' }),
    });
    const body = (await res.json()) as { leadId?: string };
    if (res.status === 202 && body.leadId) return body.leadId;
    if (attempt >= 5) throw new Error(`intake answered ${res.status}: ${JSON.stringify(body)}`);
    await sleep(500);
  }
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lead-park-'));
  const pgDatabase = `ld_park_${randomBytes(4).toString('hex')}`;
  console.log(`bench:park: ${LEADS} leads at ${RATE}/s, one webhook endpoint answering 503, backoff ${BACKOFF_S} s; data ${dataDir}`);
  let refusing = true;
  const answered = new Map<FakeBuyer['requests'][number], number>();
  const buyer = await startFakeBuyer({ steps: [{ status: 503 }] });
  // While parking, one request in 200 is answered 200: a breaker counts consecutive failures (at most
  // 1,000 before it opens, and an open breaker would skip leads instead of parking them).
  buyer.script((req, index) => {
    const status = refusing && index % 200 !== 199 ? 503 : 200;
    answered.set(req, status);
    return { status, body: { ok: status === 200 } };
  });
  const options = { dataDir, ports: 'free' as const, pgDatabase, quiet: true, seedDemoSource: false, env: { OUTBOUND_ALLOW: '127.0.0.0/8', INTAKE_RATE_LIMIT: '1000000', ...(args.cache ? { WORKER_CACHED_WORKFLOWS: args.cache } : {}) } };
  let system: LocalSystem | undefined;
  try {
    system = await startLocalSystem(options);
    const api: Endpoints = { intakeUrl: system.intakeUrl, logUrl: system.logUrl, adminToken: system.adminToken };
    const buyerId = String((await admin(api, 'POST', '/buyers', { name: 'parking buyer', accept: 'all' })).id);
    await admin(api, 'POST', `/buyers/${buyerId}/endpoints`, { kind: 'webhook', url: buyer.url, backoff: [`${BACKOFF_S}s`], breaker: { threshold: 1_000, coolDown: '1m' } });
    const apiKey = String((await admin(api, 'POST', '/sources', { name: 'parking source', freshness: '24h', waterfall: [buyerId] })).apiKey);
    await sleep(2_000);
    const idle = workerRss(system);

    const ids = new Set<string>();
    const t0 = Date.now();
    const posts: Array<Promise<void>> = [];
    // The worker's RSS as leads park: every tenth of the run, [leads posted, MB].
    const rssSamples: Array<[number, number]> = [];
    const sampleEvery = Math.max(1, Math.floor(LEADS / 10));
    for (let i = 0; i < LEADS; i++) {
      const wait = t0 + (i * 1000) / RATE - Date.now();
      if (wait > 0) await sleep(wait);
      posts.push(post(system.intakeUrl, apiKey, i).then((id) => void ids.add(id)));
      if ((i + 1) % sampleEvery === 0) rssSamples.push([i + 1, workerRss(system)]);
    }
    await Promise.all(posts);
    const postedS = (Date.now() - t0) / 1000;
    const deadline = Date.now() + LIMIT_MS;
    const firstAnswered = () => seen(buyer, ids, answered, 503) + seen(buyer, ids, answered, 200);
    while (firstAnswered() < LEADS && Date.now() < deadline) await sleep(500);
    const parked = seen(buyer, ids, answered, 503);
    const parkedS = (Date.now() - t0) / 1000;
    const parkedRss = workerRss(system);
    await sleep(15_000);
    const parkedLaterRss = workerRss(system);
    const firstDue = Math.min(...buyer.requests.map((r) => r.receivedAt)) + BACKOFF_S * 1000;

    // Every process stops; the buyer recovers; every process starts again on the same data.
    await system.stop();
    const perLead = new Map<string, number>();
    for (const r of buyer.requests) {
      const id = leadIdOf(r);
      if (id) perLead.set(id, (perLead.get(id) ?? 0) + 1);
    }
    const retriedEarly = [...perLead.values()].filter((n) => n > 1).length;
    if (retriedEarly > 0) console.error(`bench:park: ${retriedEarly} leads retried before the restart (the backoff was too short for this rate): their figures do not count`);
    refusing = false;
    const restartAt = Date.now();
    system = await startLocalSystem(options);
    const readyS = (Date.now() - restartAt) / 1000;
    const restartedIdle = workerRss(system);
    // Until all are delivered, or nothing new was delivered for a minute after the first retry was due.
    let lastCount = -1;
    let lastChange = Date.now();
    for (;;) {
      const count = seen(buyer, ids, answered, 200);
      if (count !== lastCount) [lastCount, lastChange] = [count, Date.now()];
      if (count >= LEADS || Date.now() > deadline || Date.now() - Math.max(lastChange, firstDue) > 60_000) break;
      await sleep(500);
    }
    const doneAt = Math.max(...buyer.requests.filter((r) => answered.get(r) === 200).map((r) => r.receivedAt));
    const drainedRss = workerRss(system);
    const connection = await Connection.connect({ address: system.temporalAddress });
    const client = new Client({ connection, dataConverter: dataConverter(system.secrets.payloadKeys) });
    let running = NaN;
    for (let i = 0; i < 20; i++) {
      running = (await client.workflow.count('WorkflowType = "deliverLead" AND ExecutionStatus = "Running"')).count;
      if (running === 0) break;
      await sleep(1_000);
    }
    await connection.close();

    const delivered = seen(buyer, ids, answered, 200);
    console.log(`
  leads accepted              ${ids.size} of ${LEADS} in ${fmt(postedS, 1)} s; ${parked} parked (first attempt answered 503; the rest delivered at once) after ${fmt(parkedS, 1)} s
  worker RSS MB               idle ${fmt(idle)} → all parked ${fmt(parkedRss)} → 15 s later ${fmt(parkedLaterRss)}
  worker RSS while posting    ${rssSamples.map(([n, mb]) => `${n}: ${fmt(mb)}`).join(', ')} (leads posted: MB)
  restart of every process    ready in ${fmt(readyS, 1)} s; worker RSS ${fmt(restartedIdle)} MB after the restart
  drain                       ${delivered} of ${LEADS} delivered; last at ${fmt((doneAt - restartAt) / 1000, 1)} s after the restart, ${fmt((doneAt - Math.max(firstDue, restartAt)) / 1000, 1)} s after the first retry was due (${fmt(LEADS / Math.max(0.001, (doneAt - Math.max(firstDue, restartAt)) / 1000), 1)} leads/s)
  worker RSS after the drain  ${fmt(drainedRss)} MB
  lead workflows still running ${running}
  retried before the restart  ${retriedEarly}`);
  } finally {
    await system?.stop();
    await buyer.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
    await dropPgDatabase(process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres', pgDatabase).catch(() => undefined);
  }
}

runMain('bench:park', LIMIT_MS, main);
