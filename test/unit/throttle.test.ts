/** planSlot (activities/throttle.ts): the earliest send time every window of a rate has room for. */
import assert from 'node:assert/strict';
import { describeRate, planSlot } from '../../activities/throttle';

const counts = (entries: Record<string, number>) => (unit: string, window: number) => entries[`${unit}|${window}`] ?? 0;

describe('throttle slot planning', () => {
  const now = 1_800_000_000_500; // half a second into a second, 20.5 s into a minute

  it('When the current window has room, then the send goes now', () => {
    assert.deepEqual(planSlot({ perSecond: 2 }, now, counts({ [`s|${Math.floor(now / 1000)}`]: 1 }), now + 60_000), {
      at: now,
      windows: [{ unit: 's', window: Math.floor(now / 1000), limit: 2 }, { unit: 's500', window: Math.floor(now / 500), limit: 1 }],
    });
  });

  it('When the current second is full, then the send goes at the start of the first second with room', () => {
    const s = Math.floor(now / 1000);
    const slot = planSlot({ perSecond: 2 }, now, counts({ [`s|${s}`]: 2, [`s|${s + 1}`]: 2 }), now + 60_000);
    assert.equal(slot?.at, (s + 2) * 1000);
  });

  it('When the minute is full, then even an empty second waits for the next minute; both windows are counted', () => {
    const m = Math.floor(now / 60_000);
    const slot = planSlot({ perSecond: 5, perMinute: 10 }, now, counts({ [`m|${m}`]: 10 }), now + 3_600_000);
    assert.equal(slot?.at, (m + 1) * 60_000);
    assert.deepEqual(slot?.windows, [
      { unit: 'm', window: m + 1, limit: 10 },
      { unit: 'm6000', window: (m + 1) * 10, limit: 1 },
      { unit: 's', window: (m + 1) * 60, limit: 5 },
      { unit: 's200', window: (m + 1) * 300, limit: 1 },
    ]);
  });

  it('When sends queue up at 2/s, then they are spread across each second: never 2 in one half, never more than 3 in any second', () => {
    const taken = new Map<string, number>();
    const times: number[] = [];
    for (let i = 0; i < 12; i++) {
      const slot = planSlot({ perSecond: 2 }, now + 400, (u, w) => taken.get(`${u}|${w}`) ?? 0, now + 60_000)!;
      for (const { unit, window } of slot.windows) taken.set(`${unit}|${window}`, (taken.get(`${unit}|${window}`) ?? 0) + 1);
      times.push(slot.at);
    }
    for (let i = 1; i < times.length; i++) assert.ok(times[i]! >= times[i - 1]!, 'in order of arrival');
    const perSecond = new Map<number, number>();
    for (const t of times) perSecond.set(Math.floor(t / 1000), (perSecond.get(Math.floor(t / 1000)) ?? 0) + 1);
    assert.ok([...perSecond.values()].every((n) => n <= 2), 'at most 2 in each second of the clock');
    for (const t of times) assert.ok(times.filter((u) => u >= t && u < t + 1000).length <= 3, `at most 3 in the second from ${t}`);
    assert.ok(times.at(-1)! - times[0]! >= 5_000, '12 sends at 2/s take more than 5 s');
  });

  it('When a rate is high, then its spread keeps whole milliseconds (10,000/s: 10 a millisecond)', () => {
    const slot = planSlot({ perSecond: 10_000 }, now, () => 0, now + 1_000)!;
    assert.deepEqual(slot.windows.map((w) => [w.unit, w.limit]), [['s', 10_000], ['s1', 10]]);
  });

  it('When no window has room before notAfter, then nothing is planned', () => {
    const s = Math.floor(now / 1000);
    assert.equal(planSlot({ perSecond: 1 }, now, counts({ [`s|${s}`]: 1, [`s|${s + 1}`]: 1 }), now + 1_000), undefined);
  });

  it('When a spacing is given, then no two sends share a window of that length', () => {
    const w = Math.floor(now / 1017);
    const slot = planSlot({ everyMs: 1017 }, now, counts({ [`1017ms|${w}`]: 1 }), now + 60_000);
    assert.equal(slot?.at, (w + 1) * 1017);
  });

  it('When rates are described, then every rule shows', () => {
    assert.equal(describeRate({ everyMs: 1017 }), '1 per 1017 ms');
    assert.equal(describeRate({ perSecond: 10 }), '10/s');
    assert.equal(describeRate({ perSecond: 2, perMinute: 60 }), '2/s and 60/min');
  });
});
