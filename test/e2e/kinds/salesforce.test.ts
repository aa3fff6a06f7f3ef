/**
 * The salesforce kind end to end: intake → workflow → activity → io.outbound → a local Salesforce
 * org (a login server for the client-credentials token, an instance server for the REST API at the
 * token's instance_url) that keeps Leads by external id. Backoffs are second-long, the attempt
 * timeout 1.5 s.
 */
import assert from 'node:assert/strict';
import type { ReadBack } from '../../../shared/delivery';
import { salesforceErrors, startSalesforceFake, type SalesforceFake } from '../../fakes/salesforce';
import { capturedLogLines, startSystem, type TestSystem } from '../../support/system';
import { waitForAttempts, summary } from '../../support/attempts';


const CLIENT = { clientId: '3MVG9VwZxxW3bBQjhE6m21CG2nSS4WC.GNbZCtKeQxFH7218ns6xOLCNnJVKnZFTZWKzt2qwSFqt2taMt5mcr', clientSecret: '8A4BE698BCA216718ECB0B1DCA294C69732EAD9472A1790F8FED38DD2E02B5FA' };
const MAPPING = {
  FirstName: 'first_name',
  LastName: { field: 'last_name', required: true },
  Company: { field: 'custom.company', default: '[not provided]' },
  Email: 'email',
  Phone: { field: 'phone', transform: 'e164' },
  LeadSource: { const: 'Web' },
};

