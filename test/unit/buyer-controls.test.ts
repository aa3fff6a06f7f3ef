import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { buyerControlsSchema, resolveBuyerControls, scheduleSchema, throttleSchema } from '../../shared/buyer-controls-schema';
import {
  capacityKeys,
  capsReached,
  capWindowEnd,
  capWindowKey,
  capWindowStart,
  formatOpening,
  localParts,
  scheduleState,
  usageKeys,
  windowBounds,
  zonedTimeToUtc,
  type CapWindow,
  type Schedule,
  type ScheduleState,
} from '../../shared/buyer-controls';
import { fieldErrorsFromIssues } from '../../shared/errors';

const CHICAGO = 'America/Chicago';
const BERLIN = 'Europe/Berlin';
const SYDNEY = 'Australia/Sydney';
const HOUR = 3_600_000;
const at = (iso: string): number => {
  const ms = Date.parse(iso);
  assert.ok(Number.isFinite(ms), iso);
  return ms;
};
const iso = (ms: number | undefined): string | undefined => (ms === undefined ? undefined : new Date(ms).toISOString());

/** The field errors the API would answer with (path and message), or [] when the value is accepted. */
function errorsOf(schema: typeof buyerControlsSchema | typeof throttleSchema, value: unknown): Array<{ path: string; message: string }> {
  const result = schema.safeParse(value);
  return result.success ? [] : fieldErrorsFromIssues(result.error.issues);
}

const weekdays = (window: [string, string] = ['08:00', '20:00']): Schedule['hours'] => ({ mon: [window], tue: [window], wed: [window], thu: [window], fri: [window] });

function openState(state: ScheduleState): Extract<ScheduleState, { open: true }> {
  if (!state.open) assert.fail(`expected open, got ${JSON.stringify(state)}`);
  return state;
}
function closedState(state: ScheduleState): Extract<ScheduleState, { open: false }> {
  if (state.open) assert.fail(`expected closed, got ${JSON.stringify(state)}`);
  return state;
}

/** Every window of a kind from `fromMs` (inclusive) to `toMs`, by stepping from each end to the next. */
function walk(window: CapWindow, fromMs: number, toMs: number, timeZone: string): Array<{ key: string; start: number; end: number }> {
  const out: Array<{ key: string; start: number; end: number }> = [];
  for (let t = fromMs; t < toMs; ) {
    const end = capWindowEnd(window, t, timeZone)!;
    out.push({ key: capWindowKey(window, t, timeZone), start: capWindowStart(window, t, timeZone)!, end });
    assert.ok(end > t, `window ${window} at ${iso(t)} ends at ${iso(end)}`);
    t = end;
  }
  return out;
}

