/**
 * The one module that knows a lead source's settings beyond its keys and waterfall: how long its
 * leads stay worth delivering (freshness) and its window for identical payloads without an id.
 * The admin API validates and shows them from here; intake and the worker read them from here.
 */
import { tryParseDuration } from './durations';
import { durationString } from './http/validate';

/** How long a lead of a source without its own `freshness` stays worth delivering. */
export const DEFAULT_FRESHNESS = '10m';
/** A source's window for identical payloads without an id, when it sets none. */
export const DEFAULT_DUPLICATE_WINDOW = '60s';
/** The longest window a source may set (claims are cleaned up after their own window). */
export const MAX_DUPLICATE_WINDOW_MS = 86_400_000;

export const duplicateWindowSchema = durationString.refine((v) => (tryParseDuration(v) ?? 0) <= MAX_DUPLICATE_WINDOW_MS, {
  message: 'must be at most "1d" ("0s" turns the window off)',
});

/** The window in ms for a source's setting ("0s" = off; absent or unreadable = the default). */
export function duplicateWindowMs(setting: string | undefined): number {
  const ms = setting === undefined ? undefined : tryParseDuration(setting);
  return Math.min(ms ?? tryParseDuration(DEFAULT_DUPLICATE_WINDOW)!, MAX_DUPLICATE_WINDOW_MS);
}
