/**
 * Dead letters (operator use cases): the list by filter, redeliver one lead (to its waterfall or
 * one buyer, optionally with corrected fields) or discard it with a reason, and bulk redelivery by
 * filter (a workflow walks the matching dead letters; its progress is read by query). Every
 * decision reaches the lead's workflow as an Update, so it is on the lead's record.
 */
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { z } from 'zod';
import { listDeadLetters, type DeadLetterFilter } from '../../../activities/dead-letters';
import { DEAD_LETTER_REASONS, leadWorkflowId } from '../../../shared/delivery';
import { tryParseDuration } from '../../../shared/durations';
import { ConflictError, NotFoundError, ValidationError } from '../../../shared/errors';
import { idString as id, parseBody, parseWith } from '../../../shared/http/validate';
import { ulid } from '../../../shared/ids';
import { leadSchema } from '../../../shared/lead';
import { SA } from '../../../shared/search-attributes';
import { discardUpdate, redeliverUpdate } from '../../../workflows/messages';
import { BULK_FAILURES_KEPT, bulkDeadLetterProgressQuery, type BulkDeadLetterProgress, type BulkProgress, type bulkRedeliverDeadLetters } from '../../../workflows/operator-jobs';
import { reasonBody } from './breakers';
import type { OperatorContext } from './context';

const durationOrInstant = (label: string) =>
  z.string().refine((v) => tryParseDuration(v) !== undefined || !Number.isNaN(Date.parse(v)), `must be a duration (an age such as "1h") or an ISO date-time (${label})`);
const filterSchema = z
  .object({
    sourceId: id.optional(),
    buyerId: id.optional(),
    reason: z.enum(DEAD_LETTER_REASONS).optional(),
    olderThan: durationOrInstant('dead-lettered before').optional(),
    newerThan: durationOrInstant('dead-lettered after').optional(),
  })
  .strict();
const listQuery = filterSchema.extend({ cursor: z.string().max(200).optional(), limit: z.coerce.number().int().min(1).max(500).optional() });
const bulkBody = filterSchema.extend({ toBuyerId: id.optional() });
const redeliverBody = z.object({ buyerId: id.optional(), fields: z.record(z.string(), z.unknown()).optional() }).strict();

const toInstant = (v: string | undefined, now: number) => (v === undefined ? undefined : tryParseDuration(v) !== undefined ? now - tryParseDuration(v)! : Date.parse(v));
function toFilter(f: z.infer<typeof filterSchema>): DeadLetterFilter {
  const now = Date.now();
  const before = toInstant(f.olderThan, now);
  const after = toInstant(f.newerThan, now);
  return { ...(f.sourceId ? { sourceId: f.sourceId } : {}), ...(f.buyerId ? { buyerId: f.buyerId } : {}), ...(f.reason ? { reasonCode: f.reason } : {}), ...(before !== undefined ? { before } : {}), ...(after !== undefined ? { after } : {}) };
}

/** A bulk started by older code (`bulkRedeliver`) answers `failed` as the list of failures. */
function isLegacyProgress(progress: BulkDeadLetterProgress | BulkProgress): progress is BulkProgress {
  return Array.isArray(progress.failed);
}

/** An older bulk's progress in today's shape (it had no skipped leads, pages or runs to report). */
async function legacyProgress(progress: BulkProgress, describe: () => Promise<{ startTime: Date; closeTime?: Date | undefined }>): Promise<Omit<BulkDeadLetterProgress, 'pages'>> {
  const description = await describe();
  return {
    status: progress.status,
    startedAt: description.startTime.toISOString(),
    ...(progress.status === 'done' && description.closeTime ? { finishedAt: description.closeTime.toISOString() } : {}),
    matched: progress.matched,
    redelivered: progress.redelivered,
    skipped: 0,
    skippedByReason: {},
    failed: progress.failed.length,
    failures: progress.failed.slice(0, BULK_FAILURES_KEPT),
    runs: 1,
  };
}

