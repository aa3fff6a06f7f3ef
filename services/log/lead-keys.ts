/**
 * Per-lead data keys of the delivery log (crypto-shredding). Created with the lead's first
 * journal write, sealed with the LOG_KEYS ring, deleted when the lead's PII expires (the source's
 * retention, default PII_RETENTION). Cached briefly in memory.
 */
import { randomBytes } from 'node:crypto';
import { openJson, sealJson, type KeyRing } from '../../shared/crypto';
import { isDuplicateKeyError, type LeadKeyDoc, type Models } from '../../shared/store';

const CACHE_MS = 30_000;
const aad = (leadId: string) => `lead-key:${leadId}`;

export interface LeadKeys {
  /** The lead's key, created if missing; undefined when it was shredded. */
  ensure(leadId: string, sourceId: string, expiresAt: Date): Promise<Buffer | undefined>;
  get(leadId: string): Promise<Buffer | undefined>;
  getMany(leadIds: string[]): Promise<Map<string, Buffer>>;
  forget(leadId: string): void;
}

export function createLeadKeys(models: Models, ring: KeyRing): LeadKeys {
  const cache = new Map<string, { at: number; key: Buffer | undefined }>();
  const open = (doc: LeadKeyDoc | null | undefined) => (doc?.key ? Buffer.from(openJson<string>(ring, doc.key, aad(doc._id)), 'base64') : undefined);
  const remember = (leadId: string, key: Buffer | undefined) => {
    if (cache.size > 50_000) cache.clear();
    cache.set(leadId, { at: Date.now(), key });
    return key;
  };

  return {
    async ensure(leadId, sourceId, expiresAt) {
      const hit = cache.get(leadId);
      if (hit && Date.now() - hit.at < CACHE_MS && hit.key) return hit.key;
      const raw = randomBytes(32);
      const fresh: LeadKeyDoc = { _id: leadId, sourceId, key: sealJson(ring, raw.toString('base64'), aad(leadId)), createdAt: new Date(), expiresAt };
      // Insert, and on a duplicate read back: two writers agree on the first key written (and a
      // shredded key stays shredded).
      try {
        await models.LeadKey.insertMany([fresh], { lean: true });
        return remember(leadId, raw);
      } catch (error) {
        if (!isDuplicateKeyError(error)) throw error;
      }
      return remember(leadId, open(await models.LeadKey.findById(leadId).lean<LeadKeyDoc>()));
    },
    async get(leadId) {
      const hit = cache.get(leadId);
      if (hit && Date.now() - hit.at < CACHE_MS) return hit.key;
      return remember(leadId, open(await models.LeadKey.findById(leadId).lean<LeadKeyDoc>()));
    },
    async getMany(leadIds) {
      const unique = [...new Set(leadIds)];
      const docs = await models.LeadKey.find({ _id: { $in: unique } }).lean<LeadKeyDoc[]>();
      const out = new Map<string, Buffer>();
      for (const doc of docs) {
        const key = open(doc);
        if (key) out.set(doc._id, key);
      }
      return out;
    },
    forget(leadId) {
      cache.delete(leadId);
    },
  };
}
