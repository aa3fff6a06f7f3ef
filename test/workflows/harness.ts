/* eslint-disable @typescript-eslint/require-await -- scripted activities answer at once but keep the real (async) signatures */
/**
 * Workflow tests on the real Temporal dev server (shared by the run, test/support/infra.ts) with
 * scripted activities typed against the real factories, so they cannot drift from what the
 * workflow proxies: a test says what each endpoint answers, attempt by attempt, and reads back
 * what the workflow did (its journal as the log service would have received it, its state, its
 * history). One task queue per test; the log activities are served on the same queue.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { DeliveryActivities } from '../../activities/delivery';
import type { LogActivities } from '../../services/log/journal';
import type { AttemptInput, AttemptRecord, AttemptResult, BuyerCheck, BuyerPlanControls, JournalEntry, LeadView, OutcomeClass, PlanBuyer, PlanEndpoint, RoutingPlan } from '../../shared/delivery';
import { attemptId, leadWorkflowId } from '../../shared/delivery';
import { sharedInfra } from '../support/infra';
import { testLogger, workflowBundle } from '../support/system';
import { installWorkerRuntime } from '../../shared/worker-runtime';
import type { deliverLead } from '../../workflows/deliverLead';
import { leadStatusQuery } from '../../workflows/messages';

export type Answer =
  | { outcome: OutcomeClass; code?: string; status?: number; retryAfterMs?: number }
  | { skipped: true; code?: string }
  | { deferred: true; code?: string }
  /** The endpoint's throttle: a send slot `throttled` ms away, held for the attempt (`reserved`, default) or none before the turn ends. */
  | { throttled: number; reserved?: boolean }
  | { interrupted: number; then: Answer }
  | { throws: string };

export interface EndpointScript {
  endpointId: string;
  role?: 'accept' | 'notify';
  backoffMs?: number[];
  /** Answers in order; the last one repeats. */
  answers: Answer[];
}

export interface BuyerScript {
  /** Buyer controls in the plan (caps counted by the harness in memory, per key). */
  controls?: BuyerPlanControls;
  buyerId: string;
  accept?: 'all' | 'any';
  endpoints: EndpointScript[];
  paused?: boolean;
}

export interface Scenario {
  buyers: BuyerScript[];
  freshnessMs?: number;
  /** loadRoutingPlan throws this (non-retryable) on the given calls (1-based). */
  planFailsOn?: number[];
}

export interface Calls {
  attempts: AttemptInput[];
  plans: Array<{ onlyBuyerId?: string }>;
  alerts: Array<{ type: string; title: string }>;
  breakerReports: number;
  journal: Map<string, JournalEntry[]>;
  /** `${buyerId}|${key}` → the leads counted in that cap window. */
  usage: Map<string, Set<string>>;
  /** Send slots given back (`${endpointId}|${attemptId}`). */
  released: string[];
}

const record = (input: AttemptInput, outcome: OutcomeClass, code: string, status?: number): AttemptRecord => {
  const now = Date.now();
  return {
    attemptId: attemptId(input.leadId, input.endpointId, input.attempt), leadId: input.leadId, sourceId: input.sourceId, buyerId: input.buyerId, endpointId: input.endpointId,
    kind: 'webhook', role: 'accept', attempt: input.attempt, execution: 1, startedAt: now, finishedAt: now, latencyMs: 0, outcome, code, reason: code,
    ...(status !== undefined ? { response: { status } } : {}),
  };
};

