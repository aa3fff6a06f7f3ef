/**
 * Admin API (admin token): lead sources and their keys, buyers, their endpoints, and each
 * source's waterfall. Stored in MongoDB. Secrets are sealed at rest, shown once at creation,
 * masked afterwards. DELETE archives (sets `archivedAt`) instead of removing: in-flight leads
 * loaded their routing plan from these documents, dead letters wait for redelivery and the
 * delivery log names them forever. Archived documents are hidden from lists (`?archived=true`
 * shows them), readable by id, and cannot be changed (409 `archived`).
 */
import { Router, type Request } from 'express';
import type { Model } from 'mongoose';
import { z } from 'zod';
import { generateApiKey } from '../../shared/api-keys';
import { openJson, sealJson, type KeyRing } from '../../shared/crypto';
import { tryParseDuration, DURATION_HINT } from '../../shared/durations';
import { AppError, ConflictError, NotFoundError, ValidationError, fieldErrorsFromIssues, type FieldError } from '../../shared/errors';
import { newId } from '../../shared/ids';
import type { EndpointDoc, Models, SourceDoc, BuyerDoc } from '../../shared/models';
import { maskSecret } from '../../shared/redact';
import type { Registry } from '../../activities/registry';
import { DEFAULT_BACKOFF, DEFAULT_BREAKER, DEFAULT_FRESHNESS, DEFAULT_TIMEOUT_MS, endpointSecretsAad, loadEndpointFromDoc } from '../../activities/delivery';
import { leadSchema } from '../../shared/lead';
import { MappingError } from '../../shared/mapping';
import type { SourceAuth } from './auth';
import { idParam, parseBody } from './validate';
import { DEFAULT_DUPLICATE_WINDOW, MAX_DUPLICATE_WINDOW_MS } from './dedupe';

export interface AdminDeps {
  models: Models;
  registry: Registry;
  credentials: KeyRing;
  sources: SourceAuth;
}

/** The lead a preview renders when none is given. */
export const SAMPLE_LEAD = {
  first_name: 'Ada', last_name: 'Lovelace', email: 'ada@example.com', phone: '+15550100000', address: '12 St James Sq',
  city: 'London', state: 'LDN', zip: 'SW1Y 4JU', country: 'GB', consent: { granted: true, at: '2026-01-01T12:00:00Z' }, custom: { loan_amount: 25000 },
};

const name = z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters');
const durationString = z.string().refine((v) => tryParseDuration(v) !== undefined, { message: `must be ${DURATION_HINT}` });
const id = z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/, 'must be an id');
const duplicateWindow = durationString.refine((v) => (tryParseDuration(v) ?? 0) <= MAX_DUPLICATE_WINDOW_MS, { message: 'must be at most "1d" ("0s" turns the window off)' });

const sourceCreate = z.object({ name, waterfall: z.array(id).max(50).optional(), freshness: durationString.optional(), retention: durationString.optional(), duplicateWindow: duplicateWindow.optional() }).strict();
const sourcePatch = z.object({ name: name.optional(), freshness: durationString.optional(), retention: durationString.optional(), duplicateWindow: duplicateWindow.optional() }).strict();
const waterfallPut = z.object({ buyers: z.array(id).max(50, 'at most 50 buyers').refine((a) => new Set(a).size === a.length, 'must not name a buyer twice') }).strict();
const buyerCreate = z.object({ name, accept: z.enum(['all', 'any']).optional() }).strict();
const buyerPatch = z.object({ name: name.optional(), accept: z.enum(['all', 'any']).optional() }).strict();

/** Settings every endpoint has, whatever its kind. The rest of the body is the kind's. */
const endpointCommon = z.object({
  kind: z.string(),
  name: name.optional(),
  role: z.enum(['accept', 'notify']).optional(),
  mapping: z.record(z.string(), z.unknown()).optional(),
  backoff: z.array(durationString).max(20, 'at most 20 steps').optional(),
  timeoutMs: z.number().int().min(100, 'must be at least 100').max(30_000, 'must be at most 30000').optional(),
  breaker: z
    .object({ threshold: z.number().int().min(1).max(1000).optional(), coolDown: durationString.optional() })
    .strict()
    .optional(),
});
const COMMON_KEYS = new Set(Object.keys(endpointCommon.shape));

