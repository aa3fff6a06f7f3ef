/** The console's pure parts: the per-minute buckets of the overview's chart and the chart itself (escaped, one bar a minute). */
import assert from 'node:assert/strict';
import { bucketByMinute, minuteChart } from '../../services/intake/console/overview';
import { html } from '../../shared/http/pages/html';

describe('console overview chart', () => {
  const now = Date.UTC(2026, 11, 7, 2, 30, 15);

  it('When attempts of the last hour are bucketed, then each lands in its minute, successes apart from every other outcome, and older ones are left out', () => {
    const buckets = bucketByMinute([
      { at: now, outcome: 'success' },
      { at: new Date(now - 1_000), outcome: 'transient' },
      { at: now - 60_000, outcome: 'unknown' },
      { at: now - 2 * 3_600_000, outcome: 'success' },
    ], now);
    assert.equal(buckets.length, 60);
    assert.equal(buckets[59]!.at, Date.UTC(2026, 11, 7, 2, 30));
    assert.deepEqual([buckets[59]!.delivered, buckets[59]!.failed], [1, 1]);
    assert.deepEqual([buckets[58]!.delivered, buckets[58]!.failed], [0, 1]);
    assert.equal(buckets.reduce((n, b) => n + b.delivered + b.failed, 0), 3);
  });

  it('When the chart is drawn, then it has one labelled bar per minute scaled to the busiest minute', () => {
    const buckets = bucketByMinute([{ at: now, outcome: 'success' }, { at: now, outcome: 'success' }, { at: now, outcome: 'permanent' }], now);
    const svg = html`${minuteChart(buckets)}`.value;
    assert.equal((svg.match(/<title>/g) ?? []).length, 60);
    assert.match(svg, /02:30 UTC: 2 delivered, 1 failed/);
    assert.match(svg, /<text x="0" y="12"[^>]*>3<\/text>/, 'the scale names the busiest minute');
    assert.doesNotMatch(svg, /<script/);
  });
});
