/**
 * Dead letters: listing them (the admin API and bulk redelivery share the query and its keyset
 * cursor), redelivering them (an Update on each lead's workflow; a lead already resolved is
 * skipped with its reason, not retried), and the digest alert.
 */
import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { QueryFilter } from 'mongoose';
import { leadWorkflowId } from '../shared/delivery';
import type { LeadDoc, Models } from '../shared/store';
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

/** The keyset cursor of a dead letter: its (deadLetteredAt, _id), the list's sort key. */
const cursorOf = (doc: Pick<LeadDoc, '_id' | 'deadLetteredAt' | 'updatedAt'>) => Buffer.from(`${(doc.deadLetteredAt ?? doc.updatedAt).getTime()}|${doc._id}`).toString('base64url');

/** The dead letters strictly after `cursor` in (deadLetteredAt desc, _id desc) order. */
function afterCursor(query: QueryFilter<LeadDoc>, cursor: string | undefined): QueryFilter<LeadDoc> {
  if (!cursor) return query;
  const [at, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const when = new Date(Number(at));
  return { ...query, $or: [{ deadLetteredAt: { $lt: when } }, { deadLetteredAt: when, _id: { $lt: id } }] };
}

/** Newest first; the cursor is the last item's (deadLetteredAt, leadId), stable under inserts. */
export async function listDeadLetters(models: Models, filter: DeadLetterFilter, options: { cursor?: string; limit: number }): Promise<DeadLetterPage> {
  const query = afterCursor(deadLetterQuery(filter), options.cursor);
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
    ...(docs.length > options.limit && last ? { next: cursorOf(last) } : {}),
  };
}

/** Bulk redelivery's page: the lead ids only (small activity results, small history). */
export interface DeadLetterIdPage {
  leadIds: string[];
  /** The last lead's cursor, when more dead letters follow it. */
  next?: string;
}

/** Why a lead of a bulk redelivery was skipped: already resolved, nothing to redeliver (not an error). */
export type BulkSkipReason = 'workflow_not_found' | 'workflow_closed' | 'not_dead_lettered';
/** What became of one lead of a bulk redelivery. */
export type BulkLeadOutcome = { outcome: 'redelivered' } | { outcome: 'skipped'; reason: BulkSkipReason } | { outcome: 'failed'; error: string };

/** One page of a bulk redelivery, counted (a small result whatever the page's size). */
export interface BulkPageResult {
  redelivered: number;
  skipped: Partial<Record<BulkSkipReason, number>>;
  failed: number;
  /** The first `keepFailures` failures of the page, with their error. */
  failures: Array<{ leadId: string; error: string }>;
}

/** Unexpected errors (Temporal unreachable, a timeout) are retried this often per lead before `failed`. */
const LEAD_ATTEMPTS = 3;
const UPDATE_TIMEOUT_MS = 20_000;
const MAX_ERROR_CHARS = 500;

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error)).slice(0, MAX_ERROR_CHARS);

/** Runs `fn` over `items`, at most `limit` at a time. */
async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

