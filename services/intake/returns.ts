/**
 * Buyer returns (use cases and routes): a buyer hands back a lead it took (`POST /v1/buyer/returns`
 * with its buyer key), reads its returns; operators list them with counts per status and approve
 * or deny the pending ones (`/v1/admin/returns`). The story of a request:
 *
 *   validate (the reason from RETURN_REASONS, note ≤ 1000) → find the lead among those delivered to
 *   this buyer (by leadId, or the source's own id: clientId) → not already returned → within the
 *   buyer's returnWindow after the delivery → the lead's own workflow has closed (it alone writes the
 *   journal until then: 409 `lead_in_flight`, Retry-After) → approved at once when the reason is on
 *   RETURN_AUTO_APPROVE, else pending → start `leadReturn` (`return-<leadId>`, one per lead: Temporal
 *   refuses a second start) → 201 {returnId, status}.
 *
 * Unknown leads, leads delivered to another buyer and leads not delivered get one answer (409
 * `not_returnable`), so a buyer cannot probe other buyers' leads. The return is recorded by the
 * workflow in the lead's journal; the lead's summary (`leads`) carries it for lists and counts, a
 * moment after the 201 (until then the workflow answers for it).
 */
import { randomBytes } from 'node:crypto';
import { Router, type Request } from 'express';
import { z } from 'zod';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { BUYER_CONTROL_DEFAULTS } from '../../shared/buyer-controls';
import { ConfigError, configSchema, listSetting, type Config } from '../../shared/config';
import { leadWorkflowId } from '../../shared/delivery';
import { parseDuration } from '../../shared/durations';
import { AppError, ConflictError, ForbiddenError, NotFoundError, UnavailableError, ValidationError } from '../../shared/errors';
import { callerOf, type BuyerIdentity } from '../../shared/http/auth';
import { idParam, idString, parseBody, parseWith } from '../../shared/http/validate';
import type { Logger } from '../../shared/logger';
import { leadIdOfReturn, RETURN_NOTE_MAX, RETURN_STATUSES, returnIdOf, returnWorkflowId, type LeadReturnInput, type ReturnState, type ReturnStatus } from '../../shared/returns';
import { SA } from '../../shared/search-attributes';
import type { BuyerDoc, LeadDoc, Models } from '../../shared/store';
import { isTemporalUnreachable, mayHaveStarted } from '../../shared/temporal';
import { decideReturnUpdate, returnStateQuery } from '../../workflows/messages';
import type { leadReturn } from '../../workflows/returns';
import { optionalReason } from './operator/breakers';

// ---- settings -------------------------------------------------------------------------------

export interface ReturnSettings {
  /** The reasons a buyer may give. */
  reasons: string[];
  /** Reasons approved at once; the others wait for an operator. */
  autoApprove: string[];
  /** How long a pending return waits for an operator before it is recorded `expired`. */
  decisionWindowMs: number;
}

/** From the environment (RETURN_REASONS, RETURN_AUTO_APPROVE, RETURN_DECISION_WINDOW); a bad combination stops the boot. */
export function returnSettings(config: Pick<Config, 'RETURN_REASONS' | 'RETURN_AUTO_APPROVE' | 'RETURN_DECISION_WINDOW'>): ReturnSettings {
  const reasons = [...new Set(listSetting(config.RETURN_REASONS))];
  const autoApprove = [...new Set(listSetting(config.RETURN_AUTO_APPROVE))];
  const unknown = autoApprove.filter((r) => !reasons.includes(r));
  if (reasons.length === 0) throw new ConfigError(['RETURN_REASONS: must name at least one reason']);
  if (unknown.length) throw new ConfigError([`RETURN_AUTO_APPROVE: ${unknown.join(', ')} not in RETURN_REASONS (${reasons.join(', ')})`]);
  return { reasons, autoApprove, decisionWindowMs: parseDuration(config.RETURN_DECISION_WINDOW) };
}

