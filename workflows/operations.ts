/**
 * Operator workflows: bulk redelivery of dead letters (progress visible by query) and the
 * periodic dead-letter digest (run by a Temporal schedule).
 */
import { defineQuery, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { DeadLetterActivities, DeadLetterFilter } from '../activities/dead-letters';
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

/** Redelivers every dead letter matching the filter (optionally to one buyer), page by page. */
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