export function createDeadLetterActivities(deps: { models: Models; client?: Client; sendAlert: SendAlert }) {
  /** One page of matching dead letters (bulk redelivery walks them page by page). */
  async function findDeadLetters(input: { filter: DeadLetterFilter; cursor?: string; limit: number }): Promise<DeadLetterPage> {
    return listDeadLetters(deps.models, input.filter, { ...(input.cursor ? { cursor: input.cursor } : {}), limit: input.limit });
  }

  /** One page of matching dead-letter ids after the cursor (keyset: nothing skipped or repeated as leads leave the list). */
  async function findDeadLetterIds(input: { filter: DeadLetterFilter; cursor?: string; limit: number }): Promise<DeadLetterIdPage> {
    const query = afterCursor(deadLetterQuery(input.filter), input.cursor);
    const docs = await deps.models.Lead.find(query, { _id: 1, deadLetteredAt: 1, updatedAt: 1 }).sort({ deadLetteredAt: -1, _id: -1 }).limit(input.limit + 1).lean<Array<Pick<LeadDoc, '_id' | 'deadLetteredAt' | 'updatedAt'>>>();
    const page = docs.slice(0, input.limit);
    const last = page[page.length - 1];
    return { leadIds: page.map((d) => d._id), ...(docs.length > input.limit && last ? { next: cursorOf(last) } : {}) };
  }

  /**
   * Used by `bulkRedeliver` (older bulks): a lead no longer dead-lettered, or whose workflow is
   * closed or gone, is reported (ok: false), not retried.
   */
  async function redeliverLead(input: { leadId: string; buyerId?: string; by: string }): Promise<{ leadId: string; ok: boolean; error?: string }> {
    if (!deps.client) throw new Error('redeliverLead needs a Temporal client');
    try {
      await deps.client.workflow.getHandle(leadWorkflowId(input.leadId)).executeUpdate(redeliverUpdate, { args: [{ by: input.by, ...(input.buyerId ? { buyerId: input.buyerId } : {}) }] });
      return { leadId: input.leadId, ok: true };
    } catch (error) {
      if (error instanceof WorkflowUpdateFailedError) return { leadId: input.leadId, ok: false, error: error.cause?.message ?? error.message };
      if (error instanceof WorkflowNotFoundError) return { leadId: input.leadId, ok: false, error: `already resolved: ${error.message}` };
      throw error;
    }
  }

  /** Sends one lead's workflow the `redeliver` Update and says what became of it. Never throws. */
  async function redeliverOne(client: Client, input: { bulkId: string; leadId: string; buyerId?: string; by: string }): Promise<BulkLeadOutcome> {
    const handle = client.workflow.getHandle(leadWorkflowId(input.leadId));
    let lastError: unknown;
    for (let attempt = 1; attempt <= LEAD_ATTEMPTS; attempt++) {
      try {
        await client.connection.withDeadline(Date.now() + UPDATE_TIMEOUT_MS, () =>
          handle.executeUpdate(redeliverUpdate, {
            // One id per bulk and lead: a retried send (this loop, or the activity's retry) is the same Update.
            updateId: `${input.bulkId}:${input.leadId}`,
            args: [{ by: input.by, ...(input.buyerId ? { buyerId: input.buyerId } : {}) }],
          }),
        );
        return { outcome: 'redelivered' };
      } catch (error) {
        if (error instanceof WorkflowUpdateFailedError) {
          const cause = error.cause;
          const type = cause instanceof ApplicationFailure ? cause.type : undefined;
          // Delivered, discarded or being redelivered meanwhile (the validator refused): resolved, not an error.
          if (type === 'NotDeadLettered') return { outcome: 'skipped', reason: 'not_dead_lettered' };
          // JournalRefused (its delivery log refused its entries: discard it) and anything else refused.
          return { outcome: 'failed', error: `${type ? `${type}: ` : ''}${messageOf(cause ?? error)}` };
        }
        // No running workflow: it closed (delivered, discarded…) or retention deleted it.
        if (error instanceof WorkflowNotFoundError) return { outcome: 'skipped', reason: await closedOrGone(client, input.leadId, error) };
        lastError = error;
        if (attempt < LEAD_ATTEMPTS) await new Promise((resolve) => setTimeout(resolve, 500 * 2 ** (attempt - 1)));
      }
    }
    return { outcome: 'failed', error: messageOf(lastError) };
  }

  /** Closed (the workflow is still in Temporal's records) or gone (retention deleted it, or it never ran). */
  async function closedOrGone(client: Client, leadId: string, error: WorkflowNotFoundError): Promise<BulkSkipReason> {
    if (/already (completed|finished|closed)/i.test(error.message)) return 'workflow_closed';
    try {
      await client.connection.withDeadline(Date.now() + UPDATE_TIMEOUT_MS, () => client.workflow.getHandle(leadWorkflowId(leadId)).describe());
      return 'workflow_closed';
    } catch {
      // Not found, or Temporal did not say: either way no workflow runs for the lead.
      return 'workflow_not_found';
    }
  }

  /**
   * Bulk redelivery's step: sends each lead of a page the `redeliver` Update, at most
   * `concurrency` at a time, and counts the outcomes. Outcomes so far are heartbeated: a retried
   * attempt (worker lost) resumes with the leads not yet done (and the Update id makes a resent
   * one the same Update).
   */
  async function redeliverDeadLetters(input: { bulkId: string; leadIds: string[]; buyerId?: string; by: string; concurrency: number; keepFailures: number }): Promise<BulkPageResult> {
    const client = deps.client;
    if (!client) throw new Error('redeliverDeadLetters needs a Temporal client');
    const context = Context.current();
    const previous: unknown = context.info.heartbeatDetails;
    const done: Record<string, BulkLeadOutcome> = previous && typeof previous === 'object' ? { ...(previous as Record<string, BulkLeadOutcome>) } : {};
    const todo = input.leadIds.filter((leadId) => !(leadId in done));
    await eachLimited(todo, Math.max(1, input.concurrency), async (leadId) => {
      done[leadId] = await redeliverOne(client, { bulkId: input.bulkId, leadId, by: input.by, ...(input.buyerId ? { buyerId: input.buyerId } : {}) });
      context.heartbeat(done);
    });
    const result: BulkPageResult = { redelivered: 0, skipped: {}, failed: 0, failures: [] };
    for (const leadId of input.leadIds) {
      const outcome = done[leadId]!;
      if (outcome.outcome === 'redelivered') result.redelivered++;
      else if (outcome.outcome === 'skipped') result.skipped[outcome.reason] = (result.skipped[outcome.reason] ?? 0) + 1;
      else {
        result.failed++;
        if (result.failures.length < input.keepFailures) result.failures.push({ leadId, error: outcome.error });
      }
    }
    return result;
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

  return { findDeadLetters, findDeadLetterIds, redeliverLead, redeliverDeadLetters, sendDeadLetterDigest };
}

export type DeadLetterActivities = ReturnType<typeof createDeadLetterActivities>;
