import assert from 'node:assert/strict';
import { formatDuration, parseDuration, tryParseDuration } from '../../shared/durations';

describe('durations', () => {
  it('parses the API’s duration strings', () => {
    assert.deepEqual(['500ms', '2s', '15m', '1h', '1d', '1.5s'].map(parseDuration), [500, 2_000, 900_000, 3_600_000, 86_400_000, 1_500]);
  });
  it('refuses anything else', () => {
    for (const bad of ['', '5', '5 m', '-1s', 'm', '1w', '1e3s']) assert.equal(tryParseDuration(bad), undefined, bad);
    assert.throws(() => parseDuration('soon'), /"soon" is not a duration/);
  });
  it('formats milliseconds back to the shortest exact string', () => {
    assert.deepEqual([900_000, 3_600_000, 1_500, 90_000, 0].map(formatDuration), ['15m', '1h', '1500ms', '90s', '0ms']);
  });
});
