/**
 * Durations are strings everywhere in the API ("500ms", "2s", "15m", "1h", "1d") and
 * milliseconds inside the code. Pure functions: safe in workflow code.
 */
const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

export const DURATION_HINT = 'a duration such as "500ms", "2s", "15m", "1h" or "1d"';

/** Parses a duration string to milliseconds; returns undefined when it is not one. */
export function tryParseDuration(text: string): number | undefined {
  const match = DURATION_RE.exec(text.trim());
  if (!match) return undefined;
  const ms = Math.round(Number(match[1]) * UNITS[match[2] as string]!);
  return Number.isFinite(ms) ? ms : undefined;
}

export function parseDuration(text: string): number {
  const ms = tryParseDuration(text);
  if (ms === undefined) throw new Error(`"${text}" is not ${DURATION_HINT}`);
  return ms;
}

/** The shortest exact rendering: 90000 → "90s", 900000 → "15m", 1500 → "1500ms". */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = UNITS[unit]!;
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
