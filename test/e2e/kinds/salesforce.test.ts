/**
 * The salesforce kind end to end: intake → workflow → activity → io.outbound → a local Salesforce
 * org (a login server for the client-credentials token, an instance server for the REST API at the
 * token's instance_url) that keeps Leads by external id. Backoffs are second-long, the attempt
 * timeout 1.5 s. The kind contract (./contract.ts) runs from the table below; the cases after it
 * are Salesforce's own.
 */
import assert from 'node:assert/strict';
import type { ReadBack } from '../../../shared/delivery';
import { salesforceErrors, startSalesforceFake, type SalesforceFake } from '../../fakes/salesforce';
import { summary } from '../../support/attempts';
import { describeKind, type KindTable } from './contract';

const CLIENT = { clientId: '3MVG9VwZxxW3bBQjhE6m21CG2nSS4WC.GNbZCtKeQxFH7218ns6xOLCNnJVKnZFTZWKzt2qwSFqt2taMt5mcr', clientSecret: '8A4BE698BCA216718ECB0B1DCA294C69732EAD9472A1790F8FED38DD2E02B5FA' };
const MAPPING = {
  FirstName: 'first_name',
  LastName: { field: 'last_name', required: true },
  Company: { field: 'custom.company', default: '[not provided]' },
  Email: 'email',
  Phone: { field: 'phone', transform: 'e164' },
  LeadSource: { const: 'Web' },
};

interface Fixtures {
  salesforce: SalesforceFake;
}

const apiCalls = (f: Fixtures) => f.salesforce.requests.filter((r) => r.server === 'instance');
const tokenCalls = (f: Fixtures) => f.salesforce.requests.filter((r) => r.server === 'login');
const leadOf = (f: Fixtures, leadId: string) => f.salesforce.leads.get(`Lead_Id__c:${leadId}`);

