/** planSlot (activities/throttle.ts): the earliest send time every window of a rate has room for. */
import assert from 'node:assert/strict';
import { describeRate, planSlot } from '../../activities/throttle';

const counts = (entries: Record<string, number>) => (unit: string, window: number) => entries[`${unit}|${window}`] ?? 0;

describe('throttle slot planning', () => {
  const now = 1_800_000_000_500; // half a second into a second, 20.5 s into a minute

  it('When the current window has room, then the send goes now', () => {
    assert.deepEqual(planSlot({ perSecond: 2 }, now, counts({ [`s|${Math.floor(now / 1000)}`]: 1 }), now + 60_000), { at: now, windows: [{ unit: 's', window: Math.floor(now / 1000), limit: 2 }] });
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
    assert.deepEqual(slot?.windows, [{ unit: 'm', window: m + 1, limit: 10 }, { unit: 's', window: (m + 1) * 60, limit: 5 }]);
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
