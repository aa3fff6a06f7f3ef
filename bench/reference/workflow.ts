/**
 * The textbook reference shape the benchmark compares the system with: one workflow per lead,
 * three parallel no-op activities, nothing else (no plan, no journal, no search attributes).
 */
import { proxyActivities } from '@temporalio/workflow';
import type { ReferenceActivities } from './activities';

const { noop } = proxyActivities<ReferenceActivities>({ startToCloseTimeout: '10s' });

export async function referenceLead(input: { leadId: string; endpoints: number }): Promise<number> {
  const done = await Promise.all(Array.from({ length: input.endpoints }, (_, i) => noop(input.leadId, i)));
  return done.length;
}