/** The settings with every variable at its default. */
export function defaultReturnSettings(): ReturnSettings {
  const shape = configSchema.shape;
  return returnSettings({ RETURN_REASONS: shape.RETURN_REASONS.parse(undefined), RETURN_AUTO_APPROVE: shape.RETURN_AUTO_APPROVE.parse(undefined), RETURN_DECISION_WINDOW: shape.RETURN_DECISION_WINDOW.parse(undefined) });
}

// ---- validation -----------------------------------------------------------------------------

/** The body of POST /v1/buyer/returns: the lead (its id, or the source's own id), a reason from the list, an optional note. */
export function returnRequestSchema(reasons: string[]) {
  const allowed = `must be one of ${reasons.join(', ')}`;
  return z
    .object({
      leadId: idString.optional(),
      clientId: z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/, 'must be the id the source gave the lead (1-128 characters of letters, digits, _ . : -)').optional(),
      reason: z.string({ error: allowed }).refine((r) => reasons.includes(r), allowed),
      note: z.string().max(RETURN_NOTE_MAX, `must be at most ${RETURN_NOTE_MAX} characters`).optional(),
    })
    .strict()
    .superRefine((body, ctx) => {
      if ((body.leadId === undefined) === (body.clientId === undefined)) ctx.addIssue({ code: 'custom', path: ['leadId'], message: 'give the lead as leadId or as clientId (the source’s own id), one of them' });
    });
}

const statusEnum = z.enum(RETURN_STATUSES as [ReturnStatus, ...ReturnStatus[]], { error: `must be one of ${RETURN_STATUSES.join(', ')}` });
const pageShape = {
  status: statusEnum.optional(),
  cursor: z.string().max(300).optional(),
  limit: z.coerce.number().int().min(1, 'must be 1 to 200').max(200, 'must be 1 to 200').optional(),
};
/** A denial's body: the reason is on record (and shown to the buyer). */
export const denyBody = z.object({ reason: z.string({ error: 'a denial needs a reason' }).trim().min(1, 'a denial needs a reason').max(500, 'must be at most 500 characters') }).strict();

export const buyerListQuery = z.object(pageShape).strict();
export const operatorListQuery = z.object({ ...pageShape, buyerId: idString.optional(), sourceId: idString.optional() }).strict();

// ---- views ----------------------------------------------------------------------------------

export type ReturnCounts = Record<ReturnStatus, number>;

/** Returns counted per status over leads matching `filter` (a buyer, a source, or both): one count per status. */
export async function returnCounts(models: Models, filter: { buyerId?: string; sourceId?: string }): Promise<ReturnCounts> {
  const counts = await Promise.all(RETURN_STATUSES.map((status) => models.Lead.countDocuments({ ...filter, returnStatus: status })));
  return Object.fromEntries(RETURN_STATUSES.map((status, i) => [status, counts[i]!])) as ReturnCounts;
}

const RETURN_FIELDS = { _id: 1, sourceId: 1, clientId: 1, buyerId: 1, status: 1, deliveredAt: 1, updatedAt: 1, returnId: 1, returnStatus: 1, returnReason: 1, returnRequestedAt: 1, returnDecidedAt: 1, returnDecisionReason: 1 } as const;
type ReturnRow = Pick<LeadDoc, '_id' | 'sourceId' | 'clientId' | 'buyerId' | 'status' | 'deliveredAt' | 'updatedAt' | 'returnId' | 'returnStatus' | 'returnReason' | 'returnRequestedAt' | 'returnDecidedAt' | 'returnDecisionReason'>;

export interface ReturnView {
  returnId: string;
  leadId: string;
  clientId?: string;
  buyerId: string;
  sourceId?: string;
  status: ReturnStatus;
  reason: string;
  requestedAt: string;
  decidedAt?: string;
  decisionReason?: string;
}

const iso = (d: Date | number) => new Date(d).toISOString();

/** A return from the lead's summary; `withSource`: operators see the source, buyers do not. */
function rowView(row: ReturnRow, withSource: boolean): ReturnView {
  return {
    returnId: row.returnId!,
    leadId: row._id,
    ...(row.clientId ? { clientId: row.clientId } : {}),
    buyerId: row.buyerId!,
    ...(withSource ? { sourceId: row.sourceId } : {}),
    status: row.returnStatus as ReturnStatus,
    reason: row.returnReason ?? '',
    requestedAt: iso(row.returnRequestedAt ?? row.updatedAt),
    ...(row.returnDecidedAt ? { decidedAt: iso(row.returnDecidedAt) } : {}),
    ...(row.returnDecisionReason ? { decisionReason: row.returnDecisionReason } : {}),
  };
}

