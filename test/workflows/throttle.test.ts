/**
 * Endpoint throttles inside deliverLead, on the real Temporal server with scripted activities
 * (harness.ts; test/e2e/throttle.test.ts takes the slots in the store): an attempt beyond the
 * endpoint's rate is not an attempt and not a failure — the lead waits on a durable timer for the
 * slot held for it (state `throttled`, one `throttled` decision), then sends; a wait that outlasts
 * the buyer's freshness ends the turn (the lead moves on) and a held slot is given back. Every
 * history replays (the harness checks on close).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { sharedInfra } from '../support/infra';
import { workflowBundle } from '../support/system';
import { harness, historyEventTypes, type Harness } from './harness';

const id = (prefix: string) => `${prefix}_${randomBytes(4).toString('hex')}`;

describe('deliverLead with endpoint throttles (scripted activities)', function () {
  this.timeout(120_000);
  let h: Harness | undefined;
  before(async function () {
    this.timeout(180_000);
    await Promise.all([sharedInfra(), workflowBundle()]);
  });
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('When the endpoint has no send slot for 1.5 s, then the lead shows throttled, waits on a timer and the same attempt is sent then', async () => {
    const [a, ep] = [id('buy_a'), id('ep_a')];
    h = await harness({ buyers: [{ buyerId: a, endpoints: [{ endpointId: ep, answers: [{ throttled: 1_500 }, { outcome: 'success' }] }] }] });
    await h.run(async () => {
      const handle = await h!.start();
      const waiting = await h!.waitFor(handle, (v) => v.endpoints.some((e) => e.status === 'throttled'));
      const view = waiting.endpoints.find((e) => e.endpointId === ep)!;
      assert.equal(view.attempts, 0, 'a throttled call is not an attempt');
      assert.ok(view.nextAttemptAt && view.nextAttemptAt > Date.now(), 'the wait is shown with its end');
      const outcome = await handle.result();
      assert.equal(outcome.status, 'delivered');
      assert.deepEqual(h!.calls.attempts.map((x) => x.attempt), [1, 1], 'the attempt after the wait is the same attempt (it holds the slot)');
      assert.ok(h!.calls.attempts.every((x) => typeof x.turnEndsAt === 'number'), 'accept endpoints say when the turn ends');
      const journal = h!.calls.journal.get(outcome.leadId)!;
      const throttled = journal.filter((e) => e.type === 'decision' && e.decision === 'throttled');
      assert.equal(throttled.length, 1);
      assert.match(throttled[0]!.type === 'decision' ? throttled[0]!.reason : '', /takes 1\/s: its next send slot is in 1500 ms: the lead waits for it/);
      assert.equal(journal.filter((e) => e.type === 'attempt').length, 1, 'only the real send is an attempt in the journal');
      const events = await historyEventTypes(handle);
      assert.ok(events.includes('timerStartedEventAttributes'), 'the wait is a durable timer');
      const described = await handle.describe();
      assert.equal(described.status.name, 'COMPLETED');
    });
  });

  it('When no send slot comes before the freshness deadline, then the turn ends, the held slot is given back and the next buyer takes the lead', async () => {
    const [a, b, epA, epB] = [id('buy_a'), id('buy_b'), id('ep_a'), id('ep_b')];
    h = await harness({
      freshnessMs: 1_500,
      buyers: [
        { buyerId: a, endpoints: [{ endpointId: epA, answers: [{ throttled: 60_000 }] }] },
        { buyerId: b, endpoints: [{ endpointId: epB, answers: [{ outcome: 'success' }] }] },
      ],
    });
    await h.run(async () => {
      const outcome = await (await h!.start()).result();
      assert.equal(outcome.buyerId, b);
      const journal = h!.calls.journal.get(outcome.leadId)!;
      const decisions = journal.flatMap((e) => (e.type === 'decision' ? [e.decision] : []));
      assert.ok(decisions.includes('throttled') && decisions.includes('freshness'), decisions.join(','));
      assert.deepEqual(h!.calls.released, [`${epA}|${outcome.leadId}.${epA}.1`], 'the slot held for A goes back');
    });
  });

  it('When the throttle holds no slot for the lead (none before the deadline), then nothing is given back when the turn ends', async () => {
    const [a, b, epA, epB] = [id('buy_a'), id('buy_b'), id('ep_a'), id('ep_b')];
    h = await harness({
      freshnessMs: 1_000,
      buyers: [
        { buyerId: a, endpoints: [{ endpointId: epA, answers: [{ throttled: 30_000, reserved: false }] }] },
        { buyerId: b, endpoints: [{ endpointId: epB, answers: [{ outcome: 'success' }] }] },
      ],
    });
    await h.run(async () => {
      const outcome = await (await h!.start()).result();
      assert.equal(outcome.buyerId, b);
      assert.deepEqual(h!.calls.released, []);
    });
  });
});