function toResult(input: AttemptInput, answer: Answer): AttemptResult {
  if ('throws' in answer) throw ApplicationFailure.nonRetryable(answer.throws, 'ScriptedFailure');
  if ('interrupted' in answer) {
    const inner = toResult(input, answer.then);
    const lost: AttemptRecord[] = Array.from({ length: answer.interrupted }, (_, i) => ({ ...record(input, 'unknown', 'interrupted'), attemptId: `${attemptId(input.leadId, input.endpointId, input.attempt)}#${i + 1}`, execution: i + 1 }));
    return { ...inner, interrupted: lost };
  }
  if ('skipped' in answer) {
    const code = answer.code ?? 'breaker_open';
    return { outcome: 'permanent', code, reason: code, skipped: true, record: record(input, 'permanent', code) };
  }
  if ('throttled' in answer) {
    const reserved = answer.reserved ?? true;
    const reason = `${input.endpointId} takes 1/s: ${reserved ? `its next send slot is in ${answer.throttled} ms` : 'no send slot before the freshness deadline'}`;
    return { outcome: 'transient', code: 'throttled', reason, record: { ...record(input, 'transient', 'throttled'), attemptId: '' }, deferred: { code: 'throttled', reason, retryInMs: answer.throttled }, throttled: { waitMs: answer.throttled, rate: '1/s', reserved } };
  }
  if ('deferred' in answer) {
    const code = answer.code ?? 'store_unavailable';
    const r = { ...record(input, 'transient', code), attemptId: '' };
    return { outcome: 'transient', code, reason: code, record: r, deferred: { code, reason: code, retryInMs: 200 } };
  }
  const code = answer.code ?? (answer.outcome === 'success' ? 'ok' : answer.outcome === 'unknown' ? 'timeout' : answer.outcome === 'transient' ? 'http_503' : 'http_400');
  return { outcome: answer.outcome, code, reason: code, ...(answer.status !== undefined ? { status: answer.status } : {}), ...(answer.retryAfterMs !== undefined ? { retryAfterMs: answer.retryAfterMs } : {}), record: record(input, answer.outcome, code, answer.status) };
}

