/**
 * Buyer controls as the admin API takes them (zod): a buyer's time zone, caps, schedule, duplicate
 * and return windows, and an endpoint's throttle; `resolveBuyerControls` applies the defaults once,
 * at save. The pure functions of these settings are in buyer-controls.ts (no zod: workflow code
 * imports that one).
 */
import { z } from 'zod';
import { DURATION_HINT, tryParseDuration } from './durations';
import { BUYER_CONTROL_DEFAULTS, BUYER_CONTROL_LIMITS, DATE_RE, DAY_KEYS, TIME_RE, civilOf, isTimeZone, minutesOf, utcMs, type DayKey } from './buyer-controls';

function isCalendarDate(text: string): boolean {
  const match = DATE_RE.exec(text);
  if (!match) return false;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const date = civilOf(utcMs(year, month, day));
  return date.year === year && date.month === month && date.day === day;
}

/**
 * A window's bounds when both are well-formed times (refinements also run on values whose parts
 * failed: those are reported by the parts, not again as a bad or overlapping window).
 */
function checkedBounds(window: unknown): { from: string; to: string } | undefined {
  const fields = window as Record<string, unknown> | null;
  const [from, to]: unknown[] = Array.isArray(window) ? (window as unknown[]) : typeof fields === 'object' && fields !== null ? [fields.from, fields.to] : [];
  return typeof from === 'string' && typeof to === 'string' && TIME_RE.test(from) && TIME_RE.test(to) ? { from, to } : undefined;
}

const positiveInt = z.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1');

export const timeZoneSchema = z
  .string({ error: 'must be a string' })
  .max(BUYER_CONTROL_LIMITS.timeZoneLength, `must be at most ${BUYER_CONTROL_LIMITS.timeZoneLength} characters`)
  .refine(isTimeZone, { message: 'must be an IANA time zone such as "America/Chicago" or "UTC"' });

const durationSetting = z.string({ error: `must be ${DURATION_HINT}` }).refine((v) => tryParseDuration(v) !== undefined, { message: `must be ${DURATION_HINT} ("0s" turns it off)` });

const clockTime = z.string({ error: 'must be a time "HH:MM"' }).regex(TIME_RE, 'must be a time "HH:MM" from 00:00 to 24:00');

export const capsSchema = z
  .object({
    hourly: positiveInt.optional(),
    daily: positiveInt.optional(),
    weekly: positiveInt.optional(),
    monthly: positiveInt.optional(),
    total: positiveInt.optional(),
  })
  .strict();

/**
 * One opening of a day, from `from` until `to` (local wall clock, "HH:MM", end exclusive, "24:00"
 * = end of the day). Written either as the pair ["08:00", "20:00"] or, to cap the leads the buyer
 * takes in each occurrence of the window, as {"from": "08:00", "to": "20:00", "cap": 5}. The two
 * forms mean the same window (the pair is the shorthand for an uncapped one) and are stored as
 * written; code reads a window through `windowBounds`, which gives the object form.
 */
export const hoursWindowSchema = z
  .union([z.tuple([clockTime, clockTime]), z.object({ from: clockTime, to: clockTime, cap: positiveInt.optional() }).strict()], {
    error: 'must be a window ["HH:MM", "HH:MM"] or {"from": "HH:MM", "to": "HH:MM", "cap": n}',
  })
  .superRefine((window, ctx) => {
    const bounds = checkedBounds(window);
    if (bounds && minutesOf(bounds.from) >= minutesOf(bounds.to)) ctx.addIssue({ code: 'custom', message: `must start before it ends (${bounds.from} is not before ${bounds.to})` });
  });

const dayHoursSchema = z
  .array(hoursWindowSchema, { error: 'must be a list of windows such as [["08:00", "20:00"]]' })
  .max(BUYER_CONTROL_LIMITS.windowsPerDay, `at most ${BUYER_CONTROL_LIMITS.windowsPerDay} windows a day`)
  .superRefine((windows, ctx) => {
    const order = windows
      .flatMap((window, index) => {
        const bounds = checkedBounds(window);
        return bounds && minutesOf(bounds.from) < minutesOf(bounds.to) ? [{ index, ...bounds }] : [];
      })
      .sort((a, b) => minutesOf(a.from) - minutesOf(b.from) || a.index - b.index);
    for (let i = 1; i < order.length; i++) {
      const [before, after] = [order[i - 1]!, order[i]!];
      if (minutesOf(after.from) < minutesOf(before.to)) {
        ctx.addIssue({ code: 'custom', path: [after.index], message: `overlaps the window ${before.from}–${before.to} (windows of one day must not overlap)` });
      }
    }
  });

