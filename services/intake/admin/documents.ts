/**
 * How the admin use cases treat stored settings documents (sources, buyers, endpoints): they are
 * archived, never deleted, while leads reference them; archived documents are hidden from lists
 * unless asked for, readable by id, and cannot be changed (409 `archived`).
 */
import type { Model } from 'mongoose';
import { ConflictError, NotFoundError, ValidationError } from '../../../shared/errors';

/** Not archived (the filter every change and every default list adds). */
export const LIVE = { archivedAt: { $exists: false } } as const;

/** `archived=true` includes archived documents in a list; absent or `false`: live ones only. */
export function archivedFilter(value: unknown): Record<string, unknown> {
  if (value === undefined || value === 'false' || value === false) return LIVE;
  if (value === 'true' || value === true) return {};
  throw new ValidationError([{ path: 'query.archived', message: 'must be true or false' }]);
}

export function archivedError(what: string): ConflictError {
  return new ConflictError('archived', `The ${what} is archived and cannot be changed.`);
}

export async function mustFind<T>(query: Promise<T | null>, what: string): Promise<T> {
  const doc = await query;
  if (!doc) throw new NotFoundError(what);
  return doc;
}

/**
 * Changes a document unless it is archived (one atomic update guarded by the filter); when
 * nothing matched, says why: 404 (no such document) or 409 `archived`.
 */
export async function updateLive<T extends { _id: string }>(model: Model<T>, filter: Record<string, unknown>, update: Record<string, unknown>, what: string): Promise<T> {
  const doc = await model.findOneAndUpdate({ ...filter, ...LIVE }, update, { returnDocument: 'after' }).lean<T>();
  if (doc) return doc;
  const found = await model.findOne(filter, { archivedAt: 1 }).lean<{ archivedAt?: Date }>();
  if (!found) throw new NotFoundError(what);
  throw archivedError(what.toLowerCase());
}

/** Archives a document (idempotent: an archived one stays as it was); 404 when there is none. */
export async function archive<T extends { _id: string }>(model: Model<T>, filter: Record<string, unknown>, what: string, at: Date): Promise<void> {
  const doc = await model.findOneAndUpdate({ ...filter, ...LIVE }, { $set: { archivedAt: at } }).lean<T>();
  if (doc) return;
  await mustFind(model.findOne(filter, { _id: 1 }).lean(), what);
}
