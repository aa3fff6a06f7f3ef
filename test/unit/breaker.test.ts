import assert from 'node:assert/strict';
import { BreakerMachine, healthOf, MAX_COOL_DOWN_MS, PROBE_TIMEOUT_MS, type OutcomeReport } from '../../shared/breaker';

const settings = { threshold: 3, coolDownMs: 1_000 };
const report = (health: OutcomeReport['health'], leadId = 'ld_1', code = health === 'failure' ? 'http_503' : 'ok', at = 0): OutcomeReport => ({ leadId, attemptId: `${leadId}.ep.1`, health, code, reason: code, at, settings });

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
  it('counts failures in the order the attempts finished: a success that finished between them breaks the streak, however late it arrives', () => {
    const m = new BreakerMachine(BreakerMachine.initial('ep', 'buy', settings));
    m.report(report('failure', 'ld_1', 'http_503', 100), 0);
    m.report(report('failure', 'ld_2', 'http_503', 300), 0);
    m.report(report('success', 'ld_3', 'ok', 200), 0); // arrived last, finished between the two
    assert.equal(m.s.consecutiveFailures, 1, 'only the failure after the success is consecutive');
    m.report(report('failure', 'ld_4', 'http_503', 150), 0); // finished before the known success: not consecutive
    assert.equal(m.s.consecutiveFailures, 1);
    assert.equal(m.s.counts.failures, 3, 'every failure is counted in the totals');
    m.report(report('failure', 'ld_5', 'http_503', 400), 0);
    assert.deepEqual(m.report(report('failure', 'ld_6', 'http_503', 500), 0).map((e) => e.type), ['opened'], 'three in a row after the success');
  });
  it('takes the success a failure report carries (lastSuccessAt): a worker that saw a success in between breaks the streak', () => {
    const m = new BreakerMachine(BreakerMachine.initial('ep', 'buy', settings));
    m.report(report('failure', 'ld_1', 'http_503', 100), 0);
    m.report(report('failure', 'ld_2', 'http_503', 200), 0);
    m.report({ ...report('failure', 'ld_3', 'http_503', 300), lastSuccessAt: 250 }, 0);
    assert.equal(m.s.consecutiveFailures, 1);
    assert.equal(m.s.state, 'closed');
  });
  it('never trips on a 5 % random error rate at 20 concurrent attempts (threshold 5), reports arriving in any order', () => {
    // Seeded pseudo-random generator: the same sequence every run.
    let seed = 42;
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    const m = new BreakerMachine(BreakerMachine.initial('ep', 'buy', { threshold: 5, coolDownMs: 60_000 }));
    // Two workers; each signals every failure (with its own latest success) and a success only
    // when it has itself reported a failure since its last success (what deliverAttempt does).
    const workers = [{ lastSuccess: undefined as number | undefined, suspect: false }, { lastSuccess: undefined as number | undefined, suspect: false }];
    let failures = 0;
    for (let batch = 0; batch < 500; batch++) {
      const reports: OutcomeReport[] = [];
      for (let i = 0; i < 20; i++) {
        const at = batch * 100 + Math.floor(random() * 100);
        const worker = workers[i % 2]!;
        const failed = random() < 0.05;
        if (failed) {
          failures++;
          worker.suspect = true;
          reports.push({ ...report('failure', `ld_${batch}_${i}`, 'http_503', at), ...(worker.lastSuccess !== undefined ? { lastSuccessAt: worker.lastSuccess } : {}) });
        } else {
          if (worker.suspect) reports.push(report('success', `ld_${batch}_${i}`, 'ok', at));
          worker.suspect = false;
          worker.lastSuccess = Math.max(worker.lastSuccess ?? 0, at);
        }
      }
      reports.sort(() => random() - 0.5); // concurrent: any arrival order
      for (const r of reports) assert.deepEqual(m.report({ ...r, settings: { threshold: 5, coolDownMs: 60_000 } }, r.at).filter((e) => e.type === 'opened'), [], `tripped at batch ${batch} with ${m.s.consecutiveFailures} failures`);
    }
    assert.ok(failures > 400, `the run had its failures (${failures})`);
    assert.equal(m.s.state, 'closed');
  });
  it('counts endpoint-wide failures, not answers about one lead', () => {
    assert.equal(healthOf('transient', 'http_503', true), 'failure');
    assert.equal(healthOf('transient', 'timeout', true), 'failure');
    assert.equal(healthOf('permanent', 'http_401', true), 'failure');
    assert.equal(healthOf('permanent', 'http_404', true), 'failure');
    assert.equal(healthOf('permanent', 'http_422', false), 'neutral');
    assert.equal(healthOf('permanent', 'mapping_error', false), 'neutral');
    assert.equal(healthOf('success', 'ok', false), 'success');
    assert.equal(healthOf('unknown', 'timeout', true), 'failure', 'no answer in time says the endpoint is unhealthy');
    assert.equal(healthOf('unknown', 'interrupted', undefined), 'neutral', 'a worker we lost says nothing about the endpoint');
  });
  it("takes the kind's word for a permanent answer; the rules about every kind stay", () => {
    assert.equal(healthOf('permanent', 'http_422', true), 'failure', 'the kind says the endpoint is at fault');
    assert.equal(healthOf('permanent', 'http_401', false), 'neutral', 'the kind says it is about the lead');
    assert.equal(healthOf('transient', 'http_503', false), 'failure', 'a buyer not taking leads is unhealthy, whatever the kind says');
    assert.equal(healthOf('unknown', 'cancelled', true), 'neutral', 'cancelled by us');
    assert.equal(healthOf('transient', 'read_back_http_503', true), 'neutral', 'nothing was sent');
  });
  it('decides by the code when the flag is absent (results recorded by older code)', () => {
    assert.equal(healthOf('permanent', 'http_401', undefined), 'failure');
    assert.equal(healthOf('permanent', 'hubspot_invalid_token', undefined), 'failure');
    assert.equal(healthOf('permanent', 'twilio_21211', undefined), 'neutral');
    assert.equal(healthOf('permanent', 'http_422', undefined), 'neutral');
  });
});
