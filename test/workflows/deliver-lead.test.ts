/**
 * deliverLead under faults, on the real dev server with scripted activities (harness.ts): no lead
 * workflow ever fails, a buyer that has (or may have) the lead holds it, ambiguous outcomes are
 * not failures, our own faults are not charged to a buyer, and search attributes stay bounded.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { BreakerActivities } from '../../activities/breaker';
import { BreakerMachine, breakerWorkflowId, type OutcomeReport } from '../../shared/breaker';
import type { JournalEntry, LeadView } from '../../shared/delivery';
import { KEYWORD_LIST_MAX_BYTES, SA } from '../../shared/search-attributes';
import type { breaker } from '../../workflows/breaker';
import { breakerStateQuery, discardUpdate, outcomeSignal, redeliverUpdate } from '../../workflows/messages';
import { sharedInfra } from '../support/infra';
import { workflowBundle } from '../support/system';
import { harness, historyEventTypes, type Harness } from './harness';

const deadLettered = (v: LeadView) => v.status === 'dead_lettered';
const decisionsOf = (v: LeadView, decision: string) => v.decisions.filter((d) => d.decision === decision);
const attemptsIn = (journal: JournalEntry[] | undefined) => (journal ?? []).filter((e): e is Extract<JournalEntry, { type: 'attempt' }> => e?.type === 'attempt');

describe('deliverLead under faults (dev server, scripted activities)', function () {
  this.timeout(90_000);
  let h: Harness | undefined;
  before(async function () {
    this.timeout(180_000);
    await Promise.all([sharedInfra(), workflowBundle()]);
  });
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('When the routing plan fails unexpectedly, then the lead is dead-lettered internal_error with its journal flushed and an alert, and a redeliver delivers it', async () => {
    h = await harness({ planFailsOn: [1], buyers: [{ buyerId: 'buy_a', endpoints: [{ endpointId: 'ep_a', answers: [{ outcome: 'success' }] }] }] });
    await h.run(async () => {
      const handle = await h!.start();
      const view = await h!.waitFor(handle, deadLettered);
      assert.equal(view.reasonCode, 'internal_error');
      assert.match(view.reason ?? '', /routing plan could not be built/);
      await h!.waitFor(handle, (v) => v.journal?.pending === 0);
      const journal = h!.calls.journal.get(view.leadId) ?? [];
      assert.ok(journal.some((e) => e.type === 'status' && e.status === 'dead_lettered' && e.reasonCode === 'internal_error'), 'the dead letter is in the delivery log');
      assert.deepEqual(h!.calls.alerts.map((a) => a.type), ['lead_internal_error']);
      await handle.executeUpdate(redeliverUpdate, { args: [{ by: 'test' }] });
      assert.equal((await handle.result()).status, 'delivered');
      assert.ok(!(await historyEventTypes(handle)).includes('workflowExecutionFailedEventAttributes'));
    });
  });

  it('When an attempt activity fails (our fault, not an answer), then it is a recorded decision on the endpoint schedule and the lead moves on; the workflow never fails', async () => {
    h = await harness({
      buyers: [
        { buyerId: 'buy_a', endpoints: [{ endpointId: 'ep_a', answers: [{ throws: 'scripted bug in the activity' }] }] },
        { buyerId: 'buy_b', endpoints: [{ endpointId: 'ep_b', answers: [{ outcome: 'success' }] }] },
      ],
    });
    await h.run(async () => {
      const handle = await h!.start();
      const outcome = await handle.result();
      assert.deepEqual([outcome.status, outcome.buyerId], ['delivered', 'buy_b']);
      const view = await h!.state(handle);
      assert.equal(decisionsOf(view, 'attempt_failed').length, 1);
      assert.match(decisionsOf(view, 'attempt_failed')[0]!.reason, /scripted bug/);
    });
  });

  it('When one accept endpoint took the lead and the other refused it (accept: all), then it is dead-lettered partial_at_buyer held by that buyer, never offered to the next; a redeliver goes back to it and does not resend what it has', async () => {
    h = await harness({
      buyers: [
        { buyerId: 'buy_a', endpoints: [{ endpointId: 'ep_a1', answers: [{ outcome: 'success' }] }, { endpointId: 'ep_a2', answers: [{ outcome: 'permanent', status: 400 }, { outcome: 'success' }] }] },
        { buyerId: 'buy_b', endpoints: [{ endpointId: 'ep_b', answers: [{ outcome: 'success' }] }] },
      ],
    });
    await h.run(async () => {
      const handle = await h!.start();
      const view = await h!.waitFor(handle, deadLettered);
      assert.deepEqual([view.reasonCode, view.heldBy], ['partial_at_buyer', 'buy_a']);
      assert.equal(decisionsOf(view, 'failover').length, 0);
      assert.ok(!h!.calls.attempts.some((a) => a.buyerId === 'buy_b'), 'buy_b was never offered the lead');
      await handle.executeUpdate(redeliverUpdate, { args: [{ by: 'test' }] });
      const outcome = await handle.result();
      assert.deepEqual([outcome.status, outcome.buyerId], ['delivered', 'buy_a']);
      assert.deepEqual(h!.calls.plans.at(-1), { onlyBuyerId: 'buy_a' }, 'the redelivery went to the buyer that holds the lead');
      assert.equal(h!.calls.attempts.filter((a) => a.endpointId === 'ep_a1').length, 1, 'ep_a1 already had it: not sent again');
      assert.equal(h!.calls.attempts.filter((a) => a.endpointId === 'ep_a2').length, 2);
      assert.ok(!h!.calls.attempts.some((a) => a.buyerId === 'buy_b'));
    });
  });

  it('When an operator redelivers a held lead to another buyer by name, then that is recorded as an operator override', async () => {
    h = await harness({
      buyers: [
        { buyerId: 'buy_a', endpoints: [{ endpointId: 'ep_a1', answers: [{ outcome: 'success' }] }, { endpointId: 'ep_a2', answers: [{ outcome: 'permanent' }] }] },
        { buyerId: 'buy_b', endpoints: [{ endpointId: 'ep_b', answers: [{ outcome: 'success' }] }] },
      ],
    });
    await h.run(async () => {
      const handle = await h!.start();
      await h!.waitFor(handle, deadLettered);
      await handle.executeUpdate(redeliverUpdate, { args: [{ by: 'operator', buyerId: 'buy_b' }] });
      const outcome = await handle.result();
      assert.equal(outcome.buyerId, 'buy_b');
      const view = await h!.state(handle);
      assert.equal(decisionsOf(view, 'override').length, 1);
      assert.match(decisionsOf(view, 'override')[0]!.reason, /held by buy_a to buy_b/);
    });
  });

  it('When one accept endpoint took the lead and the other is still in backoff at the freshness deadline, then it keeps its schedule past the deadline and the buyer takes the lead', async () => {
    h = await harness({
      freshnessMs: 1_000,
      buyers: [
        { buyerId: 'buy_a', endpoints: [{ endpointId: 'ep_a1', answers: [{ outcome: 'success' }] }, { endpointId: 'ep_a2', backoffMs: [1_500, 1_500], answers: [{ outcome: 'transient' }, { outcome: 'transient' }, { outcome: 'success' }] }] },
        { buyerId: 'buy_b', endpoints: [{ endpointId: 'ep_b', answers: [{ outcome: 'success' }] }] },
      ],
    });
    await h.run(async () => {
      const handle = await h!.start();
      const outcome = await handle.result();
      assert.deepEqual([outcome.status, outcome.buyerId], ['delivered', 'buy_a']);
      const view = await h!.state(handle);
      assert.equal(decisionsOf(view, 'freshness_held').length, 1);
      assert.equal(decisionsOf(view, 'freshness').length, 0);
      assert.ok(!h!.calls.attempts.some((a) => a.buyerId === 'buy_b'));
    });
  });

  it('When an attempt is ambiguous (a timeout after the request was sent), then the lead stays with that buyer, the retry reads back first, and a spent schedule dead-letters ambiguous_at_buyer', async () => {
    h = await harness({
      buyers: [
        { buyerId: 'buy_a', accept: 'any', endpoints: [{ endpointId: 'ep_a', backoffMs: [300], answers: [{ outcome: 'unknown' }] }] },
        { buyerId: 'buy_b', endpoints: [{ endpointId: 'ep_b', answers: [{ outcome: 'success' }] }] },
      ],
    });
    await h.run(async () => {
      const handle = await h!.start();
      const view = await h!.waitFor(handle, deadLettered);
      assert.deepEqual([view.reasonCode, view.heldBy], ['ambiguous_at_buyer', 'buy_a']);
      const tries = h!.calls.attempts.filter((a) => a.endpointId === 'ep_a');
      assert.deepEqual(tries.map((a) => [a.attempt, !!a.readBack, !!a.held]), [[1, false, false], [2, true, true]]);
      assert.ok(!h!.calls.attempts.some((a) => a.buyerId === 'buy_b'));
      assert.equal(view.endpoints[0]!.status, 'ambiguous');
    });
  });

  it('When an execution of an attempt was lost with its worker and the retry is refused, then the lost one is on record as unknown and the lead does not move on', async () => {
    h = await harness({
      buyers: [
        { buyerId: 'buy_a', endpoints: [{ endpointId: 'ep_a', answers: [{ interrupted: 1, then: { outcome: 'permanent', status: 409 } }] }] },
        { buyerId: 'buy_b', endpoints: [{ endpointId: 'ep_b', answers: [{ outcome: 'success' }] }] },
      ],
    });
    await h.run(async () => {
      const handle = await h!.start();
      const view = await h!.waitFor(handle, (v) => deadLettered(v) && v.journal?.pending === 0);
      assert.deepEqual([view.reasonCode, view.heldBy], ['ambiguous_at_buyer', 'buy_a']);
      const attempts = attemptsIn(h!.calls.journal.get(view.leadId));
      assert.deepEqual(attempts.map((a) => [a.outcome, a.code, a.execution]), [['unknown', 'interrupted', 1], ['permanent', 'http_400', 1]]);
      assert.ok(!h!.calls.attempts.some((a) => a.buyerId === 'buy_b'), 'no failover from a buyer that may have the lead');
    });
  });

  it('When an attempt is deferred by our own fault before the send, then it is asked again without being charged to the buyer schedule', async () => {
    h = await harness({ buyers: [{ buyerId: 'buy_a', endpoints: [{ endpointId: 'ep_a', backoffMs: [], answers: [{ deferred: true }, { deferred: true }, { outcome: 'success' }] }] }] });
    await h.run(async () => {
      const handle = await h!.start();
      const outcome = await handle.result();
      assert.equal(outcome.status, 'delivered', 'a schedule of one attempt was not spent by the deferrals');
      const view = await h!.state(handle);
      assert.equal(view.endpoints[0]!.attempts, 1);
      assert.equal(attemptsIn(h!.calls.journal.get(view.leadId)).length, 1, 'deferrals are not attempts');
      assert.equal(h!.calls.attempts.length, 3);
    });
  });

  it('When the workflow is cancelled in Temporal, then the lead ends discarded with its journal written, not cancelled', async () => {
    h = await harness({ buyers: [{ buyerId: 'buy_a', endpoints: [{ endpointId: 'ep_a', backoffMs: [60_000], answers: [{ outcome: 'transient' }] }] }] });
    await h.run(async () => {
      const handle = await h!.start();
      await h!.waitFor(handle, (v) => v.endpoints[0]?.status === 'backoff');
      await handle.cancel();
      const outcome = await handle.result();
      assert.equal(outcome.status, 'discarded');
      const journal = h!.calls.journal.get(outcome.leadId) ?? [];
      assert.ok(journal.some((e) => e.type === 'status' && e.status === 'discarded'));
    });
  });

  it('When a lead walks a 40-buyer waterfall and is redelivered five times, then its search attributes stay bounded, no workflow task fails, and the full story is in its state and journal', async function () {
    this.timeout(180_000);
    const buyers = Array.from({ length: 40 }, (_, i) => ({ buyerId: `buy_${String(i).padStart(2, '0')}_${randomBytes(8).toString('hex')}`, endpoints: [{ endpointId: `ep_${i}_${randomBytes(8).toString('hex')}`, answers: [{ outcome: 'permanent' as const, code: 'http_404' }] }] }));
    h = await harness({ buyers });
    await h.run(async () => {
      const handle = await h!.start();
      await h!.waitFor(handle, deadLettered, 60_000);
      for (let i = 0; i < 5; i++) {
        await handle.executeUpdate(redeliverUpdate, { args: [{ by: 'test' }] });
        await h!.waitFor(handle, (v) => deadLettered(v) && decisionsOf(v, 'redeliver').length === i + 1, 60_000);
      }
      const view = await h!.state(handle);
      assert.equal(decisionsOf(view, 'failover').length, 240, 'every failover is in the workflow state');
      const description = await handle.describe();
      const decisions = description.typedSearchAttributes.get(SA.LeadDecisions) ?? [];
      const tried = description.typedSearchAttributes.get(SA.BuyersTried) ?? [];
      assert.ok(Buffer.byteLength(JSON.stringify(decisions)) <= KEYWORD_LIST_MAX_BYTES, `LeadDecisions ${Buffer.byteLength(JSON.stringify(decisions))} bytes`);
      assert.ok(Buffer.byteLength(JSON.stringify(tried)) <= KEYWORD_LIST_MAX_BYTES);
      assert.equal(new Set(decisions).size, decisions.length, 'no duplicates');
      assert.ok(decisions.includes('dead_lettered:all_failed'), 'the latest decisions are kept');
      const types = await historyEventTypes(handle);
      assert.ok(!types.includes('workflowTaskFailedEventAttributes'), 'no workflow task failed');
      await h!.waitFor(handle, (v) => v.journal?.pending === 0);
      const journal = h!.calls.journal.get(view.leadId) ?? [];
      assert.equal(journal.filter((e) => e.type === 'decision' && e.decision === 'failover').length, 240, 'every failover is in the journal');
      await handle.executeUpdate(discardUpdate, { args: [{ by: 'test', reason: 'done' }] });
      assert.equal((await handle.result()).status, 'discarded');
    });
  });

  it('When a breaker has run for its maximum time, then it continues as new with its state (running breakers pick up new code)', async () => {
    const infra = await sharedInfra();
    const native = await NativeConnection.connect({ address: infra.temporalAddress });
    const taskQueue = `brk-${randomBytes(4).toString('hex')}`;
    const published: string[] = [];
    const activities: BreakerActivities = {
      publishBreaker(input) {
        published.push(`${input.state}:${input.failing}`);
        return Promise.resolve();
      },
      breakerOpened: () => Promise.resolve(),
      breakerClosed: () => Promise.resolve(),
    };
    const worker = await Worker.create({ connection: native, taskQueue, workflowBundle: await workflowBundle(), activities });
    h = await harness({ buyers: [] });
    const client = h.client;
    try {
      await worker.runUntil(async () => {
        const endpointId = `ep_${randomBytes(4).toString('hex')}`;
        const settings = { threshold: 5, coolDownMs: 60_000 };
        const handle = await client.workflow.start<typeof breaker>('breaker', { workflowId: breakerWorkflowId(endpointId), taskQueue, args: [{ ...BreakerMachine.initial(endpointId, 'buy_x', settings), runMaxMs: 1_500 }] });
        const failure: OutcomeReport = { leadId: 'ld_1', attemptId: 'a1', health: 'failure', code: 'http_503', reason: '503', at: Date.now(), settings };
        await handle.signal(outcomeSignal, failure);
        const firstRun = handle.firstExecutionRunId;
        const deadline = Date.now() + 20_000;
        let runId = firstRun;
        while (Date.now() < deadline && runId === firstRun) {
          await new Promise((r) => setTimeout(r, 250));
          runId = (await client.workflow.getHandle(breakerWorkflowId(endpointId)).describe()).runId;
        }
        assert.notEqual(runId, firstRun, 'a new run started');
        const state = await client.workflow.getHandle(breakerWorkflowId(endpointId)).query(breakerStateQuery);
        assert.equal(state.consecutiveFailures, 1, 'the state moved to the new run');
        assert.equal(state.runMaxMs, 1_500);
        await client.workflow.getHandle(breakerWorkflowId(endpointId)).terminate('test done');
      });
    } finally {
      await native.close();
    }
  });
});