/** A return from its workflow (before the summary has it). */
function stateView(state: ReturnState, clientId: string | undefined, withSource: boolean): ReturnView {
  return {
    returnId: state.returnId,
    leadId: state.leadId,
    ...(clientId ? { clientId } : {}),
    buyerId: state.buyerId,
    ...(withSource ? { sourceId: state.sourceId } : {}),
    status: state.status,
    reason: state.reason,
    requestedAt: iso(state.requestedAt),
    ...(state.decidedAt ? { decidedAt: iso(state.decidedAt) } : {}),
    ...(state.decisionReason ? { decisionReason: state.decisionReason } : {}),
  };
}

/** The return shown on the lead (GET /v1/leads/:leadId), from its summary. */
export function leadReturnView(row: Pick<LeadDoc, 'returnId' | 'returnStatus' | 'returnReason' | 'returnRequestedAt' | 'returnDecidedAt'> | null | undefined) {
  if (!row?.returnId || !row.returnStatus) return undefined;
  return {
    returnId: row.returnId,
    status: row.returnStatus,
    ...(row.returnReason ? { reason: row.returnReason } : {}),
    ...(row.returnRequestedAt ? { requestedAt: iso(row.returnRequestedAt) } : {}),
    ...(row.returnDecidedAt ? { decidedAt: iso(row.returnDecidedAt) } : {}),
  };
}

// ---- paging (keyset on requestedAt desc, _id desc) --------------------------------------------

interface PageCursor {
  at: number;
  id: string;
}

function encodeCursor(c: PageCursor): string {
  return Buffer.from(JSON.stringify([c.at, c.id]), 'utf8').toString('base64url');
}

function decodeCursor(text: string): PageCursor {
  try {
    const value: unknown = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
    if (Array.isArray(value) && value.length === 2 && Number.isSafeInteger(value[0]) && typeof value[1] === 'string' && /^[A-Za-z0-9_.:-]{1,128}$/.test(value[1])) return { at: value[0] as number, id: value[1] };
  } catch {
    /* not ours */
  }
  throw new ValidationError([{ path: 'query.cursor', message: 'is not a cursor from this API (use the `next` of a previous page)' }]);
}

/**
 * A page of returns, newest first. Each status is its own query (an equality on returnStatus beside
 * the buyer's or source's id: both reach PostgreSQL's containment indexes on FerretDB, where an `$in`
 * would not and the store would read every lead of the buyer), merged here: at most limit+1 rows each.
 */
async function page(models: Models, base: Record<string, unknown>, q: { status?: ReturnStatus; cursor?: string; limit?: number }, withSource: boolean) {
  const limit = q.limit ?? 50;
  const after: Record<string, unknown> = {};
  if (q.cursor) {
    const c = decodeCursor(q.cursor);
    after.$or = [{ returnRequestedAt: { $lt: new Date(c.at) } }, { returnRequestedAt: new Date(c.at), _id: { $lt: c.id } }];
  }
  const statuses = q.status ? [q.status] : RETURN_STATUSES;
  const found = await Promise.all(statuses.map((status) => models.Lead.find({ ...base, returnStatus: status, ...after }, RETURN_FIELDS).sort({ returnRequestedAt: -1, _id: -1 }).limit(limit + 1).lean<ReturnRow[]>()));
  const newestFirst = (a: ReturnRow, b: ReturnRow) => (b.returnRequestedAt?.getTime() ?? 0) - (a.returnRequestedAt?.getTime() ?? 0) || (a._id < b._id ? 1 : a._id > b._id ? -1 : 0);
  const rows = found.flat().sort(newestFirst).slice(0, limit + 1);
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  const next = rows.length > limit && last?.returnRequestedAt ? encodeCursor({ at: last.returnRequestedAt.getTime(), id: last._id }) : null;
  return { items: items.map((r) => rowView(r, withSource)), next };
}