describe('salesforce kind through the whole system', function () {
  let system: TestSystem;
  let salesforce: SalesforceFake;

  before(async function () {
    this.timeout(180_000);
    salesforce = await startSalesforceFake({ clients: [CLIENT], externalIdFields: ['Lead_Id__c'] });
    system = await startSystem({ providers: { salesforceLoginUrl: salesforce.loginUrl } });
  });
  after(async () => {
    await system?.stop();
    await salesforce?.close();
  });
  beforeEach(() => salesforce.reset());
  afterEach(function () {
    if (this.currentTest?.state === 'passed') assert.deepEqual(salesforce.violations, [], 'every request matched the documented shapes');
  });

  async function route(settings: Record<string, unknown> = {}) {
    const { source, endpoints } = await system.route([{ kind: 'salesforce', ...CLIENT, externalIdField: 'Lead_Id__c', mapping: MAPPING, backoff: ['1s'], timeoutMs: 1500, ...settings }]);
    return { apiKey: source.apiKey, endpoint: endpoints[0]! };
  }

  async function post(apiKey: string, lead: Record<string, unknown> = {}): Promise<string> {
    const res = await system.postLead(apiKey, { first_name: 'Ada', last_name: 'Lovelace', email: 'ada@example.com', phone: '(555) 010-0000', custom: { company: 'Analytical Engines Ltd' }, ...lead });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return String(res.body.leadId);
  }

  const attemptsOf = (leadId: string, count: number) => waitForAttempts(system, leadId, count);
  const apiCalls = () => salesforce.requests.filter((r) => r.server === 'instance');
  const tokenCalls = () => salesforce.requests.filter((r) => r.server === 'login');

  it("When the org accepts the upsert, then a token is obtained, the Lead is created by its external id at the token's instance_url, and the Lead id is the message id; no credential is recorded", async () => {
    const { apiKey } = await route();
    const leadId = await post(apiKey);
    const view = await system.waitForLead(leadId, (v) => v.status === 'delivered');
    assert.equal(view.endpoints[0]!.attempts, 1);

    const [tokenCall] = tokenCalls();
    assert.deepEqual(Object.fromEntries(new URLSearchParams(tokenCall!.body)), { grant_type: 'client_credentials', client_id: CLIENT.clientId, client_secret: CLIENT.clientSecret });
    const [call] = apiCalls();
    assert.equal(call!.method, 'PATCH');
    assert.equal(call!.path, `/services/data/v62.0/sobjects/Lead/Lead_Id__c/${leadId}`);
    assert.equal(call!.headers.authorization, `Bearer ${salesforce.tokensIssued[0]}`);
    assert.deepEqual(JSON.parse(call!.body), { FirstName: 'Ada', LastName: 'Lovelace', Company: 'Analytical Engines Ltd', Email: 'ada@example.com', Phone: '+15550100000', LeadSource: 'Web' });

    const lead = salesforce.leads.get(`Lead_Id__c:${leadId}`)!;
    assert.ok(lead, 'the Lead exists under its external id');
    assert.equal(lead.fields.Lead_Id__c, leadId);
    const [attempt] = await attemptsOf(leadId, 1);
    assert.deepEqual([attempt!.outcome, attempt!.code, attempt!.response?.status, attempt!.response?.messageId], ['success', 'ok', 201, lead.Id]);
    assert.match(attempt!.reason, /created/);
    assert.equal(attempt!.request.method, 'PATCH');
    assert.equal(attempt!.request.url, `{instance_url from ${salesforce.loginUrl}/services/oauth2/token}/services/data/v62.0/sobjects/Lead/Lead_Id__c/${leadId}`);
    assert.equal(attempt!.request.body, call!.body);
    assert.match(String(attempt!.response?.headers?.['sforce-limit-info']), /^api-usage=/);
    const recorded = JSON.stringify(await system.attempts(leadId));
    for (const secret of [CLIENT.clientSecret, salesforce.tokensIssued[0]!]) {
      assert.ok(!recorded.includes(secret), 'no credential in the attempt record');
      assert.ok(!capturedLogLines.some((line) => line.includes(secret)), 'no credential in any log line');
    }
  });

  it('When an endpoint delivers a second lead, then the cached token is used: no second token request', async () => {
    const { apiKey } = await route();
    for (const email of ['one@example.com', 'two@example.com']) {
      const leadId = await post(apiKey, { email });
      await system.waitForLead(leadId, (v) => v.status === 'delivered');
    }
    assert.equal(tokenCalls().length, 1);
    assert.equal(apiCalls().length, 2);
  });

  it('When the session expired (401 INVALID_SESSION_ID), then the token is refreshed once and the upsert retried within the same attempt', async () => {
    const { apiKey } = await route();
    await system.waitForLead(await post(apiKey), (v) => v.status === 'delivered');
    salesforce.expireSessions();
    const leadId = await post(apiKey, { email: 'second@example.com' });
    const view = await system.waitForLead(leadId, (v) => v.status === 'delivered');
    assert.equal(view.endpoints[0]!.attempts, 1, 'one attempt');
    assert.equal(salesforce.tokensIssued.length, 2, 'one new token');
    assert.deepEqual(apiCalls().map((c) => c.status), [201, 401, 201]);
    const [attempt] = await attemptsOf(leadId, 1);
    assert.deepEqual([attempt!.outcome, attempt!.code], ['success', 'ok']);
    assert.match(attempt!.reason, /after one token refresh/);
  });

  it('When the org still refuses the new token, then the attempt fails permanently after that one refresh', async () => {
    const { apiKey } = await route();
    const invalid = { type: 'error' as const, status: 401, errors: [{ message: 'Session expired or invalid', errorCode: 'INVALID_SESSION_ID' }] };
    salesforce.script([invalid, invalid]);
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
    const [attempt] = await attemptsOf(leadId, 1);
    assert.deepEqual([attempt!.outcome, attempt!.code], ['permanent', 'salesforce_invalid_session']);
    assert.equal(salesforce.tokensIssued.length, 2);
    assert.equal(apiCalls().length, 2);
  });

  it('When the org answers REQUEST_LIMIT_EXCEEDED, then the lead is paused (transient, back in an hour), not failed', async () => {
    const { apiKey } = await route();
    salesforce.script([salesforceErrors.requestLimitExceeded()]);
    const leadId = await post(apiKey);
    const view = await system.waitForLead(leadId, (v) => v.endpoints[0]?.status === 'backoff');
    const [attempt] = await attemptsOf(leadId, 1);
    assert.deepEqual([attempt!.outcome, attempt!.code, attempt!.response?.status, attempt!.retryAfterMs], ['transient', 'salesforce_request_limit_exceeded', 403, 3_600_000]);
    assert.match(attempt!.reason, /paused, not failed/);
    assert.ok(view.endpoints[0]!.nextAttemptAt! - Date.now() > 3_500_000);
  });

  it('When the org answers UNABLE_TO_LOCK_ROW and then 503 SERVER_UNAVAILABLE, then both are transient and the third attempt creates the Lead', async () => {
    const { apiKey } = await route({ backoff: ['1s', '1s'] });
    salesforce.script([salesforceErrors.unableToLockRow(), salesforceErrors.serverUnavailable()]);
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    assert.deepEqual(summary(await attemptsOf(leadId, 3)), [[1, 'transient', 'salesforce_unable_to_lock_row'], [2, 'transient', 'salesforce_server_unavailable'], [3, 'success', 'ok']]);
    assert.equal(salesforce.leads.get(`Lead_Id__c:${leadId}`)!.writes, 1);
  });

  for (const [name, step, code] of [
    ['a validation rule refuses it (FIELD_CUSTOM_VALIDATION_EXCEPTION)', salesforceErrors.customValidation(), 'salesforce_field_custom_validation_exception'],
    ['a duplicate rule blocks it (DUPLICATES_DETECTED)', salesforceErrors.duplicatesDetected(), 'salesforce_duplicates_detected'],
  ] as const) {
    it(`When ${name}, then the failure is permanent: one attempt`, async () => {
      const { apiKey } = await route();
      salesforce.script([step]);
      const leadId = await post(apiKey);
      const view = await system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
      assert.equal(view.endpoints[0]!.attempts, 1);
      const [attempt] = await attemptsOf(leadId, 1);
      assert.deepEqual([attempt!.outcome, attempt!.code], ['permanent', code]);
    });
  }

  it("When the mapping writes a field the org does not have, then the failure is permanent (INVALID_FIELD) with Salesforce's message", async () => {
    const { apiKey } = await route({ mapping: { ...MAPPING, Favourite_Colour__c: { const: 'teal' } } });
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
    const [attempt] = await attemptsOf(leadId, 1);
    assert.deepEqual([attempt!.outcome, attempt!.code, attempt!.response?.status], ['permanent', 'salesforce_invalid_field', 400]);
    assert.match(attempt!.reason, /No such column 'Favourite_Colour__c' on sobject of type Lead/);
  });

  it('When the client credentials are refused (invalid_client), then the failure is permanent and nothing reaches the API', async () => {
    const { apiKey } = await route({ clientSecret: 'not-the-secret' });
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
    const [attempt] = await attemptsOf(leadId, 1);
    assert.deepEqual([attempt!.outcome, attempt!.code, attempt!.response?.status], ['permanent', 'salesforce_invalid_client', 400]);
    assert.match(attempt!.reason, /invalid client credentials/);
    assert.equal(apiCalls().length, 0);
  });

  it('When the org applies the upsert but answers after our timeout, then the attempt is unknown and the retry reads the Lead back by its external id: success found_on_read_back, not upserted again', async () => {
    const { apiKey } = await route();
    salesforce.script([{ type: 'slow', delayMs: 2_500 }]);
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    const attempts = await attemptsOf(leadId, 2);
    assert.deepEqual(summary(attempts), [[1, 'unknown', 'timeout'], [2, 'success', 'found_on_read_back']]);
    assert.equal(salesforce.upserts, 1, 'only the first attempt upserted');
    const mine = [...salesforce.leads.values()].filter((l) => l.externalId === leadId);
    assert.equal(mine.length, 1, 'one Lead');
    assert.equal(mine[0]!.writes, 1);
    const reads = apiCalls().filter((c) => c.method === 'GET');
    assert.deepEqual(reads.map((c) => c.path), [`/services/data/v62.0/sobjects/Lead/Lead_Id__c/${leadId}?fields=Id`]);
    assert.equal(reads[0]!.headers.authorization, `Bearer ${salesforce.tokensIssued[0]}`, 'the cached token, no second token request');
    assert.equal(tokenCalls().length, 1);
    const readBack = attempts[1]!.readBack as ReadBack;
    assert.deepEqual([readBack.found, readBack.messageId], [true, mine[0]!.Id]);
    assert.match(readBack.detail, /holds this lead id in Lead_Id__c/);
    assert.equal(attempts[1]!.response?.messageId, mine[0]!.Id);
  });

  it('When the connection drops after the upsert was sent and the org applied nothing, then the attempt is unknown, the read-back finds no Lead (404), and the retry creates it once', async () => {
    const { apiKey } = await route();
    salesforce.script([{ type: 'hangUp' }]);
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    const attempts = await attemptsOf(leadId, 2);
    assert.deepEqual(summary(attempts), [[1, 'unknown', 'connection_reset'], [2, 'success', 'ok']]);
    const readBack = attempts[1]!.readBack as ReadBack;
    assert.equal(readBack.found, false);
    assert.match(readBack.detail, /no Lead holds this lead id in Lead_Id__c \(GET Lead\/Lead_Id__c\/<lead id>: 404 NOT_FOUND\)/);
    assert.deepEqual([attempts[1]!.response?.status, salesforce.leads.get(`Lead_Id__c:${leadId}`)!.writes], [201, 1]);
  });

  it('When the session expired before the read-back, then the token is refreshed once and the read retried within the same attempt', async () => {
    const { apiKey } = await route();
    salesforce.script([{ type: 'slow', delayMs: 2_500 }]);
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => (v.endpoints[0]?.attempts ?? 0) >= 1);
    salesforce.expireSessions();
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    const attempts = await attemptsOf(leadId, 2);
    assert.deepEqual(summary(attempts), [[1, 'unknown', 'timeout'], [2, 'success', 'found_on_read_back']]);
    assert.deepEqual(apiCalls().map((c) => [c.method, c.status]), [['PATCH', 201], ['GET', 401], ['GET', 200]]);
    assert.equal(salesforce.tokensIssued.length, 2);
    assert.match((attempts[1]!.readBack as ReadBack).detail, /after one token refresh/);
  });

  it('When a lead has no last name, then it fails permanently before anything is sent, naming LastName', async () => {
    const { apiKey } = await route({ mapping: { ...MAPPING, LastName: 'last_name' } });
    const res = await system.postLead(apiKey, { first_name: 'Ada', email: 'ada@example.com' });
    const leadId = String(res.body.leadId);
    await system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
    const [attempt] = await attemptsOf(leadId, 1);
    assert.deepEqual([attempt!.outcome, attempt!.code], ['permanent', 'mapping_error']);
    assert.match(attempt!.reason, /"LastName"/);
    assert.equal(salesforce.requests.length, 0, 'not even a token request');
  });

  it('When the mapping lacks LastName or Company, the login URL is a generic one, or the mapping sets the external id, then the endpoint is refused when saved', async () => {
    const buyerId = await system.createBuyer();
    const save = (body: Record<string, unknown>) => system.admin<{ fields: Array<{ path: string; message: string }> }>('POST', `/buyers/${buyerId}/endpoints`, { kind: 'salesforce', ...CLIENT, externalIdField: 'Lead_Id__c', ...body });

    const lacking = await save({ mapping: { FirstName: 'first_name', Email: 'email' } });
    assert.equal(lacking.status, 400);
    assert.deepEqual(lacking.body.fields.map((f) => f.path), ['mapping.LastName', 'mapping.Company']);
    assert.match(lacking.body.fields[0]!.message, /Salesforce refuses a Lead without LastName/);
    assert.deepEqual((await save({})).body.fields.map((f) => f.path), ['mapping']);
    assert.deepEqual((await save({ mapping: MAPPING, loginUrl: 'https://login.salesforce.com' })).body.fields.map((f) => f.path), ['loginUrl']);
    assert.deepEqual((await save({ mapping: { ...MAPPING, Lead_Id__c: 'lead_id' } })).body.fields.map((f) => f.path), ['mapping.Lead_Id__c']);
    assert.deepEqual((await save({ mapping: MAPPING, externalIdField: 'Lead Id' })).body.fields.map((f) => f.path), ['externalIdField']);
    assert.deepEqual((await save({ mapping: MAPPING, clientSecret: undefined })).body.fields.map((f) => f.path), ['clientSecret']);

    const created = await system.addEndpoint(buyerId, { kind: 'salesforce', ...CLIENT, externalIdField: 'Lead_Id__c', mapping: MAPPING, loginUrl: salesforce.loginUrl });
    assert.ok(!JSON.stringify(created).includes(CLIENT.clientSecret), 'the secret is shown masked');
    const preview = await system.admin<{ request: { method: string; url: string; body: string } }>('POST', `/buyers/${buyerId}/endpoints/${created.id}/preview`, {});
    assert.equal(preview.status, 200, JSON.stringify(preview.body));
    assert.equal(preview.body.request.method, 'PATCH');
    assert.match(preview.body.request.url, /\/services\/data\/v62\.0\/sobjects\/Lead\/Lead_Id__c\/ld_preview$/);
    assert.ok(!JSON.stringify(preview.body).includes(CLIENT.clientSecret));
    assert.equal(salesforce.requests.length, 0, 'a preview sends nothing');
  });
});
