import assert from 'node:assert/strict';
import { BreakerMachine, healthOf, MAX_COOL_DOWN_MS, PROBE_TIMEOUT_MS, type OutcomeReport } from '../../shared/breaker';

const settings = { threshold: 3, coolDownMs: 1_000 };
const report = (health: OutcomeReport['health'], leadId = 'ld_1', code = health === 'failure' ? 'http_503' : 'ok'): OutcomeReport => ({ leadId, attemptId: `${leadId}.ep.1`, health, code, reason: code, at: 0, settings });

describe('breaker state machine', () => {
  it('opens after `threshold` consecutive failures; a success in between resets the count', () => {
    const m = new BreakerMachine(BreakerMachine.initial('ep', 'buy', settings));
    m.report(report('failure'), 0);
    m.report(report('failure'), 0);
    m.report(report('success'), 0);
    assert.equal(m.s.consecutiveFailures, 0);
    m.report(report('failure'), 0);
    m.report(report('failure'), 0);
    const events = m.report(report('failure'), 10);
    assert.deepEqual(events.map((e) => e.type), ['opened']);
    assert.equal(m.s.state, 'open');
    assert.equal(m.s.halfOpenAt, 1_010);
  });
  it('goes half-open after the cool-down, grants exactly one probe, and closes on its success', () => {
    const m = new BreakerMachine(BreakerMachine.initial('ep', 'buy', settings));
    for (let i = 0; i < 3; i++) m.report(report('failure'), 0);
    assert.deepEqual(m.tick(500), [], 'not before the cool-down');
    assert.deepEqual(m.tick(1_000).map((e) => e.type), ['half_open']);
    assert.equal(m.claimProbe('ld_probe', 1_000), true);
    assert.equal(m.claimProbe('ld_other', 1_001), false, 'one probe at a time');
    assert.equal(m.claimProbe('ld_other', 1_000 + PROBE_TIMEOUT_MS), true, 'a probe that never reports is released');
    assert.deepEqual(m.report(report('success', 'ld_other'), 0).map((e) => e.type), ['closed']);
    assert.equal(m.s.state, 'closed');
    assert.equal(m.claimProbe('ld_any', 0), true);
  });
  it('reopens with a doubled cool-down when the probe fails, capped', () => {
    const m = new BreakerMachine(BreakerMachine.initial('ep', 'buy', settings));
    for (let i = 0; i < 3; i++) m.report(report('failure'), 0);
    m.tick(1_000);
    m.claimProbe('ld_probe', 1_000);
    m.report(report('failure', 'ld_probe'), 1_000);
    assert.equal(m.s.state, 'open');
    assert.equal(m.s.halfOpenAt, 3_000, 'second trip: 2 × cool-down');
    assert.equal(m.coolDownFor(40), MAX_COOL_DOWN_MS);
  });
  it('ignores late successes while open, and neutral answers always', () => {
    const m = new BreakerMachine(BreakerMachine.initial('ep', 'buy', settings));
    for (let i = 0; i < 3; i++) m.report(report('failure'), 0);
    assert.deepEqual(m.report(report('success'), 5), []);
    assert.equal(m.s.state, 'open');
    assert.deepEqual(m.report(report('neutral', 'ld_x', 'http_422'), 5), []);
  });
  it('stays open when forced by an operator, until reset', () => {
    const m = new BreakerMachine(BreakerMachine.initial('ep', 'buy', settings));
    assert.deepEqual(m.operatorOpen(0, 'maintenance').map((e) => e.type), ['opened']);
    assert.deepEqual(m.tick(10 * 60_000), [], 'no cool-down when forced');
    assert.deepEqual(m.operatorReset('done').map((e) => e.type), ['closed']);
    assert.deepEqual(m.operatorReset('again'), [], 'resetting a closed breaker changes nothing');
  });
  it('counts endpoint-wide failures, not answers about one lead', () => {
    assert.equal(healthOf('transient', 'http_503'), 'failure');
    assert.equal(healthOf('transient', 'timeout'), 'failure');
    assert.equal(healthOf('permanent', 'http_401'), 'failure');
    assert.equal(healthOf('permanent', 'http_404'), 'failure');
    assert.equal(healthOf('permanent', 'http_422'), 'neutral');
    assert.equal(healthOf('permanent', 'mapping_error'), 'neutral');
    assert.equal(healthOf('success', 'ok'), 'success');
  });
});
