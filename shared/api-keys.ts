import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ulid } from './ids';

/**
 * Lead-source API keys: `lds_<keyId>_<secret>`. Only sha256(secret) is stored (the secret is
 * 32 random bytes, so a fast hash is enough: there is nothing to brute-force). The key id
 * finds the source without scanning.
 */
export interface NewApiKey {
  keyId: string;
  apiKey: string;
  hash: string;
}

const KEY_RE = /^lds_([0-9a-z]{26})_([A-Za-z0-9_-]{43})$/;

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function generateApiKey(): NewApiKey {
  const keyId = ulid().toLowerCase();
  const secret = randomBytes(32).toString('base64url');
  return { keyId, apiKey: `lds_${keyId}_${secret}`, hash: hashSecret(secret) };
}

export function parseApiKey(apiKey: string): { keyId: string; secret: string } | undefined {
  const match = KEY_RE.exec(apiKey);
  return match ? { keyId: match[1]!, secret: match[2]! } : undefined;
}

export function secretMatches(secret: string, storedHash: string): boolean {
  const given = Buffer.from(hashSecret(secret), 'hex');
  const stored = Buffer.from(storedHash, 'hex');
  return given.length === stored.length && timingSafeEqual(given, stored);
}

/** Constant-time comparison of two tokens of any length. */
export function tokensEqual(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}