// ---- use cases ------------------------------------------------------------------------------

export interface ReturnDeps {
  models: Models;
  client: Client;
  logger: Logger;
  deliveryTaskQueue: string;
  logTaskQueue: string;
  temporalTimeoutMs: number;
  settings: ReturnSettings;
}

const notReturnable = (field: 'leadId' | 'clientId') =>
  new ConflictError('not_returnable', `No lead delivered to this buyer has this ${field}; only leads this buyer took can be returned.`, { field });

export function createReturnUseCases(deps: ReturnDeps) {
  const { models, client, settings } = deps;
  const requestSchema = returnRequestSchema(settings.reasons);
  const withDeadline = <T>(fn: () => Promise<T>) => client.connection.withDeadline(Date.now() + deps.temporalTimeoutMs, fn);
  const returnHandle = (leadId: string) => client.workflow.getHandle<typeof leadReturn>(returnWorkflowId(leadId));
  const unreachable = (error: unknown) => new UnavailableError('The delivery engine is unreachable; nothing was changed. Retry later.', 5, { cause: error });

  /** The return's live state from its workflow; undefined when there is none (or Temporal does not answer). */
  async function workflowState(leadId: string): Promise<ReturnState | undefined> {
    try {
      return await withDeadline(() => returnHandle(leadId).query(returnStateQuery));
    } catch (error) {
      if (!(error instanceof WorkflowNotFoundError)) deps.logger.warn({ err: error, leadId }, 'return state query failed');
      return undefined;
    }
  }

  /** The lead the buyer means, among the leads delivered to it (one 409 for "unknown" and "not yours"). */
  async function resolveLead(buyerId: string, body: { leadId?: string; clientId?: string }): Promise<ReturnRow & { field: 'leadId' | 'clientId' }> {
    if (body.leadId) {
      const lead = await models.Lead.findById(body.leadId, RETURN_FIELDS).lean<ReturnRow>();
      if (!lead || lead.buyerId !== buyerId || lead.status !== 'delivered') throw notReturnable('leadId');
      return { ...lead, field: 'leadId' };
    }
    const leads = await models.Lead.find({ clientId: body.clientId, buyerId, status: 'delivered' }, RETURN_FIELDS).limit(10).lean<ReturnRow[]>();
    if (leads.length === 0) throw notReturnable('clientId');
    if (leads.length > 1) {
      throw new ConflictError('ambiguous_client_id', `${leads.length} leads delivered to this buyer have this clientId (from different sources); return one by its leadId.`, { field: 'clientId', leadIds: leads.map((l) => l._id) });
    }
    return { ...leads[0]!, field: 'clientId' };
  }

  async function alreadyReturned(leadId: string, summary?: ReturnRow): Promise<ConflictError> {
    const state = summary?.returnId ? undefined : await workflowState(leadId);
    const status = summary?.returnStatus ?? state?.status;
    return new ConflictError('already_returned', 'This lead was already returned; a lead is returned once.', { returnId: summary?.returnId ?? returnIdOf(leadId), ...(status ? { status } : {}) });
  }

  /** The lead's own workflow must have closed: until then it alone writes the lead's journal. */
  async function mustBeSettled(leadId: string, field: string): Promise<void> {
    let running: boolean;
    try {
      const description = await withDeadline(() => client.workflow.getHandle(leadWorkflowId(leadId)).describe());
      running = description.status.name === 'RUNNING';
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return; // closed long ago (past Temporal's retention)
      if (isTemporalUnreachable(error)) throw unreachable(error);
      throw error;
    }
    if (running) {
      throw new AppError(409, 'lead_in_flight', 'The lead was delivered to you, but its delivery is still finishing (notify copies, the journal); retry the return in a moment.', { field, retryAfter: 30 }, { 'Retry-After': '30' });
    }
  }

  /** A return by id: the lead's summary, else (a moment after the request) its workflow. */
  async function findReturn(returnId: string, withSource = true): Promise<ReturnView | undefined> {
    const leadId = leadIdOfReturn(returnId);
    if (!leadId) return undefined;
    const row = await models.Lead.findById(leadId, RETURN_FIELDS).lean<ReturnRow>();
    if (row?.returnId === returnId && row.returnStatus) return rowView(row, withSource);
    const state = await workflowState(leadId);
    return state?.returnId === returnId ? stateView(state, row?.clientId, withSource) : undefined;
  }

  return {
    settings,

    async request(buyer: BuyerIdentity, input: unknown): Promise<{ returnId: string; leadId: string; status: ReturnStatus }> {
      const body = parseBody(requestSchema, input);
      const lead = await resolveLead(buyer.buyerId, body);
      const leadId = lead._id;
      if (lead.returnId) throw await alreadyReturned(leadId, lead);
      const buyerDoc = await models.Buyer.findById(buyer.buyerId, { returnWindow: 1 }).lean<Pick<BuyerDoc, 'returnWindow'>>();
      const returnWindow = buyerDoc?.returnWindow ?? BUYER_CONTROL_DEFAULTS.returnWindow;
      const deliveredAt = lead.deliveredAt ?? lead.updatedAt;
      const closesAt = deliveredAt.getTime() + parseDuration(returnWindow);
      if (Date.now() > closesAt) {
        throw new ConflictError('return_window_closed', `The lead was delivered at ${iso(deliveredAt)}; this buyer's return window of ${returnWindow} closed at ${iso(closesAt)}.`, { field: lead.field, deliveredAt: iso(deliveredAt), returnWindow, closedAt: iso(closesAt) });
      }
      await mustBeSettled(leadId, lead.field);

      const returnId = returnIdOf(leadId);
      const status = settings.autoApprove.includes(body.reason) ? 'approved' : 'pending';
      const requestToken = randomBytes(9).toString('base64url');
      const workflowInput: LeadReturnInput = {
        returnId,
        leadId,
        sourceId: lead.sourceId,
        buyerId: buyer.buyerId,
        reason: body.reason,
        ...(body.note ? { note: body.note } : {}),
        status,
        requestedAt: Date.now(),
        logTaskQueue: deps.logTaskQueue,
        decisionWindowMs: settings.decisionWindowMs,
      };
      try {
        await withDeadline(() =>
          client.workflow.start<typeof leadReturn>('leadReturn', {
            workflowId: returnWorkflowId(leadId),
            taskQueue: deps.deliveryTaskQueue,
            args: [workflowInput],
            workflowIdConflictPolicy: 'FAIL',
            workflowIdReusePolicy: 'REJECT_DUPLICATE',
            memo: { requestToken, status },
            typedSearchAttributes: [
              { key: SA.LeadId, value: leadId },
              { key: SA.BuyerId, value: buyer.buyerId },
              { key: SA.SourceId, value: lead.sourceId },
            ],
            staticSummary: `Return of lead ${leadId} by buyer ${buyer.buyerId}: ${body.reason}`,
            staticDetails: `${returnId}, ${status === 'approved' ? 'approved at once (auto-approved reason)' : 'pending: an operator approves or denies it'}.`,
          }),
        );
      } catch (error) {
        if (error instanceof WorkflowExecutionAlreadyStartedError) throw await alreadyReturned(leadId);
        if (mayHaveStarted(error)) {
          // The start's answer was lost: it may have happened. Ours → 201; another request's → 409.
          const memo = await withDeadline(() => returnHandle(leadId).describe()).then((d) => d.memo, () => undefined);
          if (memo?.requestToken === requestToken) return { returnId, leadId, status };
          if (memo) throw await alreadyReturned(leadId);
        }
        if (isTemporalUnreachable(error)) throw new UnavailableError('The delivery engine is unreachable; the return was not recorded. Retry later.', 5, { cause: error });
        throw error;
      }
      deps.logger.info({ leadId, returnId, status, reason: body.reason }, 'lead returned by its buyer');
      return { returnId, leadId, status };
    },

    /** The buyer's own returns, newest first. */
    async listForBuyer(buyer: BuyerIdentity, query: unknown) {
      const q = parseWith(buyerListQuery, query ?? {}, 'query.');
      return page(models, { buyerId: buyer.buyerId }, q, false);
    },

    /** One of the buyer's returns (404 for any other, whoever's it is). */
    async getForBuyer(buyer: BuyerIdentity, returnId: string): Promise<ReturnView> {
      const view = await findReturn(returnId, false);
      if (!view || view.buyerId !== buyer.buyerId) throw new NotFoundError('Return');
      return view;
    },

    /** Operators: returns by buyer, source and status, newest first, with the counts per status for the buyer/source filter. */
    async listForOperator(query: unknown) {
      const { buyerId, sourceId, ...q } = parseWith(operatorListQuery, query ?? {}, 'query.');
      const base = { ...(buyerId ? { buyerId } : {}), ...(sourceId ? { sourceId } : {}) };
      const [listed, counts] = await Promise.all([page(models, base, q, true), returnCounts(models, base)]);
      return { ...listed, counts };
    },

    /** An operator approves or denies a pending return; answered once the decision is in the journal. */
    async decide(returnId: string, decision: 'approve' | 'deny', input: unknown): Promise<{ returnId: string; leadId: string; status: ReturnStatus }> {
      const body = decision === 'deny' ? parseBody(denyBody, input) : parseBody(optionalReason, input ?? {});
      const leadId = leadIdOfReturn(returnId);
      if (!leadId) throw new NotFoundError('Return');
      let result: { status: ReturnStatus };
      try {
        result = await withDeadline(() => returnHandle(leadId).executeUpdate(decideReturnUpdate, { args: [{ decision, by: 'operator', ...(body.reason ? { reason: body.reason } : {}) }] }));
      } catch (error) {
        if (error instanceof WorkflowUpdateFailedError) {
          const cause = error.cause instanceof ApplicationFailure ? error.cause : undefined;
          if (cause?.type === 'InvalidRequest') throw new ValidationError([{ path: 'reason', message: cause.message }]);
          const current = await findReturn(returnId);
          throw new ConflictError('already_decided', cause?.message ?? 'The return is not pending.', { returnId, ...(current ? { status: current.status } : {}) });
        }
        if (error instanceof WorkflowNotFoundError) {
          // Closed (decided or expired), or no such return.
          const current = await findReturn(returnId);
          if (!current) throw new NotFoundError('Return');
          throw new ConflictError('already_decided', `The return is already ${current.status}.`, { returnId, status: current.status });
        }
        if (isTemporalUnreachable(error)) throw unreachable(error);
        throw error;
      }
      deps.logger.info({ leadId, returnId, status: result.status }, 'return decided by an operator');
      return { returnId, leadId, status: result.status };
    },
  };
}
export type ReturnUseCases = ReturnType<typeof createReturnUseCases>;

