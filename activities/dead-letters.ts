/**
 * Dead letters: listing them (the admin API and bulk redelivery share the query), redelivering
 * one (an Update on its workflow), and the digest alert.
 */
import { WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import type { QueryFilter } from 'mongoose';
import { leadWorkflowId } from '../shared/delivery';
import type { LeadDoc, Models } from '../shared/models';
import { redeliverUpdate } from '../workflows/messages';
import type { SendAlert } from './alerts';

export interface DeadLetterFilter {
  sourceId?: string;
  /** A buyer that was tried (or skipped) for the lead. */
  buyerId?: string;
  reasonCode?: string;
  /** Dead-lettered before / after these instants (ms). */
  before?: number;
  after?: number;
}

export interface DeadLetterPage {
  items: Array<{ leadId: string; sourceId: string; reason: string; reasonCode?: string; buyersTried: string[]; deadLetteredAt: string }>;
  next?: string;
}

export function deadLetterQuery(filter: DeadLetterFilter): QueryFilter<LeadDoc> {
  const query: QueryFilter<LeadDoc> = { status: 'dead_lettered' };
  if (filter.sourceId) query.sourceId = filter.sourceId;
  if (filter.buyerId) query.buyersTried = filter.buyerId;
  if (filter.reasonCode) query.reasonCode = filter.reasonCode;
  if (filter.before !== undefined || filter.after !== undefined) {
    query.deadLetteredAt = { ...(filter.before !== undefined ? { $lt: new Date(filter.before) } : {}), ...(filter.after !== undefined ? { $gte: new Date(filter.after) } : {}) };
  }
  return query;
}

/** Newest first; the cursor is the last item's (deadLetteredAt, leadId), stable under inserts. */
export async function listDeadLetters(models: Models, filter: DeadLetterFilter, options: { cursor?: string; limit: number }): Promise<DeadLetterPage> {
  const query = deadLetterQuery(filter);
  if (options.cursor) {
    const [at, id] = Buffer.from(options.cursor, 'base64url').toString('utf8').split('|');
    const when = new Date(Number(at));
    query.$or = [{ deadLetteredAt: { $lt: when } }, { deadLetteredAt: when, _id: { $lt: id } }];
  }
  const docs = await models.Lead.find(query).sort({ deadLetteredAt: -1, _id: -1 }).limit(options.limit + 1).lean<LeadDoc[]>();
  const page = docs.slice(0, options.limit);
  const last = page[page.length - 1];
  return {
    items: page.map((d) => ({
      leadId: d._id,
      sourceId: d.sourceId,
      reason: d.reason ?? '',
      ...(d.reasonCode ? { reasonCode: d.reasonCode } : {}),
      buyersTried: d.buyersTried ?? [],
      deadLetteredAt: (d.deadLetteredAt ?? d.updatedAt).toISOString(),
    })),
    ...(docs.length > options.limit && last ? { next: Buffer.from(`${(last.deadLetteredAt ?? last.updatedAt).getTime()}|${last._id}`).toString('base64url') } : {}),
  };
}

export function createDeadLetterActivities(deps: { models: Models; client?: Client; sendAlert: SendAlert }) {
  /** One page of matching dead letters (bulk redelivery walks them page by page). */
  async function findDeadLetters(input: { filter: DeadLetterFilter; cursor?: string; limit: number }): Promise<DeadLetterPage> {
    return listDeadLetters(deps.models, input.filter, { ...(input.cursor ? { cursor: input.cursor } : {}), limit: input.limit });
  }

  /** Asks one lead's workflow to redeliver; a lead no longer dead-lettered is reported, not an error. */
  async function redeliverLead(input: { leadId: string; buyerId?: string; by: string }): Promise<{ leadId: string; ok: boolean; error?: string }> {
    if (!deps.client) throw new Error('redeliverLead needs a Temporal client');
    try {
      await deps.client.workflow.getHandle(leadWorkflowId(input.leadId)).executeUpdate(redeliverUpdate, { args: [{ by: input.by, ...(input.buyerId ? { buyerId: input.buyerId } : {}) }] });
      return { leadId: input.leadId, ok: true };
    } catch (error) {
      if (error instanceof WorkflowUpdateFailedError) return { leadId: input.leadId, ok: false, error: error.cause?.message ?? error.message };
      throw error;
    }
  }

  /** The digest: dead letters since the previous digest, by reason and source, in one alert. */
  async function sendDeadLetterDigest(input: { periodMs: number; now: number }): Promise<{ count: number }> {
    const previous = await deps.models.Alert.findOne({ type: 'dead_letter_digest' }).sort({ at: -1 }).lean();
    const since = previous?.at.getTime() ?? input.now - input.periodMs;
    const fresh = await deps.models.Lead.find({ status: 'dead_lettered', deadLetteredAt: { $gte: new Date(since), $lt: new Date(input.now) } }, { sourceId: 1, reasonCode: 1 }).lean<LeadDoc[]>();
    const total = await deps.models.Lead.countDocuments({ status: 'dead_lettered' });
    if (fresh.length === 0) return { count: 0 };
    const tally = (key: (d: LeadDoc) => string) => Object.entries(fresh.reduce<Record<string, number>>((acc, d) => ({ ...acc, [key(d)]: (acc[key(d)] ?? 0) + 1 }), {})).map(([k, n]) => `${k}: ${n}`).join(', ');
    await deps.sendAlert({
      type: 'dead_letter_digest',
      dedupeKey: `digest_${input.now}`,
      title: `${fresh.length} new dead-lettered lead(s)`,
      message: `Since ${new Date(since).toISOString()}: by reason ${tally((d) => d.reasonCode ?? 'unknown')}; by source ${tally((d) => d.sourceId)}. ${total} dead letter(s) wait for an operator (GET /v1/admin/dead-letters).`,
    });
    return { count: fresh.length };
  }

  return { findDeadLetters, redeliverLead, sendDeadLetterDigest };
}

export type DeadLetterActivities = ReturnType<typeof createDeadLetterActivities>;
