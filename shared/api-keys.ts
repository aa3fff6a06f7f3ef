import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ulid } from './ids';

/**
 * API keys of lead sources (`lds_<keyId>_<secret>`) and of buyers (`ldb_<keyId>_<secret>`): one
 * format, a prefix per kind of holder. Only sha256(secret) is stored (the secret is 32 random
 * bytes, so a fast hash is enough: there is nothing to brute-force). The key id finds the holder
 * without scanning; the prefix says where to look (and which routes the key may use).
 */
export const API_KEY_PREFIXES = { source: 'lds_', buyer: 'ldb_' } as const;
export type ApiKeyKind = keyof typeof API_KEY_PREFIXES;

export interface NewApiKey {
  kind: ApiKeyKind;
  keyId: string;
  apiKey: string;
  hash: string;
}

export interface ParsedApiKey {
  kind: ApiKeyKind;
  keyId: string;
  secret: string;
}

const KEY_RE = /^(lds|ldb)_([0-9a-z]{26})_([A-Za-z0-9_-]{43})$/;
const KIND_OF_PREFIX: Record<string, ApiKeyKind> = Object.fromEntries(Object.entries(API_KEY_PREFIXES).map(([kind, prefix]) => [prefix.slice(0, -1), kind as ApiKeyKind]));

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** A new key of that kind (lead sources' by default). */
export function generateApiKey(kind: ApiKeyKind = 'source'): NewApiKey {
  const keyId = ulid().toLowerCase();
  const secret = randomBytes(32).toString('base64url');
  return { kind, keyId, apiKey: `${API_KEY_PREFIXES[kind]}${keyId}_${secret}`, hash: hashSecret(secret) };
}

/** The key's parts, or undefined when it is not a well-formed key (of the given kind, when one is given). */
export function parseApiKey(apiKey: string, kind?: ApiKeyKind): ParsedApiKey | undefined {
  const match = KEY_RE.exec(apiKey);
  if (!match) return undefined;
  const parsed: ParsedApiKey = { kind: KIND_OF_PREFIX[match[1]!]!, keyId: match[2]!, secret: match[3]! };
  return kind === undefined || parsed.kind === kind ? parsed : undefined;
}

/**
 * Which kind of key a bearer token claims to be, by its prefix alone (nothing is checked): routes
 * decide by it where to look the key up. Undefined for anything else (the admin token, garbage).
 */
export function apiKeyKind(token: string): ApiKeyKind | undefined {
  for (const [kind, prefix] of Object.entries(API_KEY_PREFIXES) as Array<[ApiKeyKind, string]>) if (token.startsWith(prefix)) return kind;
  return undefined;
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
