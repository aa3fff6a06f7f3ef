/**
 * Operator controls (admin token): pause and resume buyers, read / reset / open endpoint
 * breakers (acknowledged only once the breaker workflow applied the command), the dead-letter
 * list, redeliver and discard (one lead, or in bulk by filter with progress), alert channels
 * and the alerts sent.
 */
import { Router } from 'express';
import { z } from 'zod';
import { WithStartWorkflowOperation, WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { listDeadLetters, type DeadLetterFilter } from '../../activities/dead-letters';
import { findStuckLeads } from '../../activities/stuck-leads';
import { alertChannelAad } from '../../activities/alerts';
import { breakerSettingsOf } from '../../activities/delivery';
import type { Registry } from '../../activities/registry';
import { BreakerMachine, breakerWorkflowId, type BreakerSnapshot } from '../../shared/breaker';
import { openJson, sealJson, type KeyRing } from '../../shared/crypto';
import { DEAD_LETTER_REASONS, leadWorkflowId } from '../../shared/delivery';
import { formatDuration, tryParseDuration } from '../../shared/durations';
import { ConflictError, NotFoundError, ValidationError, fieldErrorsFromIssues } from '../../shared/errors';
import { newId, ulid } from '../../shared/ids';
import { leadSchema } from '../../shared/lead';
import { SA } from '../../shared/search-attributes';
import type { AlertChannelDoc, BuyerDoc, EndpointDoc, Models } from '../../shared/models';
import { maskSecret } from '../../shared/redact';
import { breakerStateQuery, discardUpdate, operatorUpdate, redeliverUpdate } from '../../workflows/messages';
import type { breaker } from '../../workflows/breaker';
import { BULK_FAILURES_KEPT, bulkDeadLetterProgressQuery, type BulkDeadLetterProgress, type BulkProgress, type bulkRedeliverDeadLetters } from '../../workflows/operations';
import { idParam, parseBody } from './validate';

export interface OperationsDeps {
  models: Models;
  client: Client;
  registry: Registry;
  credentials: KeyRing;
  deliveryTaskQueue: string;
  temporalTimeoutMs: number;
  /** A lead that recorded no progress this long after its start is stuck. */
  stuckNotStartedAfterMs: number;
}

const reasonBody = z.object({ reason: z.string().trim().min(1, 'must not be empty').max(500) }).strict();
const optionalReason = z.object({ reason: z.string().trim().max(500).optional() }).strict();
const id = z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/, 'must be an id');

export function breakerView(s: BreakerSnapshot | undefined, settings: { threshold: number; coolDownMs: number }) {
  return {
    state: s?.state ?? 'closed',
    consecutiveFailures: s?.consecutiveFailures ?? 0,
    threshold: s?.threshold ?? settings.threshold,
    coolDown: formatDuration(s?.coolDownMs ?? settings.coolDownMs),
    trips: s?.trips ?? 0,
    ...(s?.openedAt ? { openedAt: new Date(s.openedAt).toISOString() } : {}),
    ...(s?.halfOpenAt ? { halfOpenAt: new Date(s.halfOpenAt).toISOString() } : {}),
    ...(s?.forced ? { forced: true } : {}),
    ...(s?.lastError ? { lastError: { ...s.lastError, at: new Date(s.lastError.at).toISOString() } } : {}),
    counts: s?.counts ?? { successes: 0, failures: 0, opened: 0 },
  };
}

