import type { RequestHandler, Request } from 'express';
import { AppError } from '../errors';

/**
 * Token bucket per key (a source key, an IP): `perMinute` requests with a burst of the same
 * size. In memory, per process: with several intake instances each enforces its own share.
 */
export function rateLimit(options: { perMinute: number; key: (req: Request) => string | undefined }): RequestHandler {
  const buckets = new Map<string, { tokens: number; at: number }>();
  const ratePerMs = options.perMinute / 60_000;
  return (req, res, next) => {
    const key = options.key(req);
    if (!key) return next();
    const now = Date.now();
    const bucket = buckets.get(key) ?? { tokens: options.perMinute, at: now };
    bucket.tokens = Math.min(options.perMinute, bucket.tokens + (now - bucket.at) * ratePerMs);
    bucket.at = now;
    if (buckets.size > 50_000) buckets.clear();
    buckets.set(key, bucket);
    res.setHeader('RateLimit-Limit', String(options.perMinute));
    if (bucket.tokens < 1) {
      const retryAfter = Math.ceil((1 - bucket.tokens) / ratePerMs / 1000);
      return next(new AppError(429, 'rate_limited', `More than ${options.perMinute} requests a minute; retry later.`, { retryAfter }, { 'Retry-After': String(retryAfter) }));
    }
    bucket.tokens -= 1;
    res.setHeader('RateLimit-Remaining', String(Math.floor(bucket.tokens)));
    next();
  };
}
