import { createHash, randomBytes } from 'node:crypto';

/** Crockford base32, the alphabet of ULIDs: sortable, no ambiguous letters. */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

function base32(bytes: Uint8Array, length: number): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < length) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out;
}

/** A ULID: 48-bit ms timestamp + 80 random bits, so ids sort by creation time. */
export function ulid(now = Date.now()): string {
  let time = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32] + time;
    t = Math.floor(t / 32);
  }
  return time + base32(randomBytes(10), 16);
}

export const ID_PREFIX = {
  lead: 'ld_',
  source: 'src_',
  buyer: 'buy_',
  endpoint: 'ep_',
  key: 'key_',
} as const;

export function newId(kind: keyof typeof ID_PREFIX): string {
  return ID_PREFIX[kind] + ulid().toLowerCase();
}

/**
 * A lead id derived from the source and the client's own id (or Idempotency-Key), so the
 * same client id always maps to the same workflow id (`lead-<leadId>`) and Temporal itself
 * refuses a second start. Scoped by source: two sources using the same ids never collide.
 */
export function deriveLeadId(sourceId: string, clientKey: string): string {
  const digest = createHash('sha256').update(`${sourceId}\u0000${clientKey}`).digest();
  return ID_PREFIX.lead + base32(digest, 26).toLowerCase();
}

export const SAFE_ID_RE = /^[A-Za-z0-9_.:-]{1,128}$/;