export function createOperationsRoutes(deps: OperationsDeps): Router {
  const { models, client } = deps;
  const router = Router();
  const withDeadline = <T>(fn: () => Promise<T>) => client.connection.withDeadline(Date.now() + deps.temporalTimeoutMs, fn);

  const findEndpoint = async (endpointId: string) => {
    const doc = await models.Endpoint.findById(endpointId).lean<EndpointDoc>();
    if (!doc) throw new NotFoundError('Endpoint');
    return doc;
  };

  async function readBreaker(endpointId: string): Promise<BreakerSnapshot | undefined> {
    try {
      return await withDeadline(() => client.workflow.getHandle(breakerWorkflowId(endpointId)).query(breakerStateQuery));
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return undefined;
      throw error;
    }
  }

  /** Sends an operator command to an endpoint's breaker (starting it if it never ran); resolves once applied. */
  async function commandBreaker(endpoint: EndpointDoc, action: 'reset' | 'open', reason: string): Promise<BreakerSnapshot> {
    const settings = breakerSettingsOf(endpoint);
    const start = new WithStartWorkflowOperation<typeof breaker>('breaker', {
      workflowId: breakerWorkflowId(endpoint._id),
      taskQueue: deps.deliveryTaskQueue,
      args: [BreakerMachine.initial(endpoint._id, endpoint.buyerId, settings)],
      workflowIdConflictPolicy: 'USE_EXISTING',
      staticSummary: `Breaker of endpoint ${endpoint._id} (buyer ${endpoint.buyerId})`,
    });
    return withDeadline(() => client.workflow.executeUpdateWithStart(operatorUpdate, { args: [{ action, reason, by: 'operator' }], startWorkflowOperation: start }));
  }

  // ---- breakers ------------------------------------------------------------------------------
  router.get('/endpoints/:endpointId/breaker', async (req, res) => {
    const endpoint = await findEndpoint(idParam(req, 'endpointId', 'Endpoint'));
    res.json({ endpointId: endpoint._id, buyerId: endpoint.buyerId, ...breakerView(await readBreaker(endpoint._id), breakerSettingsOf(endpoint)) });
  });
  for (const action of ['reset', 'open'] as const) {
    router.post(`/endpoints/:endpointId/breaker/${action}`, async (req, res) => {
      const body = parseBody(optionalReason, req.body ?? {});
      const endpoint = await findEndpoint(idParam(req, 'endpointId', 'Endpoint'));
      const snapshot = await commandBreaker(endpoint, action, body.reason ?? `${action} by an operator`);
      res.json({ endpointId: endpoint._id, buyerId: endpoint.buyerId, ...breakerView(snapshot, breakerSettingsOf(endpoint)) });
    });
  }

  // ---- pause / resume ------------------------------------------------------------------------
  const buyerState = (doc: BuyerDoc) => ({ id: doc._id, paused: doc.paused, ...(doc.paused && doc.pause ? { pause: doc.pause } : {}) });
  router.post('/buyers/:buyerId/pause', async (req, res) => {
    const body = parseBody(reasonBody, req.body);
    const buyerId = idParam(req, 'buyerId', 'Buyer');
    const doc = await models.Buyer.findByIdAndUpdate(buyerId, { $set: { paused: true, pause: { reason: body.reason, by: 'operator', at: new Date() } } }, { returnDocument: 'after' }).lean<BuyerDoc>();
    if (!doc) throw new NotFoundError('Buyer');
    res.json(buyerState(doc));
  });
  router.post('/buyers/:buyerId/resume', async (req, res) => {
    const body = parseBody(optionalReason, req.body ?? {});
    const buyerId = idParam(req, 'buyerId', 'Buyer');
    if (!(await models.Buyer.exists({ _id: buyerId }))) throw new NotFoundError('Buyer');
    // Resuming also resets the buyer's tripped breakers (each acknowledged by its workflow),
    // otherwise the next lead would skip the buyer again.
    const endpoints = await models.Endpoint.find({ buyerId }).lean<EndpointDoc[]>();
    const reset: string[] = [];
    for (const endpoint of endpoints) {
      const state = await readBreaker(endpoint._id);
      if (state && state.state !== 'closed') {
        await commandBreaker(endpoint, 'reset', body.reason ?? 'buyer resumed by an operator');
        reset.push(endpoint._id);
      }
    }
    const doc = await models.Buyer.findByIdAndUpdate(buyerId, { $set: { paused: false }, $unset: { pause: 1 } }, { returnDocument: 'after' }).lean<BuyerDoc>();
    if (!doc) throw new NotFoundError('Buyer');
    res.json({ ...buyerState(doc), breakersReset: reset });
  });

  // ---- dead letters --------------------------------------------------------------------------
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
  const toInstant = (v: string | undefined, now: number) => (v === undefined ? undefined : tryParseDuration(v) !== undefined ? now - tryParseDuration(v)! : Date.parse(v));
  const toFilter = (f: z.infer<typeof filterSchema>): DeadLetterFilter => {
    const now = Date.now();
    const before = toInstant(f.olderThan, now);
    const after = toInstant(f.newerThan, now);
    return { ...(f.sourceId ? { sourceId: f.sourceId } : {}), ...(f.buyerId ? { buyerId: f.buyerId } : {}), ...(f.reason ? { reasonCode: f.reason } : {}), ...(before !== undefined ? { before } : {}), ...(after !== undefined ? { after } : {}) };
  };

  router.get('/dead-letters', async (req, res) => {
    const query = parseQuery(filterSchema.extend({ cursor: z.string().max(200).optional(), limit: z.coerce.number().int().min(1).max(500).optional() }), req.query);
    const { cursor, limit, ...filter } = query;
    res.json(await listDeadLetters(models, toFilter(filter), { ...(cursor ? { cursor } : {}), limit: limit ?? 100 }));
  });

  const leadHandle = (leadId: string) => client.workflow.getHandle(leadWorkflowId(leadId));
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

  const redeliverBody = z.object({ buyerId: id.optional(), fields: z.record(z.string(), z.unknown()).optional() }).strict();
  router.post('/leads/:leadId/redeliver', async (req, res) => {
    const leadId = idParam(req, 'leadId', 'Lead');
    const body = parseBody(redeliverBody, req.body ?? {});
    if (body.buyerId && !(await models.Buyer.exists({ _id: body.buyerId }))) throw new ValidationError([{ path: 'buyerId', message: `buyer ${body.buyerId} does not exist` }]);
    let fields: Record<string, unknown> | undefined;
    if (body.fields) {
      if ('id' in body.fields) throw new ValidationError([{ path: 'fields.id', message: "the lead's id cannot be corrected" }]);
      const parsed = leadSchema.safeParse({ email: 'placeholder@example.com', ...body.fields });
      if (!parsed.success) throw new ValidationError(fieldErrorsFromIssues(parsed.error.issues, 'fields.'));
      fields = Object.fromEntries(Object.keys(body.fields).map((k) => [k, (parsed.data as Record<string, unknown>)[k]]));
    }
    const result = await updateLead(leadId, () => leadHandle(leadId).executeUpdate(redeliverUpdate, { args: [{ by: 'operator', ...(body.buyerId ? { buyerId: body.buyerId } : {}), ...(fields ? { fields } : {}) }] }));
    res.status(202).json({ leadId, ...result });
  });
  router.post('/leads/:leadId/discard', async (req, res) => {
    const leadId = idParam(req, 'leadId', 'Lead');
    const body = parseBody(reasonBody, req.body);
    const result = await updateLead(leadId, () => leadHandle(leadId).executeUpdate(discardUpdate, { args: [{ by: 'operator', reason: body.reason }] }));
    res.json({ leadId, ...result });
  });

  // Bulk redelivery by filter: a workflow walks the matching dead letters; GET shows progress.
  router.post('/dead-letters/redeliver', async (req, res) => {
    const body = parseBody(filterSchema.extend({ toBuyerId: id.optional() }), req.body ?? {});
    const { toBuyerId, ...filter } = body;
    if (toBuyerId && !(await models.Buyer.exists({ _id: toBuyerId }))) throw new ValidationError([{ path: 'toBuyerId', message: `buyer ${toBuyerId} does not exist` }]);
    const bulkId = `bulk-${ulid().toLowerCase()}`;
    await withDeadline(() => client.workflow.start<typeof bulkRedeliverDeadLetters>('bulkRedeliverDeadLetters', {
      workflowId: bulkId,
      taskQueue: deps.deliveryTaskQueue,
      args: [{ filter: toFilter(filter), by: 'operator', ...(toBuyerId ? { buyerId: toBuyerId } : {}) }],
      staticSummary: `Bulk redelivery of dead letters${toBuyerId ? ` to ${toBuyerId}` : ''}`,
    }));
    res.status(202).json({ bulkId, progress: `/v1/admin/bulk/${bulkId}` });
  });
  router.get('/bulk/:bulkId', async (req, res) => {
    const bulkId = idParam(req, 'bulkId', 'Bulk redelivery');
    if (!bulkId.startsWith('bulk-')) throw new NotFoundError('Bulk redelivery');
    try {
      // The latest run (a bulk continues as new every few pages; each run answers for the whole bulk).
      const handle = client.workflow.getHandle(bulkId);
      const progress = await withDeadline(() => handle.query(bulkDeadLetterProgressQuery));
      res.json({ bulkId, ...(isLegacyProgress(progress) ? await legacyProgress(progress, () => withDeadline(() => handle.describe())) : progress) });
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) throw new NotFoundError('Bulk redelivery');
      throw error;
    }
  });

  // ---- stuck leads ---------------------------------------------------------------------------
  // Leads past their horizon (LeadExpectedBy) or that never got going, with what Temporal knows.
  const leadsQuery = z.object({ state: z.literal('stuck', { error: 'must be "stuck" (the only listing of running leads; dead letters: GET /v1/admin/dead-letters)' }), limit: z.coerce.number().int().min(1).max(500).optional() }).strict();
  router.get('/leads', async (req, res) => {
    const query = parseQuery(leadsQuery, req.query);
    // Each call inside has its own deadline (a listing of many leads takes more than one call's worth).
    const items = await findStuckLeads(client, { notStartedAfterMs: deps.stuckNotStartedAfterMs, limit: query.limit ?? 100 });
    res.json({ state: 'stuck', items });
  });

  // ---- alerts --------------------------------------------------------------------------------
  const channelView = (doc: AlertChannelDoc) => {
    const secrets = openJson<Record<string, unknown>>(deps.credentials, doc.secrets, alertChannelAad(doc._id));
    return { id: doc._id, kind: doc.kind, ...(doc.name ? { name: doc.name } : {}), ...doc.config, ...Object.fromEntries(Object.keys(secrets).map((k) => [k, maskSecret(secrets[k])])), createdAt: doc.createdAt };
  };
  /** What an alert supplies itself (the content), so operators give only where to send it. */
  const CONTENT: Record<string, Record<string, unknown>> = { email: { subject: 'alert', html: 'alert', text: 'alert' }, sms: { body: 'alert' } };
  router.post('/alert-channels', async (req, res) => {
    const body = parseBody(z.record(z.string(), z.unknown()), req.body);
    const { kind, name, ...settings } = body;
    if (typeof kind !== 'string' || !['webhook', 'email', 'sms'].includes(kind) || !deps.registry.get(kind)) {
      throw new ValidationError([{ path: 'kind', message: `must be one of ${['webhook', 'email', 'sms'].filter((k) => deps.registry.get(k)).join(', ')}` }]);
    }
    if (name !== undefined && (typeof name !== 'string' || name.length > 200)) throw new ValidationError([{ path: 'name', message: 'must be a string of at most 200 characters' }]);
    const parsed = deps.registry.parseSettings(kind, { ...CONTENT[kind], ...settings }, { generate: true });
    if ('errors' in parsed) throw new ValidationError(parsed.errors);
    const channelId = newId('endpoint').replace(/^ep_/, 'ach_');
    const config = Object.fromEntries(Object.entries(parsed.config).filter(([k]) => !(k in (CONTENT[kind] ?? {}))));
    const doc = await models.AlertChannel.create({ _id: channelId, kind, ...(typeof name === 'string' ? { name } : {}), config, secrets: sealJson(deps.credentials, parsed.secrets, alertChannelAad(channelId)) });
    const given = new Set(Object.keys(settings));
    res.status(201).json({ ...channelView(doc.toObject()), ...Object.fromEntries(Object.entries(parsed.secrets).filter(([k]) => !given.has(k))) });
  });
  router.get('/alert-channels', async (_req, res) => {
    res.json({ items: (await models.AlertChannel.find().sort({ createdAt: 1 }).lean<AlertChannelDoc[]>()).map(channelView) });
  });
  router.delete('/alert-channels/:channelId', async (req, res) => {
    const result = await models.AlertChannel.deleteOne({ _id: idParam(req, 'channelId', 'Alert channel') });
    if (result.deletedCount === 0) throw new NotFoundError('Alert channel');
    res.status(204).end();
  });
  router.get('/alerts', async (req, res) => {
    const { limit, type } = parseQuery(z.object({ limit: z.coerce.number().int().min(1).max(500).optional(), type: z.enum(['breaker_opened', 'breaker_recovered', 'dead_letter_digest']).optional() }).strict(), req.query);
    const docs = await models.Alert.find(type ? { type } : {}).sort({ at: -1 }).limit(limit ?? 100).lean();
    res.json({ items: docs.map((d) => ({ id: d._id, type: d.type, title: d.title, message: d.message, ...(d.endpointId ? { endpointId: d.endpointId } : {}), ...(d.buyerId ? { buyerId: d.buyerId } : {}), at: d.at, deliveries: d.deliveries })) });
  });

  return router;
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

/** Query strings are flat strings; anything else (arrays, objects) is a 400 with the field named. */
function parseQuery<S extends z.ZodType>(schema: S, query: unknown): z.infer<S> {
  const result = schema.safeParse(query);
  if (!result.success) throw new ValidationError(fieldErrorsFromIssues(result.error.issues, 'query.'));
  return result.data;
}