export interface Harness {
  client: Client;
  taskQueue: string;
  calls: Calls;
  start(leadId?: string, options?: { deadLetterRetentionMs?: number }): Promise<WorkflowHandle<typeof deliverLead>>;
  state(handle: WorkflowHandle<typeof deliverLead>): Promise<LeadView>;
  waitFor(handle: WorkflowHandle<typeof deliverLead>, until: (v: LeadView) => boolean, timeoutMs?: number): Promise<LeadView>;
  run<T>(fn: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** A worker with scripted activities for one scenario; `run` keeps it polling while the test acts. */
export async function harness(scenario: Scenario): Promise<Harness> {
  installWorkerRuntime(testLogger('workflow-tests'));
  const infra = await sharedInfra();
  const connection = await Connection.connect({ address: infra.temporalAddress });
  const client = new Client({ connection });
  const native = await NativeConnection.connect({ address: infra.temporalAddress });
  const taskQueue = `wf-${randomBytes(4).toString('hex')}`;
  const calls: Calls = { attempts: [], plans: [], alerts: [], breakerReports: 0, journal: new Map(), usage: new Map(), released: [] };
  const answered = new Map<string, number>();
  const endpointScripts = new Map(scenario.buyers.flatMap((b) => b.endpoints.map((e) => [e.endpointId, e] as const)));
  let planCalls = 0;

  const plan = (onlyBuyerId?: string): RoutingPlan => ({
    sourceId: 'src_test',
    freshnessMs: scenario.freshnessMs ?? 60_000,
    unroutable: [],
    buyers: scenario.buyers
      .filter((b) => !onlyBuyerId || b.buyerId === onlyBuyerId)
      .map((b): PlanBuyer => ({
        buyerId: b.buyerId,
        name: b.buyerId,
        accept: b.accept ?? 'all',
        ...(b.controls ? { controls: b.controls } : {}),
        endpoints: b.endpoints.map((e): PlanEndpoint => ({ endpointId: e.endpointId, buyerId: b.buyerId, kind: 'webhook', role: e.role ?? 'accept', version: 1, backoffMs: e.backoffMs ?? [], timeoutMs: 1_000 })),
      })),
  });

  const delivery: DeliveryActivities = {
    async loadRoutingPlan({ onlyBuyerId }) {
      planCalls++;
      calls.plans.push(onlyBuyerId ? { onlyBuyerId } : {});
      if (scenario.planFailsOn?.includes(planCalls)) throw ApplicationFailure.nonRetryable('the routing plan could not be built (scripted)', 'ScriptedPlanFailure');
      return plan(onlyBuyerId);
    },
    async checkBuyer({ buyerId, endpointIds }): Promise<BuyerCheck> {
      const buyer = scenario.buyers.find((b) => b.buyerId === buyerId);
      return { ...(buyer?.paused ? { paused: { reason: 'scripted', by: 'operator' as const } } : {}), breakers: Object.fromEntries(endpointIds.map((id) => [id, 'closed' as const])) };
    },
    async deliverAttempt(input) {
      calls.attempts.push(input);
      const script = endpointScripts.get(input.endpointId);
      if (!script) throw new Error(`no script for ${input.endpointId}`);
      const n = answered.get(input.endpointId) ?? 0;
      answered.set(input.endpointId, n + 1);
      const answer = script.answers[Math.min(n, script.answers.length - 1)]!;
      return toResult(input, answer);
    },
    async reportToBreaker() {
      calls.breakerReports++;
    },
    async raiseLeadAlert(input) {
      calls.alerts.push({ type: input.type, title: input.title });
    },
    async reserveCapacity({ leadId, buyerId, keys }) {
      const counted: Array<Set<string>> = [];
      for (const { window, key, limit } of keys) {
        const holders = calls.usage.get(`${buyerId}|${key}`) ?? new Set<string>();
        calls.usage.set(`${buyerId}|${key}`, holders);
        if (holders.has(leadId)) continue;
        if (holders.size >= limit) {
          for (const set of counted) set.delete(leadId);
          return { reserved: false, window, key, limit, used: holders.size };
        }
        holders.add(leadId);
        counted.push(holders);
      }
      return { reserved: true };
    },
    async releaseCapacity({ leadId, buyerId, keys }) {
      for (const { key } of keys) calls.usage.get(`${buyerId}|${key}`)?.delete(leadId);
    },
    async releaseSendSlot({ endpointId, attemptId: id }) {
      calls.released.push(`${endpointId}|${id}`);
    },
  };
  const log: Pick<LogActivities, 'appendJournal'> = {
    async appendJournal(input) {
      const entries = calls.journal.get(input.leadId) ?? [];
      // Idempotent like the real one: entries land at their seq.
      input.entries.forEach((entry, i) => {
        entries[input.firstSeq - 1 + i] = entry;
      });
      calls.journal.set(input.leadId, entries);
      return { head: `h${input.firstSeq + input.entries.length - 1}`, written: input.entries.length };
    },
  };

  const worker = await Worker.create({ connection: native, taskQueue, workflowBundle: await workflowBundle(), activities: { ...delivery, ...log } });
  let running: Promise<void> | undefined;
  const started: Array<WorkflowHandle<typeof deliverLead>> = [];
  const h: Harness = {
    client,
    taskQueue,
    calls,
    async start(leadId = `ld_${randomBytes(6).toString('hex')}`, options = {}) {
      const handle = await client.workflow.start<typeof deliverLead>('deliverLead', {
        workflowId: leadWorkflowId(leadId),
        taskQueue,
        args: [{ leadId, sourceId: 'src_test', receivedAt: Date.now(), lead: { email: 'test@example.com' } }, { logTaskQueue: taskQueue, ...options }],
      });
      started.push(handle);
      return handle;
    },
    state: (handle) => handle.query(leadStatusQuery),
    async waitFor(handle, until, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      let last: LeadView | undefined;
      while (Date.now() < deadline) {
        last = await handle.query(leadStatusQuery).catch(() => last);
        if (last && until(last)) return last;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`not reached in ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
    },
    run(fn) {
      running ??= worker.run();
      return fn();
    },
    async close() {
      running ??= worker.run();
      worker.shutdown();
      await running;
      // Every history this test made must replay against the code that made it (no hidden nondeterminism).
      const histories = await Promise.all(started.map(async (handle) => ({ workflowId: handle.workflowId, history: await handle.fetchHistory() })));
      for await (const result of Worker.runReplayHistories({ workflowBundle: await workflowBundle() }, histories)) {
        if (result.error) {
          const dump = process.env.REPLAY_DUMP_DIR;
          const failed = histories.find((x) => x.workflowId === result.workflowId);
          if (dump && failed) fs.writeFileSync(path.join(dump, `${result.workflowId}.json`), JSON.stringify(failed.history));
          throw new Error(`${result.workflowId} does not replay: ${String(result.error)}`);
        }
      }
      await native.close();
      await connection.close();
    },
  };
  return h;
}

/** Event types of a history, for "no workflow task failed" and command checks. */
export async function historyEventTypes(handle: WorkflowHandle): Promise<string[]> {
  const history = await handle.fetchHistory();
  return (history.events ?? []).map((e) => Object.keys(e).find((k) => k.endsWith('EventAttributes')) ?? 'unknown');
}
