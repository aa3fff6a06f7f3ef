/**
 * Operator workflows: bulk redelivery of dead letters (progress visible by query) and the
 * periodic dead-letter digest (run by a Temporal schedule).
 *
 * Versioning: a workflow type's code is replayed by running executions, so a changed bulk is a
 * new type (`bulkRedeliverDeadLetters`); the older `bulkRedeliver` stays as it was so bulks
 * started by older code finish.
 */
import { ActivityFailure, continueAsNew, defineQuery, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { BulkPageResult, DeadLetterActivities, DeadLetterFilter } from '../activities/dead-letters';
import type { MaintenanceActivities } from '../services/log/maintenance';

export interface BulkProgress {
  status: 'running' | 'done';
  matched: number;
  redelivered: number;
  failed: Array<{ leadId: string; error: string }>;
}
export const bulkProgressQuery = defineQuery<BulkProgress>('progress');

const acts = proxyActivities<DeadLetterActivities>({
  startToCloseTimeout: '1m',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
});

/**
 * Kept so bulks started by older code finish: do not change it (a running bulk replays against
 * this code). Delete once none runs (`WorkflowType = "bulkRedeliver" AND ExecutionStatus = "Running"`
 * lists nothing). New bulks run `bulkRedeliverDeadLetters`.
 */
export async function bulkRedeliver(input: { filter: DeadLetterFilter; buyerId?: string; by: string }): Promise<BulkProgress> {
  const progress: BulkProgress = { status: 'running', matched: 0, redelivered: 0, failed: [] };
  setHandler(bulkProgressQuery, () => progress);
  // Only leads dead-lettered before the bulk started: a lead that fails again is not retried in a loop.
  const filter: DeadLetterFilter = { ...input.filter, before: Math.min(input.filter.before ?? Infinity, workflowInfo().startTime.getTime() + 1) };
  const seen = new Set<string>();
  for (;;) {
    // Redelivered leads leave the dead-letter list, so the first page is always the next batch.
    const page = await acts.findDeadLetters({ filter, limit: 50 });
    const batch = page.items.filter((item) => !seen.has(item.leadId));
    if (batch.length === 0) break;
    progress.matched += batch.length;
    const results = await Promise.all(batch.map((item) => {
      seen.add(item.leadId);
      return acts.redeliverLead({ leadId: item.leadId, by: input.by, ...(input.buyerId ? { buyerId: input.buyerId } : {}) });
    }));
    for (const result of results) {
      if (result.ok) progress.redelivered++;
      else progress.failed.push({ leadId: result.leadId, error: result.error ?? 'unknown' });
    }
  }
  progress.status = 'done';
  return progress;
}

// ---- bulkRedeliverDeadLetters ---------------------------------------------------------------

/**
 * Leads per page: one query (FerretDB sorts every matching row for each, so fewer, larger pages
 * are much cheaper) and one activity that sends the page's Updates.
 */
export const BULK_PAGE_SIZE = 500;
/** Pages per run, then continue-as-new (sooner if Temporal suggests it): history and state stay small. */
export const BULK_PAGES_PER_RUN = 4;
/** `redeliver` Updates in flight at once. */
export const BULK_CONCURRENCY = 25;
/** Failures kept with their lead and error (the count is exact; the sample is bounded). */
export const BULK_FAILURES_KEPT = 100;

/** What a run carries to the next (continue-as-new): O(1) however many leads match. */
export interface BulkCarry {
  /** The first run's start (ms): only leads dead-lettered up to then are part of the bulk. */
  startedAt: number;
  /** Keyset cursor of the last lead handled (absent: from the newest). */
  cursor?: string;
  matched: number;
  redelivered: number;
  skippedByReason: Record<string, number>;
  failed: number;
  failures: Array<{ leadId: string; error: string }>;
  pages: number;
  /** Runs so far, this one included. */
  runs: number;
}

export interface BulkRedeliverInput {
  filter: DeadLetterFilter;
  /** Redeliver to this buyer (only when the operator named one; otherwise each lead's own routing). */
  buyerId?: string;
  by: string;
  /** Set by continue-as-new only. */
  carry?: BulkCarry;
}

/** The `progress` query of a bulk (and the body of GET /v1/admin/bulk/:bulkId). */
export interface BulkDeadLetterProgress {
  status: 'running' | 'done';
  startedAt: string;
  finishedAt?: string;
  /** Leads handled so far: matched = redelivered + skipped + failed, exactly. */
  matched: number;
  redelivered: number;
  /** Already resolved (workflow closed or gone, no longer dead-lettered): nothing to redeliver. */
  skipped: number;
  skippedByReason: Record<string, number>;
  failed: number;
  /** The first BULK_FAILURES_KEPT failures. */
  failures: Array<{ leadId: string; error: string }>;
  pages: number;
  runs: number;
}
export const bulkDeadLetterProgressQuery = defineQuery<BulkDeadLetterProgress>('progress');

const bulkActs = proxyActivities<DeadLetterActivities>({
  startToCloseTimeout: '10m',
  heartbeatTimeout: '1m',
  // Reading a page waits out a store outage; a page's Updates are retried a bounded number of
  // times (each lead is already retried inside the activity), then reported as failed.
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 5 },
});
const pageActs = proxyActivities<DeadLetterActivities>({
  startToCloseTimeout: '1m',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
});

