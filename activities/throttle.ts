/**
 * Throttles across every worker: at most N sends per second and/or per minute for one key (an
 * endpoint, a Google account's Sheets quota), spread across the window (at most about one per 1/N of
 * it). Fixed windows of the worker's clock, counted in the store (`sendslots`, see shared/store/send-slots.ts): a send takes a slot of the window it goes in,
 * by an insert the unique `_id` makes atomic. A send beyond the rate is not refused: it reserves the
 * first free slot of a later window and is told how long to wait for it, so waiting sends queue in
 * order of arrival instead of all waking at each window's start. `planSlot` (pure) picks the slot.
 */
import type { Models, SendSlotDoc } from '../shared/store';
import { isDuplicateKeyError } from '../shared/store';

/** Sends allowed per second and/or per minute, and/or one per `everyMs` (a spacing); all given, all hold. */
export interface RateLimits {
  perSecond?: number;
  perMinute?: number;
  /** At most one send in each window of this many ms (no sliding window of n × everyMs holds more than n + 1). */
  everyMs?: number;
}

/** One fixed window of a rate: its length and how many sends it takes; `unit` names it in the store. */
interface Rule {
  unit: string;
  ms: number;
  limit: number;
}

/**
 * A rate of `limit` per `ms` as fixed windows: the window itself, and its spread — the window cut in
 * pieces of about ms / limit, each taking its share — so the sends of a window are spaced across it
 * instead of leaving all at its start (which would put up to 2 × limit into one second straddling two
 * windows). With both, no interval of the window's length holds more than about limit + 1 sends.
 */
function windowRules(unit: string, ms: number, limit: number): Rule[] {
  const rules: Rule[] = [{ unit, ms, limit }];
  if (limit <= 1) return rules;
  const pieceMs = Math.max(1, Math.floor(ms / limit));
  rules.push({ unit: `${unit}${pieceMs}`, ms: pieceMs, limit: Math.ceil((limit * pieceMs) / ms) });
  return rules;
}

function rulesOf(limits: RateLimits): Rule[] {
  const rules: Rule[] = [];
  if (limits.perMinute !== undefined) rules.push(...windowRules('m', 60_000, limits.perMinute));
  if (limits.perSecond !== undefined) rules.push(...windowRules('s', 1_000, limits.perSecond));
  if (limits.everyMs !== undefined) rules.push({ unit: `${limits.everyMs}ms`, ms: limits.everyMs, limit: 1 });
  return rules;
}

/** "10/s", "60/min", "10/s and 300/min", "1 per 1017 ms". */
export function describeRate(limits: RateLimits): string {
  return [
    limits.perSecond !== undefined ? `${limits.perSecond}/s` : '',
    limits.perMinute !== undefined ? `${limits.perMinute}/min` : '',
    limits.everyMs !== undefined ? `1 per ${limits.everyMs} ms` : '',
  ].filter(Boolean).join(' and ');
}

export interface PlannedSlot {
  /** When the send may go (ms since epoch): now, or the start of a later window. */
  at: number;
  /** The window of each rule the send counts in. */
  windows: Array<{ unit: string; window: number; limit: number }>;
}

/**
 * The earliest time at or after `now` at which every unit's window has room, given the slots
 * already taken (`taken(unit, window)` = count); undefined when none comes before `notAfter`.
 */
export function planSlot(limits: RateLimits, now: number, taken: (unit: string, window: number) => number, notAfter: number): PlannedSlot | undefined {
  const rules = rulesOf(limits);
  let at = now;
  for (let round = 0; round < 100_000; round++) {
    if (at > notAfter) return undefined;
    let moved = false;
    for (const { unit, ms, limit } of rules) {
      const window = Math.floor(at / ms);
      if (taken(unit, window) >= limit) {
        at = (window + 1) * ms;
        moved = true;
      }
    }
    if (!moved) return { at, windows: rules.map(({ unit, ms, limit }) => ({ unit, window: Math.floor(at / ms), limit })) };
  }
  return undefined;
}

export type ThrottleAnswer =
  /** Go now (`waitMs` 0) or after `waitMs`: the slot is held for `holder` either way. */
  | { reserved: true; waitMs: number; at: number }
  /** No slot before `notAfter`: nothing is held; the earliest free slot is `waitMs` away (at least). */
  | { reserved: false; waitMs: number };

