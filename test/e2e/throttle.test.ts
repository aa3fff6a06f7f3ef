/**
 * Endpoint throttles on the real stack (intake, worker, log service, Temporal, FerretDB): the admin
 * API validates `throttle`, the send slots are counted in the store across concurrent takers (no
 * window ever holds more than the rate), and a burst of leads at a throttled endpoint is delivered in
 * full at the rate: the leads beyond it wait (state `throttled`, a `throttled` decision), none fails.
 */
import assert from 'node:assert/strict';
import { createThrottle } from '../../activities/throttle';
import { startFakeBuyer, type FakeBuyer } from '../fakes/buyer';
import { sharedInfra } from '../support/infra';
import { startSystem, type TestSystem } from '../support/system';

describe('endpoint throttles (end to end)', function () {
  let system: TestSystem;
  let buyer: FakeBuyer;

  before(async function () {
    this.timeout(120_000);
    const { temporalAddress, mongoBase } = await sharedInfra();
    system = await startSystem({ temporalAddress, mongoUrl: `${mongoBase}/t_throttle_${Date.now()}` });
    buyer = await startFakeBuyer();
  });
  after(async () => {
    await system?.stop();
    await buyer?.close();
  });

  it('When a throttle is invalid, then the admin API answers 400 naming the field; a valid one is shown and null removes it', async () => {
    const b = await system.createBuyer({ name: 'throttled buyer' });
    const bad = await system.admin<{ fields: Array<{ path: string }> }>('POST', `/buyers/${b}/endpoints`, { kind: 'webhook', url: buyer.url, throttle: { perSecond: 0, perHour: 5 } });
    assert.equal(bad.status, 400);
    const paths = bad.body.fields.map((f) => f.path);
    assert.ok(paths.includes('throttle.perSecond') && paths.some((p) => p.startsWith('throttle')), paths.join(', '));
    const empty = await system.admin<{ fields: Array<{ path: string; message: string }> }>('POST', `/buyers/${b}/endpoints`, { kind: 'webhook', url: buyer.url, throttle: {} });
    assert.equal(empty.status, 400);
    assert.equal(empty.body.fields[0]?.path, 'throttle');
    assert.equal(await system.models.Endpoint.countDocuments({ buyerId: b }), 0, 'nothing stored');
    const plain = await system.admin<{ throttle?: unknown }>('POST', `/buyers/${b}/endpoints`, { kind: 'webhook', url: buyer.url });
    assert.equal(plain.status, 201);
    assert.ok(!('throttle' in plain.body), 'an endpoint without a throttle shows none');
    const made = await system.admin<{ id: string; throttle: unknown }>('POST', `/buyers/${b}/endpoints`, { kind: 'webhook', url: buyer.url, throttle: { perMinute: 30 } });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    assert.deepEqual(made.body.throttle, { perMinute: 30 });
    const changed = await system.admin<{ throttle?: unknown; version: number }>('PATCH', `/buyers/${b}/endpoints/${made.body.id}`, { throttle: { perSecond: 2, perMinute: 60 } });
    assert.deepEqual(changed.body.throttle, { perSecond: 2, perMinute: 60 });
    const removed = await system.admin<{ throttle?: unknown }>('PATCH', `/buyers/${b}/endpoints/${made.body.id}`, { throttle: null });
    assert.equal(removed.status, 200);
    assert.equal(removed.body.throttle, undefined);
  });

  it('When 40 sends race for a 5-per-second throttle, then every one gets a slot, no second holds more than 5 and a holder asking again keeps its slot', async function () {
    this.timeout(60_000);
    const throttle = createThrottle(system.models);
    const key = `endpoint:race-${Date.now()}`;
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => throttle.take(key, { perSecond: 5 }, `holder-${i}`)));
    assert.ok(answers.every((a) => a.reserved), 'every send is queued, none refused');
    const perSecond = new Map<number, number>();
    for (const a of answers) if (a.reserved) perSecond.set(Math.floor(a.at / 1000), (perSecond.get(Math.floor(a.at / 1000)) ?? 0) + 1);
    assert.ok([...perSecond.values()].every((n) => n <= 5), JSON.stringify([...perSecond]));
    assert.ok(perSecond.size >= 8, `40 sends at 5/s span at least 8 seconds (${perSecond.size})`);
    const rows = await system.models.SendSlot.countDocuments({ key, unit: 's' });
    assert.equal(rows, 40, 'one slot of the second per send');
    // The holder of the last slot (seconds away) asks again: the same slot, nothing more taken.
    const last = answers.reduce((best, a, i) => (a.reserved && a.at > (answers[best] as { at: number }).at ? i : best), 0);
    const again = await throttle.take(key, { perSecond: 5 }, `holder-${last}`, { mayHoldOne: true });
    const first = answers[last]!;
    assert.ok(again.reserved && first.reserved && again.at === first.at, 'the same slot');
    assert.equal(await system.models.SendSlot.countDocuments({ key, unit: 's' }), 40);
    // A holder that will not send gives its future slot back; a bounded take reserves nothing.
    await throttle.release(key, `holder-${last}`);
    assert.equal(await system.models.SendSlot.countDocuments({ key, unit: 's' }), 39);
    assert.equal(await system.models.SendSlot.countDocuments({ key, holder: `holder-${last}` }), 0, 'its spread slot too');
    // The race may have taken seconds on a loaded machine: queue 10 more (two seconds of sends from now) first.
    for (let i = 0; i < 10; i++) await throttle.take(key, { perSecond: 5 }, `fill-${i}`);
    const bounded = await throttle.take(key, { perSecond: 5 }, 'late', { notAfter: Date.now() + 1_000 });
    assert.equal(bounded.reserved, false);
    assert.ok(bounded.waitMs > 1_000);
  });

  it('When 16 leads arrive at once for an endpoint throttled to 2 per second, then all are delivered at 2 a second spread across each second, and the waiting ones show throttled', async function () {
    this.timeout(120_000);
    const source = await system.createSource();
    const b = await system.createBuyer({ name: 'slow buyer' });
    await system.addEndpoint(b, { kind: 'webhook', url: buyer.url, throttle: { perSecond: 2 } });
    await system.setWaterfall(source.id, [b]);
    buyer.requests.length = 0;
    // 16, not 8: the leads reach the worker over a second or two on a loaded machine (server mode), and a
    // lead whose slot is less than a second away waits inside its activity (no decision); 16 at 2/s keep
    // a backlog of several seconds however they arrive, so some must wait on a timer.
    const LEADS = 16;
    const posted = await Promise.all(Array.from({ length: LEADS }, (_, i) => system.postLead(source.apiKey, { email: `burst${i}@example.com`, id: `burst-${i}-${Date.now()}` })));
    assert.ok(posted.every((r) => r.status === 202));
    const views = await Promise.all(posted.map((r) => system.waitForLead(String(r.body.leadId), (v) => v.status === 'delivered', 90_000)));
    assert.equal(views.length, LEADS);
    assert.equal(buyer.requests.length, LEADS, 'each lead sent once');
    // Sent at most 2 in each second of the clock, spread across it (the slots' planned times), so the
    // buyer never sees a burst: at most 3 in any second of its own (2 + 1 at a boundary, plus network jitter).
    const endpoint = (await system.models.Endpoint.findOne({ buyerId: b }).lean())!;
    const slots = await system.models.SendSlot.find({ key: `endpoint:${endpoint._id}`, unit: 's' }).lean();
    assert.equal(slots.length, LEADS);
    const bySecond = new Map<number, number>();
    for (const slot of slots) bySecond.set(slot.window, (bySecond.get(slot.window) ?? 0) + 1);
    assert.ok([...bySecond.values()].every((n) => n <= 2), JSON.stringify([...bySecond]));
    // Spread: the second send of a second is planned in its second half (one per half second).
    for (const window of bySecond.keys()) {
      const planned = slots.filter((x) => x.window === window).map((x) => x.at.getTime()).sort((x, y) => x - y);
      if (planned.length === 2) assert.ok(planned[1]! % 1000 >= 500, `the second send of ${window} is in its second half (${planned.join(', ')})`);
    }
    // At the buyer: 2 a second, +1 across an edge, +1 for the send latency's jitter on a loaded test machine
    // (without the spread, leads at once would come as 2 + 2 within milliseconds at each edge).
    const received = buyer.requests.map((r) => r.receivedAt).sort((x, y) => x - y);
    for (const t of received) assert.ok(received.filter((u) => u >= t && u < t + 1000).length <= 4, `at most 4 received within a second from ${t}: ${received.join(', ')}`);
    assert.ok(received.at(-1)! - received[0]! >= 6_500, `16 sends at 2/s take at least 6.5 s (${received.at(-1)! - received[0]!} ms)`);
    const waited = views.filter((v) => v.decisions.some((d) => d.decision === 'throttled'));
    assert.ok(waited.length >= 4, `at least 4 of ${LEADS} leads waited for a slot on a timer (${waited.length})`);
    const attempts = await system.attempts(waited[0]!.leadId);
    assert.equal(attempts.length, 1, 'a wait is not an attempt');
    assert.equal(attempts[0]!.attempt, 1);
    const entries = await system.models.LogEntry.find({ leadId: waited[0]!.leadId, type: 'decision' }).lean();
    assert.ok(entries.some((e) => (e.data as { decision?: string }).decision === 'throttled'), 'the wait is in the journal');
  });
});
