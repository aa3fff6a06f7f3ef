/**
 * The stuck-lead sweep (run by the Temporal schedule `stuck-lead-sweep`): lists the leads past
 * their horizon and alerts once per lead and horizon (activities/stuck-leads.ts).
 */
import { proxyActivities } from '@temporalio/workflow';
import type { StuckLeadActivities } from '../activities/stuck-leads';

export async function stuckLeadSweep(input: { limit?: number } = {}): Promise<{ stuck: number; alerted: number }> {
  const { sweepStuckLeads } = proxyActivities<StuckLeadActivities>({
    startToCloseTimeout: '2m',
    retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 5 },
  });
  return sweepStuckLeads(input);
}
