/**
 * The hubspot kind end to end: intake → workflow → activity → io.outbound → a local HubSpot that
 * checks every batch upsert against the documented request shape and keeps contacts by email.
 * Backoffs are second-long, the attempt timeout 1.5 s. The kind contract (./contract.ts) runs from
 * the table below; the cases after it are HubSpot's own.
 */
import assert from 'node:assert/strict';
import type { ReadBack } from '../../../shared/delivery';
import { hubspotErrors, startHubspotFake, WRITE_SCOPE, type HubspotFake } from '../../fakes/hubspot';
import { summary } from '../../support/attempts';
import { describeKind, type KindTable, type Run } from './contract';

const TOKEN = 'pat-na1-11111111-2222-4333-8444-555555555555';
const NO_SCOPE_TOKEN = 'pat-na1-99999999-2222-4333-8444-555555555555';
const WRITE_ONLY_TOKEN = 'pat-na1-77777777-2222-4333-8444-555555555555';
const MAPPING = { email: 'email', firstname: 'first_name', lastname: 'last_name', phone: { field: 'phone', transform: 'e164' }, city: 'city' };
const UPSERT_PATH = '/crm/v3/objects/contacts/batch/upsert';

interface Fixtures {
  hubspot: HubspotFake;
}

let counter = 0;
const upserts = (f: Fixtures) => f.hubspot.requests.filter((r) => r.method === 'POST');
const reads = (f: Fixtures) => f.hubspot.requests.filter((r) => r.method === 'GET');
const emailOf = (run: Pick<Run, 'lead'>) => String(run.lead.email);
/** The upsert MAPPING makes of the table's lead. */
const upsertOf = (run: Run) => {
  const email = emailOf(run);
  return { inputs: [{ idProperty: 'email', id: email, properties: { email, firstname: 'Ada', lastname: 'Lovelace', phone: '+15550100000', city: 'London' } }] };
};

const table: KindTable<Fixtures> = {
  kind: 'hubspot',
  title: 'hubspot kind through the whole system',
  start: async () => ({ hubspot: await startHubspotFake({ tokens: [{ token: TOKEN }, { token: NO_SCOPE_TOKEN, scopes: ['crm.objects.contacts.read'] }, { token: WRITE_ONLY_TOKEN, scopes: [WRITE_SCOPE] }] }) }),
  providers: (f) => ({ hubspotApiBaseUrl: f.hubspot.baseUrl }),
  stop: (f) => f.hubspot.close(),
  fake: (f) => ({
    sends: () => upserts(f).map((r) => ({ body: JSON.parse(r.body) as unknown, raw: r.body, receivedAt: r.receivedAt })),
    requestCount: () => f.hubspot.requests.length,
    held: (run) => [...f.hubspot.contacts.values()].filter((c) => c.properties.email === emailOf(run)).length,
    violations: () => f.hubspot.violations,
    reset: () => f.hubspot.reset(),
  }),
  endpoint: () => ({ kind: 'hubspot', token: TOKEN, mapping: MAPPING, backoff: ['1s'], timeoutMs: 1500 }),
  /** A lead with an email of its own (contacts are keyed by email across the whole fake). */
  lead: () => ({ first_name: 'Ada', last_name: 'Lovelace', email: `ada.${++counter}@example.com`, phone: '(555) 010-0000', city: 'London' }),
  secretFields: ['token'],
  secrets: (_f, settings) => [String(settings.token), String(settings.token).slice(8)],
  maskedHeaders: ['authorization'],
  parse: (body) => JSON.parse(body) as unknown,
  request: (f, run) => ({ method: 'POST', url: `${f.hubspot.baseUrl}${UPSERT_PATH}`, body: upsertOf(run) }),
  readsBack: true,
  firstSend: {
    when: 'HubSpot accepts the upsert',
    status: 200,
    messageId: (f, run) => f.hubspot.contacts.get(emailOf(run))?.id,
    check(h, run, [attempt]) {
      const contact = h.fixtures.hubspot.contacts.get(emailOf(run))!;
      const p = contact.properties;
      assert.deepEqual({ email: p.email, firstname: p.firstname, lastname: p.lastname, phone: p.phone, city: p.city }, { email: emailOf(run), firstname: 'Ada', lastname: 'Lovelace', phone: '+15550100000', city: 'London' }, 'the contact is created by email with the mapped properties');
      const [received] = h.fixtures.hubspot.requests;
      assert.equal(received!.path, UPSERT_PATH);
      assert.equal(received!.headers.authorization, `Bearer ${TOKEN}`);
      assert.match(attempt!.reason, /created/);
    },
  },
  transient: { when: 'HubSpot answers 502', script: (f) => f.hubspot.script([hubspotErrors.serverError(502)]), codes: ['http_502'] },
  refusal: {
    when: 'the token is refused (401)',
    settings: () => ({ token: 'pat-na1-00000000-0000-4000-8000-000000000000' }),
    attempts: [['permanent', 'hubspot_invalid_token']],
    status: 401,
    reason: /private app token was refused/,
    check: (h) => assert.equal(h.fixtures.hubspot.requests.length, 1, 'no retry'),
  },
  timeout: {
    when: 'HubSpot applies the upsert but answers after our timeout',
    script: (f) => f.hubspot.script([{ type: 'slow', delayMs: 2_500 }]),
    check(h, run, attempts) {
      const f = h.fixtures;
      const email = emailOf(run);
      assert.equal(f.hubspot.upserts, 1, 'only the first attempt upserted');
      assert.equal(f.hubspot.contacts.get(email)!.writes, 1);
      assert.deepEqual(reads(f).map((r) => r.path), [`/crm/v3/objects/contacts/${encodeURIComponent(email)}?idProperty=email&properties=email,firstname,lastname,phone,city`]);
      assert.equal(reads(f)[0]!.headers.authorization, `Bearer ${TOKEN}`);
      assert.match((attempts[1]!.readBack as ReadBack).detail, /matched by email\) holds every property this lead writes/);
    },
  },
  hangUp: {
    when: 'the connection drops after the upsert was sent and HubSpot applied nothing',
    script: (f) => f.hubspot.script([{ type: 'hangUp' }]),
    code: 'connection_reset',
    check(h, run, attempts) {
      const f = h.fixtures;
      assert.match((attempts[1]!.readBack as ReadBack).detail, /no contact with this lead's email/);
      assert.equal(f.hubspot.upserts, 1);
      assert.equal(f.hubspot.contacts.get(emailOf(run))!.writes, 1);
      assert.equal(reads(f).length, 1);
    },
  },
};

