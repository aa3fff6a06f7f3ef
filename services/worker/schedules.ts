import { ScheduleAlreadyRunning, type Client, type ScheduleOptions } from '@temporalio/client';

export const DIGEST_SCHEDULE_ID = 'dead-letter-digest';
export const DAILY_ROOT_SCHEDULE_ID = 'journal-daily-root';
export const RETENTION_SCHEDULE_ID = 'pii-retention';
export const STUCK_SWEEP_SCHEDULE_ID = 'stuck-lead-sweep';

async function create(client: Client, options: ScheduleOptions): Promise<void> {
  try {
    await client.schedule.create(options);
  } catch (error) {
    if (!(error instanceof ScheduleAlreadyRunning)) throw error;
  }
}

/**
 * The periodic jobs run on Temporal schedules, created once and kept across restarts: the
 * dead-letter digest, the daily signed Merkle root of the journal (00:10 UTC, for the day
 * before), and PII retention (hourly).
 */
export async function ensureSchedules(client: Client, options: { taskQueue: string; logTaskQueue?: string; digestEveryMs: number; stuckSweepEveryMs?: number }): Promise<void> {
  if (options.stuckSweepEveryMs) {
    await create(client, {
      scheduleId: STUCK_SWEEP_SCHEDULE_ID,
      spec: { intervals: [{ every: options.stuckSweepEveryMs }] },
      action: { type: 'startWorkflow', workflowType: 'stuckLeadSweep', args: [{}], taskQueue: options.taskQueue, workflowId: 'stuck-lead-sweep' },
      policies: { overlap: 'SKIP', catchupWindow: '1m' },
    });
  }
  if (options.logTaskQueue) {
    await create(client, {
      scheduleId: DAILY_ROOT_SCHEDULE_ID,
      spec: { calendars: [{ hour: 0, minute: 10 }] },
      action: { type: 'startWorkflow', workflowType: 'journalDailyRoot', args: [{ logTaskQueue: options.logTaskQueue }], taskQueue: options.taskQueue, workflowId: 'journal-daily-root' },
      policies: { overlap: 'SKIP', catchupWindow: '1d' },
    });
    await create(client, {
      scheduleId: RETENTION_SCHEDULE_ID,
      spec: { intervals: [{ every: '1h' }] },
      action: { type: 'startWorkflow', workflowType: 'piiRetention', args: [{ logTaskQueue: options.logTaskQueue }], taskQueue: options.taskQueue, workflowId: 'pii-retention' },
      policies: { overlap: 'SKIP', catchupWindow: '1h' },
    });
  }
  await create(client, {
      scheduleId: DIGEST_SCHEDULE_ID,
      spec: { intervals: [{ every: options.digestEveryMs }] },
      action: {
        type: 'startWorkflow',
        workflowType: 'deadLetterDigest',
        args: [{ periodMs: options.digestEveryMs }],
        taskQueue: options.taskQueue,
        workflowId: 'dead-letter-digest',
      },
      policies: { overlap: 'SKIP', catchupWindow: '1m' },
  });
}
