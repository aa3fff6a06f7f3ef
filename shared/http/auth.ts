/**
 * Who is calling: a lead source (its API key) or an operator (the admin token).
 */
import type { Request, RequestHandler } from 'express';
import { bearerToken, hashSecret, parseApiKey, secretMatches, tokensEqual } from '../api-keys';
import { AppError, ForbiddenError, UnauthorizedError } from '../errors';
import { addLogContext, type Logger } from '../logger';
import type { Models, SourceDoc } from '../store';
import { createStoreGate, StoreUnavailableError, type StoreGate } from '../store-gate';
import { duplicateWindowMs } from '../source';

export type Caller = { type: 'admin' } | ({ type: 'source' } & SourceIdentity);

declare module 'express-serve-static-core' {
  interface Request {
    caller?: Caller;
  }
}

export function callerOf(req: Request): Caller {
  if (!req.caller) throw new UnauthorizedError();
  return req.caller;
}

export interface SourceIdentity {
  sourceId: string;
  keyId: string;
  /** The source's window for identical payloads without an id (ms; 0 = off). */
  duplicateWindowMs: number;
}

export interface SourceAuth {
  /**
   * The source a key belongs to, or undefined (unknown, revoked, or its source archived). Throws a
   * 503 `store_unavailable` when the store cannot be asked and the key was never seen before.
   */
  authenticate(apiKey: string): Promise<SourceIdentity | undefined>;
  /** Forget cached answers for a source (its keys changed in this process). */
  invalidate(sourceId?: string): void;
}

export interface SourceAuthOptions {
  /** An answer is re-checked against the store after this long (a revocation is honoured within it). */
  cacheMs?: number;
  /** While the store is unreachable, the last answer for a key is served up to this age. */
  staleMs?: number;
  /** Bound of a re-check when a last answer exists to fall back on. */
  lookupTimeoutMs?: number;
  /** Bound of the check of a key never seen (nothing to fall back on: wait longer before a 503). */
  firstLookupTimeoutMs?: number;
  maxEntries?: number;
  gate?: StoreGate;
  logger?: Logger;
}

export function storeUnavailable(): AppError {
  return new AppError(503, 'store_unavailable', 'The key store is not answering and this key could not be checked; nothing was accepted. Retry later.', { retryAfter: 5 }, { 'Retry-After': '5' });
}

type CachedAnswer = { at: number; answer: SourceIdentity | undefined };

/**
 * Source keys, checked against their stored hashes. Answers are cached in memory (bounded) for
 * `cacheMs`; when a re-check fails (store error or timeout) the last answer is served while it is
 * younger than `staleMs`: a revocation or an archive goes through the store, so none can happen
 * while it is down. A key never seen before cannot be checked then: 503, not 401 and not 500.
 */
export function createSourceAuth(models: Models, options: SourceAuthOptions = {}): SourceAuth {
  const cacheMs = options.cacheMs ?? 5_000;
  const staleMs = options.staleMs ?? 15 * 60_000;
  const maxEntries = options.maxEntries ?? 10_000;
  const gate = options.gate ?? createStoreGate({ connection: models.Source.db, name: 'source auth', ...(options.logger ? { logger: options.logger } : {}) });
  // Keyed by a hash of the key: the secrets themselves are not kept in memory.
  const cache = new Map<string, CachedAnswer>();
  const remember = (cacheKey: string, answer: SourceIdentity | undefined) => {
    cache.delete(cacheKey);
    while (cache.size >= maxEntries) cache.delete(cache.keys().next().value!);
    cache.set(cacheKey, { at: Date.now(), answer });
    return answer;
  };

  async function lookup(keyId: string, secret: string): Promise<SourceIdentity | undefined> {
    const source = await models.Source.findOne({ 'keys.keyId': keyId }, { keys: 1, archivedAt: 1, duplicateWindow: 1 }).lean<Pick<SourceDoc, '_id' | 'keys' | 'archivedAt' | 'duplicateWindow'>>();
    const key = source?.keys.find((k) => k.keyId === keyId);
    if (!source || !key || key.revokedAt || source.archivedAt || !secretMatches(secret, key.hash)) return undefined;
    return { sourceId: source._id, keyId, duplicateWindowMs: duplicateWindowMs(source.duplicateWindow) };
  }

  return {
    async authenticate(apiKey) {
      const parsed = parseApiKey(apiKey);
      if (!parsed) return undefined;
      const cacheKey = hashSecret(apiKey);
      const hit = cache.get(cacheKey);
      if (hit && Date.now() - hit.at < cacheMs) return hit.answer;
      const fallback = hit && Date.now() - hit.at < staleMs ? hit : undefined;
      try {
        const answer = await gate.run(() => lookup(parsed.keyId, parsed.secret), fallback ? { timeoutMs: options.lookupTimeoutMs ?? 500 } : { timeoutMs: options.firstLookupTimeoutMs ?? 2_000, force: true });
        return remember(cacheKey, answer);
      } catch (error) {
        if (!(error instanceof StoreUnavailableError)) throw error;
        if (fallback) return fallback.answer;
        throw storeUnavailable();
      }
    },
    invalidate(sourceId) {
      if (!sourceId) return cache.clear();
      for (const [key, value] of cache) if (value.answer?.sourceId === sourceId) cache.delete(key);
    },
  };
}

/** Admin token or a source key; sets req.caller. 401 without credentials or with bad ones. */
export function authenticate(options: { adminToken: string; sources: SourceAuth; allowSources: boolean }): RequestHandler {
  return async (req, _res, next) => {
    const token = bearerToken(req.get('authorization'));
    if (!token) throw new UnauthorizedError('Send Authorization: Bearer <key>.');
    if (tokensEqual(token, options.adminToken)) {
      req.caller = { type: 'admin' };
      return next();
    }
    if (token.startsWith('lds_')) {
      const source = await options.sources.authenticate(token);
      if (!source) throw new UnauthorizedError('The API key is not valid or was revoked.');
      if (!options.allowSources) throw new ForbiddenError('A lead-source key may not use the admin API.');
      req.caller = { type: 'source', ...source };
      addLogContext({ sourceId: source.sourceId });
      return next();
    }
    throw new UnauthorizedError('The token is not valid.');
  };
}

export function requireAdmin(): RequestHandler {
  return (req, _res, next) => {
    if (callerOf(req).type !== 'admin') throw new ForbiddenError('This route needs the admin token.');
    next();
  };
}
