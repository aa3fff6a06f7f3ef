/**
 * The hubspot kind end to end: intake → workflow → activity → io.outbound → a local HubSpot that
 * checks every batch upsert against the documented request shape and keeps contacts by email.
 * Backoffs are second-long, the attempt timeout 1.5 s.
 */
import assert from 'node:assert/strict';
import type { ReadBack } from '../../../shared/delivery';
import { hubspotErrors, startHubspotFake, WRITE_SCOPE, type HubspotFake } from '../../fakes/hubspot';
import { capturedLogLines, startSystem, type TestSystem } from '../../support/system';
import { waitForAttempts, summary } from '../../support/attempts';


const TOKEN = 'pat-na1-11111111-2222-4333-8444-555555555555';
const NO_SCOPE_TOKEN = 'pat-na1-99999999-2222-4333-8444-555555555555';
const WRITE_ONLY_TOKEN = 'pat-na1-77777777-2222-4333-8444-555555555555';
const MAPPING = { email: 'email', firstname: 'first_name', lastname: 'last_name', phone: { field: 'phone', transform: 'e164' }, city: 'city' };

describe('hubspot kind through the whole system', function () {
  let system: TestSystem;
  let hubspot: HubspotFake;
  let counter = 0;

  before(async function () {
    this.timeout(180_000);
    hubspot = await startHubspotFake({ tokens: [{ token: TOKEN }, { token: NO_SCOPE_TOKEN, scopes: ['crm.objects.contacts.read'] }, { token: WRITE_ONLY_TOKEN, scopes: [WRITE_SCOPE] }] });
    system = await startSystem({ providers: { hubspotApiBaseUrl: hubspot.baseUrl } });
  });
  after(async () => {
    await system?.stop();
    await hubspot?.close();
  });
  beforeEach(() => hubspot.reset());
  afterEach(function () {
    if (this.currentTest?.state === 'passed') assert.deepEqual(hubspot.violations, [], 'every request matched the documented batch upsert shape');
  });

  async function route(settings: Record<string, unknown> = {}) {
    const { source, endpoints } = await system.route([{ kind: 'hubspot', token: TOKEN, mapping: MAPPING, backoff: ['1s'], timeoutMs: 1500, ...settings }]);
    return { apiKey: source.apiKey, endpoint: endpoints[0]! };
  }

  /** A lead with an email of its own (contacts are keyed by email across the whole fake). */
  async function post(apiKey: string, extra: Record<string, unknown> = {}): Promise<{ leadId: string; email: string }> {
    const email = `ada.${++counter}@example.com`;
    const res = await system.postLead(apiKey, { first_name: 'Ada', last_name: 'Lovelace', email, phone: '(555) 010-0000', city: 'London', ...extra });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return { leadId: String(res.body.leadId), email };
  }

  const attemptsOf = (leadId: string, count: number) => waitForAttempts(system, leadId, count);
  const reads = () => hubspot.requests.filter((r) => r.method === 'GET');

  it('When HubSpot accepts the upsert, then the contact is created by email with the mapped properties and its id is the message id; the token is masked', async () => {
    const { apiKey } = await route();
    const { leadId, email } = await post(apiKey);
    const view = await system.waitForLead(leadId, (v) => v.status === 'delivered');
    assert.equal(view.endpoints[0]!.attempts, 1);

    const contact = hubspot.contacts.get(email)!;
    assert.ok(contact, 'the contact exists');
    assert.deepEqual(
      { email: contact.properties.email, firstname: contact.properties.firstname, lastname: contact.properties.lastname, phone: contact.properties.phone, city: contact.properties.city },
      { email, firstname: 'Ada', lastname: 'Lovelace', phone: '+15550100000', city: 'London' },
    );
    const [received] = hubspot.requests;
    assert.equal(received!.path, '/crm/v3/objects/contacts/batch/upsert');
    assert.equal(received!.headers.authorization, `Bearer ${TOKEN}`);
    assert.deepEqual(JSON.parse(received!.body), { inputs: [{ idProperty: 'email', id: email, properties: { email, firstname: 'Ada', lastname: 'Lovelace', phone: '+15550100000', city: 'London' } }] });

    const [attempt] = await attemptsOf(leadId, 1);
    assert.deepEqual([attempt!.outcome, attempt!.code, attempt!.response?.status, attempt!.response?.messageId], ['success', 'ok', 200, contact.id]);
    assert.match(attempt!.reason, /created/);
    assert.equal(attempt!.request.method, 'POST');
    assert.equal(attempt!.request.url, `${hubspot.baseUrl}/crm/v3/objects/contacts/batch/upsert`);
    assert.equal(attempt!.request.body, received!.body, 'the record holds the request as sent');
    const recorded = JSON.stringify(await system.attempts(leadId));
    assert.ok(!recorded.includes(TOKEN) && !recorded.includes(TOKEN.slice(8)), 'no token in the attempt record');
    assert.ok(!capturedLogLines.some((line) => line.includes(TOKEN)), 'no token in any log line');
  });

  it('When a contact with that email already exists, then it is updated (HubSpot answers new:false), not duplicated', async () => {
    const { apiKey } = await route();
    const first = await post(apiKey);
    await system.waitForLead(first.leadId, (v) => v.status === 'delivered');
    const res = await system.postLead(apiKey, { first_name: 'Augusta', last_name: 'King', email: first.email });
    const leadId = String(res.body.leadId);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    const contact = hubspot.contacts.get(first.email)!;
    assert.equal(contact.writes, 2);
    assert.equal(contact.properties.firstname, 'Augusta');
    const [attempt] = await attemptsOf(leadId, 1);
    assert.equal(attempt!.response?.messageId, contact.id);
    assert.match(attempt!.reason, /updated \(matched by email\)/);
  });

  it('When HubSpot answers 429 TEN_SECONDLY_ROLLING with Retry-After, then the attempt is transient for that long and the next one succeeds', async () => {
    const { apiKey } = await route();
    hubspot.script([hubspotErrors.secondly(1)]);
    const { leadId, email } = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    const attempts = await attemptsOf(leadId, 2);
    assert.deepEqual(summary(attempts), [[1, 'transient', 'hubspot_rate_limit_secondly'], [2, 'success', 'ok']]);
    assert.equal(attempts[0]!.retryAfterMs, 1_000);
    assert.match(attempts[0]!.reason, /TEN_SECONDLY_ROLLING/);
    assert.equal(hubspot.contacts.get(email)!.writes, 1);
  });

  it('When HubSpot answers 429 DAILY, then the attempt is transient and parked until the daily reset (capped at 6 h)', async () => {
    const { apiKey } = await route({ timeZone: 'UTC' });
    hubspot.script([hubspotErrors.daily()]);
    const { leadId } = await post(apiKey);
    const view = await system.waitForLead(leadId, (v) => v.endpoints[0]?.status === 'backoff');
    const [attempt] = await attemptsOf(leadId, 1);
    assert.deepEqual([attempt!.outcome, attempt!.code], ['transient', 'hubspot_rate_limit_daily']);
    const untilMidnight = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() + 1) - Number(attempt!.startedAt);
    const expected = Math.min(untilMidnight, 6 * 3_600_000);
    assert.ok(Math.abs(attempt!.retryAfterMs! - expected) < 5_000, `retryAfterMs ${attempt!.retryAfterMs} ≈ ${expected}`);
    assert.ok(view.endpoints[0]!.nextAttemptAt! - Date.now() > expected - 60_000, 'the next attempt is scheduled after the reset');
    assert.equal(hubspot.upserts, 0);
  });

  it('When HubSpot answers 502, then the attempt is transient and the next one succeeds', async () => {
    const { apiKey } = await route();
    hubspot.script([hubspotErrors.serverError(502)]);
    const { leadId } = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    assert.deepEqual(summary(await attemptsOf(leadId, 2)), [[1, 'transient', 'http_502'], [2, 'success', 'ok']]);
  });

  it('When the token is refused (401), then the failure is permanent and says so; no retry', async () => {
    const { apiKey } = await route({ token: 'pat-na1-00000000-0000-4000-8000-000000000000' });
    const { leadId } = await post(apiKey);
    const view = await system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
    assert.equal(view.endpoints[0]!.attempts, 1);
    const [attempt] = await attemptsOf(leadId, 1);
    assert.deepEqual([attempt!.outcome, attempt!.code, attempt!.response?.status], ['permanent', 'hubspot_invalid_token', 401]);
    assert.match(attempt!.reason, /private app token was refused/);
    assert.equal(hubspot.requests.length, 1);
  });

  it('When the private app lacks the contacts write scope (403), then the failure is permanent and names the scope', async () => {
    const { apiKey } = await route({ token: NO_SCOPE_TOKEN });
    const { leadId } = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
    const [attempt] = await attemptsOf(leadId, 1);
    assert.deepEqual([attempt!.outcome, attempt!.code], ['permanent', 'hubspot_missing_scopes']);
    assert.match(attempt!.reason, /crm\.objects\.contacts\.write/);
  });

  it("When the mapping writes a property the account does not have (400 VALIDATION_ERROR), then the failure is permanent with HubSpot's message", async () => {
    const { apiKey } = await route({ mapping: { ...MAPPING, favourite_colour: { const: 'teal' } } });
    const { leadId, email } = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
    const [attempt] = await attemptsOf(leadId, 1);
    assert.deepEqual([attempt!.outcome, attempt!.code, attempt!.response?.status], ['permanent', 'hubspot_validation_error', 400]);
    assert.match(attempt!.reason, /Property \\?"favourite_colour\\?" does not exist/);
    assert.equal(hubspot.contacts.has(email), false);
  });

  it('When HubSpot applies the upsert but answers after our timeout, then the attempt is unknown and the retry reads the contact back: found, success found_on_read_back, nothing upserted again', async () => {
    const { apiKey } = await route();
    hubspot.script([{ type: 'slow', delayMs: 2_500 }]);
    const { leadId, email } = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    const attempts = await attemptsOf(leadId, 2);
    assert.deepEqual(summary(attempts), [[1, 'unknown', 'timeout'], [2, 'success', 'found_on_read_back']]);
    const contact = hubspot.contacts.get(email)!;
    assert.equal(hubspot.upserts, 1, 'only the first attempt upserted');
    assert.equal(contact.writes, 1);
    assert.deepEqual(reads().map((r) => r.path), [`/crm/v3/objects/contacts/${encodeURIComponent(email)}?idProperty=email&properties=email,firstname,lastname,phone,city`]);
    assert.equal(reads()[0]!.headers.authorization, `Bearer ${TOKEN}`);
    const readBack = attempts[1]!.readBack as ReadBack;
    assert.deepEqual([readBack.found, readBack.messageId], [true, contact.id]);
    assert.match(readBack.detail, /matched by email\) holds every property this lead writes/);
    assert.equal(attempts[1]!.response?.messageId, contact.id);
    assert.ok(!JSON.stringify(attempts).includes(TOKEN), 'no token in the records');
  });

  it('When the connection drops after the upsert was sent and HubSpot applied nothing, then the attempt is unknown, the read-back finds no contact, and the retry upserts it once', async () => {
    const { apiKey } = await route();
    hubspot.script([{ type: 'hangUp' }]);
    const { leadId, email } = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    const attempts = await attemptsOf(leadId, 2);
    assert.deepEqual(summary(attempts), [[1, 'unknown', 'connection_reset'], [2, 'success', 'ok']]);
    const readBack = attempts[1]!.readBack as ReadBack;
    assert.equal(readBack.found, false);
    assert.match(readBack.detail, /no contact with this lead's email/);
    assert.equal(hubspot.upserts, 1);
    assert.equal(hubspot.contacts.get(email)!.writes, 1);
    assert.equal(reads().length, 1);
  });

  it('When a contact with the email exists but does not hold the lead\'s values, then the read-back does not count it as found and the retry upserts (the same contact)', async () => {
    const { apiKey } = await route();
    const first = await post(apiKey);
    await system.waitForLead(first.leadId, (v) => v.status === 'delivered');
    hubspot.script([{ type: 'hangUp' }]);
    const res = await system.postLead(apiKey, { first_name: 'Augusta', last_name: 'King', email: first.email, phone: '(555) 010-0000', city: 'London' });
    const leadId = String(res.body.leadId);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    const attempts = await attemptsOf(leadId, 2);
    assert.deepEqual(summary(attempts), [[1, 'unknown', 'connection_reset'], [2, 'success', 'ok']]);
    const contact = hubspot.contacts.get(first.email)!;
    const readBack = attempts[1]!.readBack as ReadBack;
    assert.deepEqual([readBack.found, readBack.messageId], [false, contact.id]);
    assert.match(readBack.detail, /firstname, lastname differ/);
    assert.equal(contact.properties.firstname, 'Augusta');
    assert.equal(contact.writes, 2);
  });

  it('When the private app cannot read contacts (no crm.objects.contacts.read), then the read-back records why and the retry upserts anyway (it cannot duplicate)', async () => {
    const { apiKey } = await route({ token: WRITE_ONLY_TOKEN });
    hubspot.script([{ type: 'slow', delayMs: 2_500 }]);
    const { leadId, email } = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    const attempts = await attemptsOf(leadId, 2);
    assert.deepEqual(summary(attempts), [[1, 'unknown', 'timeout'], [2, 'success', 'ok']]);
    const readBack = attempts[1]!.readBack as ReadBack;
    assert.equal(readBack.found, false);
    assert.match(readBack.detail, /hubspot_missing_scopes.*crm\.objects\.contacts\.read/);
    assert.match(attempts[1]!.reason, /updated \(matched by email\)/);
    assert.equal([...hubspot.contacts.values()].filter((c) => c.properties.email === email).length, 1, 'one contact');
    assert.equal(hubspot.upserts, 2);
  });

  it('When the read-back itself is answered 503, then nothing is sent by that attempt (transient read_back_…) and a later attempt delivers: one contact', async () => {
    const { apiKey } = await route({ backoff: ['1s', '1s'] });
    hubspot.script([{ type: 'hangUp' }]);
    hubspot.scriptReads([hubspotErrors.serverError(503)]);
    const { leadId, email } = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    const attempts = await attemptsOf(leadId, 3);
    assert.deepEqual(summary(attempts).slice(0, 2), [[1, 'unknown', 'connection_reset'], [2, 'transient', 'read_back_http_503']]);
    assert.match(String(attempts[1]!.error), /HubSpot could not be read back: http_503/);
    assert.equal(attempts[1]!.request, undefined, 'the attempt that could not read back sent nothing');
    assert.deepEqual([attempts[2]!.outcome, attempts[2]!.code], ['success', 'ok']);
    assert.equal(hubspot.upserts, 1, 'one upsert applied (the first was cut off before HubSpot applied it)');
    assert.equal(hubspot.contacts.get(email)!.writes, 1);
  });

  it('When a lead has no email, then it fails permanently before anything is sent, naming the field', async () => {
    const { apiKey } = await route();
    const res = await system.postLead(apiKey, { first_name: 'Ada', phone: '+15550100000' });
    const leadId = String(res.body.leadId);
    await system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
    const [attempt] = await attemptsOf(leadId, 1);
    assert.deepEqual([attempt!.outcome, attempt!.code], ['permanent', 'mapping_error']);
    assert.match(attempt!.reason, /"email"/);
    assert.equal(hubspot.requests.length, 0);
  });

  it('When the settings are wrong, then the endpoint is refused when saved, field by field; the preview shows the exact request with the token masked', async () => {
    const buyerId = await system.createBuyer();
    const zone = await system.admin<{ fields: Array<{ path: string; message: string }> }>('POST', `/buyers/${buyerId}/endpoints`, { kind: 'hubspot', token: TOKEN, timeZone: 'Mars/Olympus', mapping: MAPPING });
    assert.equal(zone.status, 400);
    assert.deepEqual(zone.body.fields.map((f) => f.path), ['timeZone']);
    const bad = await system.admin<{ fields: Array<{ path: string; message: string }> }>('POST', `/buyers/${buyerId}/endpoints`, {
      kind: 'hubspot',
      token: TOKEN,
      mapping: { firstname: 'first_name', 'First Name': 'first_name' },
    });
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.body.fields.map((f) => f.path).sort(), ['mapping.First Name', 'mapping.email']);
    assert.match(bad.body.fields.find((f) => f.path === 'mapping.email')!.message, /upserted by email/);
    const noToken = await system.admin<{ fields: Array<{ path: string }> }>('POST', `/buyers/${buyerId}/endpoints`, { kind: 'hubspot', mapping: MAPPING });
    assert.deepEqual(noToken.body.fields.map((f) => f.path), ['token']);

    const created = await system.addEndpoint(buyerId, { kind: 'hubspot', token: TOKEN, mapping: MAPPING });
    assert.ok(!JSON.stringify(created).includes(TOKEN), 'the token is shown masked');
    const preview = await system.admin<{ request: { method: string; url: string; headers: Record<string, string>; body: string } }>('POST', `/buyers/${buyerId}/endpoints/${created.id}/preview`, {
      lead: { first_name: 'Grace', last_name: 'Hopper', email: 'grace@example.com', phone: '+15550100001' },
    });
    assert.equal(preview.status, 200, JSON.stringify(preview.body));
    assert.equal(preview.body.request.url, `${hubspot.baseUrl}/crm/v3/objects/contacts/batch/upsert`);
    assert.ok(!JSON.stringify(preview.body).includes(TOKEN));
    assert.deepEqual(JSON.parse(preview.body.request.body), { inputs: [{ idProperty: 'email', id: 'grace@example.com', properties: { email: 'grace@example.com', firstname: 'Grace', lastname: 'Hopper', phone: '+15550100001' } }] });
    assert.equal(hubspot.requests.length, 0, 'a preview sends nothing');
  });
});
