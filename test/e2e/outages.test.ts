/**
 * When buyers fail: circuit breakers, waterfall failover, the freshness deadline, dead letters
 * and operator controls, on the real Temporal dev server with second-long schedules.
 */
import assert from 'node:assert/strict';
import { startFakeBuyer, type FakeBuyer, type ReceivedRequest } from '../fakes/buyer';
import { eventually, http, startSystem, type TestSystem } from '../support/system';
import type { LeadView } from '../../shared/delivery';
import { SA } from '../../shared/search-attributes';
import type { deadLetterDigest } from '../../workflows/operator-jobs';
import { DIGEST_SCHEDULE_ID, ensureSchedules } from '../../services/worker/schedules';

const leadIdOf = (request: ReceivedRequest) => /^msg_(ld_[a-z0-9]+)_/.exec(String(request.headers['webhook-id']))?.[1];

describe('outages: breakers, failover, dead letters', function () {
  let system: TestSystem;
  let b1: FakeBuyer;
  let b2: FakeBuyer;
  let alerts: FakeBuyer;

  before(async function () {
    this.timeout(180_000);
    system = await startSystem();
    [b1, b2, alerts] = await Promise.all([startFakeBuyer(), startFakeBuyer(), startFakeBuyer()]);
    const channel = await system.admin('POST', '/alert-channels', { kind: 'webhook', name: 'ops', url: alerts.url });
    assert.equal(channel.status, 201, JSON.stringify(channel.body));
  });
  after(async () => {
    await Promise.all([b1?.close(), b2?.close(), alerts?.close()]);
    await system?.stop();
  });
  beforeEach(() => {
    for (const fake of [b1, b2, alerts]) {
      fake.requests.length = 0;
      fake.script([{ status: 200 }]);
    }
  });

  /** A source whose waterfall is B1 then B2, one webhook each. */
  async function twoBuyers(options: { b1?: Record<string, unknown>; b2?: Record<string, unknown>; freshness?: string } = {}) {
    const source = await system.admin<{ id: string; apiKey: string }>('POST', '/sources', { name: 'waterfall', ...(options.freshness ? { freshness: options.freshness } : {}) });
    const buyer1 = await system.createBuyer({ name: 'B1' });
    const buyer2 = await system.createBuyer({ name: 'B2' });
    const ep1 = await system.addEndpoint(buyer1, { kind: 'webhook', url: b1.url, backoff: [], ...options.b1 });
    const ep2 = await system.addEndpoint(buyer2, { kind: 'webhook', url: b2.url, backoff: ['1s'], ...options.b2 });
    await system.setWaterfall(source.body.id, [buyer1, buyer2]);
    return { source: source.body, buyer1, buyer2, ep1: ep1.id, ep2: ep2.id };
  }
  const post = async (apiKey: string, n: number | string) => String((await system.postLead(apiKey, { email: `lead${n}@example.com`, first_name: 'Grace' })).body.leadId);
  const terminal = (v: LeadView) => v.status === 'delivered' || v.status === 'dead_lettered' || v.status === 'discarded';

  it('When the primary buyer fails five times, then its breaker opens, one alert goes out, it is paused, leads go straight to B2; after the cool-down one probe recovers it', async function () {
    this.timeout(120_000);
    const { source, buyer1, buyer2, ep1 } = await twoBuyers({ b1: { breaker: { threshold: 5, coolDown: '3s' } } });
    b1.script([{ status: 500, body: 'down' }]);
    for (let i = 0; i < 5; i++) {
      const leadId = await post(source.apiKey, `trip${i}`);
      const view = await system.waitForLead(leadId, terminal);
      assert.deepEqual([view.status, view.buyerId], ['delivered', buyer2], `lead ${i} failed over to B2`);
    }
    assert.equal(b1.requests.length, 5);
    const breaker = await eventually(async () => {
      const res = await system.admin<{ state: string; consecutiveFailures: number; lastError?: { code: string } }>('GET', `/endpoints/${ep1}/breaker`);
      return res.body.state === 'open' ? res.body : undefined;
    }, 15_000, 'breaker open');
    assert.equal(breaker.consecutiveFailures, 5);
    assert.equal(breaker.lastError?.code, 'http_500');
    const paused = await eventually(async () => {
      const res = await system.admin<{ paused: boolean; pause?: { by: string } }>('GET', `/buyers/${buyer1}`);
      return res.body.paused ? res.body : undefined;
    }, 15_000, 'buyer paused');
    assert.equal(paused.pause?.by, 'breaker');
    await alerts.waitForRequests(1, 15_000);
    const opened = JSON.parse(alerts.requests[0]!.body) as { type: string; endpoint_id: string };
    assert.deepEqual([opened.type, opened.endpoint_id], ['breaker_opened', ep1]);

    // Routed around: no attempt at B1.
    const during = await post(source.apiKey, 'during');
    const view = await system.waitForLead(during, terminal);
    assert.equal(view.buyerId, buyer2);
    assert.ok(view.decisions.some((d) => d.decision === 'skipped' && d.buyerId === buyer1), JSON.stringify(view.decisions));
    assert.equal(b1.requests.length, 5, 'no attempt at B1 while its breaker is open');
    assert.equal(alerts.requests.length, 1, 'one alert for one trip');

    // B1 is back; after the cool-down one probe closes the breaker and resumes the buyer.
    b1.script([{ status: 200 }]);
    await eventually(async () => ((await system.admin<{ state: string }>('GET', `/endpoints/${ep1}/breaker`)).body.state === 'half_open' ? true : undefined), 15_000, 'half-open');
    const probe = await post(source.apiKey, 'probe');
    const probed = await system.waitForLead(probe, terminal);
    assert.equal(probed.buyerId, buyer1, 'the probe delivery went to B1');
    assert.equal(b1.requests.length, 6);
    await eventually(async () => ((await system.admin<{ state: string }>('GET', `/endpoints/${ep1}/breaker`)).body.state === 'closed' ? true : undefined), 15_000, 'closed');
    await eventually(async () => ((await system.admin<{ paused: boolean }>('GET', `/buyers/${buyer1}`)).body.paused === false ? true : undefined), 15_000, 'resumed');
    await alerts.waitForRequests(2, 15_000);
    assert.equal((JSON.parse(alerts.requests[1]!.body) as { type: string }).type, 'breaker_recovered');
    const after = await post(source.apiKey, 'after');
    assert.equal((await system.waitForLead(after, terminal)).buyerId, buyer1);
  });

  it('When buyer 1 answers 404, then buyer 2 has the lead within one second', async () => {
    const { source, buyer2 } = await twoBuyers();
    b1.script([{ status: 404, body: 'unknown list' }]);
    const leadId = await post(source.apiKey, 404);
    const view = await system.waitForLead(leadId, terminal);
    assert.equal(view.buyerId, buyer2);
    const [rejected] = await b1.waitForRequests(1);
    const [taken] = await b2.waitForRequests(1);
    const gap = taken!.receivedAt - rejected!.receivedAt;
    assert.ok(gap < 1_000, `failover took ${gap} ms`);
    const decision = view.decisions.find((d) => d.decision === 'failover');
    assert.match(decision!.reason, /after http_404/);
    const attempts = await system.attempts(leadId);
    assert.deepEqual(attempts.map((a) => [a.buyerId !== buyer2 ? 'B1' : 'B2', a.code]), [['B1', 'http_404'], ['B2', 'ok']]);
  });

  it('When the freshness deadline passes during buyer 1’s backoff, then buyer 2 gets the lead and buyer 1 is never called again', async function () {
    this.timeout(60_000);
    const { source, buyer2 } = await twoBuyers({ freshness: '3s', b1: { backoff: ['5s', '5s'] } });
    b1.script([{ status: 503 }]);
    const leadId = await post(source.apiKey, 'fresh');
    const view = await system.waitForLead(leadId, terminal, 20_000);
    assert.equal(view.buyerId, buyer2);
    assert.ok(view.decisions.some((d) => d.decision === 'freshness'), JSON.stringify(view.decisions));
    const ep1 = view.endpoints.find((e) => e.buyerId !== buyer2)!;
    assert.equal(ep1.status, 'cancelled');
    await new Promise((r) => setTimeout(r, 7_000));
    assert.equal(b1.requests.filter((r) => leadIdOf(r) === leadId).length, 1, 'B1 was called once, never again');
  });

  it('When every buyer is down, then the lead is dead-lettered, listed, and redelivered once after recovery; another is discarded', async function () {
    this.timeout(60_000);
    const { source, buyer1, buyer2 } = await twoBuyers();
    b1.script([{ status: 404 }]);
    b2.script([{ status: 400, body: 'rejected' }]);
    const leadId = await post(source.apiKey, 'dead');
    const other = await post(source.apiKey, 'discard-me');
    const view = await system.waitForLead(leadId, terminal);
    assert.equal(view.status, 'dead_lettered');
    assert.equal(view.reasonCode, 'all_failed');
    await system.waitForLead(other, (v) => v.status === 'dead_lettered');

    const listed = await eventually(async () => {
      const res = await system.admin<{ items: Array<{ leadId: string; reason: string; buyersTried: string[] }> }>('GET', `/dead-letters?sourceId=${source.id}&reason=all_failed`);
      return res.body.items.length === 2 ? res.body.items : undefined;
    }, 15_000, 'both listed');
    const item = listed.find((i) => i.leadId === leadId)!;
    assert.deepEqual(item.buyersTried.sort(), [buyer1, buyer2].sort());
    assert.equal((await system.admin<{ items: unknown[] }>('GET', `/dead-letters?buyerId=${buyer2}&sourceId=${source.id}`)).body.items.length, 2);
    assert.equal((await system.admin<{ items: unknown[] }>('GET', `/dead-letters?sourceId=${source.id}&newerThan=1h&olderThan=1ms`)).body.items.length, 2);
    assert.equal((await system.admin<{ items: unknown[] }>('GET', `/dead-letters?sourceId=${source.id}&olderThan=1h`)).body.items.length, 0);
    const badFilter = await system.admin<{ fields: Array<{ path: string }> }>('GET', '/dead-letters?olderThan=yesterday&reason=x');
    assert.deepEqual(badFilter.body.fields.map((f) => f.path).sort(), ['query.olderThan', 'query.reason']);
    const state = await http<{ status: string; reason: string }>('GET', `${system.intakeUrl}/v1/leads/${leadId}`, { token: source.apiKey });
    assert.equal(state.body.status, 'dead_lettered');
    const described = await system.client.workflow.getHandle(`lead-${leadId}`).describe();
    assert.equal(described.typedSearchAttributes.get(SA.LeadStatus), 'dead_lettered', 'the search attribute agrees with GET');
    assert.ok(described.typedSearchAttributes.get(SA.LeadDecisions)?.includes('dead_lettered:all_failed'));

    // The digest alert counts it.
    alerts.requests.length = 0;
    const digest = await system.client.workflow.execute<typeof deadLetterDigest>('deadLetterDigest', { taskQueue: system.deliveryTaskQueue, workflowId: `digest-${leadId}`, args: [{ periodMs: 3_600_000 }] });
    assert.ok(digest.count >= 2, `digest counted ${digest.count}`);
    const [digestAlert] = await alerts.waitForRequests(1);
    const body = JSON.parse(digestAlert!.body) as { type: string; title: string };
    assert.equal(body.type, 'dead_letter_digest');
    assert.match(body.title, /new dead-lettered lead/);
    await ensureSchedules(system.client, { taskQueue: system.deliveryTaskQueue, digestEveryMs: 3_600_000 });
    await ensureSchedules(system.client, { taskQueue: system.deliveryTaskQueue, digestEveryMs: 3_600_000 });
    const schedule = await system.client.schedule.getHandle(DIGEST_SCHEDULE_ID).describe();
    assert.equal(schedule.action.type, 'startWorkflow');

    b2.script([{ status: 200 }]);
    const redeliver = await system.admin('POST', `/leads/${leadId}/redeliver`, { buyerId: buyer2, fields: { last_name: 'Hopper' } });
    assert.equal(redeliver.status, 202);
    const done = await system.waitForLead(leadId, terminal);
    assert.deepEqual([done.status, done.buyerId], ['delivered', buyer2]);
    const deliveredTo2 = b2.requests.filter((r) => leadIdOf(r) === leadId);
    assert.equal(deliveredTo2.length, 2, 'one refused attempt before, one delivery after');
    assert.equal((JSON.parse(deliveredTo2[1]!.body) as { last_name: string }).last_name, 'Hopper', 'the correction was delivered');
    assert.equal(b1.requests.filter((r) => leadIdOf(r) === leadId).length, 1, 'redelivered to the given buyer only');
    const journal = await http<{ items: Array<{ type: string }> }>('GET', `${system.logUrl}/v1/leads/${leadId}/log`, { token: system.adminToken });
    assert.ok(journal.body.items.some((e) => e.type === 'correction'), 'the correction is recorded');
    const again = await system.admin('POST', `/leads/${leadId}/redeliver`, {});
    assert.deepEqual([again.status, again.body.error], [409, 'not_dead_lettered']);

    const badDiscard = await system.admin('POST', `/leads/${other}/discard`, {});
    assert.equal(badDiscard.status, 400);
    const discarded = await system.admin('POST', `/leads/${other}/discard`, { reason: 'test lead' });
    assert.equal(discarded.status, 200);
    const gone = await system.waitForLead(other, (v) => v.status === 'discarded');
    assert.equal(gone.reason, 'test lead');
    await eventually(async () => ((await system.admin<{ items: unknown[] }>('GET', `/dead-letters?sourceId=${source.id}`)).body.items.length === 0 ? true : undefined), 15_000, 'list empty');
  });

  it('When dead letters are redelivered in bulk, then progress is reported and each is delivered once', async function () {
    this.timeout(90_000);
    const { source, buyer2 } = await twoBuyers();
    b1.script([{ status: 404 }]);
    // 422: about the lead, not the endpoint's health, so B2's breaker does not trip meanwhile.
    b2.script([{ status: 422 }]);
    const leads = await Promise.all([1, 2, 3, 4, 5].map((i) => post(source.apiKey, `bulk${i}`)));
    for (const leadId of leads) await system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
    await eventually(async () => ((await system.admin<{ items: unknown[] }>('GET', `/dead-letters?sourceId=${source.id}`)).body.items.length === 5 ? true : undefined), 15_000, 'listed');
    b2.script([{ status: 200 }]);
    const bulk = await system.admin<{ bulkId: string }>('POST', '/dead-letters/redeliver', { sourceId: source.id, toBuyerId: buyer2 });
    assert.equal(bulk.status, 202);
    const progress = await eventually(async () => {
      const res = await system.admin<{ status: string; matched: number; redelivered: number; failed: number }>('GET', `/bulk/${bulk.body.bulkId}`);
      return res.body.status === 'done' ? res.body : undefined;
    }, 30_000, 'bulk done');
    assert.deepEqual([progress.matched, progress.redelivered, progress.failed], [5, 5, 0]);
    for (const leadId of leads) {
      const view = await system.waitForLead(leadId, terminal);
      assert.deepEqual([view.status, view.buyerId], ['delivered', buyer2]);
      assert.equal(b2.requests.filter((r) => leadIdOf(r) === leadId && r.receivedAt > 0).length, 2);
    }
  });

  it('When an operator pauses, resumes, opens and resets, then routing follows and each command is acknowledged', async function () {
    this.timeout(60_000);
    const { source, buyer1, buyer2, ep1 } = await twoBuyers();
    const pause = await system.admin<{ paused: boolean }>('POST', `/buyers/${buyer1}/pause`, { reason: 'invoice dispute' });
    assert.equal(pause.body.paused, true);
    const buyer = await system.admin<{ paused: boolean; pause: { reason: string; by: string } }>('GET', `/buyers/${buyer1}`);
    assert.deepEqual([buyer.body.paused, buyer.body.pause.reason, buyer.body.pause.by], [true, 'invoice dispute', 'operator']);
    const skipped = await system.waitForLead(await post(source.apiKey, 'paused'), terminal);
    assert.equal(skipped.buyerId, buyer2);
    assert.match(skipped.decisions.find((d) => d.decision === 'skipped')!.reason, /paused \(invoice dispute\)/);
    assert.equal(b1.requests.length, 0);
    await system.admin('POST', `/buyers/${buyer1}/resume`, {});
    assert.equal((await system.waitForLead(await post(source.apiKey, 'resumed'), terminal)).buyerId, buyer1);

    const opened = await system.admin<{ state: string; forced: boolean }>('POST', `/endpoints/${ep1}/breaker/open`, { reason: 'maintenance window' });
    assert.deepEqual([opened.status, opened.body.state, opened.body.forced], [200, 'open', true], 'acknowledged with the applied state');
    assert.equal((await system.waitForLead(await post(source.apiKey, 'forced'), terminal)).buyerId, buyer2);
    const reset = await system.admin<{ state: string }>('POST', `/endpoints/${ep1}/breaker/reset`, {});
    assert.equal(reset.body.state, 'closed');
    await eventually(async () => ((await system.admin<{ paused: boolean }>('GET', `/buyers/${buyer1}`)).body.paused === false ? true : undefined), 10_000, 'resumed by reset');
    assert.equal((await system.waitForLead(await post(source.apiKey, 'reset'), terminal)).buyerId, buyer1);
    assert.equal((await system.admin('GET', '/endpoints/ep_unknown/breaker')).status, 404);
    assert.equal((await system.admin('POST', `/buyers/${buyer1}/pause`, {})).status, 400, 'a reason is required');
  });

  it('When 200 leads meet a flapping buyer (30 % 5xx), then each ends in exactly one terminal state and none reaches two buyers', async function () {
    this.timeout(240_000);
    const { source, buyer1, buyer2 } = await twoBuyers({ b1: { backoff: ['1s'], breaker: { threshold: 1000 } }, b2: { backoff: ['1s', '1s', '1s'] } });
    let seed = 42;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const b1Answers: number[] = [];
    b1.script((_req, index) => {
      b1Answers[index] = random() < 0.3 ? 503 : 200;
      return { status: b1Answers[index] };
    });
    const leads = await Promise.all(Array.from({ length: 200 }, (_, i) => post(source.apiKey, `flap${i}`)));
    assert.equal(new Set(leads).size, 200);
    const views = await Promise.all(leads.map((leadId) => system.waitForLead(leadId, terminal, 200_000)));
    const statuses = new Set(views.map((v) => v.status));
    assert.deepEqual([...statuses], ['delivered']);
    // Which buyer answered 2xx to which lead: exactly one per lead, and the one the lead names.
    const accepted = new Map<string, Set<string>>();
    const record = (fake: FakeBuyer, buyerId: string, ok: (i: number) => boolean) =>
      fake.requests.forEach((r, i) => {
        const id = leadIdOf(r);
        if (id && ok(i)) accepted.set(id, new Set([...(accepted.get(id) ?? []), buyerId]));
      });
    record(b1, buyer1, (i) => b1Answers[i] === 200);
    record(b2, buyer2, () => true);
    for (const view of views) {
      const buyers = [...(accepted.get(view.leadId) ?? [])];
      assert.deepEqual(buyers, [view.buyerId], `${view.leadId} reached ${buyers.join(', ')}`);
    }
    const toB2 = views.filter((v) => v.buyerId === buyer2).length;
    assert.ok(toB2 > 0 && toB2 < 200, `${toB2} leads failed over to B2`);
  });
});
