/**
 * The dynamics kind end to end: intake → workflow → activity → io.outbound → a local Dynamics 365
 * environment (Entra ID token endpoint + Dataverse Web API) that keeps lead rows by id and by
 * alternate key. Backoffs are second-long, the attempt timeout 1.5 s.
 */
import assert from 'node:assert/strict';
import { leadGuid } from '../../../activities/dynamics';
import type { ReadBack } from '../../../shared/delivery';
import { dynamicsErrors, startDynamicsFake, type DynamicsFake } from '../../fakes/dynamics';
import { capturedLogLines, startSystem, type TestSystem } from '../../support/system';
import { waitForAttempts, summary } from '../../support/attempts';


const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const CLIENT = { clientId: '535fb089-9ff3-47b6-9bfb-4f1264799865', clientSecret: 'qWgdYAmab0YSkuL1qKv5bPX~secret-value' };
const MAPPING = {
  subject: { template: 'Web lead: {first_name} {last_name}' },
  firstname: 'first_name',
  lastname: 'last_name',
  emailaddress1: 'email',
  telephone1: { field: 'phone', transform: 'e164' },
  companyname: 'custom.company',
};

describe('dynamics kind through the whole system', function () {
  let system: TestSystem;
  let dynamics: DynamicsFake;
  let counter = 0;

  before(async function () {
    this.timeout(180_000);
    dynamics = await startDynamicsFake({ tenantId: TENANT, clients: [CLIENT], alternateKeys: ['new_leadref'] });
    system = await startSystem({ providers: { dynamicsAuthorityUrl: dynamics.authorityUrl } });
  });
  after(async () => {
    await system?.stop();
    await dynamics?.close();
  });
  beforeEach(() => dynamics.reset());
  afterEach(function () {
    if (this.currentTest?.state === 'passed') assert.deepEqual(dynamics.violations, [], 'every request matched the documented shapes');
  });

  async function route(settings: Record<string, unknown> = {}) {
    const { source, endpoints } = await system.route([
      { kind: 'dynamics', ...CLIENT, tenantId: TENANT, orgUrl: dynamics.baseUrl, alternateKey: 'new_leadref', mapping: MAPPING, backoff: ['1s'], timeoutMs: 1500, ...settings },
    ]);
    return { apiKey: source.apiKey, endpoint: endpoints[0]! };
  }

  async function post(apiKey: string, lead: Record<string, unknown> = {}): Promise<string> {
    const res = await system.postLead(apiKey, { first_name: 'Ada', last_name: 'Lovelace', email: `ada.${++counter}@example.com`, phone: '(555) 010-0000', custom: { company: 'Analytical Engines Ltd' }, ...lead });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return String(res.body.leadId);
  }

  const attemptsOf = (leadId: string, count: number) => waitForAttempts(system, leadId, count);
  const apiCalls = () => dynamics.requests.filter((r) => r.path.startsWith('/api/data/'));
  const tokenCalls = () => dynamics.requests.filter((r) => r.path.endsWith('/oauth2/v2.0/token'));
  const rowsOf = (leadId: string) => [...dynamics.leads.values()].filter((l) => l.columns.new_leadref === leadId || l.leadid === leadGuid(leadId));

  it('When Dataverse creates the row by alternate key, then the lead is written once with the mapped columns and its leadid is the message id; no credential is recorded', async () => {
    const { apiKey } = await route();
    const leadId = await post(apiKey);
    const view = await system.waitForLead(leadId, (v) => v.status === 'delivered');
    assert.equal(view.endpoints[0]!.attempts, 1);

    const [tokenCall] = tokenCalls();
    assert.equal(tokenCall!.path, `/${TENANT}/oauth2/v2.0/token`);
    assert.deepEqual(Object.fromEntries(new URLSearchParams(tokenCall!.body)), { client_id: CLIENT.clientId, scope: `${dynamics.baseUrl}/.default`, client_secret: CLIENT.clientSecret, grant_type: 'client_credentials' });
    const [call] = apiCalls();
    assert.equal(call!.method, 'PATCH');
    assert.equal(call!.path, `/api/data/v9.2/leads(new_leadref='${leadId}')?$select=leadid`);
    assert.deepEqual([call!.headers['if-none-match'], call!.headers.prefer, call!.headers['odata-version']], ['*', 'return=representation', '4.0']);
    assert.equal(call!.headers['mscrm.suppressduplicatedetection'], undefined);

    const [row] = rowsOf(leadId);
    assert.ok(row, 'the row exists');
    assert.deepEqual(row.columns, {
      subject: 'Web lead: Ada Lovelace', firstname: 'Ada', lastname: 'Lovelace', emailaddress1: `ada.${counter}@example.com`, telephone1: '+15550100000', companyname: 'Analytical Engines Ltd', new_leadref: leadId,
    });
    const [attempt] = await attemptsOf(leadId, 1);
    assert.deepEqual([attempt!.outcome, attempt!.code, attempt!.response?.status, attempt!.response?.messageId], ['success', 'ok', 200, row.leadid]);
    assert.equal(attempt!.request.url, `${dynamics.baseUrl}/api/data/v9.2/leads(new_leadref='${leadId}')?$select=leadid`);
    assert.equal(attempt!.request.body, call!.body);
    const recorded = JSON.stringify(await system.attempts(leadId));
    for (const secret of [CLIENT.clientSecret, dynamics.tokensIssued[0]!]) {
      assert.ok(!recorded.includes(secret), 'no credential in the attempt record');
      assert.ok(!capturedLogLines.some((line) => line.includes(secret)), 'no credential in any log line');
    }
  });

  it('When no alternate key is configured, then the row id is derived from the lead id, and the default mapping fills the standard columns', async () => {
    const { apiKey } = await route({ alternateKey: undefined, mapping: undefined });
    const leadId = await post(apiKey, { city: 'London' });
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    const guid = leadGuid(leadId);
    assert.equal(apiCalls()[0]!.path, `/api/data/v9.2/leads(${guid})?$select=leadid`);
    const row = dynamics.leads.get(guid)!;
    assert.deepEqual(row.columns, { subject: `Lead ${leadId}`, firstname: 'Ada', lastname: 'Lovelace', emailaddress1: `ada.${counter}@example.com`, telephone1: '(555) 010-0000', address1_city: 'London' });
    const [attempt] = await attemptsOf(leadId, 1);
    assert.equal(attempt!.response?.messageId, guid);
  });

  it('When Dataverse answers 429 with Retry-After (service protection), then the attempt waits that long and the next one succeeds', async () => {
    const { apiKey } = await route();
    dynamics.script([dynamicsErrors.tooManyRequests(1)]);
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    const attempts = await attemptsOf(leadId, 2);
    assert.deepEqual(summary(attempts), [[1, 'transient', 'dynamics_rate_limited'], [2, 'success', 'ok']]);
    assert.equal(attempts[0]!.retryAfterMs, 1_000);
    assert.match(attempts[0]!.reason, /0x80072322/);
  });

  it('When Dataverse answers 503, then the attempt is transient and the next one succeeds', async () => {
    const { apiKey } = await route();
    dynamics.script([dynamicsErrors.serviceUnavailable()]);
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    assert.deepEqual(summary(await attemptsOf(leadId, 2)), [[1, 'transient', 'http_503'], [2, 'success', 'ok']]);
    assert.equal(rowsOf(leadId).length, 1);
  });

  it("When the mapping writes a column the table does not have (400), then the failure is permanent with Dataverse's message", async () => {
    const { apiKey } = await route({ mapping: { ...MAPPING, new_colour: { const: 'teal' } } });
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
    const [attempt] = await attemptsOf(leadId, 1);
    assert.deepEqual([attempt!.outcome, attempt!.code, attempt!.response?.status], ['permanent', 'dynamics_bad_request', 400]);
    assert.match(attempt!.reason, /Invalid property 'new_colour'/);
    assert.equal(rowsOf(leadId).length, 0);
  });

  it('When the application user lacks a privilege (403), then the failure is permanent', async () => {
    const { apiKey } = await route();
    dynamics.script([dynamicsErrors.privilegeDenied()]);
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
    const [attempt] = await attemptsOf(leadId, 1);
    assert.deepEqual([attempt!.outcome, attempt!.code], ['permanent', 'dynamics_forbidden']);
    assert.match(attempt!.reason, /prvCreateLead/);
  });

  it('When the cached token is refused (401), then it is refreshed once and the write retried within the same attempt', async () => {
    const { apiKey } = await route();
    await system.waitForLead(await post(apiKey), (v) => v.status === 'delivered');
    dynamics.expireTokens();
    const leadId = await post(apiKey);
    const view = await system.waitForLead(leadId, (v) => v.status === 'delivered');
    assert.equal(view.endpoints[0]!.attempts, 1);
    assert.equal(dynamics.tokensIssued.length, 2);
    assert.deepEqual(apiCalls().map((c) => c.status), [200, 401, 200]);
    const [attempt] = await attemptsOf(leadId, 1);
    assert.match(attempt!.reason, /after one token refresh/);
  });

  it('When Entra ID refuses the client secret (invalid_client), then the failure is permanent and nothing reaches Dataverse', async () => {
    const { apiKey } = await route({ clientSecret: 'wrong-secret' });
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
    const [attempt] = await attemptsOf(leadId, 1);
    assert.deepEqual([attempt!.outcome, attempt!.code, attempt!.response?.status], ['permanent', 'dynamics_invalid_client', 401]);
    assert.match(attempt!.reason, /AADSTS7000215/);
    assert.equal(apiCalls().length, 0);
  });

  for (const keyed of ['alternate key', 'derived row id'] as const) {
    it(`When Dataverse writes the row but answers after our timeout (${keyed}), then the attempt is unknown and the retry reads the row back: success found_on_read_back, nothing written again`, async () => {
      const { apiKey } = await route(keyed === 'alternate key' ? {} : { alternateKey: undefined });
      dynamics.script([{ type: 'slow', delayMs: 2_500 }]);
      const leadId = await post(apiKey);
      await system.waitForLead(leadId, (v) => v.status === 'delivered');
      const attempts = await attemptsOf(leadId, 2);
      assert.deepEqual(summary(attempts), [[1, 'unknown', 'timeout'], [2, 'success', 'found_on_read_back']]);
      const rows = rowsOf(leadId);
      assert.equal(rows.length, 1, 'one row');
      assert.equal(rows[0]!.writes, 1, 'not rewritten');
      assert.equal(dynamics.writes, 1);
      const key = keyed === 'alternate key' ? `new_leadref='${leadId}'` : leadGuid(leadId);
      assert.deepEqual(apiCalls().map((c) => [c.method, decodeURIComponent(c.path)]), [
        ['PATCH', `/api/data/v9.2/leads(${key})?$select=leadid`],
        ['GET', `/api/data/v9.2/leads(${key})?$select=leadid`],
      ]);
      const readBack = attempts[1]!.readBack as ReadBack;
      assert.deepEqual([readBack.found, readBack.messageId], [true, rows[0]!.leadid]);
      assert.match(readBack.detail, keyed === 'alternate key' ? /exists under alternate key new_leadref/ : /exists under the row id derived from the lead id/);
      assert.equal(attempts[1]!.response?.messageId, rows[0]!.leadid);
    });
  }

  it('When the connection drops after the write was sent and Dataverse applied nothing, then the attempt is unknown, the read-back finds no row (404), and the retry creates it once', async () => {
    const { apiKey } = await route();
    dynamics.script([{ type: 'hangUp' }]);
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    const attempts = await attemptsOf(leadId, 2);
    assert.deepEqual(summary(attempts), [[1, 'unknown', 'connection_reset'], [2, 'success', 'ok']]);
    const readBack = attempts[1]!.readBack as ReadBack;
    assert.equal(readBack.found, false);
    assert.match(readBack.detail, /no lead row under alternate key new_leadref \(GET leads\(<key>\): 404 0x80040217\)/);
    assert.equal(rowsOf(leadId).length, 1);
    assert.equal(dynamics.writes, 1);
  });

  it('When the read-back is answered 429 (service protection), then nothing is sent by that attempt and a later one finishes the lead: one row', async () => {
    const { apiKey } = await route({ backoff: ['1s', '1s'] });
    dynamics.script([{ type: 'slow', delayMs: 2_500 }]);
    dynamics.scriptReads([dynamicsErrors.tooManyRequests(1)]);
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    const attempts = await attemptsOf(leadId, 3);
    assert.deepEqual(summary(attempts).slice(0, 2), [[1, 'unknown', 'timeout'], [2, 'transient', 'read_back_dynamics_rate_limited']]);
    assert.match(String(attempts[1]!.error), /Dataverse could not be read back: dynamics_rate_limited/);
    assert.equal(attempts[2]!.outcome, 'success');
    assert.equal(rowsOf(leadId).length, 1);
    assert.equal(rowsOf(leadId)[0]!.writes, 1);
  });

  it("When duplicate detection is on and the lead duplicates another (500 0x80040333), then the failure is permanent", async () => {
    const { apiKey } = await route({ duplicateDetection: true });
    const first = await post(apiKey, { email: 'same@example.com' });
    await system.waitForLead(first, (v) => v.status === 'delivered');
    assert.equal(apiCalls()[0]!.headers['mscrm.suppressduplicatedetection'], 'false');
    const second = await post(apiKey, { email: 'same@example.com', first_name: 'Augusta' });
    await system.waitForLead(second, (v) => v.status === 'dead_lettered');
    const [attempt] = await attemptsOf(second, 1);
    assert.deepEqual([attempt!.outcome, attempt!.code, attempt!.response?.status], ['permanent', 'dynamics_duplicate_detected', 500]);
  });

  it('When the settings are wrong, then the endpoint is refused when saved; the preview shows the exact request with the token masked', async () => {
    const buyerId = await system.createBuyer();
    const save = (body: Record<string, unknown>) => system.admin<{ fields: Array<{ path: string; message: string }> }>('POST', `/buyers/${buyerId}/endpoints`, { kind: 'dynamics', ...CLIENT, tenantId: TENANT, orgUrl: dynamics.baseUrl, ...body });
    assert.deepEqual((await save({ orgUrl: `${dynamics.baseUrl}/api/data` })).body.fields.map((f) => f.path), ['orgUrl']);
    assert.deepEqual((await save({ tenantId: 'not a tenant' })).body.fields.map((f) => f.path), ['tenantId']);
    assert.deepEqual((await save({ clientId: 'app' })).body.fields.map((f) => f.path), ['clientId']);
    assert.deepEqual((await save({ alternateKey: 'new_leadref', mapping: { EmailAddress1: 'email', new_leadref: 'lead_id' } })).body.fields.map((f) => f.path), ['mapping.EmailAddress1', 'mapping.new_leadref']);

    const created = await system.addEndpoint(buyerId, { kind: 'dynamics', ...CLIENT, tenantId: TENANT, orgUrl: dynamics.baseUrl, alternateKey: 'new_leadref', mapping: MAPPING });
    assert.ok(!JSON.stringify(created).includes(CLIENT.clientSecret), 'the secret is shown masked');
    const preview = await system.admin<{ request: { method: string; url: string; headers: Record<string, string>; body: string } }>('POST', `/buyers/${buyerId}/endpoints/${created.id}/preview`, {});
    assert.equal(preview.status, 200, JSON.stringify(preview.body));
    assert.equal(preview.body.request.method, 'PATCH');
    assert.equal(preview.body.request.url, `${dynamics.baseUrl}/api/data/v9.2/leads(new_leadref='ld_preview')?$select=leadid`);
    assert.equal(preview.body.request.headers['If-None-Match'], '*');
    assert.ok(!JSON.stringify(preview.body).includes(CLIENT.clientSecret));
    assert.equal(dynamics.requests.length, 0, 'a preview sends nothing');
  });
});
