/**
 * Buyer controls decided inside deliverLead, on the real Temporal server with scripted activities
 * (harness.ts; the harness counts caps in memory, test/e2e/buyer-controls.test.ts counts them in the
 * store): a full cap skips the buyer with `cap_reached:<window>`, a buyer that does not take the
 * lead gives its reservation back, a closed buyer is skipped, and with `outside: "hold"` the lead
 * waits on a durable timer for the opening. Every history replays (the harness checks on close).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { localParts } from '../../shared/buyer-controls';
import type { LeadView } from '../../shared/delivery';
import { sharedInfra } from '../support/infra';
import { workflowBundle } from '../support/system';
import { harness, type Harness } from './harness';

const decisionsOf = (v: LeadView, decision: string) => v.decisions.filter((d) => d.decision === decision);
const id = (prefix: string) => `${prefix}_${randomBytes(4).toString('hex')}`;

describe('deliverLead with buyer controls (scripted activities)', function () {
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

  it('When a buyer capped at 2 a day gets a third lead, then it is skipped with cap_reached:daily and the next buyer takes it', async () => {
    const [a, b] = [id('buy_a'), id('buy_b')];
    h = await harness({
      buyers: [
        { buyerId: a, controls: { timeZone: 'America/Chicago', caps: { daily: 2 } }, endpoints: [{ endpointId: id('ep_a'), answers: [{ outcome: 'success' }] }] },
        { buyerId: b, endpoints: [{ endpointId: id('ep_b'), answers: [{ outcome: 'success' }] }] },
      ],
    });
    await h.run(async () => {
      const outcomes = [];
      for (let i = 0; i < 3; i++) outcomes.push(await (await h!.start()).result());
      assert.deepEqual(outcomes.map((o) => o.buyerId), [a, a, b]);
      const third = await h!.state(h!.client.workflow.getHandle(`lead-${outcomes[2]!.leadId}`));
      const skipped = decisionsOf(third, 'skipped');
      assert.equal(skipped.length, 1);
      assert.match(skipped[0]!.reason, /cap_reached:daily \(2 of 2 leads in daily:\d{4}-\d{2}-\d{2}\)/);
      const counted = [...h!.calls.usage.entries()].filter(([k]) => k.startsWith(`${a}|daily:`));
      assert.equal(counted.length, 1);
      assert.equal(counted[0]![1].size, 2, 'two leads counted, the third not');
    });
  });

  it('When a capped buyer does not take the lead (its endpoint refuses), then the reservation is given back and the next lead can use the slot', async () => {
    const [a, b] = [id('buy_a'), id('buy_b')];
    h = await harness({
      buyers: [
        { buyerId: a, controls: { timeZone: 'UTC', caps: { total: 1, hourly: 5 } }, endpoints: [{ endpointId: id('ep_a'), answers: [{ outcome: 'permanent', code: 'http_400' }, { outcome: 'success' }] }] },
        { buyerId: b, endpoints: [{ endpointId: id('ep_b'), answers: [{ outcome: 'success' }] }] },
      ],
    });
    await h.run(async () => {
      const first = await (await h!.start()).result();
      assert.equal(first.buyerId, b, 'A refused it, B took it');
      const second = await (await h!.start()).result();
      assert.equal(second.buyerId, a, 'the slot A gave back is free again');
      const total = [...h!.calls.usage.entries()].find(([k]) => k === `${a}|total`);
      assert.deepEqual([...(total?.[1] ?? [])], [second.leadId]);
    });
  });

  it('When a buyer is closed and its schedule says hold, then the lead waits on a timer for the opening and the buyer takes it then', async function () {
    this.timeout(150_000);
    // Opens at the next whole minute (UTC), today: closed now, open within a minute.
    const now = Date.now();
    const opensAt = Math.ceil((now + 1_000) / 60_000) * 60_000;
    const open = localParts(opensAt, 'UTC');
    if (open.hour === 0 && open.minute === 0) this.skip(); // the next minute is tomorrow: the window would be on another day
    const day = (['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const)[open.weekday - 1]!;
    const hhmm = `${String(open.hour).padStart(2, '0')}:${String(open.minute).padStart(2, '0')}`;
    const [a, b] = [id('buy_a'), id('buy_b')];
    h = await harness({
      freshnessMs: 90_000,
      buyers: [
        { buyerId: a, controls: { timeZone: 'UTC', schedule: { hours: { [day]: [[hhmm, '24:00']] }, outside: 'hold' } }, endpoints: [{ endpointId: id('ep_a'), answers: [{ outcome: 'success' }] }] },
        { buyerId: b, endpoints: [{ endpointId: id('ep_b'), answers: [{ outcome: 'success' }] }] },
      ],
    });
    await h.run(async () => {
      const handle = await h!.start();
      const waiting = await h!.waitFor(handle, (v) => decisionsOf(v, 'waiting').length === 1);
      assert.match(decisionsOf(waiting, 'waiting')[0]!.reason, new RegExp(`opens ${hhmm} UTC`));
      const history = await handle.fetchHistory();
      const timer = history.events?.find((e) => e.timerStartedEventAttributes && e.userMetadata?.summary);
      assert.ok(timer, 'the wait is a durable timer');
      const outcome = await handle.result();
      assert.equal(outcome.buyerId, a);
      assert.ok(Date.now() >= opensAt, 'taken after the opening');
    });
  });

  it('When a buyer is closed and its schedule says skip, then it is skipped as closed at once', async () => {
    const today = localParts(Date.now(), 'UTC').weekday;
    const other = (['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const)[today % 7]!;
    const [a, b] = [id('buy_a'), id('buy_b')];
    h = await harness({
      buyers: [
        { buyerId: a, controls: { timeZone: 'UTC', schedule: { hours: { [other]: [['00:00', '24:00']] } } }, endpoints: [{ endpointId: id('ep_a'), answers: [{ outcome: 'success' }] }] },
        { buyerId: b, endpoints: [{ endpointId: id('ep_b'), answers: [{ outcome: 'success' }] }] },
      ],
    });
    await h.run(async () => {
      const handle = await h!.start();
      const outcome = await handle.result();
      assert.equal(outcome.buyerId, b);
      const view = await h!.state(handle);
      assert.match(decisionsOf(view, 'skipped')[0]!.reason, /^skipped buy_a_\w+: closed \(opens /);
    });
  });
});