describeKind(table, (h) => {
  it('When a contact with that email already exists, then it is updated (HubSpot answers new:false), not duplicated', async () => {
    const { apiKey } = await h.route();
    const first = await h.post(apiKey);
    await h.system.waitForLead(first.leadId, (v) => v.status === 'delivered');
    const { leadId } = await h.post(apiKey, { first_name: 'Augusta', last_name: 'King', email: first.lead.email, phone: undefined, city: undefined });
    await h.system.waitForLead(leadId, (v) => v.status === 'delivered');
    const contact = h.fixtures.hubspot.contacts.get(emailOf(first))!;
    assert.equal(contact.writes, 2);
    assert.equal(contact.properties.firstname, 'Augusta');
    const [attempt] = await h.attemptsOf(leadId, 1);
    assert.equal(attempt!.response?.messageId, contact.id);
    assert.match(attempt!.reason, /updated \(matched by email\)/);
  });

  it('When HubSpot answers 429 TEN_SECONDLY_ROLLING with Retry-After, then the attempt is transient for that long and the next one succeeds', async () => {
    h.fixtures.hubspot.script([hubspotErrors.secondly(1)]);
    const run = await h.send();
    await h.system.waitForLead(run.leadId, (v) => v.status === 'delivered');
    const attempts = await h.attemptsOf(run.leadId, 2);
    assert.deepEqual(summary(attempts), [[1, 'transient', 'hubspot_rate_limit_secondly'], [2, 'success', 'ok']]);
    assert.equal(attempts[0]!.retryAfterMs, 1_000);
    assert.match(attempts[0]!.reason, /TEN_SECONDLY_ROLLING/);
    assert.equal(h.fixtures.hubspot.contacts.get(emailOf(run))!.writes, 1);
  });

  it('When HubSpot answers 429 DAILY, then the attempt is transient and parked until the daily reset (capped at 6 h)', async () => {
    h.fixtures.hubspot.script([hubspotErrors.daily()]);
    const { leadId } = await h.send({ timeZone: 'UTC' });
    const view = await h.system.waitForLead(leadId, (v) => v.endpoints[0]?.status === 'backoff');
    const [attempt] = await h.attemptsOf(leadId, 1);
    assert.deepEqual([attempt!.outcome, attempt!.code], ['transient', 'hubspot_rate_limit_daily']);
    const untilMidnight = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() + 1) - Number(attempt!.startedAt);
    const expected = Math.min(untilMidnight, 6 * 3_600_000);
    assert.ok(Math.abs(attempt!.retryAfterMs! - expected) < 5_000, `retryAfterMs ${attempt!.retryAfterMs} ≈ ${expected}`);
    assert.ok(view.endpoints[0]!.nextAttemptAt! - Date.now() > expected - 60_000, 'the next attempt is scheduled after the reset');
    assert.equal(h.fixtures.hubspot.upserts, 0);
  });

  it('When the private app lacks the contacts write scope (403), then the failure is permanent and names the scope', async () => {
    const { leadId } = await h.send({ token: NO_SCOPE_TOKEN });
    await h.system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
    const [attempt] = await h.attemptsOf(leadId, 1);
    assert.deepEqual([attempt!.outcome, attempt!.code], ['permanent', 'hubspot_missing_scopes']);
    assert.match(attempt!.reason, /crm\.objects\.contacts\.write/);
  });

  it("When the mapping writes a property the account does not have (400 VALIDATION_ERROR), then the failure is permanent with HubSpot's message", async () => {
    const run = await h.send({ mapping: { ...MAPPING, favourite_colour: { const: 'teal' } } });
    await h.system.waitForLead(run.leadId, (v) => v.status === 'dead_lettered');
    const [attempt] = await h.attemptsOf(run.leadId, 1);
    assert.deepEqual([attempt!.outcome, attempt!.code, attempt!.response?.status], ['permanent', 'hubspot_validation_error', 400]);
    assert.match(attempt!.reason, /Property \\?"favourite_colour\\?" does not exist/);
    assert.equal(h.fixtures.hubspot.contacts.has(emailOf(run)), false);
  });

  it("When a contact with the email exists but does not hold the lead's values, then the read-back does not count it as found and the retry upserts (the same contact)", async () => {
    const { hubspot } = h.fixtures;
    const { apiKey } = await h.route();
    const first = await h.post(apiKey);
    await h.system.waitForLead(first.leadId, (v) => v.status === 'delivered');
    hubspot.script([{ type: 'hangUp' }]);
    const { leadId } = await h.post(apiKey, { first_name: 'Augusta', last_name: 'King', email: first.lead.email, phone: '(555) 010-0000', city: 'London' });
    await h.system.waitForLead(leadId, (v) => v.status === 'delivered');
    const attempts = await h.attemptsOf(leadId, 2);
    assert.deepEqual(summary(attempts), [[1, 'unknown', 'connection_reset'], [2, 'success', 'ok']]);
    const contact = hubspot.contacts.get(emailOf(first))!;
    const readBack = attempts[1]!.readBack as ReadBack;
    assert.deepEqual([readBack.found, readBack.messageId], [false, contact.id]);
    assert.match(readBack.detail, /firstname, lastname differ/);
    assert.equal(contact.properties.firstname, 'Augusta');
    assert.equal(contact.writes, 2);
  });

  it('When the private app cannot read contacts (no crm.objects.contacts.read), then the read-back records why and the retry upserts anyway (it cannot duplicate)', async () => {
    const { hubspot } = h.fixtures;
    hubspot.script([{ type: 'slow', delayMs: 2_500 }]);
    const run = await h.send({ token: WRITE_ONLY_TOKEN });
    await h.system.waitForLead(run.leadId, (v) => v.status === 'delivered');
    const attempts = await h.attemptsOf(run.leadId, 2);
    assert.deepEqual(summary(attempts), [[1, 'unknown', 'timeout'], [2, 'success', 'ok']]);
    const readBack = attempts[1]!.readBack as ReadBack;
    assert.equal(readBack.found, false);
    assert.match(readBack.detail, /hubspot_missing_scopes.*crm\.objects\.contacts\.read/);
    assert.match(attempts[1]!.reason, /updated \(matched by email\)/);
    assert.equal([...hubspot.contacts.values()].filter((c) => c.properties.email === emailOf(run)).length, 1, 'one contact');
    assert.equal(hubspot.upserts, 2);
  });

  it('When the read-back itself is answered 503, then nothing is sent by that attempt (transient read_back_…) and a later attempt delivers: one contact', async () => {
    const { hubspot } = h.fixtures;
    hubspot.script([{ type: 'hangUp' }]);
    hubspot.scriptReads([hubspotErrors.serverError(503)]);
    const run = await h.send({ backoff: ['1s', '1s'] });
    await h.system.waitForLead(run.leadId, (v) => v.status === 'delivered');
    const attempts = await h.attemptsOf(run.leadId, 3);
    assert.deepEqual(summary(attempts).slice(0, 2), [[1, 'unknown', 'connection_reset'], [2, 'transient', 'read_back_http_503']]);
    assert.match(String(attempts[1]!.error), /HubSpot could not be read back: http_503/);
    assert.equal(attempts[1]!.request, undefined, 'the attempt that could not read back sent nothing');
    assert.deepEqual([attempts[2]!.outcome, attempts[2]!.code], ['success', 'ok']);
    assert.equal(hubspot.upserts, 1, 'one upsert applied (the first was cut off before HubSpot applied it)');
    assert.equal(hubspot.contacts.get(emailOf(run))!.writes, 1);
  });

  it('When a lead has no email, then it fails permanently before anything is sent, naming the field', async () => {
    const { apiKey } = await h.route();
    const res = await h.system.postLead(apiKey, { first_name: 'Ada', phone: '+15550100000' });
    const leadId = String(res.body.leadId);
    await h.system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
    const [attempt] = await h.attemptsOf(leadId, 1);
    assert.deepEqual([attempt!.outcome, attempt!.code], ['permanent', 'mapping_error']);
    assert.match(attempt!.reason, /"email"/);
    assert.equal(h.fixtures.hubspot.requests.length, 0);
  });

  it('When the settings are wrong, then the endpoint is refused when saved, field by field', async () => {
    const { system } = h;
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
  });
});
