/**
 * `npm run chaos`: the promise under faults, as a bounded, loopback-only program with a verdict.
 *
 * Starts the system as `npm start` does (deploy/local/system.ts) in a throwaway data folder, on
 * free ports, with two delivery workers and a PostgreSQL database of its own; sets up three
 * lead sources whose waterfalls cross five misbehaving buyers (test/chaos/buyers.ts); drives
 * leads at a steady rate (sources retry 5xx and timeouts with the same id) while a timeline of
 * faults runs: kill -9 of a delivery worker every few seconds (the supervisor restarts it), the
 * store frozen (SIGSTOP) for tens of seconds, the Temporal server frozen, the log service killed.
 * Then it lets the leads drain and checks every invariant for every lead (test/chaos/check.ts),
 * prints the table and exits non-zero when an invariant broke.
 *
 *   CHAOS_SECONDS   total budget (default 300, 60 to 1800): 60 % drives leads, the rest (at least 75 s) drains
 *   CHAOS_RATE      leads per second over all sources (default 2)
 *   CHAOS_SEED      seed of the buyers' misbehaviour (default: random, printed)
 *   CHAOS_KEEP=1    keep the data folder and the PostgreSQL database for inspection
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { startLocalSystem, type LocalSystem } from '../../deploy/local/system';
import { dropPgDatabase } from '../../deploy/local/ferretdb';
import { deriveLeadId } from '../../shared/ids';
import { seeded, startChaosBuyer, type ChaosBuyer } from './buyers';
import { formatVerdict, judge, type Observations, type PostedLead, type RecordedAttempt, type LeadOutcome } from './check';
import { admin, drain, exists, observeLead, postLead, type Endpoints } from './driver';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (m: string): void => void process.stdout.write(`[chaos ${new Date().toISOString().slice(11, 19)}] ${m}\n`);

/** However short the run, leads posted last get this long to reach a terminal state. */
const MIN_DRAIN_MS = 75_000;

interface Fault {
  at: number;
  name: string;
  run: () => Promise<void>;
}

