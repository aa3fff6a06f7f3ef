/**
 * API keys of a key holder (a source's `lds_…` keys, a buyer's `ldb_…` keys), for the admin use
 * cases: issue one (shown once, only its hash stored) and revoke one. The key format is
 * shared/api-keys.ts; how keys are checked is shared/http/auth.ts.
 */
import type { Model } from 'mongoose';
import { generateApiKey, type ApiKeyKind } from '../../../shared/api-keys';
import { ConflictError, NotFoundError } from '../../../shared/errors';
import type { SourceKey } from '../../../shared/store';
import { LIVE, archivedError, mustFind, updateLive } from './documents';

interface KeyHolder {
  _id: string;
  keys?: SourceKey[];
  archivedAt?: Date;
  updatedAt: Date;
}

/** The keys as shown: ids and dates, never the hash. */
export function keysView(keys: SourceKey[] | undefined) {
  return (keys ?? []).map((k) => ({ keyId: k.keyId, createdAt: k.createdAt, ...(k.revokedAt ? { revokedAt: k.revokedAt } : {}) }));
}

/** A new key beside the holder's others (which stay valid until revoked), shown this once. */
export async function issueKey<T extends KeyHolder>(model: Model<T>, holderId: string, kind: ApiKeyKind, what: string): Promise<{ keyId: string; apiKey: string }> {
  const key = generateApiKey(kind);
  await updateLive(model, { _id: holderId }, { $push: { keys: { keyId: key.keyId, hash: key.hash, createdAt: new Date() } } }, what);
  return { keyId: key.keyId, apiKey: key.apiKey };
}

/** Revokes one key (idempotent for a revoked key); 404 for an unknown key, 409 for an archived holder. */
export async function revokeKey<T extends KeyHolder>(model: Model<T>, holderId: string, keyId: string, what: string): Promise<void> {
  // Read-modify-write guarded by updatedAt (FerretDB has no positional `$` update operator).
  const holder = await mustFind(model.findById(holderId).lean<T>(), what);
  if (holder.archivedAt) throw archivedError(what.toLowerCase());
  if (!holder.keys?.some((k) => k.keyId === keyId)) throw new NotFoundError('Key');
  const keys = holder.keys.map((k) => (k.keyId === keyId && !k.revokedAt ? { ...k, revokedAt: new Date() } : k));
  const result = await model.updateOne({ _id: holderId, updatedAt: holder.updatedAt, ...LIVE }, { $set: { keys } });
  if (result.matchedCount === 0) throw new ConflictError('concurrent_change', `The ${what.toLowerCase()} changed meanwhile; retry.`);
}
