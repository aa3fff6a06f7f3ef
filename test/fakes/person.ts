/**
 * A different person per generated lead: load and chaos runs post thousands of leads, and a
 * buyer's duplicate check (30 days by default) would skip every lead after the first that shares
 * a phone number with an earlier one.
 */
import { createHash } from 'node:crypto';

/** A stable North American test number (+1 555 …) derived from `seed`. */
export function phoneFor(seed: string): string {
  const n = parseInt(createHash('sha256').update(seed).digest('hex').slice(0, 8), 16) % 10_000_000;
  return `+1555${String(n).padStart(7, '0')}`;
}