function sourceView(doc: SourceDoc) {
  return {
    id: doc._id,
    name: doc.name,
    waterfall: doc.waterfall,
    freshness: doc.freshness ?? DEFAULT_FRESHNESS,
    ...(doc.retention ? { retention: doc.retention } : {}),
    duplicateWindow: doc.duplicateWindow ?? DEFAULT_DUPLICATE_WINDOW,
    keys: doc.keys.map((k) => ({ keyId: k.keyId, createdAt: k.createdAt, ...(k.revokedAt ? { revokedAt: k.revokedAt } : {}) })),
    createdAt: doc.createdAt,
    updatedAt: doc.updatedAt,
    ...(doc.archivedAt ? { archivedAt: doc.archivedAt } : {}),
  };
}

/** Not archived (the filter every change and every default list adds). */
const LIVE = { archivedAt: { $exists: false } } as const;

/** `?archived=true` includes archived documents in a list; default (or `false`): live ones only. */
function archivedFilter(req: Request): Record<string, unknown> {
  const value = req.query.archived;
  if (value === undefined || value === 'false') return LIVE;
  if (value === 'true') return {};
  throw new ValidationError([{ path: 'query.archived', message: 'must be true or false' }]);
}

function archivedError(what: string): ConflictError {
  return new ConflictError('archived', `The ${what} is archived and cannot be changed.`);
}

function buyerView(doc: BuyerDoc, endpoints?: number) {
  return {
    id: doc._id,
    name: doc.name,
    accept: doc.accept,
    paused: doc.paused ?? false,
    ...(doc.paused && doc.pause ? { pause: doc.pause } : {}),
    createdAt: doc.createdAt,
    updatedAt: doc.updatedAt,
    ...(doc.archivedAt ? { archivedAt: doc.archivedAt } : {}),
    ...(endpoints !== undefined ? { endpoints } : {}),
  };
}

/** Masks every string inside a secret value except structural fields (auth type, header name). */
function maskValue(value: unknown): unknown {
  if (typeof value === 'string') return maskSecret(value);
  if (Array.isArray(value)) return value.map(maskValue);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, ['type', 'header', 'username'].includes(k) ? v : maskValue(v)]));
  }
  return value;
}