export interface Throttle {
  /**
   * A slot for `holder` under `limits`: the one it already holds (a retried execution, a send that
   * waited for its slot), else the earliest free one no later than `notAfter`.
   */
  take(key: string, limits: RateLimits, holder: string, options?: { notAfter?: number; mayHoldOne?: boolean }): Promise<ThrottleAnswer>;
  /** Gives back what `holder` holds (it will not send); idempotent. */
  release(key: string, holder: string): Promise<void>;
}

/** Slots older than this are pruned (longer than any window). */
const PRUNE_AFTER_MS = 5 * 60_000;
/** How far ahead a send may reserve when nothing else bounds it. */
export const THROTTLE_HORIZON_MS = 6 * 3_600_000;
/** Reservations read at most (a queue longer than this is read in part: later sends look again). */
const MAX_READ = 20_000;

export function createThrottle(models: Models, clock: () => number = Date.now): Throttle {
  const { SendSlot } = models;

  async function own(key: string, holder: string): Promise<number | undefined> {
    const held = await SendSlot.find({ key, holder }, { at: 1 }).lean<Array<Pick<SendSlotDoc, 'at'>>>();
    return held.length ? Math.max(...held.map((d) => d.at.getTime())) : undefined;
  }

  return {
    async take(key, limits, holder, options = {}) {
      const rules = rulesOf(limits);
      if (rules.length === 0) return { reserved: true, waitMs: 0, at: clock() };
      if (options.mayHoldOne) {
        const at = await own(key, holder);
        if (at !== undefined) return { reserved: true, waitMs: Math.max(0, at - clock()), at };
      }
      const notAfter = options.notAfter ?? clock() + THROTTLE_HORIZON_MS;
      for (let round = 0; round < 50; round++) {
        const now = clock();
        const since = Math.min(...rules.map(({ ms }) => Math.floor(now / ms) * ms));
        const rows = await SendSlot.find({ key, at: { $gte: new Date(since) } }, { unit: 1, window: 1, n: 1 }).limit(MAX_READ).lean<Array<Pick<SendSlotDoc, 'unit' | 'window' | 'n'>>>();
        // Every slot of the current windows and later ones (a slot's `at` lies inside its windows).
        const counts = new Map<string, Set<number>>();
        for (const r of rows) {
          const id = `${r.unit}|${r.window}`;
          let set = counts.get(id);
          if (!set) counts.set(id, (set = new Set()));
          set.add(r.n);
        }
        const taken = (unit: string, window: number) => counts.get(`${unit}|${window}`)?.size ?? 0;
        const slot = planSlot(limits, now, taken, notAfter);
        if (!slot) {
          const beyond = planSlot(limits, now, taken, Number.MAX_SAFE_INTEGER);
          return { reserved: false, waitMs: Math.max(0, (beyond?.at ?? notAfter) - now) };
        }
        const inserted: string[] = [];
        let full = false;
        for (const { unit, window, limit } of slot.windows) {
          const used = counts.get(`${unit}|${window}`) ?? new Set<number>();
          let taken = false;
          // The lowest free slot of the window; one another send took meanwhile moves on to the next.
          for (let n = 0; n < limit && !taken; n++) {
            if (used.has(n)) continue;
            const id = `${key}|${unit}|${String(window).padStart(13, '0')}|${String(n).padStart(6, '0')}`;
            try {
              await SendSlot.create({ _id: id, key, unit, window, n, holder, at: new Date(slot.at) });
              inserted.push(id);
              taken = true;
              if (n === 0) await SendSlot.deleteMany({ key, at: { $lt: new Date(now - PRUNE_AFTER_MS) } });
            } catch (error) {
              if (!isDuplicateKeyError(error)) throw error;
            }
          }
          if (!taken) {
            full = true; // filled by others while we looked: plan again
            break;
          }
        }
        if (!full) return { reserved: true, waitMs: Math.max(0, slot.at - now), at: slot.at };
        if (inserted.length) await SendSlot.deleteMany({ _id: { $in: inserted } });
      }
      throw new Error(`could not take a send slot of ${key}: too much contention`);
    },

    async release(key, holder) {
      await SendSlot.deleteMany({ key, holder, at: { $gt: new Date(clock()) } });
    },
  };
}