// ---- routes ---------------------------------------------------------------------------------

const buyerOf = (req: Request): BuyerIdentity => {
  const caller = callerOf(req);
  if (caller.type !== 'buyer') throw new ForbiddenError('This route needs a buyer API key.');
  return caller;
};

/** `/v1/buyer/…` (a buyer key; mounted behind its authentication). */
export function buyerReturnRoutes(useCases: ReturnUseCases): Router {
  const router = Router();
  router.post('/returns', async (req, res) => void res.status(201).json(await useCases.request(buyerOf(req), req.body)));
  router.get('/returns', async (req, res) => void res.json(await useCases.listForBuyer(buyerOf(req), req.query)));
  router.get('/returns/:returnId', async (req, res) => void res.json(await useCases.getForBuyer(buyerOf(req), idParam(req, 'returnId', 'Return'))));
  return router;
}

/** `/v1/admin/returns…` (the admin token; mounted behind it). */
export function operatorReturnRoutes(useCases: ReturnUseCases): Router {
  const router = Router();
  router.get('/returns', async (req, res) => void res.json(await useCases.listForOperator(req.query)));
  for (const decision of ['approve', 'deny'] as const) {
    router.post(`/returns/:returnId/${decision}`, async (req, res) => void res.json(await useCases.decide(idParam(req, 'returnId', 'Return'), decision, req.body)));
  }
  return router;
}
