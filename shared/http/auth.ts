/**
 * Who is calling: a lead source (its API key), a buyer (its API key) or an operator (the admin
 * token). Source and buyer keys are checked by one implementation (`createKeyAuth`: the cache, the
 * stale fallback during a store outage, the 503 for a key never seen); only where each kind of key
 * is stored differs.
 */
import type { Request, RequestHandler } from 'express';
import { apiKeyKind, bearerToken, hashSecret, parseApiKey, secretMatches, tokensEqual, type ApiKeyKind } from '../api-keys';
import { AppError, ForbiddenError, UnauthorizedError } from '../errors';
import { addLogContext, type Logger } from '../logger';
import type { BuyerDoc, Models, SourceDoc, SourceKey } from '../store';
import { createStoreGate, StoreUnavailableError, type StoreGate } from '../store-gate';
import { duplicateWindowMs } from '../source';

export type Caller = { type: 'admin' } | ({ type: 'source' } & SourceIdentity) | ({ type: 'buyer' } & BuyerIdentity);

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

export interface BuyerIdentity {
  buyerId: string;
  keyId: string;
}

/** API keys of one kind of holder (sources, buyers), checked against their stored hashes. */
export interface KeyAuth<Identity> {
  /**
   * The holder a key belongs to, or undefined (unknown, revoked, or its holder archived). Throws a
   * 503 `store_unavailable` when the store cannot be asked and the key was never seen before.
   */
  authenticate(apiKey: string): Promise<Identity | undefined>;
  /** Forget cached answers for a holder (its keys changed in this process), or all of them. */
  invalidate(holderId?: string): void;
}
export type SourceAuth = KeyAuth<SourceIdentity>;
export type BuyerAuth = KeyAuth<BuyerIdentity>;

