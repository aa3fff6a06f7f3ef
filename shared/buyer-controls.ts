/**
 * Buyer controls (issue 15): a buyer's time zone, delivery caps, hours, duplicate and return
 * windows, and an endpoint's throttle. Two halves:
 *
 *  - the settings as the API takes them (zod schemas, every field optional so a PATCH merges into
 *    what is stored; `resolveBuyerControls` applies the defaults once, at save);
 *  - pure functions of those settings and an instant, for the delivery workflow to call with its
 *    own clock: which cap window an instant falls in (`capWindowKey`, `capWindowEnd`), whether a
 *    cap is full (`capsReached`), whether the buyer takes leads now and when it next does
 *    (`scheduleState`), and how to say so (`formatOpening`).
 *
 * Time zones are handled with `Intl.DateTimeFormat` alone (Node's full ICU). Formatters are made
 * per call and passed down, never cached at module level: nothing here holds state between calls,
 * so the same arguments always give the same answer (safe in workflow code). A bad time zone makes
 * the functions throw a RangeError; the schema refuses one before it is stored.
 *
 * Local-time rules, the same everywhere below:
 *  - a local time that does not exist (the hour skipped when clocks spring forward) means the
 *    first instant after the gap: 02:30 on 2026-03-08 in America/Chicago is 03:00 CDT;
 *  - a local time that happens twice (the hour repeated when clocks fall back) means its first
 *    occurrence (zonedTimeToUtc can be asked for the later one).
 * So a day runs from its first 00:00 to the next day's: 23 hours on a spring-forward day, 25 on a
 * fall-back day; a schedule window runs from its start to its end by the wall clock, taking the
 * real time that needs (08:00–20:00 is 11 h on a spring-forward day when the gap falls inside it).
 *
 * The API's schemas and the defaults are in buyer-controls-schema.ts (zod): this module imports
 * only its types, so workflow code can import it without bringing zod into the bundle.
 */
import type { Caps, HoursWindow, Schedule } from './buyer-controls-schema';

export type { BuyerControlsInput, Caps, HoursWindow, ResolvedBuyerControls, ResolvedSchedule, Schedule, Throttle } from './buyer-controls-schema';

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

// ---------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------

/** The cap windows, shortest first (the order `capsReached` checks them in). */
export const CAP_WINDOWS = ['hourly', 'daily', 'weekly', 'monthly', 'total'] as const;
export type CapWindow = (typeof CAP_WINDOWS)[number];

/** Schedule days in ISO order: index + 1 is the ISO weekday (Monday = 1 … Sunday = 7). */
export const DAY_KEYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type DayKey = (typeof DAY_KEYS)[number];

export const BUYER_CONTROL_DEFAULTS = {
  timeZone: 'UTC',
  /** How long a lead already sent to a buyer counts as a duplicate for it ("0s": no check). */
  duplicateWindow: '30d',
  /** How long after a delivery the buyer may return the lead. */
  returnWindow: '7d',
  /** Outside its hours a buyer is skipped (the waterfall moves on), or the lead is held for it. */
  outside: 'skip',
} as const;

export const BUYER_CONTROL_LIMITS = { windowsPerDay: 48, holidays: 500, timeZoneLength: 100, sourceCaps: 500 } as const;

/** How far ahead `scheduleState` looks for the next opening. */
export const SCHEDULE_HORIZON_DAYS = 14;

/** Whether Intl knows the zone (IANA names and their links; "UTC"). Offsets such as "+05:00" are not names. */
export function isTimeZone(name: string): boolean {
  if (!/^[A-Za-z][A-Za-z0-9_/+-]*$/.test(name)) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

export const TIME_RE = /^(?:(?:[01]\d|2[0-3]):[0-5]\d|24:00)$/;
export const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** Minutes since midnight of an "HH:MM" the schema accepted (24:00 → 1440). */
export function minutesOf(time: string): number {
  return Number(time.slice(0, 2)) * 60 + Number(time.slice(3, 5));
}


/** A window in its object form, whichever way it was written. */
export function windowBounds(window: HoursWindow): { from: string; to: string; cap?: number } {
  if (Array.isArray(window)) return { from: window[0], to: window[1] };
  const { from, to, cap } = window;
  return cap === undefined ? { from, to } : { from, to, cap };
}

// ---------------------------------------------------------------------------------------------
// Local time
// ---------------------------------------------------------------------------------------------

interface CivilDate {
  year: number;
  month: number;
  day: number;
}

/** A local date and time; `hour` may be 24 (the next day's 00:00). */
export interface LocalDateTime extends CivilDate {
  hour?: number;
  minute?: number;
  second?: number;
}

export interface LocalParts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  /** ISO weekday: 1 = Monday … 7 = Sunday. */
  weekday: number;
  /** Local time minus UTC, in minutes (-300 for CDT, 60 for CET, 330 for IST). */
  offsetMinutes: number;
}