const holidaySchema = z.string({ error: 'must be a date "YYYY-MM-DD"' }).superRefine((text, ctx) => {
  if (!DATE_RE.test(text)) ctx.addIssue({ code: 'custom', message: 'must be a date "YYYY-MM-DD"' });
  else if (!isCalendarDate(text)) ctx.addIssue({ code: 'custom', message: 'is not a calendar date' });
});

/** A day not listed under `hours` is closed; a holiday is closed all (local) day. */
export const scheduleSchema = z
  .object({
    hours: z.object(Object.fromEntries(DAY_KEYS.map((day) => [day, dayHoursSchema.optional()])) as Record<DayKey, z.ZodOptional<typeof dayHoursSchema>>).strict(),
    holidays: z.array(holidaySchema).max(BUYER_CONTROL_LIMITS.holidays, `at most ${BUYER_CONTROL_LIMITS.holidays} holidays`).optional(),
    outside: z.enum(['skip', 'hold'], { error: 'must be "skip" or "hold"' }).optional(),
  })
  .strict();

/**
 * A buyer's controls as the API takes them. Every field is optional (a PATCH gives only what
 * changes; a given field replaces the stored one whole); no defaults are filled in here, so a merge
 * never overwrites a stored value with a default: `resolveBuyerControls` applies them.
 */
export const buyerControlsSchema = z
  .object({
    timeZone: timeZoneSchema.optional(),
    caps: capsSchema.optional(),
    schedule: scheduleSchema.optional(),
    duplicateWindow: durationSetting.optional(),
    returnWindow: durationSetting.optional(),
    /** Caps of the leads from one source, by source id, beside the buyer's own (both must have room). */
    sourceCaps: z
      .record(z.string().regex(/^src_[0-9a-z]{1,64}$/, 'must be a source id (src_…)'), capsSchema)
      .refine((v) => Object.keys(v).length <= BUYER_CONTROL_LIMITS.sourceCaps, `at most ${BUYER_CONTROL_LIMITS.sourceCaps} sources`)
      .optional(),
    /** An alert (`cap_near`) once per window when this share of a cap is taken (percent, 1–99). */
    capWarning: z.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(99, 'must be at most 99 (100 is the cap itself)').optional(),
  })
  .strict();

/** The largest throttle rates an endpoint may set. */
export const THROTTLE_LIMITS = { perSecond: 10_000, perMinute: 600_000 } as const;

/** An endpoint's throttle: at most this many sends a second and/or a minute, across all workers. */
export const throttleSchema = z
  .object({
    perSecond: positiveInt.max(THROTTLE_LIMITS.perSecond, `must be at most ${THROTTLE_LIMITS.perSecond}`).optional(),
    perMinute: positiveInt.max(THROTTLE_LIMITS.perMinute, `must be at most ${THROTTLE_LIMITS.perMinute}`).optional(),
  })
  .strict()
  .refine((t) => t.perSecond !== undefined || t.perMinute !== undefined, { message: 'must set perSecond, perMinute or both' });

export type Caps = z.infer<typeof capsSchema>;
export type HoursWindow = z.infer<typeof hoursWindowSchema>;
export type Schedule = z.infer<typeof scheduleSchema>;
export type BuyerControlsInput = z.infer<typeof buyerControlsSchema>;
export type Throttle = z.infer<typeof throttleSchema>;

export interface ResolvedSchedule extends Schedule {
  holidays: string[];
  outside: 'skip' | 'hold';
}

/** The controls as stored: complete, defaults applied; no `schedule` means always open. */
export interface ResolvedBuyerControls {
  timeZone: string;
  caps: Caps;
  schedule?: ResolvedSchedule;
  duplicateWindow: string;
  returnWindow: string;
}

/** What was given, else what was stored, else the default (field by field; a given field replaces the stored one whole). */
export function resolveBuyerControls(given: BuyerControlsInput, current?: Partial<ResolvedBuyerControls>): ResolvedBuyerControls {
  const schedule = given.schedule ?? current?.schedule;
  return {
    timeZone: given.timeZone ?? current?.timeZone ?? BUYER_CONTROL_DEFAULTS.timeZone,
    caps: { ...(given.caps ?? current?.caps ?? {}) },
    ...(schedule ? { schedule: { hours: schedule.hours, holidays: [...(schedule.holidays ?? [])], outside: schedule.outside ?? BUYER_CONTROL_DEFAULTS.outside } } : {}),
    duplicateWindow: given.duplicateWindow ?? current?.duplicateWindow ?? BUYER_CONTROL_DEFAULTS.duplicateWindow,
    returnWindow: given.returnWindow ?? current?.returnWindow ?? BUYER_CONTROL_DEFAULTS.returnWindow,
  };
}

