/**
 * Duplicate detection at intake that does not depend on Temporal's retention.
 *
 * - A lead with the source's `id` or an `Idempotency-Key` has a derived lead id; its summary in
 *   `leads` (written by the log service from the journal, with the body's hash) is the durable
 *   record: `findStoredLead`.
 * - A lead without either: an identical payload from the same source within the source's
 *   `duplicateWindow` is the same lead. A claim `<sourceId>:<bodyHash>` in `payloadclaims` names
 *   the lead id of the first post; a later post reuses that id for its start, so Temporal decides
 *   (already started → duplicate; the first post never started → this one starts it).
 *
 * Every store call is bounded (StoreGate): when the store is slow or down the check is skipped
 * and intake relies on Temporal alone; a request never fails because of it.
 */
import { newId } from '../../shared/ids';
import type { Logger } from '../../shared/logger';
import { isDuplicateKeyError, type LeadDoc, type Models } from '../../shared/store';
import { StoreUnavailableError, type StoreGate } from '../../shared/store-gate';

/** Bound of intake's duplicate checks against the store. */
export const DEDUPE_TIMEOUT_MS = 400;
/** Every this many claims, expired ones are deleted (no TTL indexes on FerretDB). */
const CLEANUP_EVERY = 200;

/** The stored summary of a lead (undefined: none; 'unknown': the store did not answer in time). */
export async function findStoredLead(models: Models, gate: StoreGate, leadId: string): Promise<Pick<LeadDoc, '_id' | 'sourceId' | 'bodyHash'> | undefined | 'unknown'> {
  try {
    const doc = await gate.run(() => models.Lead.findById(leadId, { sourceId: 1, bodyHash: 1 }).lean<Pick<LeadDoc, '_id' | 'sourceId' | 'bodyHash'>>(), { timeoutMs: DEDUPE_TIMEOUT_MS });
    return doc ?? undefined;
  } catch (error) {
    if (error instanceof StoreUnavailableError) return 'unknown';
    throw error;
  }
}

export interface PayloadClaim {
  leadId: string;
  /** `claimed`: this post is the first in the window; `existing`: an earlier post's lead id; `skipped`: no check (off, or the store did not answer). */
  outcome: 'claimed' | 'existing' | 'skipped';
}

export interface PayloadClaims {
  claim(sourceId: string, bodyHash: string, windowMs: number): Promise<PayloadClaim>;
}

export function createPayloadClaims(deps: { models: Models; gate: StoreGate; logger: Logger }): PayloadClaims {
  const { PayloadClaim: Claims } = deps.models;
  let sinceCleanup = 0;
  let cleaning = false;

  /** Opportunistic and bounded: one deleteMany at a time, every CLEANUP_EVERY claims. */
  function maybeCleanup(): void {
    if (++sinceCleanup < CLEANUP_EVERY || cleaning) return;
    sinceCleanup = 0;
    cleaning = true;
    Claims.deleteMany({ expiresAt: { $lt: new Date() } })
      .then(() => undefined, (error: unknown) => deps.logger.warn({ errName: error instanceof Error ? error.name : 'error' }, 'expired payload claims not cleaned up (retried later)'))
      .finally(() => {
        cleaning = false;
      });
  }

  return {
    async claim(sourceId, bodyHash, windowMs) {
      // The candidate is the id used even when the store does not answer: a claim that lands late
      // (a frozen store resuming) then names the lead that really started.
      const candidate = newId('lead');
      if (windowMs <= 0) return { leadId: candidate, outcome: 'skipped' };
      const _id = `${sourceId}:${bodyHash}`;
      const now = Date.now();
      try {
        const result = await deps.gate.run(async (): Promise<PayloadClaim> => {
          try {
            // Insert, or take over a claim whose window has passed; a live claim makes the upsert
            // collide on _id (atomic on MongoDB and FerretDB alike, no transaction).
            await Claims.updateOne(
              { _id, at: { $lt: new Date(now - windowMs) } },
              { $set: { leadId: candidate, at: new Date(now), expiresAt: new Date(now + windowMs) } },
              { upsert: true },
            );
            return { leadId: candidate, outcome: 'claimed' };
          } catch (error) {
            if (!isDuplicateKeyError(error)) throw error;
            const live = await Claims.findById(_id, { leadId: 1 }).lean<{ leadId: string }>();
            return live ? { leadId: live.leadId, outcome: 'existing' } : { leadId: candidate, outcome: 'skipped' };
          }
        }, { timeoutMs: DEDUPE_TIMEOUT_MS });
        if (result.outcome === 'claimed') maybeCleanup();
        return result;
      } catch (error) {
        if (error instanceof StoreUnavailableError) return { leadId: candidate, outcome: 'skipped' };
        throw error;
      }
    },
  };
}