/** The epoch ms of a wall-clock reading taken as UTC (any year; overflowing fields carry). */
export function utcMs(year: number, month: number, day: number, hour = 0, minute = 0, second = 0): number {
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, 0);
  return date.getTime();
}

export function civilOf(ms: number): CivilDate {
  const date = new Date(ms);
  return { year: date.getUTCFullYear(), month: date.getUTCMonth() + 1, day: date.getUTCDate() };
}

function addDays(date: CivilDate, days: number): CivilDate {
  return civilOf(utcMs(date.year, date.month, date.day + days));
}

function isoWeekday(date: CivilDate): number {
  return ((new Date(utcMs(date.year, date.month, date.day)).getUTCDay() + 6) % 7) + 1;
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');
const dateText = (d: CivilDate): string => `${pad(d.year, 4)}-${pad(d.month)}-${pad(d.day)}`;

/** "+00:00", "-05:00", "+05:30" (seconds only for the local mean times of the 1800s). */
function offsetText(offsetMs: number): string {
  const abs = Math.abs(offsetMs) / 1000;
  const text = `${offsetMs < 0 ? '-' : '+'}${pad(Math.floor(abs / 3600))}:${pad(Math.floor(abs / 60) % 60)}`;
  return abs % 60 ? `${text}:${pad(abs % 60)}` : text;
}

/**
 * One time zone's clock for the length of one call: the formatter is made once per call and passed
 * down with it (nothing kept between calls).
 */
class ZoneClock {
  private readonly format: Intl.DateTimeFormat;

  constructor(readonly timeZone: string) {
    this.format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
  }

  /** The local reading at an instant (to the second) and the offset in force. */
  read(atMs: number): CivilDate & { hour: number; minute: number; second: number; offsetMs: number } {
    const second = Math.floor(atMs / 1000) * 1000;
    const fields: Record<string, number> = {};
    for (const part of this.format.formatToParts(second)) if (part.type !== 'literal') fields[part.type] = Number(part.value);
    const reading = { year: fields.year!, month: fields.month!, day: fields.day!, hour: fields.hour! % 24, minute: fields.minute!, second: fields.second! };
    return { ...reading, offsetMs: utcMs(reading.year, reading.month, reading.day, reading.hour, reading.minute, reading.second) - second };
  }

  offsetMs(atMs: number): number {
    return this.read(atMs).offsetMs;
  }

  /** The first instant in (lo, hi] whose offset is not lo's (hi's must not be). */
  firstChange(lo: number, hi: number): number {
    const base = this.offsetMs(lo);
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (this.offsetMs(mid) === base) lo = mid;
      else hi = mid;
    }
    return hi;
  }

  /**
   * The instant of a local reading: the reading's one instant; of a repeated reading the first (or
   * the later when asked); of a skipped reading the first instant after the gap. Assumes at most
   * one offset change within a day either side (true of every zone in use).
   */
  toUtc(local: LocalDateTime, pick: 'earlier' | 'later'): number {
    const wall = utcMs(local.year, local.month, local.day, local.hour ?? 0, local.minute ?? 0, local.second ?? 0);
    const candidates = [...new Set([this.offsetMs(wall - DAY_MS), this.offsetMs(wall + DAY_MS)])].map((offset) => wall - offset).sort((a, b) => a - b);
    const valid = candidates.filter((at) => this.offsetMs(at) === wall - at);
    if (valid.length) return pick === 'earlier' ? valid[0]! : valid[valid.length - 1]!;
    // In a gap: the clock jumped over this reading, between the two candidates.
    return this.firstChange(candidates[0]!, candidates[candidates.length - 1]!);
  }
}

/** The local date, time, weekday and UTC offset at an instant in a time zone. */
export function localParts(atMs: number, timeZone: string): LocalParts {
  const { offsetMs, ...reading } = new ZoneClock(timeZone).read(atMs);
  return { ...reading, weekday: isoWeekday(reading), offsetMinutes: offsetMs / MINUTE_MS };
}

/**
 * The instant a local wall-clock reading names in a time zone, given as {year, month, day, hour?,
 * minute?, second?} or as "YYYY-MM-DD" / "YYYY-MM-DDTHH:MM[:SS]". A reading the clock skipped
 * (spring forward) is the first instant after the gap, whatever `pick`; a reading the clock shows
 * twice (fall back) is its first occurrence, or its second with `pick: 'later'`.
 */