/**
 * Redelivers every dead letter matching the filter that was dead-lettered before the bulk
 * started, walking a keyset cursor (deadLetteredAt desc, _id desc) fixed at the start: leads
 * leaving the list (redelivered) or joining it (dead-lettered later) shift nothing. A closed or
 * missing lead workflow, or a lead no longer dead-lettered, is skipped with its reason.
 * Continues as new every BULK_PAGES_PER_RUN pages carrying only the cursor and the counters.
 */
export async function bulkRedeliverDeadLetters(input: BulkRedeliverInput): Promise<BulkDeadLetterProgress> {
  const state: BulkCarry = input.carry
    ? { ...input.carry, runs: input.carry.runs + 1 }
    : { startedAt: workflowInfo().startTime.getTime(), matched: 0, redelivered: 0, skippedByReason: {}, failed: 0, failures: [], pages: 0, runs: 1 };
  let finishedAt: number | undefined = undefined;
  const view = (): BulkDeadLetterProgress => ({
    status: finishedAt === undefined ? 'running' : 'done',
    startedAt: new Date(state.startedAt).toISOString(),
    ...(finishedAt !== undefined ? { finishedAt: new Date(finishedAt).toISOString() } : {}),
    matched: state.matched,
    redelivered: state.redelivered,
    skipped: Object.values(state.skippedByReason).reduce((a, b) => a + b, 0),
    skippedByReason: { ...state.skippedByReason },
    failed: state.failed,
    failures: [...state.failures],
    pages: state.pages,
    runs: state.runs,
  });
  setHandler(bulkDeadLetterProgressQuery, view);

  // Only leads dead-lettered up to the bulk's start: one that fails again is not retried in a loop.
  const filter: DeadLetterFilter = { ...input.filter, before: Math.min(input.filter.before ?? Infinity, state.startedAt + 1) };
  const find = (cursor: string | undefined) => pageActs.findDeadLetterIds({ filter, limit: BULK_PAGE_SIZE, ...(cursor ? { cursor } : {}) });

  let pagesThisRun = 0;
  let pending = find(state.cursor);
  for (;;) {
    const page = await pending;
    if (page.leadIds.length === 0) break;
    pagesThisRun++;
    // The next page is read while this one's Updates are sent, unless this run ends here.
    const more = page.next !== undefined;
    const endRun = pagesThisRun >= BULK_PAGES_PER_RUN || workflowInfo().continueAsNewSuggested;
    if (more && !endRun) pending = find(page.next);

    let result: BulkPageResult;
    try {
      result = await bulkActs.redeliverDeadLetters({
        bulkId: workflowInfo().workflowId,
        leadIds: page.leadIds,
        by: input.by,
        concurrency: BULK_CONCURRENCY,
        keepFailures: BULK_FAILURES_KEPT - state.failures.length,
        ...(input.buyerId ? { buyerId: input.buyerId } : {}),
      });
    } catch (error) {
      if (!(error instanceof ActivityFailure)) throw error;
      const why = `redelivery failed after retries: ${error.cause?.message ?? error.message}`;
      result = { redelivered: 0, skipped: {}, failed: page.leadIds.length, failures: page.leadIds.slice(0, BULK_FAILURES_KEPT - state.failures.length).map((leadId) => ({ leadId, error: why })) };
    }
    // Counters move together, in one activation: matched = redelivered + skipped + failed at every query.
    state.matched += page.leadIds.length;
    state.redelivered += result.redelivered;
    for (const [reason, n] of Object.entries(result.skipped)) state.skippedByReason[reason] = (state.skippedByReason[reason] ?? 0) + n;
    state.failed += result.failed;
    state.failures.push(...result.failures.slice(0, BULK_FAILURES_KEPT - state.failures.length));
    state.pages++;
    if (!more) break;
    state.cursor = page.next;
    if (endRun) await continueAsNew<typeof bulkRedeliverDeadLetters>({ ...input, carry: state });
  }
  finishedAt = Date.now();
  return view();
}

/** One digest run: alerts operators about dead letters since the previous digest, if any. */
export async function deadLetterDigest(input: { periodMs: number }): Promise<{ count: number }> {
  return acts.sendDeadLetterDigest({ periodMs: input.periodMs, now: Date.now() });
}

const maintenance = (logTaskQueue: string) =>
  proxyActivities<MaintenanceActivities>({
    taskQueue: logTaskQueue,
    startToCloseTimeout: '10m',
    retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '5m' },
  });

/** Signs the Merkle root of yesterday's journal entries (UTC); run daily by a schedule. */
export async function journalDailyRoot(input: { logTaskQueue: string; day?: string }): Promise<{ day: string; root: string; count: number }> {
  const day = input.day ?? new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
  const doc = await maintenance(input.logTaskQueue).computeDailyRoot({ day });
  return { day, root: doc.root, count: doc.count };
}

/** Deletes the data keys (and lookup hashes) of leads whose PII retention has passed. */
export async function piiRetention(input: { logTaskQueue: string }): Promise<{ shredded: number }> {
  return maintenance(input.logTaskQueue).shredExpiredLeads({ now: Date.now() });
}