export function createDeadLetterUseCases(ctx: OperatorContext) {
  const { models, client, withDeadline } = ctx;
  const leadHandle = (leadId: string) => client.workflow.getHandle(leadWorkflowId(leadId));

  /** Runs an Update on a lead's workflow; a lead that is not dead-lettered is a 409 saying what it is. */
  async function updateLead<R>(leadId: string, run: () => Promise<R>): Promise<R> {
    try {
      return await withDeadline(run);
    } catch (error) {
      if (error instanceof WorkflowUpdateFailedError) throw new ConflictError('not_dead_lettered', error.cause?.message ?? 'The lead is not dead-lettered.', { leadId });
      if (!(error instanceof WorkflowNotFoundError)) throw error;
      // Not running: either unknown, or finished (delivered / discarded) — say which.
      const description = await withDeadline(() => leadHandle(leadId).describe()).catch((e: unknown) => {
        if (e instanceof WorkflowNotFoundError) throw new NotFoundError('Lead');
        throw e;
      });
      const status = description.typedSearchAttributes.get(SA.LeadStatus) ?? description.status.name.toLowerCase();
      throw new ConflictError('not_dead_lettered', `the lead is ${status}, not dead-lettered`, { leadId, status });
    }
  }

  return {
    /** `query` as a request's query string: flat strings, a 400 naming the field otherwise. */
    async list(query: unknown) {
      const { cursor, limit, ...filter } = parseWith(listQuery, query, 'query.');
      return listDeadLetters(models, toFilter(filter), { ...(cursor ? { cursor } : {}), limit: limit ?? 100 });
    },

    async redeliver(leadId: string, input: unknown) {
      const body = parseBody(redeliverBody, input ?? {});
      if (body.buyerId && !(await models.Buyer.exists({ _id: body.buyerId }))) throw new ValidationError([{ path: 'buyerId', message: `buyer ${body.buyerId} does not exist` }]);
      let fields: Record<string, unknown> | undefined;
      if (body.fields) {
        if ('id' in body.fields) throw new ValidationError([{ path: 'fields.id', message: "the lead's id cannot be corrected" }]);
        const parsed: Record<string, unknown> = parseWith(leadSchema, { email: 'placeholder@example.com', ...body.fields }, 'fields.');
        fields = Object.fromEntries(Object.keys(body.fields).map((k) => [k, parsed[k]]));
      }
      const result = await updateLead(leadId, () => leadHandle(leadId).executeUpdate(redeliverUpdate, { args: [{ by: 'operator', ...(body.buyerId ? { buyerId: body.buyerId } : {}), ...(fields ? { fields } : {}) }] }));
      return { leadId, ...result };
    },

    async discard(leadId: string, input: unknown) {
      const body = parseBody(reasonBody, input);
      const result = await updateLead(leadId, () => leadHandle(leadId).executeUpdate(discardUpdate, { args: [{ by: 'operator', reason: body.reason }] }));
      return { leadId, ...result };
    },

    /** Starts a bulk redelivery by filter; its progress is at `/v1/admin/bulk/<bulkId>`. */
    async startBulkRedelivery(input: unknown) {
      const { toBuyerId, ...filter } = parseBody(bulkBody, input ?? {});
      if (toBuyerId && !(await models.Buyer.exists({ _id: toBuyerId }))) throw new ValidationError([{ path: 'toBuyerId', message: `buyer ${toBuyerId} does not exist` }]);
      const bulkId = `bulk-${ulid().toLowerCase()}`;
      await withDeadline(() => client.workflow.start<typeof bulkRedeliverDeadLetters>('bulkRedeliverDeadLetters', {
        workflowId: bulkId,
        taskQueue: ctx.deliveryTaskQueue,
        args: [{ filter: toFilter(filter), by: 'operator', ...(toBuyerId ? { buyerId: toBuyerId } : {}) }],
        staticSummary: `Bulk redelivery of dead letters${toBuyerId ? ` to ${toBuyerId}` : ''}`,
      }));
      return { bulkId, progress: `/v1/admin/bulk/${bulkId}` };
    },

    async bulkProgress(bulkId: string) {
      if (!bulkId.startsWith('bulk-')) throw new NotFoundError('Bulk redelivery');
      try {
        // The latest run (a bulk continues as new every few pages; each run answers for the whole bulk).
        const handle = client.workflow.getHandle(bulkId);
        const progress = await withDeadline(() => handle.query(bulkDeadLetterProgressQuery));
        return { bulkId, ...(isLegacyProgress(progress) ? await legacyProgress(progress, () => withDeadline(() => handle.describe())) : progress) };
      } catch (error) {
        if (error instanceof WorkflowNotFoundError) throw new NotFoundError('Bulk redelivery');
        throw error;
      }
    },
  };
}
export type DeadLetterUseCases = ReturnType<typeof createDeadLetterUseCases>;
