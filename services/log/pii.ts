/**
 * Lead PII in the delivery log: which parts of a journal entry are personal data, how they are
 * sealed with the lead's own data key, and the keyed hashes used to find a lead by email or
 * phone. Sealing is deterministic per (entry, field) — the nonce is derived from the key, the
 * entry id and the field — so a retried write produces the same bytes and the same hash.
 * The chain hashes the sealed form: when the lead's key is deleted at expiry (crypto-shredding)
 * the PII is gone but every hash, the chain and every receipt still verify.
 */
import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto';
import type { JournalEntry } from '../../shared/delivery';

const PREFIX = 'enc:v1:';

/** Paths (dot-separated) of the PII-bearing parts of each entry type's data. */
export const PII_PATHS: Record<JournalEntry['type'], string[]> = {
  intake: ['lead'],
  correction: ['fields'],
  attempt: ['request', 'response.body', 'error'],
  decision: [],
  status: [],
  // A buyer's note on its return is free text about the person: PII like the lead's fields.
  return: ['note'],
  return_decision: [],
};

export const EXPIRED = '[personal data removed: retention expired]';

function nonce(key: Buffer, entryId: string, path: string): Buffer {
  return createHmac('sha256', key).update(`${entryId}|${path}`).digest().subarray(0, 12);
}

export function sealValue(key: Buffer, entryId: string, path: string, value: unknown): string {
  const iv = nonce(key, entryId, path);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(`${entryId}|${path}`));
  const body = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
  return PREFIX + Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64');
}

export function isSealed(value: unknown): value is string {
  return typeof value === 'string' && value.startsWith(PREFIX);
}

export function openValue(key: Buffer, entryId: string, path: string, sealed: string): unknown {
  const raw = Buffer.from(sealed.slice(PREFIX.length), 'base64');
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
  decipher.setAAD(Buffer.from(`${entryId}|${path}`));
  decipher.setAuthTag(raw.subarray(raw.length - 16));
  return JSON.parse(Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString('utf8')) as unknown;
}

function getPath(data: Record<string, unknown>, path: string): { parent: Record<string, unknown>; key: string } | undefined {
  const parts = path.split('.');
  let node: unknown = data;
  for (const part of parts.slice(0, -1)) {
    if (!node || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  if (!node || typeof node !== 'object') return undefined;
  const key = parts[parts.length - 1]!;
  return key in node ? { parent: node as Record<string, unknown>, key } : undefined;
}

/** Seals the entry's PII paths in place (key absent: the lead's PII already expired → removed). */
export function sealEntry(type: JournalEntry['type'], data: Record<string, unknown>, entryId: string, key: Buffer | undefined): void {
  for (const path of PII_PATHS[type]) {
    const at = getPath(data, path);
    if (!at || at.parent[at.key] === undefined) continue;
    at.parent[at.key] = key ? sealValue(key, entryId, path, at.parent[at.key]) : EXPIRED;
  }
}

/** Opens the entry's sealed paths; without the key (shredded) they read as removed. */
export function openEntry(type: string, data: Record<string, unknown>, entryId: string, key: Buffer | undefined): Record<string, unknown> {
  const copy = structuredClone(data);
  for (const path of PII_PATHS[type as JournalEntry['type']] ?? []) {
    const at = getPath(copy, path);
    if (!at || !isSealed(at.parent[at.key])) continue;
    try {
      at.parent[at.key] = key ? openValue(key, entryId, path, at.parent[at.key] as string) : EXPIRED;
    } catch {
      at.parent[at.key] = '[unreadable: the sealed value does not match its key]';
    }
  }
  return copy;
}

// ---- keyed lookup hashes ---------------------------------------------------------------------

export { lookupHash, normaliseEmail, normalisePhone } from '../../shared/lookup-hash';