const table: KindTable<Fixtures> = {
  kind: 'salesforce',
  title: 'salesforce kind through the whole system',
  start: async () => ({ salesforce: await startSalesforceFake({ clients: [CLIENT], externalIdFields: ['Lead_Id__c'] }) }),
  providers: (f) => ({ salesforceLoginUrl: f.salesforce.loginUrl }),
  stop: (f) => f.salesforce.close(),
  fake: (f) => ({
    sends: () => apiCalls(f).filter((r) => r.method === 'PATCH').map((r) => ({ body: JSON.parse(r.body) as unknown, raw: r.body, receivedAt: r.receivedAt })),
    requestCount: () => f.salesforce.requests.length,
    held: (run) => [...f.salesforce.leads.values()].filter((l) => l.externalId === run.leadId).length,
    violations: () => f.salesforce.violations,
    reset: () => f.salesforce.reset(),
  }),
  endpoint: () => ({ kind: 'salesforce', ...CLIENT, externalIdField: 'Lead_Id__c', mapping: MAPPING, backoff: ['1s'], timeoutMs: 1500 }),
  lead: () => ({ first_name: 'Ada', last_name: 'Lovelace', email: 'ada@example.com', phone: '(555) 010-0000', custom: { company: 'Analytical Engines Ltd' } }),
  secretFields: ['clientSecret'],
  secrets: (f, settings) => [String(settings.clientSecret), ...f.salesforce.tokensIssued],
  maskedHeaders: ['authorization'],
  parse: (body) => JSON.parse(body) as unknown,
  request: (f, run) => ({
    method: 'PATCH',
    url: `{instance_url from ${f.salesforce.loginUrl}/services/oauth2/token}/services/data/v62.0/sobjects/Lead/Lead_Id__c/${run.leadId}`,
    body: { FirstName: 'Ada', LastName: 'Lovelace', Company: 'Analytical Engines Ltd', Email: 'ada@example.com', Phone: '+15550100000', LeadSource: 'Web' },
  }),
  readsBack: true,
  firstSend: {
    when: "the org accepts the upsert (a token obtained, the Lead created by its external id at the token's instance_url)",
    status: 201,
    messageId: (f, run) => leadOf(f, run.leadId)?.Id,
    check(h, run, [attempt]) {
      const f = h.fixtures;
      const [tokenCall] = tokenCalls(f);
      assert.deepEqual(Object.fromEntries(new URLSearchParams(tokenCall!.body)), { grant_type: 'client_credentials', client_id: CLIENT.clientId, client_secret: CLIENT.clientSecret });
      const [call] = apiCalls(f);
      assert.equal(call!.path, `/services/data/v62.0/sobjects/Lead/Lead_Id__c/${run.leadId}`);
      assert.equal(call!.headers.authorization, `Bearer ${f.salesforce.tokensIssued[0]}`);
      assert.equal(leadOf(f, run.leadId)!.fields.Lead_Id__c, run.leadId, 'the Lead exists under its external id');
      assert.match(attempt!.reason, /created/);
      assert.match(String(attempt!.response?.headers?.['sforce-limit-info']), /^api-usage=/);
    },
  },
  transient: {
    when: 'the org answers UNABLE_TO_LOCK_ROW and then 503 SERVER_UNAVAILABLE',
    settings: () => ({ backoff: ['1s', '1s'] }),
    script: (f) => f.salesforce.script([salesforceErrors.unableToLockRow(), salesforceErrors.serverUnavailable()]),
    codes: ['salesforce_unable_to_lock_row', 'salesforce_server_unavailable'],
    check: (h, run) => assert.equal(leadOf(h.fixtures, run.leadId)!.writes, 1),
  },
  refusal: {
    when: 'a validation rule refuses it (FIELD_CUSTOM_VALIDATION_EXCEPTION)',
    script: (f) => f.salesforce.script([salesforceErrors.customValidation()]),
    attempts: [['permanent', 'salesforce_field_custom_validation_exception']],
    status: 400,
  },
  timeout: {
    when: 'the org applies the upsert but answers after our timeout',
    script: (f) => f.salesforce.script([{ type: 'slow', delayMs: 2_500 }]),
    check(h, run, attempts) {
      const f = h.fixtures;
      assert.equal(f.salesforce.upserts, 1, 'only the first attempt upserted');
      assert.equal(leadOf(f, run.leadId)!.writes, 1);
      const reads = apiCalls(f).filter((c) => c.method === 'GET');
      assert.deepEqual(reads.map((c) => c.path), [`/services/data/v62.0/sobjects/Lead/Lead_Id__c/${run.leadId}?fields=Id`], 'read back by its external id');
      assert.equal(reads[0]!.headers.authorization, `Bearer ${f.salesforce.tokensIssued[0]}`, 'the cached token, no second token request');
      assert.equal(tokenCalls(f).length, 1);
      assert.match((attempts[1]!.readBack as ReadBack).detail, /holds this lead id in Lead_Id__c/);
    },
  },
  hangUp: {
    when: 'the connection drops after the upsert was sent and the org applied nothing',
    script: (f) => f.salesforce.script([{ type: 'hangUp' }]),
    code: 'connection_reset',
    check(h, run, attempts) {
      assert.match((attempts[1]!.readBack as ReadBack).detail, /no Lead holds this lead id in Lead_Id__c \(GET Lead\/Lead_Id__c\/<lead id>: 404 NOT_FOUND\)/);
      assert.deepEqual([attempts[1]!.response?.status, leadOf(h.fixtures, run.leadId)!.writes], [201, 1]);
    },
  },
};