export function zonedTimeToUtc(local: LocalDateTime | string, timeZone: string, pick: 'earlier' | 'later' = 'earlier'): number {
  return new ZoneClock(timeZone).toUtc(typeof local === 'string' ? parseLocal(local) : local, pick);
}

function parseLocal(text: string): LocalDateTime {
  const match = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2}))?)?$/.exec(text);
  if (!match) throw new RangeError(`"${text}" is not a local date-time "YYYY-MM-DD[THH:MM[:SS]]"`);
  const [year, month, day, hour, minute, second] = match.slice(1).map((v) => (v === undefined ? 0 : Number(v))) as [number, number, number, number, number, number];
  return { year, month, day, hour, minute, second };
}

// ---------------------------------------------------------------------------------------------
// Cap windows
// ---------------------------------------------------------------------------------------------

/**
 * The cap window an instant falls in, counted in the buyer's time zone. Keys:
 *  - "hourly:2026-12-04T18-06:00": local date and hour, and the UTC offset in force, so the hour
 *    repeated when clocks fall back is two windows ("hourly:2026-11-01T01-05:00" then
 *    "hourly:2026-11-01T01-06:00" in America/Chicago); each lasts until the local hour or the
 *    offset changes;
 *  - "daily:2026-12-04" (a local day: 23 or 25 hours on the days clocks change);
 *  - "weekly:2026-W49" (ISO week: Monday to Monday, numbered in the ISO week-year, so
 *    2027-01-01 is "weekly:2026-W53");
 *  - "monthly:2026-12";
 *  - "total" (never ends).
 * Keys do not name the zone: after a buyer changes time zone, counting goes on under the new
 * zone's keys.
 */
function capWindowOf(clock: ZoneClock, window: CapWindow, atMs: number): { key: string; start?: number; end?: number } {
  if (window === 'total') return { key: 'total' };
  const now = clock.read(atMs);
  const dayStart = (date: CivilDate) => clock.toUtc({ year: date.year, month: date.month, day: date.day }, 'earlier');
  switch (window) {
    case 'hourly': {
      const offset = now.offsetMs;
      let start = utcMs(now.year, now.month, now.day, now.hour) - offset;
      // The offset changed within this local hour (the hour after a fall back, or a half-hour shift).
      if (clock.offsetMs(start) !== offset) start = clock.firstChange(start, atMs);
      let end = utcMs(now.year, now.month, now.day, now.hour + 1) - offset;
      if (clock.offsetMs(end - 1) !== offset) end = clock.firstChange(atMs, end - 1);
      return { key: `hourly:${dateText(now)}T${pad(now.hour)}${offsetText(offset)}`, start, end };
    }
    case 'daily':
      return { key: `daily:${dateText(now)}`, start: dayStart(now), end: dayStart(addDays(now, 1)) };
    case 'weekly': {
      const monday = addDays(now, 1 - isoWeekday(now));
      const thursday = addDays(monday, 3);
      const week = Math.floor((utcMs(thursday.year, thursday.month, thursday.day) - utcMs(thursday.year, 1, 1)) / DAY_MS / 7) + 1;
      return { key: `weekly:${pad(thursday.year, 4)}-W${pad(week)}`, start: dayStart(monday), end: dayStart(addDays(monday, 7)) };
    }
    case 'monthly':
      return {
        key: `monthly:${pad(now.year, 4)}-${pad(now.month)}`,
        start: dayStart({ year: now.year, month: now.month, day: 1 }),
        end: dayStart(civilOf(utcMs(now.year, now.month + 1, 1))),
      };
  }
}

/** The key of the cap window holding `atMs` in `timeZone` (see capWindowOf above for the forms). */
export function capWindowKey(window: CapWindow, atMs: number, timeZone: string): string {
  return capWindowOf(new ZoneClock(timeZone), window, atMs).key;
}

/** When the cap window holding `atMs` began (epoch ms); undefined for `total`. */
export function capWindowStart(window: CapWindow, atMs: number, timeZone: string): number | undefined {
  return capWindowOf(new ZoneClock(timeZone), window, atMs).start;
}

/** When the cap window holding `atMs` ends (epoch ms, exclusive: the next window's start); undefined for `total`. */
export function capWindowEnd(window: CapWindow, atMs: number, timeZone: string): number | undefined {
  return capWindowOf(new ZoneClock(timeZone), window, atMs).end;
}

export interface CapReached {
  /** The cap that is full: a cap window, or `schedule` for the cap of the open schedule window. */
  window: CapWindow | 'schedule';
  key: string;
  limit: number;
  used: number;
  /** When that window ends and its count starts again (undefined for `total`). */
  endsAt: number | undefined;
}

