/**
 * Lead sources (admin use cases): create with a first API key (shown once), list, read, change,
 * archive, set the waterfall, rotate and revoke keys. Every change that affects how a source's key
 * is checked tells the key cache (`SourceAuth.invalidate`) so it applies at once in this process.
 */
import { z } from 'zod';
import { generateApiKey } from '../../../shared/api-keys';
import { ValidationError, type FieldError } from '../../../shared/errors';
import type { SourceAuth } from '../../../shared/http/auth';
import { durationString, idString as id, nameString, parseBody } from '../../../shared/http/validate';
import { newId } from '../../../shared/ids';
import { DEFAULT_DUPLICATE_WINDOW, DEFAULT_FRESHNESS, duplicateWindowSchema } from '../../../shared/source';
import type { BuyerDoc, Models, SourceDoc } from '../../../shared/store';
import { archive, archivedFilter, mustFind, updateLive } from './documents';
import { issueKey, keysView, revokeKey } from './keys';
import { returnCounts, type ReturnCounts } from '../returns';

export interface SourceDeps {
  models: Models;
  sources: SourceAuth;
}

export const WATERFALL_MAX = 50;

const sourceCreate = z
  .object({
    name: nameString,
    waterfall: z.array(id).max(WATERFALL_MAX).optional(),
    freshness: durationString.optional(),
    retention: durationString.optional(),
    duplicateWindow: duplicateWindowSchema.optional(),
  })
  .strict();
const sourcePatch = z
  .object({ name: nameString.optional(), freshness: durationString.optional(), retention: durationString.optional(), duplicateWindow: duplicateWindowSchema.optional() })
  .strict();
const waterfallPut = z
  .object({ buyers: z.array(id).max(WATERFALL_MAX, `at most ${WATERFALL_MAX} buyers`).refine((a) => new Set(a).size === a.length, 'must not name a buyer twice') })
  .strict();

export function sourceView(doc: SourceDoc, returns?: ReturnCounts) {
  return {
    id: doc._id,
    name: doc.name,
    waterfall: doc.waterfall,
    freshness: doc.freshness ?? DEFAULT_FRESHNESS,
    ...(doc.retention ? { retention: doc.retention } : {}),
    duplicateWindow: doc.duplicateWindow ?? DEFAULT_DUPLICATE_WINDOW,
    keys: keysView(doc.keys),
    ...(returns ? { returns } : {}),
    createdAt: doc.createdAt,
    updatedAt: doc.updatedAt,
    ...(doc.archivedAt ? { archivedAt: doc.archivedAt } : {}),
  };
}
export type SourceView = ReturnType<typeof sourceView>;

export function createSourceUseCases(deps: SourceDeps) {
  const { models } = deps;

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

  return {
    /** A new source and its first API key, shown this once. */
    async create(input: unknown): Promise<SourceView & { apiKey: string }> {
      const body = parseBody(sourceCreate, input);
      if (body.waterfall) await checkBuyersExist(body.waterfall, 'waterfall');
      const key = generateApiKey('source');
      const doc = await models.Source.create({
        _id: newId('source'),
        name: body.name,
        waterfall: body.waterfall ?? [],
        ...(body.freshness ? { freshness: body.freshness } : {}),
        ...(body.retention ? { retention: body.retention } : {}),
        ...(body.duplicateWindow ? { duplicateWindow: body.duplicateWindow } : {}),
        keys: [{ keyId: key.keyId, hash: key.hash, createdAt: new Date() }],
      });
      return { ...sourceView(doc.toObject()), apiKey: key.apiKey };
    },

    async list(options: { archived?: unknown } = {}): Promise<SourceView[]> {
      const docs = await models.Source.find(archivedFilter(options.archived)).sort({ createdAt: 1 }).limit(1000).lean<SourceDoc[]>();
      return docs.map((d) => sourceView(d));
    },

    /** A source, with the returns of its leads counted per status. */
    async get(sourceId: string): Promise<SourceView> {
      const doc = await mustFind(models.Source.findById(sourceId).lean<SourceDoc>(), 'Source');
      return sourceView(doc, await returnCounts(models, { sourceId }));
    },

    async update(sourceId: string, input: unknown): Promise<SourceView> {
      const body = parseBody(sourcePatch, input);
      const doc = await updateLive(models.Source, { _id: sourceId }, { $set: body }, 'Source');
      // The duplicate window travels with the key check: forget cached answers so it applies at once here.
      if (body.duplicateWindow !== undefined) deps.sources.invalidate(sourceId);
      return sourceView(doc);
    },

    async archive(sourceId: string): Promise<void> {
      await archive(models.Source, { _id: sourceId }, 'Source', new Date());
      // Its keys stop authenticating: at once in this process, within the key cache (5 s) elsewhere.
      deps.sources.invalidate(sourceId);
    },

    async getWaterfall(sourceId: string): Promise<{ sourceId: string; buyers: string[] }> {
      const doc = await mustFind(models.Source.findById(sourceId).lean<SourceDoc>(), 'Source');
      return { sourceId: doc._id, buyers: doc.waterfall };
    },

    async setWaterfall(sourceId: string, input: unknown): Promise<{ sourceId: string; buyers: string[] }> {
      const body = parseBody(waterfallPut, input);
      await checkBuyersExist(body.buyers, 'buyers');
      const doc = await updateLive(models.Source, { _id: sourceId }, { $set: { waterfall: body.buyers } }, 'Source');
      return { sourceId: doc._id, buyers: doc.waterfall };
    },

    /** Rotation: a new key beside the old ones (which stay valid until revoked), shown this once. */
    async addKey(sourceId: string): Promise<{ keyId: string; apiKey: string }> {
      return issueKey(models.Source, sourceId, 'source', 'Source');
    },

    async revokeKey(sourceId: string, keyId: string): Promise<void> {
      await revokeKey(models.Source, sourceId, keyId, 'Source');
      deps.sources.invalidate(sourceId);
    },
  };
}
export type SourceUseCases = ReturnType<typeof createSourceUseCases>;