export interface KeyAuthOptions {
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
export type SourceAuthOptions = KeyAuthOptions;

/** Where the keys of one kind of holder are stored and what a valid key says about its holder. */
export interface KeyStore<Identity> {
  kind: ApiKeyKind;
  /** For the store gate's log line: "source auth". */
  name: string;
  connection: { readyState: number };
  /** The identity of the holder of this key, or undefined (no such key, revoked, archived, wrong secret). */
  lookup(keyId: string, secret: string): Promise<Identity | undefined>;
  holderOf(identity: Identity): string;
}

export function storeUnavailable(): AppError {
  return new AppError(503, 'store_unavailable', 'The key store is not answering and this key could not be checked; nothing was accepted. Retry later.', { retryAfter: 5 }, { 'Retry-After': '5' });
}

/** The stored key a holder document has under this id, when it is live and the secret matches. */
export function liveKey(holder: { keys?: SourceKey[]; archivedAt?: Date } | null | undefined, keyId: string, secret: string): SourceKey | undefined {
  const key = holder?.keys?.find((k) => k.keyId === keyId);
  if (!holder || !key || key.revokedAt || holder.archivedAt || !secretMatches(secret, key.hash)) return undefined;
  return key;
}

type CachedAnswer<Identity> = { at: number; answer: Identity | undefined };

/**
 * Keys of one kind, checked against their stored hashes. Answers are cached in memory (bounded)
 * for `cacheMs`; when a re-check fails (store error or timeout) the last answer is served while it
 * is younger than `staleMs`: a revocation or an archive goes through the store, so none can happen
 * while it is down. A key never seen before cannot be checked then: 503, not 401 and not 500.
 */
export function createKeyAuth<Identity>(store: KeyStore<Identity>, options: KeyAuthOptions = {}): KeyAuth<Identity> {
  const cacheMs = options.cacheMs ?? 5_000;
  const staleMs = options.staleMs ?? 15 * 60_000;
  const maxEntries = options.maxEntries ?? 10_000;
  const gate = options.gate ?? createStoreGate({ connection: store.connection, name: store.name, ...(options.logger ? { logger: options.logger } : {}) });
  // Keyed by a hash of the key: the secrets themselves are not kept in memory.
  const cache = new Map<string, CachedAnswer<Identity>>();
  const remember = (cacheKey: string, answer: Identity | undefined) => {
    cache.delete(cacheKey);
    while (cache.size >= maxEntries) cache.delete(cache.keys().next().value!);
    cache.set(cacheKey, { at: Date.now(), answer });
    return answer;
  };

  return {
    async authenticate(apiKey) {
      const parsed = parseApiKey(apiKey, store.kind);
      if (!parsed) return undefined;
      const cacheKey = hashSecret(apiKey);
      const hit = cache.get(cacheKey);
      if (hit && Date.now() - hit.at < cacheMs) return hit.answer;
      const fallback = hit && Date.now() - hit.at < staleMs ? hit : undefined;
      try {
        const answer = await gate.run(() => store.lookup(parsed.keyId, parsed.secret), fallback ? { timeoutMs: options.lookupTimeoutMs ?? 500 } : { timeoutMs: options.firstLookupTimeoutMs ?? 2_000, force: true });
        return remember(cacheKey, answer);
      } catch (error) {
        if (!(error instanceof StoreUnavailableError)) throw error;
        if (fallback) return fallback.answer;
        throw storeUnavailable();
      }
    },
    invalidate(holderId) {
      if (!holderId) return cache.clear();
      for (const [key, value] of cache) if (value.answer !== undefined && store.holderOf(value.answer) === holderId) cache.delete(key);
    },
  };
}

/** Lead-source keys (`lds_…`, stored in `sources.keys`). */
export function createSourceAuth(models: Models, options: KeyAuthOptions = {}): SourceAuth {
  return createKeyAuth<SourceIdentity>(
    {
      kind: 'source',
      name: 'source auth',
      connection: models.Source.db,
      async lookup(keyId, secret) {
        const source = await models.Source.findOne({ 'keys.keyId': keyId }, { keys: 1, archivedAt: 1, duplicateWindow: 1 }).lean<Pick<SourceDoc, '_id' | 'keys' | 'archivedAt' | 'duplicateWindow'>>();
        if (!source || !liveKey(source, keyId, secret)) return undefined;
        return { sourceId: source._id, keyId, duplicateWindowMs: duplicateWindowMs(source.duplicateWindow) };
      },
      holderOf: (identity) => identity.sourceId,
    },
    options,
  );
}

/** Buyer keys (`ldb_…`, stored in `buyers.keys`): the buyer API (`/v1/buyer/…`) only. */
export function createBuyerAuth(models: Models, options: KeyAuthOptions = {}): BuyerAuth {
  return createKeyAuth<BuyerIdentity>(
    {
      kind: 'buyer',
      name: 'buyer auth',
      connection: models.Buyer.db,
      async lookup(keyId, secret) {
        const buyer = await models.Buyer.findOne({ 'keys.keyId': keyId }, { keys: 1, archivedAt: 1 }).lean<Pick<BuyerDoc, '_id' | 'keys' | 'archivedAt'>>();
        if (!buyer || !liveKey(buyer, keyId, secret)) return undefined;
        return { buyerId: buyer._id, keyId };
      },
      holderOf: (identity) => identity.buyerId,
    },
    options,
  );
}

export interface AuthenticateOptions {
  adminToken: string;
  sources: SourceAuth;
  /** Buyer keys are recognised here (a valid one where buyers may not go: 403; a bad one: 401). */
  buyers?: BuyerAuth;
  allowSources: boolean;
  allowBuyers?: boolean;
}

/**
 * The admin token, a source key or a buyer key; sets req.caller. 401 without credentials or with
 * bad ones (unknown, revoked, archived holder); 403 for a valid key of a kind the route does not take.
 */
export function authenticate(options: AuthenticateOptions): RequestHandler {
  return async (req, _res, next) => {
    const token = bearerToken(req.get('authorization'));
    if (!token) throw new UnauthorizedError('Send Authorization: Bearer <key>.');
    if (tokensEqual(token, options.adminToken)) {
      req.caller = { type: 'admin' };
      return next();
    }
    const kind = apiKeyKind(token);
    if (kind === 'source') {
      const source = await options.sources.authenticate(token);
      if (!source) throw new UnauthorizedError('The API key is not valid or was revoked.');
      if (!options.allowSources) throw new ForbiddenError('A lead-source key may only post and read leads (/v1/leads).');
      req.caller = { type: 'source', ...source };
      addLogContext({ sourceId: source.sourceId });
      return next();
    }
    if (kind === 'buyer' && options.buyers) {
      const buyer = await options.buyers.authenticate(token);
      if (!buyer) throw new UnauthorizedError('The API key is not valid or was revoked.');
      if (!options.allowBuyers) throw new ForbiddenError('A buyer key may only use the buyer API (/v1/buyer/…).');
      req.caller = { type: 'buyer', ...buyer };
      addLogContext({ buyerId: buyer.buyerId });
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

/** The buyer API: a buyer key only (operators have /v1/admin/returns). */
export function requireBuyer(): RequestHandler {
  return (req, _res, next) => {
    if (callerOf(req).type !== 'buyer') throw new ForbiddenError('This route needs a buyer API key (operators: /v1/admin/returns).');
    next();
  };
}
