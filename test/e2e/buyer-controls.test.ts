/**
 * Buyer controls on the real stack (intake, worker, log service, Temporal, FerretDB): the admin
 * API validates and shows them, caps are counted exactly under a race, a buyer outside its hours is
 * skipped as `closed`, and every such decision is in the lead's state and journal.
 */
import assert from 'node:assert/strict';
import { startFakeBuyer, type FakeBuyer } from '../fakes/buyer';
import { sharedInfra } from '../support/infra';
import { startSystem, type TestSystem } from '../support/system';
import { DAY_KEYS, localParts } from '../../shared/buyer-controls';

describe('buyer controls (end to end)', function () {
  let system: TestSystem;
  let capped: FakeBuyer;
  let next: FakeBuyer;

  before(async function () {
    this.timeout(120_000);
    const { temporalAddress, mongoBase } = await sharedInfra();
    system = await startSystem({ temporalAddress, mongoUrl: `${mongoBase}/t_buyer_controls_${Date.now()}` });
    capped = await startFakeBuyer();
    next = await startFakeBuyer();
  });
  after(async () => {
    await system?.stop();
    await capped?.close();
    await next?.close();
  });

  /** A source whose waterfall is [first (with these controls), second]; both take every lead. */
  async function twoBuyers(controls: Record<string, unknown>): Promise<{ apiKey: string; first: string; second: string }> {
    const source = await system.createSource();
    const first = await system.createBuyer({ name: 'capped buyer' });
    const patched = await system.admin('PATCH', `/buyers/${first}`, controls);
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    await system.addEndpoint(first, { kind: 'webhook', url: capped.url });
    const second = await system.createBuyer({ name: 'next buyer' });
    await system.addEndpoint(second, { kind: 'webhook', url: next.url });
    await system.setWaterfall(source.id, [first, second]);
    return { apiKey: source.apiKey, first, second };
  }

  it('When buyer controls are invalid, then the admin API answers 400 naming each field and stores nothing', async function () {
    const created = await system.admin<{ id: string }>('POST', '/buyers', { name: 'strict buyer' }); // the API's defaults, not the test system's
    const buyer = created.body.id;
    const res = await system.admin<{ error: string; fields: Array<{ path: string; message: string }> }>('PATCH', `/buyers/${buyer}`, {
      timeZone: 'Mars/Olympus',
      caps: { daily: 0, yearly: 3 },
      schedule: { hours: { mon: [['20:00', '08:00']] }, holidays: ['2026-02-30'] },
      duplicateWindow: 'soon',
    });
    assert.equal(res.status, 400);
    const fields = res.body.fields.map((f) => f.path).sort();
    for (const field of ['timeZone', 'caps.daily', 'schedule.hours.mon.0', 'schedule.holidays.0', 'duplicateWindow']) assert.ok(fields.includes(field), `${field} in ${fields.join(', ')}`);
    assert.ok(fields.some((f) => f.startsWith('caps')), 'the unknown cap is named');
    const shown = await system.admin<Record<string, unknown>>('GET', `/buyers/${buyer}`);
    assert.equal(shown.body.timeZone, 'UTC');
    assert.deepEqual(shown.body.caps, {});
    assert.equal(shown.body.duplicateWindow, '30d');
    assert.equal(shown.body.returnWindow, '7d');
    assert.equal(shown.body.schedule, undefined);
  });

  it('When 50 leads race for the last 3 slots of a buyer cap, then exactly 3 go to that buyer and 47 move on with cap_reached, and usage shows 3', async function () {
    this.timeout(240_000);
    const { apiKey, first } = await twoBuyers({ timeZone: 'America/Chicago', caps: { daily: 3 } });
    capped.requests.length = 0;
    next.requests.length = 0;
    const posted = await Promise.all(Array.from({ length: 50 }, (_, i) => system.postLead(apiKey, { email: `race${i}@example.com`, id: `race-${i}-${Date.now()}` })));
    assert.ok(posted.every((r) => r.status === 202), JSON.stringify(posted.map((r) => r.status)));
    const views = await Promise.all(posted.map((r) => system.waitForLead(String(r.body.leadId), (v) => v.status === 'delivered', 180_000)));
    const atFirst = views.filter((v) => v.buyerId === first);
    assert.equal(atFirst.length, 3, 'exactly the cap');
    assert.equal(capped.requests.length, 3, 'the capped buyer saw 3 requests');
    assert.equal(next.requests.length, 47, 'the next buyer took the rest');
    const skipped = views.filter((v) => v.decisions.some((d) => d.decision === 'skipped' && d.buyerId === first && /cap_reached:daily/.test(d.reason)));
    assert.equal(skipped.length, 47);
    const shown = await system.admin<{ usage: Record<string, number>; caps: Record<string, number>; timeZone: string }>('GET', `/buyers/${first}`);
    assert.deepEqual(shown.body.usage, { daily: 3 });
    assert.deepEqual(shown.body.caps, { daily: 3 });
    assert.equal(shown.body.timeZone, 'America/Chicago');
    // The decision is in the journal too (what the dispute page shows).
    const entries = await system.models.LogEntry.find({ leadId: skipped[0]!.leadId, type: 'decision' }).lean();
    assert.ok(entries.length > 0);
  });

  it('When a buyer caps the leads of one source, then the second lead of that source moves on, a lead of another source still goes to it, and usage shows both', async function () {
    this.timeout(120_000);
    const { apiKey, first, second } = await twoBuyers({});
    const sourceId = (await system.models.Source.findOne({ waterfall: first }).sort({ createdAt: -1 }).lean())!._id;
    const bad = await system.admin<{ fields: Array<{ path: string }> }>('PATCH', `/buyers/${first}`, { sourceCaps: { src_nosuchsource: { daily: 1 }, [sourceId]: { daily: 0 } }, capWarning: 100 });
    assert.equal(bad.status, 400);
    const paths = bad.body.fields.map((f) => f.path);
    assert.ok(paths.includes(`sourceCaps.${sourceId}.daily`) && paths.includes('capWarning'), paths.join(', '));
    const missing = await system.admin<{ fields: Array<{ path: string }> }>('PATCH', `/buyers/${first}`, { sourceCaps: { src_nosuchsource: { daily: 1 } } });
    assert.deepEqual(missing.body.fields.map((f) => f.path), ['sourceCaps.src_nosuchsource']);
    assert.equal((await system.admin('PATCH', `/buyers/${first}`, { sourceCaps: { [sourceId]: { daily: 1 } } })).status, 200);
    const other = await system.createSource();
    await system.setWaterfall(other.id, [first, second]);
    const views = [];
    for (const [key, email] of [[apiKey, 'src1@example.com'], [apiKey, 'src2@example.com'], [other.apiKey, 'other@example.com']] as const) {
      const res = await system.postLead(key, { email });
      views.push(await system.waitForLead(String(res.body.leadId), (v) => v.status === 'delivered'));
    }
    assert.deepEqual(views.map((v) => v.buyerId), [first, second, first]);
    const skipped = views[1]!.decisions.find((d) => d.decision === 'skipped' && d.buyerId === first);
    assert.match(skipped?.reason ?? '', new RegExp(`cap_reached:daily \\(1 of 1 leads in daily:\\d{4}-\\d{2}-\\d{2}@${sourceId}\\)`));
    const shown = await system.admin<{ usage: { bySource?: Record<string, unknown> }; sourceCaps: unknown }>('GET', `/buyers/${first}`);
    assert.deepEqual(shown.body.sourceCaps, { [sourceId]: { daily: 1 } });
    assert.deepEqual(shown.body.usage.bySource, { [sourceId]: { daily: 1 } });
    assert.equal((await system.admin('PATCH', `/buyers/${first}`, { sourceCaps: null })).status, 200);
  });

  it('When a buyer sets capWarning 50 on a daily cap of 4, then one cap_near alert goes out at the second lead and none again at the third', async function () {
    this.timeout(120_000);
    const { apiKey, first } = await twoBuyers({ caps: { daily: 4 }, capWarning: 50 });
    for (const n of [1, 2, 3]) {
      const res = await system.postLead(apiKey, { email: `near${n}@example.com` });
      assert.equal((await system.waitForLead(String(res.body.leadId), (v) => v.status === 'delivered')).buyerId, first);
      const near = await system.models.Alert.find({ type: 'cap_near', buyerId: first }).lean();
      assert.equal(near.length, n === 1 ? 0 : 1, `after lead ${n}`);
    }
    const alert = (await system.models.Alert.findOne({ type: 'cap_near', buyerId: first }).lean())!;
    assert.match(alert.title, /is near its daily cap \(2 of 4\)/);
    const shown = await system.admin<{ capWarning?: number; usage: Record<string, number> }>('GET', `/buyers/${first}`);
    assert.equal(shown.body.capWarning, 50);
    assert.equal(shown.body.usage.daily, 3, 'the near-cap marker is not a lead');
  });

  it('When a buyer is outside its delivery hours, then it is skipped as closed and the next buyer takes the lead', async function () {
    this.timeout(120_000);
    // Open only on a day that is not today in UTC: closed now, whatever the hour.
    const today = localParts(Date.now(), 'UTC').weekday; // 1 = Monday
    const otherDay = DAY_KEYS[today % 7]!;
    const { apiKey, first, second } = await twoBuyers({ schedule: { hours: { [otherDay]: [['08:00', '20:00']] } } });
    const res = await system.postLead(apiKey, { email: 'night@example.com' });
    const view = await system.waitForLead(String(res.body.leadId), (v) => v.status === 'delivered');
    assert.equal(view.buyerId, second);
    const closed = view.decisions.find((d) => d.decision === 'skipped' && d.buyerId === first);
    assert.match(closed?.reason ?? '', /closed \(opens /);
    const description = await system.client.workflow.getHandle(`lead-${view.leadId}`).describe();
    const tags = (description.searchAttributes.LeadDecisions ?? []) as string[];
    assert.ok(tags.includes(`skipped:${first}:closed`), tags.join(', '));
  });

  it('When a webhook buyer answers with webhook-delivery: abort, then retries of that lead at that endpoint stop: a permanent refusal by the buyer, on record, and the lead moves on', async function () {
    this.timeout(60_000);
    const { apiKey, first, second } = await twoBuyers({});
    const endpoint = (await system.models.Endpoint.findOne({ buyerId: first }).lean())!;
    const patched = await system.admin('PATCH', `/buyers/${first}/endpoints/${endpoint._id}`, { backoff: ['1s', '1s', '1s'] });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    capped.requests.length = 0;
    capped.script([{ status: 503, headers: { 'webhook-delivery': 'abort' }, body: 'do not send this one again' }, { status: 200 }]);
    const res = await system.postLead(apiKey, { email: 'abort@example.com' });
    const view = await system.waitForLead(String(res.body.leadId), (v) => v.status === 'delivered');
    assert.equal(view.buyerId, second);
    assert.equal(capped.requests.length, 1, 'no retry after the abort');
    const attempts = await system.attempts(view.leadId);
    const aborted = attempts.find((a) => a.buyerId === first);
    assert.equal(aborted?.outcome, 'permanent');
    assert.equal(aborted?.code, 'receiver_abort');
    capped.script([{ status: 200 }]);
  });

  it('When a buyer already took a lead with the same email within its duplicate window, then the next one is skipped as duplicate_at_buyer; with "0s" it is not', async function () {
    this.timeout(90_000);
    const { apiKey, first, second } = await twoBuyers({ duplicateWindow: '30d' });
    const email = `dup-${Date.now()}@example.com`;
    const one = await system.postLead(apiKey, { email, first_name: 'Ada' });
    const firstView = await system.waitForLead(String(one.body.leadId), (v) => v.status === 'delivered');
    assert.equal(firstView.buyerId, first);
    const two = await system.postLead(apiKey, { email: email.toUpperCase(), phone: '+1 555 010 0000', first_name: 'Ada again' });
    const secondView = await system.waitForLead(String(two.body.leadId), (v) => v.status === 'delivered');
    assert.equal(secondView.buyerId, second);
    const skipped = secondView.decisions.find((d) => d.decision === 'skipped' && d.buyerId === first);
    assert.match(skipped?.reason ?? '', new RegExp(`duplicate_at_buyer \\(it took ${firstView.leadId} with the same email within 30d\\)`));
    // The check is off with "0s": the same person goes to the first buyer again.
    assert.equal((await system.admin('PATCH', `/buyers/${first}`, { duplicateWindow: '0s' })).status, 200);
    const three = await system.postLead(apiKey, { email, first_name: 'Ada thrice' });
    assert.equal((await system.waitForLead(String(three.body.leadId), (v) => v.status === 'delivered')).buyerId, first);
  });
});
