import assert from 'node:assert/strict';
import { judge, matchRequests, type BuyerRequest, type LeadOutcome, type Observations, type RecordedAttempt } from '../chaos/check';

const req = (over: Partial<BuyerRequest> & Pick<BuyerRequest, 'action'>): BuyerRequest => ({ buyerId: 'buy_a', endpointId: 'ep_a', leadId: 'ld_1', key: 'msg_ld_1_ep_a', receivedAt: 1_000, ...over });
const rec = (over: Partial<RecordedAttempt>): RecordedAttempt => ({ leadId: 'ld_1', buyerId: 'buy_a', endpointId: 'ep_a', attempt: 1, startedAt: 900, finishedAt: 1_100, outcome: 'success', code: 'ok', status: 200, ...over });
const outcome = (over: Partial<LeadOutcome> = {}): LeadOutcome => ({ leadId: 'ld_1', status: 'delivered', buyerId: 'buy_a', chainOk: true, ...over });
const obs = (over: Partial<Observations>): Observations => ({
  posted: [{ clientId: 'c1', sourceId: 'src', leadId: 'ld_1', answers: [202], networkErrors: 0, postedAt: 0 }],
  requests: [req({ action: { kind: 'answered', status: 200, at: 1_000 } })],
  attempts: [rec({})],
  outcomes: new Map([['ld_1', outcome()]]),
  strayLeads: [],
  badWorkflows: [],
  drainedBy: Number.MAX_SAFE_INTEGER,
  ...over,
});
const violationsOf = (o: Observations, name: RegExp) => judge(o).invariants.find((i) => name.test(i.name))!.violations;

describe('chaos verdict', () => {
  it('matches each request to its own record by time window and answer; an unknown record stands for an answer we never saw', () => {
    const requests = [req({ action: { kind: 'answered', status: 200, at: 11_000 }, receivedAt: 1_000 }), req({ action: { kind: 'answered', status: 200, at: 30_050 }, receivedAt: 30_000 })];
    const attempts = [rec({ startedAt: 900, finishedAt: 10_900, outcome: 'unknown', code: 'timeout', status: undefined }), rec({ attempt: 2, startedAt: 29_900, finishedAt: 30_100 })];
    assert.deepEqual(matchRequests(requests, attempts), { unmatched: [], spareRecords: 0 });
    assert.equal(matchRequests(requests, attempts.slice(0, 1)).unmatched.length, 1, 'one record cannot stand for two requests');
    assert.equal(matchRequests([req({ action: { kind: 'answered', status: 503, at: 1_000 } })], [rec({})]).unmatched.length, 1, 'a 200 record does not stand for a 503 answer');
    assert.equal(matchRequests([req({ action: { kind: 'reset', at: 1_000 } })], [rec({ outcome: 'unknown', code: 'interrupted', startedAt: 0, finishedAt: 20_000 })]).unmatched.length, 0, 'a lost execution covers its window');
  });
  it('flags a lead received by two buyers, and a delivered lead whose buyer on record did not receive it', () => {
    const two = obs({ requests: [req({ action: { kind: 'answered', status: 200, at: 1 } }), req({ buyerId: 'buy_b', endpointId: 'ep_b', action: { kind: 'reset', at: 1 } })] });
    assert.equal(violationsOf(two, /two buyers/).length, 1);
    const wrong = obs({ requests: [req({ buyerId: 'buy_b', endpointId: 'ep_b', action: { kind: 'answered', status: 200, at: 1 } })], attempts: [rec({ buyerId: 'buy_b', endpointId: 'ep_b' })] });
    assert.match(violationsOf(wrong, /two buyers/)[0]!, /delivered to buy_a but received by \[buy_b\]/);
    const held = obs({ outcomes: new Map([['ld_1', outcome({ status: 'dead_lettered', buyerId: undefined, heldBy: 'buy_a', reasonCode: 'ambiguous_at_buyer' })]]), requests: [req({ action: { kind: 'reset', at: 1 } })], attempts: [rec({ outcome: 'unknown', code: 'connection_reset', status: undefined })] });
    assert.deepEqual(violationsOf(held, /two buyers/), [], 'a dead letter held by the buyer that may have it is fine');
  });
  it('flags a lead not terminal, a summary that disagrees, a stray lead, a 500, a broken chain and a failed workflow', () => {
    assert.equal(violationsOf(obs({ outcomes: new Map([['ld_1', outcome({ status: 'delivering' })]]) }), /terminal/).length, 1);
    assert.equal(violationsOf(obs({ outcomes: new Map([['ld_1', outcome({ summaryStatus: 'dead_lettered' })]]) }), /terminal/).length, 1);
    assert.equal(violationsOf(obs({ strayLeads: ['ld_x'] }), /terminal/).length, 1);
    assert.equal(violationsOf(obs({ posted: [{ clientId: 'c1', sourceId: 'src', leadId: 'ld_1', answers: [500, 202], networkErrors: 0, postedAt: 0 }] }), /500/).length, 1);
    assert.equal(violationsOf(obs({ outcomes: new Map([['ld_1', outcome({ chainOk: false, chainReason: 'gap at 3' })]]) }), /chain/).length, 1);
    assert.equal(violationsOf(obs({ badWorkflows: [{ workflowId: 'lead-ld_1', status: 'FAILED' }] }), /failed/).length, 1);
    assert.equal(judge(obs({})).ok, true);
  });
  it('counts repeats after a 2xx, which must carry the same key', () => {
    const verdict = judge(obs({
      requests: [req({ action: { kind: 'answered', status: 200, at: 1 } }), req({ receivedAt: 2_000, action: { kind: 'answered', status: 200, at: 2 } })],
      attempts: [rec({}), rec({ attempt: 2, startedAt: 1_900, finishedAt: 2_100 })],
    }));
    assert.equal(verdict.figures['repeat requests after a 2xx (same key)'], 1);
    assert.equal(verdict.ok, true);
  });
});
