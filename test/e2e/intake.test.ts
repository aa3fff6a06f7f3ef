/**
 * Intake's contract: authentication, validation with field-level errors, body and media-type
 * limits, idempotency, lead status, and that nothing bad starts a workflow.
 */
import assert from 'node:assert/strict';
import { startFakeBuyer, type FakeBuyer } from '../fakes/buyer';
import { eventually, http, startSystem, type TestSystem } from '../support/system';

describe('intake', function () {
  let system: TestSystem;
  let buyer: FakeBuyer;
  let source: { id: string; apiKey: string };

  before(async function () {
    this.timeout(180_000);
    system = await startSystem({ bodyLimit: '8kb' });
    buyer = await startFakeBuyer();
    source = await system.createSource('intake test');
    const buyerId = await system.createBuyer();
    await system.addEndpoint(buyerId, { kind: 'webhook', url: buyer.url, backoff: ['1s'] });
    await system.setWaterfall(source.id, [buyerId]);
  });
  after(async () => {
    await buyer?.close();
    await system?.stop();
  });

  const workflowsOf = async (sourceId: string) => {
    let count = 0;
    for await (const _ of system.client.workflow.list({ query: `SourceId = "${sourceId}"` })) count++;
    return count;
  };

  it('When the same client id is posted twice, then one workflow runs and the second answer is 200 duplicate', async () => {
    const body = { id: 'vendor-42', email: 'grace@example.com' };
    const first = await system.postLead(source.apiKey, body);
    const second = await system.postLead(source.apiKey, body);
    assert.equal(first.status, 202);
    assert.equal(second.status, 200);
    assert.equal(second.body.duplicate, true);
    assert.equal(second.body.leadId, first.body.leadId);
    await system.waitForLead(String(first.body.leadId), (v) => v.status === 'delivered');
    const deliveries = buyer.requests.filter((r) => r.body.includes('grace@example.com'));
    assert.equal(deliveries.length, 1);
  });

  it('When the same Idempotency-Key is reused, then the same lead is answered; with other fields it is a 409', async () => {
    const headers = { 'Idempotency-Key': 'req-7f3a' };
    const first = await system.postLead(source.apiKey, { email: 'alan@example.com' }, headers);
    const again = await system.postLead(source.apiKey, { email: 'alan@example.com' }, headers);
    const changed = await system.postLead(source.apiKey, { email: 'other@example.com' }, headers);
    assert.equal(first.status, 202);
    assert.deepEqual([again.status, again.body.leadId, again.body.duplicate], [200, first.body.leadId, true]);
    assert.equal(changed.status, 409);
    assert.equal(changed.body.error, 'idempotency_conflict');
  });

  it('When two sources use the same client id, then they get two different leads', async () => {
    const other = await system.createSource('other');
    const a = await system.postLead(source.apiKey, { id: 'same-1', email: 'x@example.com' });
    const b = await system.postLead(other.apiKey, { id: 'same-1', email: 'x@example.com' });
    assert.equal(a.status, 202);
    assert.equal(b.status, 202);
    assert.notEqual(a.body.leadId, b.body.leadId);
  });

  it('When the body is invalid, then each bad field is named and no workflow starts', async () => {
    const probe = await system.createSource('validation probe');
    const res = await system.postLead(probe.apiKey, { first_name: '', email: 'not-an-email', country: 'usa', frist_name: 'typo', custom: { 'bad key': 1 } });
    assert.equal(res.status, 400);
    assert.equal(res.body.error, 'validation_failed');
    const paths = (res.body.fields as Array<{ path: string; message: string }>).map((f) => f.path).sort();
    assert.deepEqual(paths, ['country', 'custom.bad key', 'email', 'first_name', 'frist_name']);
    const missing = await system.postLead(probe.apiKey, { first_name: 'No', last_name: 'Contact' });
    assert.equal(missing.status, 400);
    assert.deepEqual(missing.body.fields, [{ path: 'email', message: 'at least one of email or phone is required' }]);
    const notObject = await system.postLead(probe.apiKey, [1, 2]);
    assert.equal(notObject.status, 400);
    // Positive control: the one valid lead of this source is the only workflow it has.
    assert.equal((await system.postLead(probe.apiKey, { email: 'valid@example.com' })).status, 202);
    await eventually(async () => ((await workflowsOf(probe.id)) >= 1 ? true : undefined), 10_000, 'the valid lead is listed');
    assert.equal(await workflowsOf(probe.id), 1);
  });

  it('When the request is malformed, oversized, not JSON or unauthenticated, then the right 4xx comes back and no workflow starts', async () => {
    const probe = await system.createSource('rejects probe');
    const url = `${system.intakeUrl}/v1/leads`;
    const malformed = await http('POST', url, { token: probe.apiKey, raw: '{"email": "a@b.c",', headers: { 'content-type': 'application/json' } });
    assert.deepEqual([malformed.status, malformed.body.error], [400, 'invalid_json']);
    const oversized = await http('POST', url, { token: probe.apiKey, body: { email: 'a@example.com', custom: { blob: 'x'.repeat(1900), b: 'x'.repeat(1900), c: 'x'.repeat(1900), d: 'x'.repeat(1900), e: 'x'.repeat(1900) } } });
    assert.deepEqual([oversized.status, oversized.body.error], [413, 'payload_too_large']);
    const form = await http('POST', url, { token: probe.apiKey, raw: 'email=a%40b.com', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.deepEqual([form.status, form.body.error], [415, 'unsupported_media_type']);
    const noKey = await http('POST', url, { body: { email: 'a@example.com' } });
    assert.equal(noKey.status, 401);
    assert.equal(noKey.headers.get('www-authenticate'), 'Bearer');
    const badKey = await http('POST', url, { token: 'lds_01hzzzzzzzzzzzzzzzzzzzzzzz_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', body: { email: 'a@example.com' } });
    assert.equal(badKey.status, 401);
    const adminPosting = await http('POST', url, { token: system.adminToken, body: { email: 'a@example.com' } });
    assert.equal(adminPosting.status, 403);
    for (const res of [malformed, oversized, form, noKey, badKey]) assert.ok(!JSON.stringify(res.body).includes(' at '), 'no stack trace');
    assert.equal((await system.postLead(probe.apiKey, { email: 'valid@example.com' })).status, 202);
    await eventually(async () => ((await workflowsOf(probe.id)) >= 1 ? true : undefined), 10_000, 'the valid lead is listed');
    assert.equal(await workflowsOf(probe.id), 1);
  });

  it('When an unknown route is called, then the answer is a JSON 404', async () => {
    const res = await http('GET', `${system.intakeUrl}/v2/nothing`);
    assert.equal(res.status, 404);
    assert.equal(res.body.error, 'not_found');
  });

  it('When a lead is looked up, then its source and the admin see it, another source does not', async () => {
    const posted = await system.postLead(source.apiKey, { email: 'lookup@example.com' });
    const leadId = String(posted.body.leadId);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    const own = await http('GET', `${system.intakeUrl}/v1/leads/${leadId}`, { token: source.apiKey });
    assert.equal(own.status, 200);
    assert.equal(own.body.status, 'delivered');
    const endpoints = own.body.endpoints as Array<{ status: string; attempts: number }>;
    assert.deepEqual(endpoints.map((e) => [e.status, e.attempts]), [['delivered', 1]]);
    const asAdmin = await http('GET', `${system.intakeUrl}/v1/leads/${leadId}`, { token: system.adminToken });
    assert.equal(asAdmin.status, 200);
    const stranger = await system.createSource('stranger');
    const other = await http('GET', `${system.intakeUrl}/v1/leads/${leadId}`, { token: stranger.apiKey });
    assert.equal(other.status, 404);
    const unknown = await http('GET', `${system.intakeUrl}/v1/leads/ld_nope`, { token: system.adminToken });
    assert.equal(unknown.status, 404);
  });

  it('When the health endpoints are called, then both answer ready', async () => {
    assert.equal((await http('GET', `${system.intakeUrl}/healthz`)).status, 200);
    const ready = await http('GET', `${system.intakeUrl}/readyz`);
    assert.deepEqual(ready.body, { status: 'ready', temporal: true, store: true });
  });
});
