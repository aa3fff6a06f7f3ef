/**
 * Who is calling: a lead source (its API key) or an operator (the admin token).
 */
import type { Request, RequestHandler } from 'express';
import { bearerToken, parseApiKey, secretMatches, tokensEqual } from '../../shared/api-keys';
import { ForbiddenError, UnauthorizedError } from '../../shared/errors';
import { addLogContext } from '../../shared/logger';
import type { Models } from '../../shared/models';

export type Caller = { type: 'admin' } | { type: 'source'; sourceId: string; keyId: string };

declare module 'express-serve-static-core' {
  interface Request {
    caller?: Caller;
  }
}

export function callerOf(req: Request): Caller {
  if (!req.caller) throw new UnauthorizedError();
  return req.caller;
}

export interface SourceAuth {
  authenticate(apiKey: string): Promise<{ sourceId: string; keyId: string } | undefined>;
  /** Forget cached answers for a source (its keys changed in this process). */
  invalidate(sourceId?: string): void;
}

/** Source keys, checked against their stored hashes, cached for a few seconds per key. */
export function createSourceAuth(models: Models, cacheMs = 5_000): SourceAuth {
  const cache = new Map<string, { at: number; sourceId: string; keyId: string } | { at: number; sourceId?: undefined }>();
  return {
    async authenticate(apiKey) {
      const parsed = parseApiKey(apiKey);
      if (!parsed) return undefined;
      const hit = cache.get(apiKey);
      if (hit && Date.now() - hit.at < cacheMs) return hit.sourceId ? { sourceId: hit.sourceId, keyId: parsed.keyId } : undefined;
      const source = await models.Source.findOne({ 'keys.keyId': parsed.keyId }, { keys: 1 }).lean();
      const key = source?.keys.find((k) => k.keyId === parsed.keyId);
      const ok = source && key && !key.revokedAt && secretMatches(parsed.secret, key.hash);
      if (cache.size > 10_000) cache.clear();
      cache.set(apiKey, ok ? { at: Date.now(), sourceId: source._id, keyId: parsed.keyId } : { at: Date.now() });
      return ok ? { sourceId: source._id, keyId: parsed.keyId } : undefined;
    },
    invalidate(sourceId) {
      if (!sourceId) return cache.clear();
      for (const [key, value] of cache) if (value.sourceId === sourceId) cache.delete(key);
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
