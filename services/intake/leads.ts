/**
 * Lead intake: POST /v1/leads and GET /v1/leads/:leadId.
 * A 2xx answer means the lead is durable in Temporal (its workflow started); when Temporal cannot
 * be reached the answer is 503 with Retry-After, never a silent drop. A start whose answer was
 * lost (deadline, cancellation) is looked up before answering: it may have happened.
 */
import { randomBytes } from 'node:crypto';
import { Router } from 'express';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/common';
import type { Client } from '@temporalio/client';
import { leadSchema } from '../../shared/lead';
import { deriveLeadId, SAFE_ID_RE } from '../../shared/ids';
import { ValidationError, AppError, NotFoundError, UnavailableError } from '../../shared/errors';
import { parseWith } from '../../shared/http/validate';
import { leadBodyHash } from '../../shared/journal-hash';
import { createStoreGate, StoreUnavailableError, type StoreGate } from '../../shared/store-gate';
import { leadWorkflowId, type DeliverLeadInput, type LeadView } from '../../shared/delivery';
import { SA } from '../../shared/search-attributes';
import { isTemporalUnreachable, mayHaveStarted } from '../../shared/temporal';
import { addLogContext, type Logger } from '../../shared/logger';
import type { Models } from '../../shared/store';
import { leadStatusQuery } from '../../workflows/messages';
import type { deliverLead } from '../../workflows/deliverLead';
import { callerOf } from '../../shared/http/auth';
import { createPayloadClaims, findStoredLead, type PayloadClaims } from './dedupe';
import { leadReturnView } from './returns';

export interface LeadDeps {
  client: Client;
  models: Models;
  logger: Logger;
  deliveryTaskQueue: string;
  logTaskQueue: string;
  temporalTimeoutMs: number;
  deadLetterRetentionMs: number;
  horizonSlackMs?: number;
  /** Bounds intake's store reads on the request path (shared with the key checks: one per app). */
  storeGate?: StoreGate;
}

export interface AcceptResult {
  leadId: string;
  workflowId: string;
  duplicate: boolean;
}

const IDEMPOTENCY_KEY_RE = /^[\x21-\x7e]{1,255}$/;

const conflict = () => new AppError(409, 'idempotency_conflict', 'This lead id (or Idempotency-Key) was already used for a lead with different fields.');

