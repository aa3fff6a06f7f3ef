import { ScheduleAlreadyRunning, type Client } from '@temporalio/client';

export const DIGEST_SCHEDULE_ID = 'dead-letter-digest';

/** The dead-letter digest runs on a Temporal schedule; created once, kept across restarts. */
export async function ensureSchedules(client: Client, options: { taskQueue: string; digestEveryMs: number }): Promise<void> {
  try {
    await client.schedule.create({
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
  } catch (error) {
    if (!(error instanceof ScheduleAlreadyRunning)) throw error;
  }
}