/**
 * The keys a delivery at `atMs` counts under: one per configured cap, and the open schedule
 * window's key when that window has a cap.
 */
export function usageKeys(caps: Caps, atMs: number, timeZone: string, open?: ScheduleWindow): string[] {
  const clock = new ZoneClock(timeZone);
  const keys = CAP_WINDOWS.filter((window) => caps[window] !== undefined).map((window) => capWindowOf(clock, window, atMs).key);
  return open?.cap !== undefined ? [...keys, open.key] : keys;
}

/**
 * The first full cap (used >= limit) at `atMs`, checking every configured one, shortest window
 * first (hourly, daily, weekly, monthly, total), then the cap of the open schedule window when one
 * is given; undefined when none is full. `usage` maps window keys to the leads counted in them (a
 * missing key is 0). A caller waiting for room waits until `endsAt` and asks again: a longer
 * window may be full too.
 */
export function capsReached(caps: Caps, usage: Readonly<Record<string, number>>, atMs: number, timeZone: string, open?: ScheduleWindow): CapReached | undefined {
  const clock = new ZoneClock(timeZone);
  for (const window of CAP_WINDOWS) {
    const limit = caps[window];
    if (limit === undefined) continue;
    const { key, end } = capWindowOf(clock, window, atMs);
    const used = usage[key] ?? 0;
    if (used >= limit) return { window, key, limit, used, endsAt: end };
  }
  if (open?.cap !== undefined) {
    const used = usage[open.key] ?? 0;
    if (used >= open.cap) return { window: 'schedule', key: open.key, limit: open.cap, used, endsAt: open.closesAt };
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Schedules
// ---------------------------------------------------------------------------------------------

/** One occurrence of a schedule window, on one local date. */
export interface ScheduleWindow {
  day: DayKey;
  /** The local date, "YYYY-MM-DD". */
  date: string;
  from: string;
  to: string;
  cap?: number;
  /** The usage key of this occurrence, for its cap: "window:2026-12-02T08:00/20:00". */
  key: string;
  opensAt: number;
  closesAt: number;
}

export type ScheduleState =
  /** Open; `window` and `closesAt` are undefined when the buyer has no schedule (always open). */
  | { open: true; window: ScheduleWindow | undefined; closesAt: number | undefined }
  /** Closed; `nextOpenAt` is undefined when nothing opens within SCHEDULE_HORIZON_DAYS. */
  | { open: false; nextOpenAt: number | undefined; next?: ScheduleWindow };

/**
 * Whether the buyer takes leads at `atMs`, and until when (open) or from when (closed). Windows are
 * local wall-clock times on their local date, holidays whole local days closed, a day without
 * hours closed, no schedule always open. A window opens at its start's first occurrence and closes
 * at its end's first occurrence (see the local-time rules at the top): a start in the skipped hour
 * opens at the first instant after it (02:30–04:00 on 2026-03-08 in America/Chicago opens at 03:00
 * CDT), a window wholly inside the skipped hour does not open that day, and a window across the
 * repeated hour is open through both passes of it. `closesAt` is the end of the current window,
 * even when the next window starts right then (asked at `closesAt`, the next one is open).
 */
export function scheduleState(schedule: Schedule | undefined, timeZone: string, atMs: number): ScheduleState {
  if (!schedule) return { open: true, window: undefined, closesAt: undefined };
  const clock = new ZoneClock(timeZone);
  const today = clock.read(atMs);
  const holidays = new Set(schedule.holidays ?? []);
  const horizon = atMs + SCHEDULE_HORIZON_DAYS * DAY_MS;
  // From yesterday (a window cannot run past its day's end, but a day's end is a local reading),
  // day by day until the horizon.
  for (let offset = -1; offset <= SCHEDULE_HORIZON_DAYS + 1; offset++) {
    const date = addDays(today, offset);
    const dateKey = dateText(date);
    if (holidays.has(dateKey)) continue;
    const day = DAY_KEYS[isoWeekday(date) - 1]!;
    const windows = (schedule.hours[day] ?? []).map(windowBounds).sort((a, b) => minutesOf(a.from) - minutesOf(b.from));
    for (const { from, to, cap } of windows) {
      const at = (time: string) => clock.toUtc({ ...date, hour: Math.floor(minutesOf(time) / 60), minute: minutesOf(time) % 60 }, 'earlier');
      const [opensAt, closesAt] = [at(from), at(to)];
      if (closesAt <= opensAt || closesAt <= atMs) continue;
      if (opensAt > horizon) return { open: false, nextOpenAt: undefined };
      const window: ScheduleWindow = { day, date: dateKey, from, to, ...(cap === undefined ? {} : { cap }), key: `window:${dateKey}T${from}/${to}`, opensAt, closesAt };
      return opensAt <= atMs ? { open: true, window, closesAt } : { open: false, nextOpenAt: opensAt, next: window };
    }
  }
  return { open: false, nextOpenAt: undefined };
}

/** Locales tried in turn for a zone's short name, until one has a name rather than "GMT+1". */
const ZONE_NAME_LOCALES = ['en-US', 'en-GB', 'en-AU', 'en-IN'] as const;

function zoneName(atMs: number, timeZone: string): string {
  let name = '';
  for (const locale of ZONE_NAME_LOCALES) {
    const part = new Intl.DateTimeFormat(locale, { timeZone, timeZoneName: 'short' }).formatToParts(atMs).find((p) => p.type === 'timeZoneName');
    name = part?.value ?? name;
    if (!/^(?:GMT|UTC)[+\-\u2212]/.test(name)) return name;
  }
  return name;
}

/**
 * An instant for a human summary, in the buyer's zone: "08:00 CST" when it falls on the local day
 * of `nowMs`, "Mon 08:00 CST" within the week after (or when `nowMs` is not given),
 * "Mon 2026-12-14 08:00 CST" further ahead. Zones without a common abbreviation read "GMT+9".
 */
export function formatOpening(atMs: number, timeZone: string, nowMs?: number): string {
  const clock = new ZoneClock(timeZone);
  const at = clock.read(atMs);
  const time = `${pad(at.hour)}:${pad(at.minute)} ${zoneName(atMs, timeZone)}`;
  const weekday = DAY_KEYS[isoWeekday(at) - 1]!;
  const dayName = weekday.charAt(0).toUpperCase() + weekday.slice(1);
  if (nowMs === undefined) return `${dayName} ${time}`;
  const now = clock.read(nowMs);
  const daysAhead = Math.round((utcMs(at.year, at.month, at.day) - utcMs(now.year, now.month, now.day)) / DAY_MS);
  if (daysAhead === 0) return time;
  if (daysAhead > 0 && daysAhead < 7) return `${dayName} ${time}`;
  return `${dayName} ${dateText(at)} ${time}`;
}

/** One cap window a delivery counts in: a cap window's key (or the open schedule window's), at most `limit` leads. */
export interface CapacityKey {
  /** hourly, daily, weekly, monthly, total, or `window` for the open schedule window's cap. */
  window: CapWindow | 'window';
  key: string;
  limit: number;
  /** When the window ends (epoch ms; absent for total). */
  endsAt?: number;
  /** A cap of the leads from this source only (the key ends with `@<sourceId>`). */
  sourceId?: string;
  /** The count at which the buyer's `capWarning` alert goes out (once per window). */
  warnAt?: number;
}

/**
 * The windows a lead taken at `atMs` counts in, with their limits: one per configured cap, and the
 * open schedule window when it has a cap. The workflow reserves them; the admin API shows their usage.
 */
export function capacityKeys(controls: { timeZone?: string; caps?: Caps; schedule?: Schedule; sourceCaps?: { sourceId: string; caps: Caps }; capWarning?: number }, atMs: number): CapacityKey[] {
  const timeZone = controls.timeZone ?? BUYER_CONTROL_DEFAULTS.timeZone;
  const keys: CapacityKey[] = [];
  const warnAt = (limit: number) => {
    if (controls.capWarning === undefined) return {};
    const at = Math.ceil((limit * controls.capWarning) / 100);
    return at < limit ? { warnAt: at } : {};
  };
  const scoped: Array<[Caps | undefined, string | undefined]> = [[controls.caps, undefined], [controls.sourceCaps?.caps, controls.sourceCaps?.sourceId]];
  for (const [caps, sourceId] of scoped) {
    for (const window of CAP_WINDOWS) {
      const limit = caps?.[window];
      if (limit === undefined) continue;
      const endsAt = capWindowEnd(window, atMs, timeZone);
      const key = capWindowKey(window, atMs, timeZone) + (sourceId ? `@${sourceId}` : '');
      keys.push({ window, key, limit, ...(endsAt === undefined ? {} : { endsAt }), ...(sourceId ? { sourceId } : {}), ...warnAt(limit) });
    }
  }
  const state = controls.schedule ? scheduleState(controls.schedule, timeZone, atMs) : undefined;
  if (state?.open && state.window?.cap !== undefined) keys.push({ window: 'window', key: state.window.key, limit: state.window.cap, endsAt: state.window.closesAt, ...warnAt(state.window.cap) });
  return keys;
}