export function createAdminRoutes(deps: AdminDeps): Router {
  const { models, registry, credentials } = deps;
  const router = Router();

  const endpointView = (doc: EndpointDoc) => {
    const secrets = openJson<Record<string, unknown>>(credentials, doc.secrets, endpointSecretsAad(doc._id));
    return {
      id: doc._id,
      buyerId: doc.buyerId,
      kind: doc.kind,
      ...(doc.name ? { name: doc.name } : {}),
      role: doc.role,
      ...doc.config,
      ...Object.fromEntries(Object.entries(secrets).map(([k, v]) => [k, maskValue(v)])),
      ...(doc.mapping ? { mapping: doc.mapping } : {}),
      backoff: doc.backoff ?? DEFAULT_BACKOFF,
      timeoutMs: doc.timeoutMs,
      breaker: { threshold: doc.breaker?.threshold ?? DEFAULT_BREAKER.threshold, coolDown: doc.breaker?.coolDown ?? DEFAULT_BREAKER.coolDown },
      version: doc.version,
      createdAt: doc.createdAt,
      updatedAt: doc.updatedAt,
      ...(doc.archivedAt ? { archivedAt: doc.archivedAt } : {}),
    };
  };

  async function mustFind<T>(query: Promise<T | null>, what: string): Promise<T> {
    const doc = await query;
    if (!doc) throw new NotFoundError(what);
    return doc;
  }

  /**
   * Changes a document unless it is archived (one atomic update guarded by the filter); when
   * nothing matched, says why: 404 (no such document) or 409 `archived`.
   */
  async function updateLive<T extends { _id: string }>(model: Model<T>, filter: Record<string, unknown>, update: Record<string, unknown>, what: string): Promise<T> {
    const doc = await model.findOneAndUpdate({ ...filter, ...LIVE }, update, { returnDocument: 'after' }).lean<T>();
    if (doc) return doc;
    const found = await model.findOne(filter, { archivedAt: 1 }).lean<{ archivedAt?: Date }>();
    if (!found) throw new NotFoundError(what);
    throw archivedError(what.toLowerCase());
  }

  /** Archives a document (idempotent: an archived one stays as it was); 404 when there is none. */
  async function archive<T extends { _id: string }>(model: Model<T>, filter: Record<string, unknown>, what: string, at: Date): Promise<void> {
    const doc = await model.findOneAndUpdate({ ...filter, ...LIVE }, { $set: { archivedAt: at } }).lean<T>();
    if (doc) return;
    await mustFind(model.findOne(filter, { _id: 1 }).lean(), what);
  }

  // ---- sources -------------------------------------------------------------------------------
  router.post('/sources', async (req, res) => {
    const body = parseBody(sourceCreate, req.body);
    if (body.waterfall) await checkBuyersExist(body.waterfall, 'waterfall');
    const key = generateApiKey();
    const doc = await models.Source.create({ _id: newId('source'), name: body.name, waterfall: body.waterfall ?? [], ...(body.freshness ? { freshness: body.freshness } : {}), ...(body.retention ? { retention: body.retention } : {}), ...(body.duplicateWindow ? { duplicateWindow: body.duplicateWindow } : {}), keys: [{ keyId: key.keyId, hash: key.hash, createdAt: new Date() }] });
    res.status(201).json({ ...sourceView(doc.toObject()), apiKey: key.apiKey });
  });
  router.get('/sources', async (req, res) => {
    const docs = await models.Source.find(archivedFilter(req)).sort({ createdAt: 1 }).limit(1000).lean<SourceDoc[]>();
    res.json({ items: docs.map(sourceView) });
  });
  router.get('/sources/:sourceId', async (req, res) => {
    res.json(sourceView(await mustFind(models.Source.findById(idParam(req, 'sourceId', 'Source')).lean<SourceDoc>(), 'Source')));
  });
  router.patch('/sources/:sourceId', async (req, res) => {
    const body = parseBody(sourcePatch, req.body);
    const sourceId = idParam(req, 'sourceId', 'Source');
    const doc = await updateLive(models.Source, { _id: sourceId }, { $set: body }, 'Source');
    // The duplicate window travels with the key check: forget cached answers so it applies at once here.
    if (body.duplicateWindow !== undefined) deps.sources.invalidate(sourceId);
    res.json(sourceView(doc));
  });
  router.delete('/sources/:sourceId', async (req, res) => {
    const sourceId = idParam(req, 'sourceId', 'Source');
    await archive(models.Source, { _id: sourceId }, 'Source', new Date());
    // Its keys stop authenticating: at once in this process, within the key cache (5 s) elsewhere.
    deps.sources.invalidate(sourceId);
    res.status(204).end();
  });
  router.put('/sources/:sourceId/waterfall', async (req, res) => {
    const body = parseBody(waterfallPut, req.body);
    const sourceId = idParam(req, 'sourceId', 'Source');
    await checkBuyersExist(body.buyers, 'buyers');
    const doc = await updateLive(models.Source, { _id: sourceId }, { $set: { waterfall: body.buyers } }, 'Source');
    res.json({ sourceId: doc._id, buyers: doc.waterfall });
  });
  router.get('/sources/:sourceId/waterfall', async (req, res) => {
    const doc = await mustFind(models.Source.findById(idParam(req, 'sourceId', 'Source')).lean<SourceDoc>(), 'Source');
    res.json({ sourceId: doc._id, buyers: doc.waterfall });
  });
  // Keys: rotate (add a new one, the old stays valid until revoked) and revoke.
  router.post('/sources/:sourceId/keys', async (req, res) => {
    const sourceId = idParam(req, 'sourceId', 'Source');
    const key = generateApiKey();
    await updateLive(models.Source, { _id: sourceId }, { $push: { keys: { keyId: key.keyId, hash: key.hash, createdAt: new Date() } } }, 'Source');
    res.status(201).json({ keyId: key.keyId, apiKey: key.apiKey });
  });
  router.delete('/sources/:sourceId/keys/:keyId', async (req, res) => {
    const sourceId = idParam(req, 'sourceId', 'Source');
    const keyId = idParam(req, 'keyId', 'Key');
    // Read-modify-write guarded by updatedAt (FerretDB has no positional `$` update operator).
    const source = await mustFind(models.Source.findById(sourceId).lean<SourceDoc>(), 'Source');
    if (source.archivedAt) throw archivedError('source');
    if (!source.keys.some((k) => k.keyId === keyId)) throw new NotFoundError('Key');
    const keys = source.keys.map((k) => (k.keyId === keyId && !k.revokedAt ? { ...k, revokedAt: new Date() } : k));
    const result = await models.Source.updateOne({ _id: sourceId, updatedAt: source.updatedAt, ...LIVE }, { $set: { keys } });
    if (result.matchedCount === 0) throw new ConflictError('concurrent_change', 'The source changed meanwhile; retry.');
    deps.sources.invalidate(sourceId);
    res.status(204).end();
  });

  /** Every buyer of a waterfall exists and is not archived (a 400 naming each bad entry). */
  async function checkBuyersExist(buyerIds: string[], path: string): Promise<void> {
    const found = new Map((await models.Buyer.find({ _id: { $in: buyerIds } }, { _id: 1, archivedAt: 1 }).lean<Array<Pick<BuyerDoc, '_id' | 'archivedAt'>>>()).map((b) => [b._id, b]));
    const errors: FieldError[] = buyerIds.flatMap((buyerId, index) => {
      const buyer = found.get(buyerId);
      if (!buyer) return [{ path: `${path}.${index}`, message: `buyer ${buyerId} does not exist` }];
      if (buyer.archivedAt) return [{ path: `${path}.${index}`, message: `buyer ${buyerId} is archived` }];
      return [];
    });
    if (errors.length) throw new ValidationError(errors);
  }

  // ---- buyers --------------------------------------------------------------------------------
  router.post('/buyers', async (req, res) => {
    const body = parseBody(buyerCreate, req.body);
    const doc = await models.Buyer.create({ _id: newId('buyer'), name: body.name, accept: body.accept ?? 'all' });
    res.status(201).json(buyerView(doc.toObject()));
  });
  router.get('/buyers', async (req, res) => {
    const docs = await models.Buyer.find(archivedFilter(req)).sort({ createdAt: 1 }).limit(1000).lean<BuyerDoc[]>();
    res.json({ items: docs.map((d) => buyerView(d)) });
  });
  router.get('/buyers/:buyerId', async (req, res) => {
    const buyerId = idParam(req, 'buyerId', 'Buyer');
    const doc = await mustFind(models.Buyer.findById(buyerId).lean<BuyerDoc>(), 'Buyer');
    res.json(buyerView(doc, await models.Endpoint.countDocuments({ buyerId, ...LIVE })));
  });
  router.patch('/buyers/:buyerId', async (req, res) => {
    const body = parseBody(buyerPatch, req.body);
    const doc = await updateLive(models.Buyer, { _id: idParam(req, 'buyerId', 'Buyer') }, { $set: body }, 'Buyer');
    res.json(buyerView(doc));
  });
  router.delete('/buyers/:buyerId', async (req, res) => {
    const buyerId = idParam(req, 'buyerId', 'Buyer');
    // Archived sources take no new leads (and cannot be changed): their waterfalls do not hold a buyer.
    const users = await models.Source.find({ waterfall: buyerId, ...LIVE }, { _id: 1 }).lean();
    if (users.length) throw new ConflictError('buyer_in_use', 'Remove the buyer from these waterfalls first.', { sources: users.map((s) => s._id) });
    const at = new Date();
    await archive(models.Buyer, { _id: buyerId }, 'Buyer', at);
    await models.Endpoint.updateMany({ buyerId, ...LIVE }, { $set: { archivedAt: at } });
    res.status(204).end();
  });

  // ---- endpoints -----------------------------------------------------------------------------
  function splitEndpointBody(body: Record<string, unknown>) {
    const common: Record<string, unknown> = {};
    const settings: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(body)) (COMMON_KEYS.has(key) ? common : settings)[key] = value;
    return { common, settings };
  }

  function checkEndpoint(kind: string, settings: Record<string, unknown>, mapping: unknown, generate: boolean) {
    const parsed = registry.parseSettings(kind, settings, { generate });
    if ('errors' in parsed) throw new ValidationError(parsed.errors);
    const extra = registry.get(kind)?.validate?.(parsed.config, parsed.secrets, mapping) ?? [];
    if (extra.length) throw new ValidationError(extra);
    return parsed;
  }

  router.post('/buyers/:buyerId/endpoints', async (req, res) => {
    const buyerId = idParam(req, 'buyerId', 'Buyer');
    const buyer = await mustFind(models.Buyer.findById(buyerId, { archivedAt: 1 }).lean<Pick<BuyerDoc, '_id' | 'archivedAt'>>(), 'Buyer');
    if (buyer.archivedAt) throw archivedError('buyer');
    const body = parseBody(z.record(z.string(), z.unknown()), req.body);
    const { common: commonIn, settings } = splitEndpointBody(body);
    const common = parseBody(endpointCommon, commonIn);
    if (!registry.get(common.kind)) throw new ValidationError([{ path: 'kind', message: `must be one of ${registry.kinds().map((k) => k.kind).join(', ')}` }]);
    const parsed = checkEndpoint(common.kind, settings, common.mapping, true);
    const endpointId = newId('endpoint');
    const given = new Set(Object.keys(settings));
    const generated = Object.fromEntries(Object.entries(parsed.secrets).filter(([k]) => !given.has(k)));
    const doc = await models.Endpoint.create({
      _id: endpointId,
      buyerId,
      kind: common.kind,
      ...(common.name ? { name: common.name } : {}),
      role: common.role ?? 'accept',
      config: parsed.config,
      secrets: sealJson(credentials, parsed.secrets, endpointSecretsAad(endpointId)),
      ...(common.mapping ? { mapping: common.mapping } : {}),
      backoff: common.backoff ?? DEFAULT_BACKOFF,
      timeoutMs: common.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      breaker: { threshold: common.breaker?.threshold ?? DEFAULT_BREAKER.threshold, coolDown: common.breaker?.coolDown ?? DEFAULT_BREAKER.coolDown },
      version: 1,
    });
    // The buyer archived meanwhile (no transactions): its endpoints are archived, this one too.
    if ((await models.Buyer.findById(buyerId, { archivedAt: 1 }).lean<Pick<BuyerDoc, 'archivedAt'>>())?.archivedAt) {
      await models.Endpoint.updateOne({ _id: endpointId }, { $set: { archivedAt: new Date() } });
      throw archivedError('buyer');
    }
    // Secrets we generated are shown this once, in clear; afterwards only masked.
    res.status(201).json({ ...endpointView(doc.toObject()), ...generated });
  });
  router.get('/buyers/:buyerId/endpoints', async (req, res) => {
    const buyerId = idParam(req, 'buyerId', 'Buyer');
    await mustFind(models.Buyer.findById(buyerId).lean(), 'Buyer');
    const docs = await models.Endpoint.find({ buyerId, ...archivedFilter(req) }).sort({ createdAt: 1 }).lean<EndpointDoc[]>();
    res.json({ items: docs.map(endpointView) });
  });
  const findEndpoint = async (buyerId: string, endpointId: string) => mustFind(models.Endpoint.findOne({ _id: endpointId, buyerId }).lean<EndpointDoc>(), 'Endpoint');
  router.get('/buyers/:buyerId/endpoints/:endpointId', async (req, res) => {
    res.json(endpointView(await findEndpoint(idParam(req, 'buyerId', 'Buyer'), idParam(req, 'endpointId', 'Endpoint'))));
  });
  router.patch('/buyers/:buyerId/endpoints/:endpointId', async (req, res) => {
    const current = await findEndpoint(idParam(req, 'buyerId', 'Buyer'), idParam(req, 'endpointId', 'Endpoint'));
    if (current.archivedAt) throw archivedError('endpoint');
    const body = parseBody(z.record(z.string(), z.unknown()), req.body);
    const { common: commonIn, settings } = splitEndpointBody(body);
    const common = parseBody(endpointCommon.partial(), commonIn);
    if (common.kind !== undefined && common.kind !== current.kind) throw new ValidationError([{ path: 'kind', message: 'cannot change; create a new endpoint instead' }]);
    const secrets = openJson<Record<string, unknown>>(credentials, current.secrets, endpointSecretsAad(current._id));
    const mapping = common.mapping ?? current.mapping;
    const parsed = checkEndpoint(current.kind, { ...current.config, ...secrets, ...settings }, mapping, false);
    const doc = await updateLive(
      models.Endpoint,
      { _id: current._id },
      {
        $set: {
          config: parsed.config,
          secrets: sealJson(credentials, parsed.secrets, endpointSecretsAad(current._id)),
          ...(common.name !== undefined ? { name: common.name } : {}),
          ...(common.role !== undefined ? { role: common.role } : {}),
          ...(common.mapping !== undefined ? { mapping: common.mapping } : {}),
          ...(common.backoff !== undefined ? { backoff: common.backoff } : {}),
          ...(common.timeoutMs !== undefined ? { timeoutMs: common.timeoutMs } : {}),
          ...(common.breaker !== undefined ? { breaker: { ...DEFAULT_BREAKER, ...current.breaker, ...common.breaker } } : {}),
        },
        $inc: { version: 1 },
      },
      'Endpoint',
    );
    res.json(endpointView(doc));
  });
  router.delete('/buyers/:buyerId/endpoints/:endpointId', async (req, res) => {
    const current = await findEndpoint(idParam(req, 'buyerId', 'Buyer'), idParam(req, 'endpointId', 'Endpoint'));
    await archive(models.Endpoint, { _id: current._id }, 'Endpoint', new Date());
    res.status(204).end();
  });

  // Mapping preview: the exact request a sample lead would produce, secrets masked, nothing sent.
  router.post('/buyers/:buyerId/endpoints/:endpointId/preview', async (req, res) => {
    const current = await findEndpoint(idParam(req, 'buyerId', 'Buyer'), idParam(req, 'endpointId', 'Endpoint'));
    const body = parseBody(z.object({ lead: z.record(z.string(), z.unknown()).optional() }).strict(), req.body ?? {});
    const parsed = leadSchema.safeParse(body.lead ?? SAMPLE_LEAD);
    if (!parsed.success) throw new ValidationError(fieldErrorsFromIssues(parsed.error.issues, 'lead.'));
    const { id: clientId, ...lead } = parsed.data;
    const endpoint = loadEndpointFromDoc(current, credentials);
    try {
      const request = registry.preview(endpoint, {
        leadId: 'ld_preview', sourceId: 'src_preview', receivedAt: Date.now(), ...(clientId ? { clientId } : {}), lead,
        endpointId: current._id, buyerId: current.buyerId, attempt: 1, now: Date.now(),
      });
      res.json({ endpointId: current._id, kind: current.kind, lead: body.lead ?? SAMPLE_LEAD, request });
    } catch (error) {
      if (error instanceof MappingError) throw new AppError(422, 'mapping_error', error.message, { key: error.key ?? null });
      throw error;
    }
  });

  router.get('/kinds', (_req, res) => {
    res.json({ items: registry.kinds().map((k) => ({ kind: k.kind, description: k.description, secrets: registry.secretKeys(k.kind) })) });
  });

  return router;
}