/** The use-case: validate, name the lead, start its workflow (or find it started), answer. */
export async function acceptLead(
  deps: LeadDeps,
  sourceId: string,
  body: unknown,
  idempotencyKey: string | undefined,
  /** Intake's duplicate checks against the store (bounded) and the source's window for leads without an id. */
  dedupe: { gate: StoreGate; claims: PayloadClaims; duplicateWindowMs: number },
): Promise<AcceptResult> {
  if (idempotencyKey !== undefined && !IDEMPOTENCY_KEY_RE.test(idempotencyKey)) {
    throw new ValidationError([{ path: 'header.idempotency-key', message: 'must be 1-255 printable ASCII characters' }]);
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new ValidationError([{ path: '(body)', message: 'must be a JSON object' }]);
  }
  const { id: clientId, ...lead } = parseWith(leadSchema, body);
  const clientKey = clientId ?? idempotencyKey;
  const bodyHash = leadBodyHash(lead);
  // Without a client id: an identical payload within the source's window reuses the first post's id.
  const leadId = clientKey ? deriveLeadId(sourceId, clientId ? `id:${clientId}` : `key:${clientKey}`) : (await dedupe.claims.claim(sourceId, bodyHash, dedupe.duplicateWindowMs)).leadId;
  const workflowId = leadWorkflowId(leadId);
  addLogContext({ leadId, workflowId });
  if (clientKey) {
    // The store outlives Temporal's retention: a lead on record is a duplicate even when its workflow is gone.
    const stored = await findStoredLead(deps.models, dedupe.gate, leadId);
    if (stored === 'unknown') deps.logger.warn({ leadId }, 'duplicate check skipped: the store did not answer in time (Temporal still refuses a retained duplicate)');
    else if (stored) {
      if (stored.bodyHash !== undefined && stored.bodyHash !== bodyHash) throw conflict();
      if (stored.bodyHash === undefined) await checkSameBody(deps, workflowId, bodyHash);
      deps.logger.info({ leadId }, 'duplicate lead (on record)');
      return { leadId, workflowId, duplicate: true };
    }
  }
  // Names this start: should its answer be lost, a describe tells whether it was this one that happened.
  const startToken = randomBytes(9).toString('base64url');
  const input: DeliverLeadInput = { leadId, sourceId, receivedAt: Date.now(), ...(clientId ? { clientId } : {}), lead: lead };
  try {
    await deps.client.connection.withDeadline(Date.now() + deps.temporalTimeoutMs, () =>
      deps.client.workflow.start<typeof deliverLead>('deliverLead', {
        workflowId,
        taskQueue: deps.deliveryTaskQueue,
        args: [input, { logTaskQueue: deps.logTaskQueue, deadLetterRetentionMs: deps.deadLetterRetentionMs, ...(deps.horizonSlackMs !== undefined ? { horizonSlackMs: deps.horizonSlackMs } : {}) }],
        workflowIdConflictPolicy: 'FAIL',
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        memo: { bodyHash, startToken },
        typedSearchAttributes: [
          { key: SA.LeadId, value: leadId },
          { key: SA.SourceId, value: sourceId },
          { key: SA.LeadStatus, value: 'accepted' },
        ],
        staticSummary: `Lead ${leadId} from ${sourceId}`,
        staticDetails: `Received ${new Date(input.receivedAt).toISOString()}${clientId ? ` (source's id ${clientId})` : ''}.`,
      }),
    );
  } catch (error) {
    if (error instanceof WorkflowExecutionAlreadyStartedError) {
      await checkSameBody(deps, workflowId, bodyHash);
      deps.logger.info({ leadId }, 'duplicate lead');
      return { leadId, workflowId, duplicate: true };
    }
    if (mayHaveStarted(error)) {
      const found = await lookForStart(deps, workflowId, bodyHash, startToken);
      if (found !== 'absent') {
        deps.logger.warn({ leadId, found }, 'the start\'s answer was lost; the workflow exists');
        return { leadId, workflowId, duplicate: found === 'other' };
      }
    }
    if (isTemporalUnreachable(error)) {
      deps.logger.warn({ err: error, leadId }, 'Temporal unreachable: lead refused with 503');
      throw new UnavailableError('The delivery engine is unreachable; the lead was not accepted. Retry later.', 5, { cause: error });
    }
    throw error;
  }
  deps.logger.info({ leadId }, 'lead accepted');
  return { leadId, workflowId, duplicate: false };
}


/**
 * After a start whose answer was lost: does the workflow exist, and did this start create it?
 * `ours` → 202; `other` (an earlier post's start) → duplicate; `absent` (or Temporal still not
 * answering) → 503. A different body under the same id is a 409.
 */
async function lookForStart(deps: LeadDeps, workflowId: string, bodyHash: string, startToken: string): Promise<'ours' | 'other' | 'absent'> {
  let memo: Record<string, unknown> | undefined;
  try {
    memo = (await deps.client.connection.withDeadline(Date.now() + deps.temporalTimeoutMs, () => deps.client.workflow.getHandle(workflowId).describe())).memo;
  } catch (error) {
    if (!(error instanceof WorkflowNotFoundError) && !isTemporalUnreachable(error)) deps.logger.warn({ err: error }, 'describe after a lost start failed');
    return 'absent';
  }
  if (memo?.startToken === startToken) return 'ours';
  if (typeof memo?.bodyHash === 'string' && memo.bodyHash !== bodyHash) throw conflict();
  return 'other';
}

/** A reused id or Idempotency-Key with a different body is a client bug: say so (409). */
async function checkSameBody(deps: LeadDeps, workflowId: string, bodyHash: string): Promise<void> {
  let stored: unknown;
  try {
    const description = await deps.client.connection.withDeadline(Date.now() + deps.temporalTimeoutMs, () => deps.client.workflow.getHandle(workflowId).describe());
    stored = description.memo?.bodyHash;
  } catch {
    return; // The duplicate answer does not depend on this check.
  }
  if (typeof stored === 'string' && stored !== bodyHash) throw conflict();
}

export function leadView(view: LeadView): Record<string, unknown> {
  return {
    leadId: view.leadId,
    sourceId: view.sourceId,
    status: view.status,
    ...(view.buyerId ? { buyerId: view.buyerId } : {}),
    ...(view.reason ? { reason: view.reason } : {}),
    ...(view.reasonCode ? { reasonCode: view.reasonCode } : {}),
    ...(view.deadLetteredAt ? { deadLetteredAt: new Date(view.deadLetteredAt).toISOString() } : {}),
    ...(view.heldBy ? { heldBy: view.heldBy } : {}),
    ...(view.notify ? { notify: view.notify } : {}),
    ...(view.journal ? { journal: view.journal } : {}),
    receivedAt: new Date(view.receivedAt).toISOString(),
    updatedAt: new Date(view.updatedAt).toISOString(),
    buyersTried: view.buyersTried,
    endpoints: view.endpoints.map((e) => ({
      endpointId: e.endpointId,
      buyerId: e.buyerId,
      kind: e.kind,
      role: e.role,
      status: e.status,
      attempts: e.attempts,
      ...(e.nextAttemptAt ? { nextAttemptAt: new Date(e.nextAttemptAt).toISOString() } : {}),
      ...(e.lastCode ? { lastCode: e.lastCode } : {}),
      ...(e.lastStatus !== undefined ? { lastStatus: e.lastStatus } : {}),
      ...(e.received ? { received: true } : {}),
    })),
    decisions: view.decisions.map((d) => ({ ...d, at: new Date(d.at).toISOString() })),
  };
}

export function leadRoutes(deps: LeadDeps): Router {
  const router = Router();
  const gate = deps.storeGate ?? createStoreGate({ connection: deps.models.Lead.db, name: 'intake', logger: deps.logger });
  const claims = createPayloadClaims({ models: deps.models, gate, logger: deps.logger });

  router.post('/v1/leads', async (req, res) => {
    const caller = callerOf(req);
    if (caller.type !== 'source') throw new AppError(403, 'forbidden', 'Post leads with a lead-source API key.');
    const result = await acceptLead(deps, caller.sourceId, req.body, req.get('idempotency-key'), { gate, claims, duplicateWindowMs: caller.duplicateWindowMs });
    res.status(result.duplicate ? 200 : 202).json({ leadId: result.leadId, workflowId: result.workflowId, status: 'accepted', ...(result.duplicate ? { duplicate: true } : {}) });
  });

  router.get('/v1/leads/:leadId', async (req, res) => {
    const caller = callerOf(req);
    const leadId = String(req.params.leadId);
    if (!SAFE_ID_RE.test(leadId)) throw new NotFoundError('Lead');
    let view: LeadView;
    try {
      view = await deps.client.connection.withDeadline(Date.now() + deps.temporalTimeoutMs, () => deps.client.workflow.getHandle(leadWorkflowId(leadId)).query(leadStatusQuery));
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) {
        const summary = await deps.models.Lead.findById(leadId).lean();
        if (!summary || (caller.type === 'source' && summary.sourceId !== caller.sourceId)) throw new NotFoundError('Lead');
        const returned = leadReturnView(summary);
        res.json({ leadId, sourceId: summary.sourceId, status: summary.status, ...(summary.buyerId ? { buyerId: summary.buyerId } : {}), receivedAt: summary.receivedAt.toISOString(), updatedAt: summary.updatedAt.toISOString(), ...(returned ? { return: returned } : {}), endpoints: [], archived: true });
        return;
      }
      if (isTemporalUnreachable(error)) throw new UnavailableError('The delivery engine is unreachable; retry later.', 5, { cause: error });
      throw error;
    }
    if (caller.type === 'source' && view.sourceId !== caller.sourceId) throw new NotFoundError('Lead');
    res.json({ ...leadView(view), ...(await returnOf(view)) });
  });

  /**
   * A delivered lead's return by its buyer (the summary: the journal's return entries), when it has
   * one. Bounded like intake's other store reads: a slow store leaves it out rather than the answer.
   */
  async function returnOf(view: LeadView): Promise<{ return?: ReturnType<typeof leadReturnView> }> {
    if (view.status !== 'delivered') return {};
    try {
      const row = await gate.run(() => deps.models.Lead.findById(view.leadId, { returnId: 1, returnStatus: 1, returnReason: 1, returnRequestedAt: 1, returnDecidedAt: 1 }).lean());
      const returned = leadReturnView(row);
      return returned ? { return: returned } : {};
    } catch (error) {
      if (!(error instanceof StoreUnavailableError)) throw error;
      deps.logger.warn({ leadId: view.leadId }, 'lead state without its return: the store did not answer in time');
      return {};
    }
  }

  return router;
}