describeKind(table, (h) => {
  it('When an endpoint delivers a second lead, then the cached token is used: no second token request', async () => {
    const { apiKey } = await h.route();
    for (const email of ['one@example.com', 'two@example.com']) {
      const { leadId } = await h.post(apiKey, { email });
      await h.system.waitForLead(leadId, (v) => v.status === 'delivered');
    }
    assert.equal(tokenCalls(h.fixtures).length, 1);
    assert.equal(apiCalls(h.fixtures).length, 2);
  });

  it('When the session expired (401 INVALID_SESSION_ID), then the token is refreshed once and the upsert retried within the same attempt', async () => {
    const { salesforce } = h.fixtures;
    const { apiKey } = await h.route();
    await h.system.waitForLead((await h.post(apiKey)).leadId, (v) => v.status === 'delivered');
    salesforce.expireSessions();
    const { leadId } = await h.post(apiKey, { email: 'second@example.com' });
    const view = await h.system.waitForLead(leadId, (v) => v.status === 'delivered');
    assert.equal(view.endpoints[0]!.attempts, 1, 'one attempt');
    assert.equal(salesforce.tokensIssued.length, 2, 'one new token');
    assert.deepEqual(apiCalls(h.fixtures).map((c) => c.status), [201, 401, 201]);
    const [attempt] = await h.attemptsOf(leadId, 1);
    assert.deepEqual([attempt!.outcome, attempt!.code], ['success', 'ok']);
    assert.match(attempt!.reason, /after one token refresh/);
  });

  it('When the org still refuses the new token, then the attempt fails permanently after that one refresh', async () => {
    const { salesforce } = h.fixtures;
    const invalid = { type: 'error' as const, status: 401, errors: [{ message: 'Session expired or invalid', errorCode: 'INVALID_SESSION_ID' }] };
    salesforce.script([invalid, invalid]);
    const { leadId } = await h.send();
    await h.system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
    const [attempt] = await h.attemptsOf(leadId, 1);
    assert.deepEqual([attempt!.outcome, attempt!.code], ['permanent', 'salesforce_invalid_session']);
    assert.equal(salesforce.tokensIssued.length, 2);
    assert.equal(apiCalls(h.fixtures).length, 2);
  });

  it('When the org answers REQUEST_LIMIT_EXCEEDED, then the lead is paused (transient, back in an hour), not failed', async () => {
    h.fixtures.salesforce.script([salesforceErrors.requestLimitExceeded()]);
    const { leadId } = await h.send();
    const view = await h.system.waitForLead(leadId, (v) => v.endpoints[0]?.status === 'backoff');
    const [attempt] = await h.attemptsOf(leadId, 1);
    assert.deepEqual([attempt!.outcome, attempt!.code, attempt!.response?.status, attempt!.retryAfterMs], ['transient', 'salesforce_request_limit_exceeded', 403, 3_600_000]);
    assert.match(attempt!.reason, /paused, not failed/);
    assert.ok(view.endpoints[0]!.nextAttemptAt! - Date.now() > 3_500_000);
  });

  it('When a duplicate rule blocks it (DUPLICATES_DETECTED), then the failure is permanent: one attempt', async () => {
    h.fixtures.salesforce.script([salesforceErrors.duplicatesDetected()]);
    const { leadId } = await h.send();
    const view = await h.system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
    assert.equal(view.endpoints[0]!.attempts, 1);
    const [attempt] = await h.attemptsOf(leadId, 1);
    assert.deepEqual([attempt!.outcome, attempt!.code], ['permanent', 'salesforce_duplicates_detected']);
  });

  it("When the mapping writes a field the org does not have, then the failure is permanent (INVALID_FIELD) with Salesforce's message", async () => {
    const { leadId } = await h.send({ mapping: { ...MAPPING, Favourite_Colour__c: { const: 'teal' } } });
    await h.system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
    const [attempt] = await h.attemptsOf(leadId, 1);
    assert.deepEqual([attempt!.outcome, attempt!.code, attempt!.response?.status], ['permanent', 'salesforce_invalid_field', 400]);
    assert.match(attempt!.reason, /No such column 'Favourite_Colour__c' on sobject of type Lead/);
  });

  it('When the client credentials are refused (invalid_client), then the failure is permanent and nothing reaches the API', async () => {
    const { leadId } = await h.send({ clientSecret: 'not-the-secret' });
    await h.system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
    const [attempt] = await h.attemptsOf(leadId, 1);
    assert.deepEqual([attempt!.outcome, attempt!.code, attempt!.response?.status], ['permanent', 'salesforce_invalid_client', 400]);
    assert.match(attempt!.reason, /invalid client credentials/);
    assert.equal(apiCalls(h.fixtures).length, 0);
  });

  it('When the session expired before the read-back, then the token is refreshed once and the read retried within the same attempt', async () => {
    const { salesforce } = h.fixtures;
    salesforce.script([{ type: 'slow', delayMs: 2_500 }]);
    const { leadId } = await h.send();
    await h.system.waitForLead(leadId, (v) => (v.endpoints[0]?.attempts ?? 0) >= 1);
    salesforce.expireSessions();
    await h.system.waitForLead(leadId, (v) => v.status === 'delivered');
    const attempts = await h.attemptsOf(leadId, 2);
    assert.deepEqual(summary(attempts), [[1, 'unknown', 'timeout'], [2, 'success', 'found_on_read_back']]);
    assert.deepEqual(apiCalls(h.fixtures).map((c) => [c.method, c.status]), [['PATCH', 201], ['GET', 401], ['GET', 200]]);
    assert.equal(salesforce.tokensIssued.length, 2);
    assert.match((attempts[1]!.readBack as ReadBack).detail, /after one token refresh/);
  });

  it('When a lead has no last name, then it fails permanently before anything is sent, naming LastName', async () => {
    const { apiKey } = await h.route({ mapping: { ...MAPPING, LastName: 'last_name' } });
    const res = await h.system.postLead(apiKey, { first_name: 'Ada', email: 'ada@example.com' });
    const leadId = String(res.body.leadId);
    await h.system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
    const [attempt] = await h.attemptsOf(leadId, 1);
    assert.deepEqual([attempt!.outcome, attempt!.code], ['permanent', 'mapping_error']);
    assert.match(attempt!.reason, /"LastName"/);
    assert.equal(h.fixtures.salesforce.requests.length, 0, 'not even a token request');
  });

  it('When the mapping lacks LastName or Company, the login URL is a generic one, or the mapping sets the external id, then the endpoint is refused when saved', async () => {
    const buyerId = await h.system.createBuyer();
    const save = (body: Record<string, unknown>) => h.system.admin<{ fields: Array<{ path: string; message: string }> }>('POST', `/buyers/${buyerId}/endpoints`, { kind: 'salesforce', ...CLIENT, externalIdField: 'Lead_Id__c', ...body });

    const lacking = await save({ mapping: { FirstName: 'first_name', Email: 'email' } });
    assert.equal(lacking.status, 400);
    assert.deepEqual(lacking.body.fields.map((f) => f.path), ['mapping.LastName', 'mapping.Company']);
    assert.match(lacking.body.fields[0]!.message, /Salesforce refuses a Lead without LastName/);
    assert.deepEqual((await save({})).body.fields.map((f) => f.path), ['mapping']);
    assert.deepEqual((await save({ mapping: MAPPING, loginUrl: 'https://login.salesforce.com' })).body.fields.map((f) => f.path), ['loginUrl']);
    assert.deepEqual((await save({ mapping: { ...MAPPING, Lead_Id__c: 'lead_id' } })).body.fields.map((f) => f.path), ['mapping.Lead_Id__c']);
    assert.deepEqual((await save({ mapping: MAPPING, externalIdField: 'Lead Id' })).body.fields.map((f) => f.path), ['externalIdField']);
    assert.deepEqual((await save({ mapping: MAPPING, clientSecret: undefined })).body.fields.map((f) => f.path), ['clientSecret']);

    const { salesforce } = h.fixtures;
    const created = await h.system.addEndpoint(buyerId, { kind: 'salesforce', ...CLIENT, externalIdField: 'Lead_Id__c', mapping: MAPPING, loginUrl: salesforce.loginUrl });
    assert.equal(created.loginUrl, salesforce.loginUrl, "a login URL of the org's own is accepted");
    assert.ok(!JSON.stringify(created).includes(CLIENT.clientSecret), 'the secret is shown masked');
    assert.equal(salesforce.requests.length, 0, 'saving sends nothing');
  });
});
