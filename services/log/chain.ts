/**
 * The per-lead hash chain: recomputes every entry's hash from what is stored and checks the
 * links (each entry's prevHash is the previous entry's hash; seq has no gap). The first broken
 * link is named: an edited entry no longer matches its hash, a removed or inserted one breaks
 * the sequence or the link.
 */
import { createHash } from 'node:crypto';
import { entryHash } from '../../shared/journal-hash';
import type { LogEntryDoc } from '../../shared/store';

export interface ChainCheck {
  ok: boolean;
  records: number;
  head?: string;
  brokenAt?: { seq: number; entryId: string; reason: string };
}

export function recomputeHash(doc: LogEntryDoc): string {
  return entryHash({ leadId: doc.leadId, seq: doc.seq, type: doc.type, at: doc.at.getTime(), prevHash: doc.prevHash, data: doc.data });
}

export function verifyChain(docs: LogEntryDoc[]): ChainCheck {
  let prev = '';
  for (let i = 0; i < docs.length; i++) {
    const doc = docs[i]!;
    const broken = (reason: string): ChainCheck => ({ ok: false, records: docs.length, brokenAt: { seq: doc.seq, entryId: doc._id, reason } });
    if (doc.seq !== i + 1) return broken(`expected entry ${i + 1} here, found ${doc.seq} (an entry is missing or was inserted)`);
    if (doc.prevHash !== prev) return broken('its prevHash is not the previous entry’s hash');
    if (recomputeHash(doc) !== doc.hash) return broken('its content no longer matches its hash (edited)');
    prev = doc.hash;
  }
  return { ok: true, records: docs.length, ...(docs.length ? { head: prev } : {}) };
}

/** A Merkle root (RFC 6962 style: leaves and nodes domain-separated, odd nodes promoted). */
export function merkleRoot(hashes: string[]): string {
  const h = (prefix: number, ...parts: Buffer[]) => createHash('sha256').update(Buffer.from([prefix])).update(Buffer.concat(parts)).digest();
  if (hashes.length === 0) return createHash('sha256').update('').digest('hex');
  let level: Buffer[] = hashes.map((x) => h(0, Buffer.from(x, 'hex')));
  while (level.length > 1) {
    const next: Buffer[] = [];
    for (let i = 0; i < level.length; i += 2) next.push(i + 1 < level.length ? h(1, level[i]!, level[i + 1]!) : level[i]!);
    level = next;
  }
  return level[0]!.toString('hex');
}
