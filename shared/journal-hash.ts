import { createHash } from 'node:crypto';

/**
 * Canonical form of a journal entry and its hash. Canonical JSON: object keys sorted,
 * undefined dropped, no whitespace. The hash covers the lead, the sequence number, the type,
 * the time, the previous entry's hash and the data, so editing any of them (or removing,
 * inserting or reordering entries) breaks the chain from that entry on.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (value instanceof Date) return JSON.stringify(value.getTime());
  if (Array.isArray(value)) return `[${value.map((item) => (item === undefined ? 'null' : canonicalJson(item))).join(',')}]`;
  const keys = Object.keys(value).filter((k) => (value as Record<string, unknown>)[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
}

export interface HashedFields {
  leadId: string;
  seq: number;
  type: string;
  at: number;
  prevHash: string;
  data: Record<string, unknown>;
}

export function entryHash(fields: HashedFields): string {
  return createHash('sha256').update(canonicalJson(fields)).digest('hex');
}

/**
 * The hash of a lead's fields as intake received them (without the source's `id`): sha256 hex of
 * their canonical JSON. Intake keeps it in the workflow memo and compares it on a re-post; the log
 * service stores it on the lead's summary (from the journal's intake entry), so the comparison
 * still works after Temporal's retention. Both sides must use this one function.
 */
export function leadBodyHash(lead: unknown): string {
  return createHash('sha256').update(canonicalJson(lead)).digest('hex');
}