async function main(): Promise<number> {
  const totalS = Math.min(Math.max(Number(process.env.CHAOS_SECONDS ?? 300), 60), 1_800);
  const rate = Math.min(Math.max(Number(process.env.CHAOS_RATE ?? 2), 0.2), 20);
  const seed = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const driveMs = Math.round(totalS * 0.6 * 1_000);
  const started = Date.now();
  const hardStop = started + totalS * 1_000 + 240_000; // boot and collection on top; never more
  const random = seeded(seed);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lead-chaos-'));
  const pgDatabase = `ld_chaos_${randomBytes(4).toString('hex')}`;
  const pgUrl = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  say(`budget ${totalS}s (driving ${driveMs / 1000}s), ${rate} leads/s, seed ${seed}, data ${dataDir}`);
  const watchdog = setTimeout(() => {
    say('hard time limit reached: stopping');
    process.exit(3);
  }, hardStop - Date.now());
  watchdog.unref();

  // ---- buyers (loopback) ------------------------------------------------------------------------
  const timeoutMs = 10_000;
  const buyers: Record<string, ChaosBuyer> = {
    A: await startChaosBuyer('A flaky', { kind: 'flaky', errorRate: 0.2, refuseRate: 0.1 }, random),
    B: await startChaosBuyer('B slow', { kind: 'slow', slowRate: 0.15, timeoutMs }, random),
    C: await startChaosBuyer('C resetter', { kind: 'resetter', resetRate: 0.15 }, random),
    D: await startChaosBuyer('D down and up', { kind: 'flapping', periodMs: 30_000, downMs: 10_000, errorRate: 0.05 }, random),
    E1: await startChaosBuyer('E endpoint 1', { kind: 'flaky', errorRate: 0.1, refuseRate: 0.05 }, random),
    E2: await startChaosBuyer('E endpoint 2', { kind: 'resetter', resetRate: 0.1 }, random),
  };

  let system: LocalSystem | undefined;
  let exitCode = 1;
  try {
    say('starting the system (two delivery workers)…');
    system = await startLocalSystem({
      dataDir,
      ports: 'free',
      pgDatabase,
      workers: 2,
      quiet: true,
      log: (line) => {
        const first = line.trim().split('\n')[0] ?? '';
        if (/^\[supervisor\]/.test(first)) say(first);
      },
      seedDemoSource: false,
      env: { OUTBOUND_ALLOW: '127.0.0.0/8', INTAKE_RATE_LIMIT: '100000', STUCK_SWEEP_EVERY: '30s' },
    });
    const api: Endpoints = { intakeUrl: system.intakeUrl, logUrl: system.logUrl, adminToken: system.adminToken };
    say(`system up: intake ${system.intakeUrl}, log ${system.logUrl}, Temporal ${system.temporalAddress}`);

    // ---- routing: three sources, five buyers, crossing waterfalls ---------------------------------
    const endpoint = (url: string, extra: Record<string, unknown> = {}) => ({ kind: 'webhook', url, backoff: ['1s', '2s', '4s'], timeoutMs, breaker: { threshold: 5, coolDown: '10s' }, ...extra });
    const buyerIds: Record<string, string> = {};
    for (const [key, accept] of [['A', 'all'], ['B', 'all'], ['C', 'all'], ['D', 'all'], ['E', 'all']] as const) {
      buyerIds[key] = String((await admin(api, 'POST', '/buyers', { name: `buyer ${key}`, accept })).id);
    }
    for (const key of ['A', 'B', 'C', 'D'] as const) {
      buyers[key]!.bind(buyerIds[key]!);
      await admin(api, 'POST', `/buyers/${buyerIds[key]}/endpoints`, endpoint(buyers[key]!.url));
    }
    for (const key of ['E1', 'E2'] as const) {
      buyers[key]!.bind(buyerIds.E!);
      await admin(api, 'POST', `/buyers/${buyerIds.E}/endpoints`, endpoint(buyers[key]!.url));
    }
    const waterfalls = [['A', 'B', 'C'], ['E', 'D', 'A'], ['C', 'D', 'B']];
    const sources: Array<{ id: string; apiKey: string }> = [];
    for (const [i, waterfall] of waterfalls.entries()) {
      const created = await admin(api, 'POST', '/sources', { name: `chaos source ${i + 1}`, freshness: '20s', waterfall: waterfall.map((k) => buyerIds[k]!) });
      sources.push({ id: String(created.id), apiKey: String(created.apiKey) });
    }

    // ---- faults on a timeline ---------------------------------------------------------------------
    const faults: Record<string, number> = { 'delivery worker kill -9': 0, 'store frozen (SIGSTOP)': 0, 'Temporal frozen (SIGSTOP)': 0, 'log service kill -9': 0, 'buyer D down (refusing)': 0 };
    const sys = system;
    const timeline: Fault[] = [];
    for (let t = 8_000, n = 0; t < driveMs; t += 8_000 + Math.floor(random() * 5_000), n++) {
      const name = `worker-${(n % 2) + 1}`;
      timeline.push({ at: t, name: `kill -9 ${name}`, run: async () => {
        if (sys.process(name).kill('SIGKILL')) faults['delivery worker kill -9']!++;
        await Promise.resolve();
      } });
    }
    const freeze = (proc: string, label: string, ms: number) => async () => {
      if (!sys.process(proc).pause()) return;
      faults[label]!++;
      await sleep(ms);
      sys.process(proc).resume();
    };
    const long = driveMs >= 150_000;
    timeline.push({ at: Math.round(driveMs * 0.2), name: 'freeze the store', run: freeze('ferretdb', 'store frozen (SIGSTOP)', long ? 25_000 : 15_000) });
    timeline.push({ at: Math.round(driveMs * 0.5), name: 'freeze Temporal', run: freeze('temporal', 'Temporal frozen (SIGSTOP)', long ? 12_000 : 8_000) });
    timeline.push({ at: Math.round(driveMs * 0.7), name: 'kill -9 the log service', run: async () => {
      if (sys.process('log').kill('SIGKILL')) faults['log service kill -9']!++;
      await Promise.resolve();
    } });
    if (long) timeline.push({ at: Math.round(driveMs * 0.85), name: 'freeze the store again', run: freeze('ferretdb', 'store frozen (SIGSTOP)', 20_000) });
    timeline.sort((a, b) => a.at - b.at);

    // ---- drive ------------------------------------------------------------------------------------
    say(`driving leads for ${driveMs / 1000}s with ${timeline.length} faults on the timeline`);
    const driveStart = Date.now();
    const posts: Array<Promise<PostedLead>> = [];
    const faultRuns: Array<Promise<void>> = [];
    let next = 0;
    let posted = 0;
    while (Date.now() - driveStart < driveMs) {
      const elapsed = Date.now() - driveStart;
      while (next < timeline.length && timeline[next]!.at <= elapsed) {
        const fault = timeline[next++]!;
        say(`fault: ${fault.name}`);
        faultRuns.push(fault.run().catch((error: unknown) => void say(`fault ${fault.name} failed: ${String(error)}`)));
      }
      const due = Math.floor((elapsed / 1000) * rate);
      while (posted < due) {
        const source = sources[posted % sources.length]!;
        posts.push(postLead(api, source, `chaos-${seed}-${posted}`, 90_000));
        posted++;
      }
      await sleep(100);
    }
    faults['buyer D down (refusing)'] = buyers.D!.downs;
    say(`stopped posting (${posted} leads); waiting for the sources' retries and the faults to end`);
    const postedLeads = await Promise.all(posts);
    await Promise.all(faultRuns);

    // ---- drain and observe ------------------------------------------------------------------------
    const accepted = postedLeads.filter((p) => p.leadId).map((p) => p.leadId!);
    // The longest a lead posted last can take: three buyers' freshness, a slow answer, the retries.
    const drainDeadline = Math.min(Math.max(started + totalS * 1_000, Date.now() + MIN_DRAIN_MS), hardStop - 120_000);
    say(`draining ${accepted.length} accepted leads until ${new Date(drainDeadline).toISOString().slice(11, 19)}`);
    let lastSaid = 0;
    const seen = await drain(api, accepted, drainDeadline, (done, total) => {
      if (Date.now() - lastSaid > 10_000) {
        lastSaid = Date.now();
        say(`  ${done}/${total} terminal`);
      }
    });
    faults['buyer D down (refusing)'] = buyers.D!.downs;
    say('collecting attempt records, chains and summaries');
    const outcomes = new Map<string, LeadOutcome>();
    const attempts: RecordedAttempt[] = [];
    for (let i = 0; i < accepted.length; i += 20) {
      const batch = await Promise.all(accepted.slice(i, i + 20).map((leadId) => observeLead(api, leadId, seen.get(leadId))));
      for (const { outcome, attempts: a } of batch) {
        outcomes.set(outcome.leadId, outcome);
        attempts.push(...a);
      }
    }
    const strayLeads: string[] = [];
    for (const p of postedLeads.filter((x) => !x.leadId)) {
      const leadId = deriveLeadId(p.sourceId, `id:${p.clientId}`);
      if (await exists(api, leadId)) strayLeads.push(leadId);
    }
    const connection = await Connection.connect({ address: system.temporalAddress });
    const client = new Client({ connection });
    const badWorkflows: Observations['badWorkflows'] = [];
    for (const status of ['Failed', 'Terminated', 'TimedOut']) {
      const { count } = await client.workflow.count(`ExecutionStatus = '${status}'`);
      if (count > 0) {
        for await (const w of client.workflow.list({ query: `ExecutionStatus = '${status}'` })) badWorkflows.push({ workflowId: w.workflowId, status });
      }
    }
    await connection.close();

    const requests = Object.values(buyers).flatMap((b) => b.requests);
    const verdict = judge({ posted: postedLeads, requests, attempts, outcomes, strayLeads, badWorkflows, drainedBy: drainDeadline });
    const restarts = Object.fromEntries(system.processes.map((p) => [p.name, p.restarts()]));
    const table = formatVerdict(verdict, faults, {
      'budget (s)': totalS,
      'driving (s)': driveMs / 1000,
      'rate (leads/s)': rate,
      seed,
      'delivery workers': 2,
      'process restarts by the supervisor': Object.entries(restarts).map(([k, n]) => `${k} ${n}`).join(', '),
      'wall time (s)': Math.round((Date.now() - started) / 1000),
    });
    process.stdout.write(`\n${table}\n`);
    exitCode = verdict.ok ? 0 : 1;
  } catch (error) {
    say(`the run could not complete: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    exitCode = 2;
  } finally {
    await system?.stop().catch((error: unknown) => say(`stop failed: ${String(error)}`));
    await Promise.all(Object.values(buyers).map((b) => b.close()));
    if (!process.env.CHAOS_KEEP) {
      await dropPgDatabase(pgUrl, pgDatabase).catch(() => undefined);
      fs.rmSync(dataDir, { recursive: true, force: true });
    } else {
      say(`kept ${dataDir} and PostgreSQL database ${pgDatabase}`);
    }
  }
  return exitCode;
}

void main().then((code) => process.exit(code));