describe('buyer controls', () => {
  describe('settings schema', () => {
    it('accepts the contract’s examples', () => {
      const examples: unknown[] = [
        {},
        { schedule: { hours: { mon: [['08:00', '20:00']] } } },
        { schedule: { hours: weekdays(), holidays: ['2026-12-25', '2027-01-01'], outside: 'hold' } },
        { schedule: { hours: { sat: [{ from: '08:00', to: '12:00', cap: 5 }, ['13:00', '24:00']], sun: [['00:00', '24:00']] }, outside: 'skip' } },
        { schedule: { hours: { mon: [['08:00', '12:00'], ['12:00', '20:00']] } } }, // touching windows do not overlap
        { schedule: { hours: {} } }, // closed every day
        { timeZone: 'America/Chicago', caps: { hourly: 10, daily: 100, weekly: 500, monthly: 2000, total: 10_000 }, duplicateWindow: '0s', returnWindow: '7d' },
        { timeZone: 'UTC' },
        { timeZone: 'Australia/Sydney', duplicateWindow: '30d' },
      ];
      for (const value of examples) assert.deepEqual(errorsOf(buyerControlsSchema, value), [], JSON.stringify(value));
    });

    it('parses without filling in defaults (a PATCH only changes what it gives)', () => {
      assert.deepEqual(buyerControlsSchema.parse({ caps: { daily: 3 } }), { caps: { daily: 3 } });
      assert.deepEqual(buyerControlsSchema.parse({ schedule: { hours: { mon: [['08:00', '20:00']] } } }), { schedule: { hours: { mon: [['08:00', '20:00']] } } });
    });

    const rejected: Array<[string, unknown, string, RegExp]> = [
      ['an unknown time zone', { timeZone: 'Mars/Olympus' }, 'timeZone', /IANA time zone/],
      ['an offset instead of a zone name', { timeZone: '+05:00' }, 'timeZone', /IANA time zone/],
      ['an empty time zone', { timeZone: '' }, 'timeZone', /IANA time zone/],
      ['a cap of 0', { caps: { daily: 0 } }, 'caps.daily', /at least 1/],
      ['a fractional cap', { caps: { hourly: 1.5 } }, 'caps.hourly', /whole number/],
      ['a cap given as a string', { caps: { weekly: '5' } }, 'caps.weekly', /number/],
      ['an unknown cap window', { caps: { yearly: 5 } }, 'caps.yearly', /not a known field/],
      ['an hour of 25', { schedule: { hours: { mon: [['25:00', '23:00']] } } }, 'schedule.hours.mon.0.0', /"HH:MM" from 00:00 to 24:00/],
      ['a time without its leading zero', { schedule: { hours: { tue: [['08:00', '9:00']] } } }, 'schedule.hours.tue.0.1', /"HH:MM"/],
      ['24:30', { schedule: { hours: { mon: [['20:00', '24:30']] } } }, 'schedule.hours.mon.0.1', /"HH:MM"/],
      ['a window ending before it starts', { schedule: { hours: { mon: [['20:00', '08:00']] } } }, 'schedule.hours.mon.0', /must start before it ends/],
      ['a window ending as it starts', { schedule: { hours: { fri: [['08:00', '20:00'], ['21:00', '21:00']] } } }, 'schedule.hours.fri.1', /must start before it ends/],
      ['overlapping windows (named at the later one)', { schedule: { hours: { wed: [['11:00', '13:00'], ['08:00', '12:00']] } } }, 'schedule.hours.wed.0', /overlaps the window 08:00–12:00/],
      ['a window inside another', { schedule: { hours: { thu: [['08:00', '20:00'], { from: '09:00', to: '10:00', cap: 2 }] } } }, 'schedule.hours.thu.1', /overlaps/],
      ['a window of one time', { schedule: { hours: { mon: [['08:00']] } } }, 'schedule.hours.mon.0', /must be a window/],
      ['a window as a string', { schedule: { hours: { mon: ['08:00-20:00'] } } }, 'schedule.hours.mon.0', /must be a window/],
      ['a per-window cap of 0', { schedule: { hours: { mon: [{ from: '08:00', to: '20:00', cap: 0 }] } } }, 'schedule.hours.mon.0.cap', /at least 1/],
      ['an unknown key in a window', { schedule: { hours: { mon: [{ from: '08:00', to: '20:00', limit: 3 }] } } }, 'schedule.hours.mon.0.limit', /not a known field/],
      ['an unknown day', { schedule: { hours: { monday: [['08:00', '20:00']] } } }, 'schedule.hours.monday', /not a known field/],
      ['a schedule without hours', { schedule: { holidays: ['2026-12-25'] } }, 'schedule.hours', /expected object/],
      ['30 February', { schedule: { hours: {}, holidays: ['2026-02-30'] } }, 'schedule.holidays.0', /not a calendar date/],
      ['29 February of a common year', { schedule: { hours: {}, holidays: ['2026-12-25', '2027-02-29'] } }, 'schedule.holidays.1', /not a calendar date/],
      ['a holiday not written YYYY-MM-DD', { schedule: { hours: {}, holidays: ['25/12/2026'] } }, 'schedule.holidays.0', /must be a date "YYYY-MM-DD"/],
      ['an unknown outside rule', { schedule: { hours: {}, outside: 'wait' } }, 'schedule.outside', /"skip" or "hold"/],
      ['a duration in weeks', { duplicateWindow: '1w' }, 'duplicateWindow', /must be a duration/],
      ['a duration as a number', { returnWindow: 7 }, 'returnWindow', /must be a duration/],
      ['an unknown setting', { timezone: 'UTC' }, 'timezone', /not a known field/],
    ];
    for (const [what, value, path, message] of rejected) {
      it(`rejects ${what}, naming ${path}`, () => {
        const errors = errorsOf(buyerControlsSchema, value);
        assert.equal(errors.length, 1, JSON.stringify(errors));
        assert.equal(errors[0]!.path, path);
        assert.match(errors[0]!.message, message);
      });
    }

    it('reports every bad field at once', () => {
      const errors = errorsOf(buyerControlsSchema, { timeZone: 'Mars/Olympus', caps: { daily: 0 }, duplicateWindow: 'soon' });
      assert.deepEqual(errors.map((e) => e.path), ['timeZone', 'caps.daily', 'duplicateWindow']);
    });

    it('reads both window forms as the object form', () => {
      assert.deepEqual(windowBounds(['08:00', '20:00']), { from: '08:00', to: '20:00' });
      assert.deepEqual(windowBounds({ from: '08:00', to: '20:00', cap: 5 }), { from: '08:00', to: '20:00', cap: 5 });
      assert.deepEqual(windowBounds({ from: '08:00', to: '20:00' }), { from: '08:00', to: '20:00' });
    });

    it('resolves defaults once, keeping what is stored unless it is given again', () => {
      assert.deepEqual(resolveBuyerControls({}), { timeZone: 'UTC', caps: {}, duplicateWindow: '30d', returnWindow: '7d' });
      const stored = resolveBuyerControls({ timeZone: CHICAGO, caps: { daily: 10 }, schedule: { hours: weekdays() } });
      assert.deepEqual(stored.schedule, { hours: weekdays(), holidays: [], outside: 'skip' });
      const patched = resolveBuyerControls({ caps: { hourly: 2 }, duplicateWindow: '0s' }, stored);
      assert.deepEqual(patched, { timeZone: CHICAGO, caps: { hourly: 2 }, schedule: stored.schedule, duplicateWindow: '0s', returnWindow: '7d' });
      assert.equal(resolveBuyerControls({ schedule: { hours: {}, outside: 'hold' } }, stored).schedule?.outside, 'hold');
    });

    it('takes an endpoint throttle with at least one limit', () => {
      assert.deepEqual(errorsOf(throttleSchema, { perSecond: 5 }), []);
      assert.deepEqual(errorsOf(throttleSchema, { perMinute: 100 }), []);
      assert.deepEqual(errorsOf(throttleSchema, { perSecond: 2, perMinute: 60 }), []);
      assert.deepEqual(errorsOf(throttleSchema, {}), [{ path: '(body)', message: 'must set perSecond, perMinute or both' }]);
      assert.deepEqual(errorsOf(throttleSchema, { perMinute: 0 }).map((e) => e.path), ['perMinute']);
      assert.deepEqual(errorsOf(throttleSchema, { perSecond: 0.5 }).map((e) => e.path), ['perSecond']);
      assert.deepEqual(errorsOf(throttleSchema, { perSecond: 1, perHour: 5 }).map((e) => e.path), ['perHour']);
    });
  });

  describe('local time', () => {
    it('reads the local date, time, weekday and offset', () => {
      assert.deepEqual(localParts(at('2026-12-02T16:05:07.900Z'), CHICAGO), { year: 2026, month: 12, day: 2, hour: 10, minute: 5, second: 7, weekday: 3, offsetMinutes: -360 });
      assert.deepEqual(localParts(at('2026-07-01T06:00:00Z'), CHICAGO), { year: 2026, month: 7, day: 1, hour: 1, minute: 0, second: 0, weekday: 3, offsetMinutes: -300 });
      assert.deepEqual(localParts(at('2026-07-01T06:00:00Z'), 'Asia/Kolkata'), { year: 2026, month: 7, day: 1, hour: 11, minute: 30, second: 0, weekday: 3, offsetMinutes: 330 });
      assert.deepEqual(localParts(at('2026-12-31T23:30:00Z'), BERLIN), { year: 2027, month: 1, day: 1, hour: 0, minute: 30, second: 0, weekday: 5, offsetMinutes: 60 });
      assert.deepEqual(localParts(at('2026-12-06T13:00:00Z'), SYDNEY), { year: 2026, month: 12, day: 7, hour: 0, minute: 0, second: 0, weekday: 1, offsetMinutes: 660 });
      assert.equal(localParts(at('2026-03-29T12:00:00Z'), 'UTC').weekday, 7);
    });

    it('turns a local reading into its instant', () => {
      assert.equal(iso(zonedTimeToUtc({ year: 2026, month: 12, day: 7, hour: 8, minute: 0 }, CHICAGO)), '2026-12-07T14:00:00.000Z');
      assert.equal(iso(zonedTimeToUtc('2026-07-06T08:00', CHICAGO)), '2026-07-06T13:00:00.000Z');
      assert.equal(iso(zonedTimeToUtc('2026-12-05', SYDNEY)), '2026-12-04T13:00:00.000Z');
      assert.equal(iso(zonedTimeToUtc('2026-07-01T11:30:15', 'Asia/Kolkata')), '2026-07-01T06:00:15.000Z');
      assert.equal(iso(zonedTimeToUtc({ year: 2026, month: 12, day: 31, hour: 24 }, BERLIN)), '2026-12-31T23:00:00.000Z');
    });

    it('maps a skipped reading to the first instant after the gap', () => {
      assert.equal(iso(zonedTimeToUtc('2026-03-08T02:30', CHICAGO)), '2026-03-08T08:00:00.000Z'); // 03:00 CDT
      assert.equal(iso(zonedTimeToUtc('2026-03-08T02:00', CHICAGO, 'later')), '2026-03-08T08:00:00.000Z');
      assert.equal(iso(zonedTimeToUtc('2026-03-08T03:00', CHICAGO)), '2026-03-08T08:00:00.000Z');
      assert.equal(iso(zonedTimeToUtc('2026-03-29T02:30', BERLIN)), '2026-03-29T01:00:00.000Z'); // 03:00 CEST
      assert.equal(iso(zonedTimeToUtc('2026-10-04T02:15', SYDNEY)), '2026-10-03T16:00:00.000Z'); // 03:00 AEDT
    });

    it('maps a repeated reading to its first occurrence, or its second when asked', () => {
      assert.equal(iso(zonedTimeToUtc('2026-11-01T01:30', CHICAGO)), '2026-11-01T06:30:00.000Z'); // CDT
      assert.equal(iso(zonedTimeToUtc('2026-11-01T01:30', CHICAGO, 'later')), '2026-11-01T07:30:00.000Z'); // CST
      assert.equal(iso(zonedTimeToUtc('2026-10-25T02:30', BERLIN)), '2026-10-25T00:30:00.000Z');
      assert.equal(iso(zonedTimeToUtc('2026-10-25T02:30', BERLIN, 'later')), '2026-10-25T01:30:00.000Z');
      assert.equal(iso(zonedTimeToUtc('2026-04-05T02:30', SYDNEY)), '2026-04-04T15:30:00.000Z');
      assert.equal(iso(zonedTimeToUtc('2026-04-05T02:30', SYDNEY, 'later')), '2026-04-04T16:30:00.000Z');
    });

    it('refuses a bad zone or a bad local string', () => {
      assert.throws(() => localParts(0, 'Mars/Olympus'), RangeError);
      assert.throws(() => capWindowKey('daily', 0, 'Mars/Olympus'), RangeError);
      assert.throws(() => zonedTimeToUtc('2026-12-07 08:00', CHICAGO), RangeError);
    });

    it('round-trips every instant through its local reading (property)', () => {
      const zones = [CHICAGO, BERLIN, SYDNEY, 'UTC', 'Asia/Kolkata', 'America/Sao_Paulo', 'Australia/Lord_Howe', 'Pacific/Chatham'];
      fc.assert(
        fc.property(fc.integer({ min: at('2020-01-01T00:00:00Z') / 1000, max: at('2030-01-01T00:00:00Z') / 1000 }), fc.constantFrom(...zones), (seconds, zone) => {
          const ms = seconds * 1000;
          const local = localParts(ms, zone);
          const instants = [zonedTimeToUtc(local, zone, 'earlier'), zonedTimeToUtc(local, zone, 'later')];
          assert.ok(instants.includes(ms), `${iso(ms)} in ${zone} reads ${JSON.stringify(local)}, back to ${instants.map(iso).join(', ')}`);
        }),
        { numRuns: 150 },
      );
    });
  });

  describe('cap windows', () => {
    it('keys and ends in UTC', () => {
      const t = at('2026-12-04T18:25:00Z');
      const expected: Array<[CapWindow, string, string | undefined, string | undefined]> = [
        ['hourly', 'hourly:2026-12-04T18+00:00', '2026-12-04T18:00:00.000Z', '2026-12-04T19:00:00.000Z'],
        ['daily', 'daily:2026-12-04', '2026-12-04T00:00:00.000Z', '2026-12-05T00:00:00.000Z'],
        ['weekly', 'weekly:2026-W49', '2026-11-30T00:00:00.000Z', '2026-12-07T00:00:00.000Z'],
        ['monthly', 'monthly:2026-12', '2026-12-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z'],
        ['total', 'total', undefined, undefined],
      ];
      for (const [window, key, start, end] of expected) {
        assert.equal(capWindowKey(window, t, 'UTC'), key);
        assert.equal(iso(capWindowStart(window, t, 'UTC')), start, `${window} start`);
        assert.equal(iso(capWindowEnd(window, t, 'UTC')), end, `${window} end`);
      }
    });

    it('counts in the buyer’s zone, not UTC (America/Chicago)', () => {
      const t = at('2026-12-05T03:30:00Z'); // Friday 4 December, 21:30 CST
      assert.equal(capWindowKey('hourly', t, CHICAGO), 'hourly:2026-12-04T21-06:00');
      assert.equal(capWindowKey('daily', t, CHICAGO), 'daily:2026-12-04');
      assert.equal(capWindowKey('daily', t, 'UTC'), 'daily:2026-12-05');
      assert.equal(iso(capWindowEnd('hourly', t, CHICAGO)), '2026-12-05T04:00:00.000Z');
      assert.equal(iso(capWindowEnd('daily', t, CHICAGO)), '2026-12-05T06:00:00.000Z');
      assert.equal(iso(capWindowEnd('weekly', t, CHICAGO)), '2026-12-07T06:00:00.000Z');
      assert.equal(iso(capWindowEnd('monthly', t, CHICAGO)), '2027-01-01T06:00:00.000Z');
      // On a Sunday evening in Chicago, UTC is already in the next ISO week.
      const sunday = at('2027-01-04T03:00:00Z');
      assert.equal(capWindowKey('weekly', sunday, CHICAGO), 'weekly:2026-W53');
      assert.equal(capWindowKey('weekly', sunday, 'UTC'), 'weekly:2027-W01');
    });

    it('keys and ends in Europe/Berlin and Australia/Sydney', () => {
      const newYear = at('2026-12-31T23:30:00Z'); // 00:30 CET on 1 January
      assert.equal(capWindowKey('hourly', newYear, BERLIN), 'hourly:2027-01-01T00+01:00');
      assert.equal(capWindowKey('daily', newYear, BERLIN), 'daily:2027-01-01');
      assert.equal(capWindowKey('monthly', newYear, BERLIN), 'monthly:2027-01');
      assert.equal(capWindowKey('weekly', newYear, BERLIN), 'weekly:2026-W53');
      assert.equal(iso(capWindowStart('daily', newYear, BERLIN)), '2026-12-31T23:00:00.000Z');
      assert.equal(iso(capWindowStart('monthly', newYear, BERLIN)), '2026-12-31T23:00:00.000Z');
      assert.equal(iso(capWindowEnd('monthly', newYear, BERLIN)), '2027-01-31T23:00:00.000Z');

      const t = at('2026-12-04T14:00:00Z'); // Saturday 5 December, 01:00 AEDT
      assert.equal(capWindowKey('hourly', t, SYDNEY), 'hourly:2026-12-05T01+11:00');
      assert.equal(capWindowKey('daily', t, SYDNEY), 'daily:2026-12-05');
      assert.equal(iso(capWindowEnd('daily', t, SYDNEY)), '2026-12-05T13:00:00.000Z');
      assert.equal(capWindowKey('weekly', t, SYDNEY), 'weekly:2026-W49');
      assert.equal(iso(capWindowEnd('weekly', t, SYDNEY)), '2026-12-06T13:00:00.000Z');
    });

    it('follows half-hour zones: hours turn at :30 UTC in Asia/Kolkata', () => {
      const t = at('2026-07-01T06:10:00Z'); // 11:40 IST
      assert.equal(capWindowKey('hourly', t, 'Asia/Kolkata'), 'hourly:2026-07-01T11+05:30');
      assert.equal(iso(capWindowStart('hourly', t, 'Asia/Kolkata')), '2026-07-01T05:30:00.000Z');
      assert.equal(iso(capWindowEnd('hourly', t, 'Asia/Kolkata')), '2026-07-01T06:30:00.000Z');
    });

    it('ISO weeks around New Year', () => {
      const cases: Array<[string, string, string]> = [
        ['2025-12-28T12:00:00Z', 'weekly:2025-W52', '2025-12-29T00:00:00.000Z'],
        ['2025-12-29T00:00:00Z', 'weekly:2026-W01', '2026-01-05T00:00:00.000Z'],
        ['2026-01-01T12:00:00Z', 'weekly:2026-W01', '2026-01-05T00:00:00.000Z'],
        ['2026-12-31T12:00:00Z', 'weekly:2026-W53', '2027-01-04T00:00:00.000Z'],
        ['2027-01-01T12:00:00Z', 'weekly:2026-W53', '2027-01-04T00:00:00.000Z'],
        ['2027-01-03T23:59:59Z', 'weekly:2026-W53', '2027-01-04T00:00:00.000Z'],
        ['2027-01-04T00:00:00Z', 'weekly:2027-W01', '2027-01-11T00:00:00.000Z'],
        ['2027-12-31T12:00:00Z', 'weekly:2027-W52', '2028-01-03T00:00:00.000Z'],
      ];
      for (const [when, key, end] of cases) {
        assert.equal(capWindowKey('weekly', at(when), 'UTC'), key, when);
        assert.equal(iso(capWindowEnd('weekly', at(when), 'UTC')), end, when);
      }
      assert.equal(iso(capWindowStart('weekly', at('2027-01-01T12:00:00Z'), 'UTC')), '2026-12-28T00:00:00.000Z');
    });

    it('America/Chicago spring forward (2026-03-08): a 23-hour day without a 02 hour', () => {
      const noon = at('2026-03-08T18:00:00Z');
      const start = capWindowStart('daily', noon, CHICAGO)!;
      const end = capWindowEnd('daily', noon, CHICAGO)!;
      assert.equal(iso(start), '2026-03-08T06:00:00.000Z');
      assert.equal(iso(end), '2026-03-09T05:00:00.000Z');
      assert.equal(end - start, 23 * HOUR);
      assert.equal(start, zonedTimeToUtc('2026-03-08', CHICAGO));
      assert.equal(capWindowKey('hourly', at('2026-03-08T07:59:59Z'), CHICAGO), 'hourly:2026-03-08T01-06:00');
      assert.equal(iso(capWindowEnd('hourly', at('2026-03-08T07:30:00Z'), CHICAGO)), '2026-03-08T08:00:00.000Z');
      assert.equal(capWindowKey('hourly', at('2026-03-08T08:00:00Z'), CHICAGO), 'hourly:2026-03-08T03-05:00');
      const hours = walk('hourly', start, end, CHICAGO);
      assert.equal(hours.length, 23);
      assert.ok(!hours.some((h) => h.key.includes('T02')), 'no 02:00 hour');
      // The week and the month holding it are an hour short too.
      assert.equal(capWindowEnd('weekly', noon, CHICAGO)! - capWindowStart('weekly', noon, CHICAGO)!, 7 * 24 * HOUR - HOUR);
      assert.equal(iso(capWindowEnd('monthly', noon, CHICAGO)), '2026-04-01T05:00:00.000Z');
    });

    it('America/Chicago fall back (2026-11-01): a 25-hour day whose two 01 hours are different windows', () => {
      const start = capWindowStart('daily', at('2026-11-01T18:00:00Z'), CHICAGO)!;
      const end = capWindowEnd('daily', at('2026-11-01T18:00:00Z'), CHICAGO)!;
      assert.equal(iso(start), '2026-11-01T05:00:00.000Z');
      assert.equal(iso(end), '2026-11-02T06:00:00.000Z');
      assert.equal(end - start, 25 * HOUR);
      const first = at('2026-11-01T06:30:00Z'); // 01:30 CDT
      const second = at('2026-11-01T07:30:00Z'); // 01:30 CST
      assert.equal(localParts(first, CHICAGO).hour, 1);
      assert.equal(localParts(second, CHICAGO).hour, 1);
      assert.equal(capWindowKey('hourly', first, CHICAGO), 'hourly:2026-11-01T01-05:00');
      assert.equal(capWindowKey('hourly', second, CHICAGO), 'hourly:2026-11-01T01-06:00');
      assert.equal(iso(capWindowStart('hourly', first, CHICAGO)), '2026-11-01T06:00:00.000Z');
      assert.equal(iso(capWindowEnd('hourly', first, CHICAGO)), '2026-11-01T07:00:00.000Z');
      assert.equal(iso(capWindowStart('hourly', second, CHICAGO)), '2026-11-01T07:00:00.000Z');
      assert.equal(iso(capWindowEnd('hourly', second, CHICAGO)), '2026-11-01T08:00:00.000Z');
      assert.equal(capWindowKey('daily', first, CHICAGO), capWindowKey('daily', second, CHICAGO));
      const hours = walk('hourly', start, end, CHICAGO);
      assert.equal(hours.length, 25);
      assert.equal(new Set(hours.map((h) => h.key)).size, 25);
    });

    it('Europe/Berlin: 2026-03-29 has 23 hours, 2026-10-25 has 25 with two 02 hours', () => {
      const spring = at('2026-03-29T12:00:00Z');
      assert.equal(iso(capWindowStart('daily', spring, BERLIN)), '2026-03-28T23:00:00.000Z');
      assert.equal(iso(capWindowEnd('daily', spring, BERLIN)), '2026-03-29T22:00:00.000Z');
      assert.equal(capWindowKey('hourly', at('2026-03-29T00:30:00Z'), BERLIN), 'hourly:2026-03-29T01+01:00');
      assert.equal(iso(capWindowEnd('hourly', at('2026-03-29T00:30:00Z'), BERLIN)), '2026-03-29T01:00:00.000Z');
      assert.equal(capWindowKey('hourly', at('2026-03-29T01:00:00Z'), BERLIN), 'hourly:2026-03-29T03+02:00');
      assert.equal(walk('hourly', capWindowStart('daily', spring, BERLIN)!, capWindowEnd('daily', spring, BERLIN)!, BERLIN).length, 23);

      const autumn = at('2026-10-25T12:00:00Z');
      assert.equal(iso(capWindowStart('daily', autumn, BERLIN)), '2026-10-24T22:00:00.000Z');
      assert.equal(iso(capWindowEnd('daily', autumn, BERLIN)), '2026-10-25T23:00:00.000Z');
      assert.equal(capWindowKey('hourly', at('2026-10-25T00:30:00Z'), BERLIN), 'hourly:2026-10-25T02+02:00');
      assert.equal(capWindowKey('hourly', at('2026-10-25T01:30:00Z'), BERLIN), 'hourly:2026-10-25T02+01:00');
      assert.equal(iso(capWindowEnd('hourly', at('2026-10-25T00:30:00Z'), BERLIN)), '2026-10-25T01:00:00.000Z');
      const hours = walk('hourly', capWindowStart('daily', autumn, BERLIN)!, capWindowEnd('daily', autumn, BERLIN)!, BERLIN);
      assert.equal(new Set(hours.map((h) => h.key)).size, 25);
    });

    it('Australia/Sydney: the April fall back gives 25 hours, the October spring forward 23', () => {
      const april = at('2026-04-05T02:00:00Z');
      assert.equal(capWindowEnd('daily', april, SYDNEY)! - capWindowStart('daily', april, SYDNEY)!, 25 * HOUR);
      assert.equal(iso(capWindowStart('daily', april, SYDNEY)), '2026-04-04T13:00:00.000Z');
      const october = at('2026-10-04T02:00:00Z');
      assert.equal(capWindowEnd('daily', october, SYDNEY)! - capWindowStart('daily', october, SYDNEY)!, 23 * HOUR);
      assert.equal(iso(capWindowEnd('daily', october, SYDNEY)), '2026-10-04T13:00:00.000Z');
    });

    it('windows tile time: each starts where the last ended, its key the same throughout (property)', () => {
      const zones = [CHICAGO, BERLIN, SYDNEY, 'UTC', 'Asia/Kolkata', 'Australia/Lord_Howe', 'America/Santiago'];
      fc.assert(
        fc.property(fc.integer({ min: at('2024-01-01T00:00:00Z'), max: at('2028-01-01T00:00:00Z') }), fc.constantFrom(...zones), fc.constantFrom<CapWindow>('hourly', 'daily', 'weekly', 'monthly'), (ms, zone, window) => {
          const key = capWindowKey(window, ms, zone);
          const start = capWindowStart(window, ms, zone)!;
          const end = capWindowEnd(window, ms, zone)!;
          assert.ok(start <= ms && ms < end, `${window} ${key}: ${iso(start)} ≤ ${iso(ms)} < ${iso(end)}`);
          assert.equal(capWindowKey(window, start, zone), key);
          assert.equal(capWindowKey(window, end - 1, zone), key);
          assert.notEqual(capWindowKey(window, end, zone), key);
          assert.equal(capWindowStart(window, end, zone), end);
        }),
        { numRuns: 120 },
      );
    });
  });

  describe('capsReached', () => {
    const t = at('2026-12-05T03:30:00Z'); // Friday 4 December, 21:30 CST
    const hourKey = 'hourly:2026-12-04T21-06:00';

    it('is undefined while every cap has room (a missing count is 0)', () => {
      assert.equal(capsReached({}, {}, t, CHICAGO), undefined);
      assert.equal(capsReached({ hourly: 10, daily: 100, total: 5 }, {}, t, CHICAGO), undefined);
      assert.equal(capsReached({ hourly: 10, daily: 100 }, { [hourKey]: 9, 'daily:2026-12-04': 99 }, t, CHICAGO), undefined);
    });

    it('names the full window, counted in the buyer’s zone', () => {
      const reached = capsReached({ hourly: 10, daily: 100 }, { [hourKey]: 3, 'daily:2026-12-04': 100, 'daily:2026-12-05': 0 }, t, CHICAGO);
      assert.deepEqual(reached, { window: 'daily', key: 'daily:2026-12-04', limit: 100, used: 100, endsAt: at('2026-12-05T06:00:00Z') });
    });

    it('picks the shortest full window first, and counts over the limit as full', () => {
      const usage = { [hourKey]: 12, 'daily:2026-12-04': 100, 'weekly:2026-W49': 500, total: 1 };
      assert.deepEqual(capsReached({ hourly: 10, daily: 100, weekly: 400 }, usage, t, CHICAGO), { window: 'hourly', key: hourKey, limit: 10, used: 12, endsAt: at('2026-12-05T04:00:00Z') });
      assert.equal(capsReached({ weekly: 400 }, usage, t, CHICAGO)?.window, 'weekly');
      assert.equal(capsReached({ monthly: 50 }, { 'monthly:2026-12': 50 }, t, CHICAGO)?.key, 'monthly:2026-12');
      assert.deepEqual(capsReached({ total: 1 }, usage, t, CHICAGO), { window: 'total', key: 'total', limit: 1, used: 1, endsAt: undefined });
    });

    it('ignores counts of windows without a cap', () => {
      assert.equal(capsReached({ daily: 5 }, { [hourKey]: 1000, total: 1000 }, t, CHICAGO), undefined);
    });

    it('checks the cap of the open schedule window, and lists the keys a delivery counts under', () => {
      const schedule: Schedule = { hours: { fri: [{ from: '08:00', to: '22:00', cap: 2 }] } };
      const state = openState(scheduleState(schedule, CHICAGO, t));
      assert.equal(state.window?.cap, 2);
      assert.equal(state.window?.key, 'window:2026-12-04T08:00/22:00');
      assert.deepEqual(usageKeys({ hourly: 10, daily: 5 }, t, CHICAGO, state.window), [hourKey, 'daily:2026-12-04', 'window:2026-12-04T08:00/22:00']);
      assert.deepEqual(usageKeys({ total: 1 }, t, CHICAGO), ['total']);
      assert.equal(capsReached({ daily: 5 }, { 'window:2026-12-04T08:00/22:00': 1 }, t, CHICAGO, state.window), undefined);
      assert.deepEqual(capsReached({ daily: 5 }, { 'window:2026-12-04T08:00/22:00': 2 }, t, CHICAGO, state.window), {
        window: 'schedule',
        key: 'window:2026-12-04T08:00/22:00',
        limit: 2,
        used: 2,
        endsAt: at('2026-12-05T04:00:00Z'),
      });
    });
  });

  describe('scheduleState', () => {
    const business: Schedule = { hours: weekdays(), holidays: ['2026-12-25'] };

    it('is always open without a schedule', () => {
      assert.deepEqual(scheduleState(undefined, CHICAGO, at('2026-12-05T18:00:00Z')), { open: true, window: undefined, closesAt: undefined });
    });

    it('Mon–Fri 08:00–20:00 America/Chicago: open on a Wednesday at 10:00', () => {
      const state = openState(scheduleState(business, CHICAGO, at('2026-12-02T16:00:00Z')));
      assert.deepEqual(state.window, { day: 'wed', date: '2026-12-02', from: '08:00', to: '20:00', key: 'window:2026-12-02T08:00/20:00', opensAt: at('2026-12-02T14:00:00Z'), closesAt: at('2026-12-03T02:00:00Z') });
      assert.equal(state.closesAt, at('2026-12-03T02:00:00Z'));
    });

    it('closed on a Saturday until Monday 08:00 local, in CST and in CDT', () => {
      const december = closedState(scheduleState(business, CHICAGO, at('2026-12-05T18:00:00Z')));
      assert.equal(iso(december.nextOpenAt), '2026-12-07T14:00:00.000Z'); // 08:00 CST
      assert.equal(december.next?.day, 'mon');
      const july = closedState(scheduleState(business, CHICAGO, at('2026-07-04T18:00:00Z')));
      assert.equal(iso(july.nextOpenAt), '2026-07-06T13:00:00.000Z'); // 08:00 CDT
      // The weekend of a clock change: Saturday in CST, Monday in CDT, and the other way round.
      assert.equal(iso(closedState(scheduleState(business, CHICAGO, at('2026-03-07T18:00:00Z'))).nextOpenAt), '2026-03-09T13:00:00.000Z');
      assert.equal(iso(closedState(scheduleState(business, CHICAGO, at('2026-10-31T18:00:00Z'))).nextOpenAt), '2026-11-02T14:00:00.000Z');
    });

    it('opens at the start and closes at the end (end exclusive)', () => {
      assert.equal(iso(closedState(scheduleState(business, CHICAGO, at('2026-12-02T13:59:59Z'))).nextOpenAt), '2026-12-02T14:00:00.000Z');
      assert.equal(openState(scheduleState(business, CHICAGO, at('2026-12-02T14:00:00Z'))).window?.day, 'wed');
      assert.equal(openState(scheduleState(business, CHICAGO, at('2026-12-05T01:59:59Z'))).window?.day, 'fri');
      assert.equal(iso(closedState(scheduleState(business, CHICAGO, at('2026-12-05T02:00:00Z'))).nextOpenAt), '2026-12-07T14:00:00.000Z');
    });

    it('a holiday (2026-12-25) is closed all day; the next opening is the next business day', () => {
      const state = closedState(scheduleState(business, CHICAGO, at('2026-12-25T16:00:00Z')));
      assert.equal(iso(state.nextOpenAt), '2026-12-28T14:00:00.000Z');
      assert.equal(iso(closedState(scheduleState(business, CHICAGO, at('2026-12-25T03:00:00Z'))).nextOpenAt), '2026-12-28T14:00:00.000Z'); // Thursday 21:00
      assert.equal(openState(scheduleState(business, CHICAGO, at('2026-12-24T16:00:00Z'))).window?.date, '2026-12-24');
    });

    it('a holiday is the buyer’s local day, not the UTC one', () => {
      const allWeek: Schedule = { hours: Object.fromEntries(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].map((d) => [d, [['00:00', '24:00']]])), holidays: ['2026-12-25'] };
      assert.equal(openState(scheduleState(allWeek, CHICAGO, at('2026-12-25T05:59:59Z'))).window?.date, '2026-12-24'); // 23:59:59 CST on the 24th
      const closed = closedState(scheduleState(allWeek, CHICAGO, at('2026-12-25T06:00:00Z')));
      assert.equal(iso(closed.nextOpenAt), '2026-12-26T06:00:00.000Z');
    });

    it('a window starting in the spring-forward gap opens at the first instant after it (03:00 CDT)', () => {
      const schedule: Schedule = { hours: { sun: [['02:30', '04:00']] } };
      const before = closedState(scheduleState(schedule, CHICAGO, at('2026-03-08T07:00:00Z'))); // 01:00 CST
      assert.equal(iso(before.nextOpenAt), '2026-03-08T08:00:00.000Z');
      assert.equal(formatOpening(before.nextOpenAt!, CHICAGO, at('2026-03-08T07:00:00Z')), '03:00 CDT');
      const open = openState(scheduleState(schedule, CHICAGO, at('2026-03-08T08:00:00Z')));
      assert.equal(iso(open.closesAt), '2026-03-08T09:00:00.000Z');
      // The next Sunday it opens at 02:30 CDT as written.
      assert.equal(iso(closedState(scheduleState(schedule, CHICAGO, at('2026-03-08T09:00:00Z'))).nextOpenAt), '2026-03-15T07:30:00.000Z');
    });

    it('a window wholly inside the gap does not open that day', () => {
      const schedule: Schedule = { hours: { sun: [['02:10', '02:50']] } };
      assert.equal(iso(closedState(scheduleState(schedule, CHICAGO, at('2026-03-08T06:00:00Z'))).nextOpenAt), '2026-03-15T07:10:00.000Z');
    });

    it('a business day across the clock change is 11 h (spring) or 13 h (fall) when the change falls inside it', () => {
      const early: Schedule = { hours: { sun: [['00:00', '12:00']] } };
      const spring = openState(scheduleState(early, CHICAGO, at('2026-03-08T12:00:00Z')));
      assert.equal(spring.window!.closesAt - spring.window!.opensAt, 11 * HOUR);
      const fall = openState(scheduleState(early, CHICAGO, at('2026-11-01T12:00:00Z')));
      assert.equal(fall.window!.closesAt - fall.window!.opensAt, 13 * HOUR);
    });

    it('fall back: a window across the repeated hour is open through both passes; one ending inside it closes at the first', () => {
      const across = openState(scheduleState({ hours: { sun: [['01:00', '03:00']] } }, CHICAGO, at('2026-11-01T07:30:00Z'))); // 01:30 CST
      assert.equal(iso(across.window?.opensAt), '2026-11-01T06:00:00.000Z'); // 01:00 CDT
      assert.equal(iso(across.closesAt), '2026-11-01T09:00:00.000Z'); // 03:00 CST: 3 hours
      const inside: Schedule = { hours: { sun: [['00:00', '01:30'], ['01:30', '02:00']] } };
      const first = openState(scheduleState(inside, CHICAGO, at('2026-11-01T06:15:00Z')));
      assert.equal(iso(first.closesAt), '2026-11-01T06:30:00.000Z'); // 01:30 CDT
      const second = openState(scheduleState(inside, CHICAGO, at('2026-11-01T07:15:00Z'))); // 01:15 CST: in the window 01:30–02:00 (01:30 CDT to 02:00 CST)
      assert.equal(second.window?.from, '01:30');
      assert.equal(iso(second.closesAt), '2026-11-01T08:00:00.000Z');
    });

    it('24:00 ends the day; the next day’s window is open from its midnight', () => {
      const schedule: Schedule = { hours: { sat: [['20:00', '24:00']], sun: [['00:00', '06:00']] } };
      const late = openState(scheduleState(schedule, CHICAGO, at('2026-12-06T05:59:00Z'))); // Saturday 23:59 CST
      assert.equal(late.window?.day, 'sat');
      assert.equal(iso(late.closesAt), '2026-12-06T06:00:00.000Z');
      const midnight = openState(scheduleState(schedule, CHICAGO, at('2026-12-06T06:00:00Z')));
      assert.equal(midnight.window?.day, 'sun');
      assert.equal(iso(midnight.closesAt), '2026-12-06T12:00:00.000Z');
      // 24:00 on the night the clocks go back is the first 00:00 of Sunday (CDT).
      assert.equal(iso(openState(scheduleState(schedule, CHICAGO, at('2026-11-01T04:00:00Z'))).closesAt), '2026-11-01T05:00:00.000Z');
    });

    it('several windows a day, given in any order', () => {
      const schedule: Schedule = { hours: { mon: [['13:00', '17:00'], { from: '08:00', to: '12:00', cap: 3 }] } };
      const morning = closedState(scheduleState(schedule, 'UTC', at('2026-12-07T07:00:00Z')));
      assert.deepEqual(morning.next, { day: 'mon', date: '2026-12-07', from: '08:00', to: '12:00', cap: 3, key: 'window:2026-12-07T08:00/12:00', opensAt: at('2026-12-07T08:00:00Z'), closesAt: at('2026-12-07T12:00:00Z') });
      assert.equal(iso(closedState(scheduleState(schedule, 'UTC', at('2026-12-07T12:30:00Z'))).nextOpenAt), '2026-12-07T13:00:00.000Z');
      assert.equal(openState(scheduleState(schedule, 'UTC', at('2026-12-07T16:59:59Z'))).window?.from, '13:00');
      assert.equal(iso(closedState(scheduleState(schedule, 'UTC', at('2026-12-07T17:00:00Z'))).nextOpenAt), '2026-12-14T08:00:00.000Z');
    });

    it('follows the buyer’s zone (Europe/Berlin, Australia/Sydney)', () => {
      assert.equal(iso(closedState(scheduleState(business, BERLIN, at('2026-12-05T12:00:00Z'))).nextOpenAt), '2026-12-07T07:00:00.000Z');
      assert.equal(iso(closedState(scheduleState(business, BERLIN, at('2026-07-04T12:00:00Z'))).nextOpenAt), '2026-07-06T06:00:00.000Z');
      // Monday 07:00 in Sydney is still Sunday in UTC.
      assert.equal(iso(closedState(scheduleState(business, SYDNEY, at('2026-12-06T20:00:00Z'))).nextOpenAt), '2026-12-06T21:00:00.000Z');
      assert.equal(openState(scheduleState(business, SYDNEY, at('2026-12-06T22:00:00Z'))).window?.day, 'mon');
    });

    it('looks 14 days ahead, no further', () => {
      const mondays = (holidays: string[]): Schedule => ({ hours: { mon: [['08:00', '20:00']] }, holidays });
      const tuesday = at('2026-12-01T12:00:00Z');
      assert.equal(iso(closedState(scheduleState(mondays(['2026-12-07']), 'UTC', tuesday)).nextOpenAt), '2026-12-14T08:00:00.000Z');
      assert.deepEqual(scheduleState(mondays(['2026-12-07', '2026-12-14']), 'UTC', tuesday), { open: false, nextOpenAt: undefined });
      assert.deepEqual(scheduleState({ hours: {} }, CHICAGO, tuesday), { open: false, nextOpenAt: undefined });
    });

    it('reads a schedule the schema parsed', () => {
      const parsed = scheduleSchema.parse({ hours: { wed: [['08:00', '20:00']] }, outside: 'hold' });
      assert.equal(scheduleState(parsed, CHICAGO, at('2026-12-02T16:00:00Z')).open, true);
    });
  });

  describe('formatOpening', () => {
    const saturday = at('2026-12-05T18:00:00Z');
    it('says the time alone on the same local day, the weekday within the week, the date beyond', () => {
      assert.equal(formatOpening(at('2026-12-05T20:00:00Z'), CHICAGO, saturday), '14:00 CST');
      assert.equal(formatOpening(at('2026-12-07T14:00:00Z'), CHICAGO, saturday), 'Mon 08:00 CST');
      assert.equal(formatOpening(at('2026-12-14T14:00:00Z'), CHICAGO, saturday), 'Mon 2026-12-14 08:00 CST');
      assert.equal(formatOpening(at('2026-12-07T14:00:00Z'), CHICAGO), 'Mon 08:00 CST');
      assert.equal(formatOpening(at('2026-07-06T13:00:00Z'), CHICAGO), 'Mon 08:00 CDT');
    });
    it('names the zone as its people do where a short name exists', () => {
      assert.equal(formatOpening(at('2026-12-07T07:00:00Z'), BERLIN), 'Mon 08:00 CET');
      assert.equal(formatOpening(at('2026-07-06T06:00:00Z'), BERLIN), 'Mon 08:00 CEST');
      assert.equal(formatOpening(at('2026-12-06T21:00:00Z'), SYDNEY), 'Mon 08:00 AEDT');
      assert.equal(formatOpening(at('2026-12-07T08:00:00Z'), 'UTC'), 'Mon 08:00 UTC');
      assert.equal(formatOpening(at('2026-12-06T23:00:00Z'), 'Asia/Tokyo'), 'Mon 08:00 GMT+9');
    });
  });

  it('stays importable from workflow code: no runtime import (only the schema file\'s types), no module-level mutable state', () => {
    const source = readFileSync(path.join(__dirname, '../../shared/buyer-controls.ts'), 'utf8');
    const imports = [...source.matchAll(/^import (type )?.* from '([^']+)';$/gm)].map((m) => `${m[1] ?? ''}${m[2]}`);
    assert.deepEqual(imports, ['type ./buyer-controls-schema']);
    assert.doesNotMatch(source, /^(?:export )?(?:let|var) /m);
    assert.doesNotMatch(source, /^(?:export )?const \w+ = new (?:Map|Set|Intl\.)/m);
    assert.doesNotMatch(source, /Date\.now\(|Math\.random\(|process\./);
  });
});

describe('capacityKeys: per-source caps and the cap warning', () => {
  const at = Date.UTC(2026, 11, 4, 15, 0); // Fri 4 Dec 2026, 09:00 in Chicago

  it('When a buyer caps one source, then that source has its own windows beside the buyer-wide ones, keyed @source', () => {
    const keys = capacityKeys({ timeZone: 'America/Chicago', caps: { daily: 10 }, sourceCaps: { sourceId: 'src_a', caps: { daily: 2, total: 5 } } }, at);
    assert.deepEqual(keys.map((k) => [k.window, k.key, k.limit, k.sourceId]), [
      ['daily', 'daily:2026-12-04', 10, undefined],
      ['daily', 'daily:2026-12-04@src_a', 2, 'src_a'],
      ['total', 'total@src_a', 5, 'src_a'],
    ]);
  });

  it('When capWarning is 80, then each window warns at 80 % of its cap (rounded up), never at the cap itself', () => {
    const keys = capacityKeys({ timeZone: 'UTC', caps: { hourly: 10, daily: 3, total: 1 }, capWarning: 80 }, at);
    assert.deepEqual(keys.map((k) => [k.window, k.warnAt]), [['hourly', 8], ['daily', undefined], ['total', undefined]]);
    assert.deepEqual(capacityKeys({ timeZone: 'UTC', caps: { daily: 4 }, capWarning: 50 }, at).map((k) => k.warnAt), [2]);
    assert.deepEqual(capacityKeys({ timeZone: 'UTC', caps: { daily: 4 } }, at).map((k) => k.warnAt), [undefined]);
  });
});
