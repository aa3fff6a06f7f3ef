/**
 * The dynamics kind end to end: intake → workflow → activity → io.outbound → a local Dynamics 365
 * environment (Entra ID token endpoint + Dataverse Web API) that keeps lead rows by id and by
 * alternate key. Backoffs are second-long, the attempt timeout 1.5 s. The kind contract
 * (./contract.ts) runs from the table below; the cases after it are Dynamics' own.
 */
import assert from 'node:assert/strict';
import { leadGuid } from '../../../activities/dynamics';
import type { ReadBack } from '../../../shared/delivery';
import { dynamicsErrors, startDynamicsFake, type DynamicsFake } from '../../fakes/dynamics';
import { summary } from '../../support/attempts';
import { describeKind, type KindTable, type Run } from './contract';

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

interface Fixtures {
  dynamics: DynamicsFake;
}

let counter = 0;
const apiCalls = (f: Fixtures) => f.dynamics.requests.filter((r) => r.path.startsWith('/api/data/'));
const tokenCalls = (f: Fixtures) => f.dynamics.requests.filter((r) => r.path.endsWith('/oauth2/v2.0/token'));
const rowsOf = (f: Fixtures, leadId: string) => [...f.dynamics.leads.values()].filter((l) => l.columns.new_leadref === leadId || l.leadid === leadGuid(leadId));
/** The columns MAPPING writes for the table's lead. */
const columnsOf = (run: Run) => ({ subject: 'Web lead: Ada Lovelace', firstname: 'Ada', lastname: 'Lovelace', emailaddress1: run.lead.email, telephone1: '+15550100000', companyname: 'Analytical Engines Ltd' });

const table: KindTable<Fixtures> = {
  kind: 'dynamics',
  title: 'dynamics kind through the whole system',
  start: async () => ({ dynamics: await startDynamicsFake({ tenantId: TENANT, clients: [CLIENT], alternateKeys: ['new_leadref'] }) }),
  providers: (f) => ({ dynamicsAuthorityUrl: f.dynamics.authorityUrl }),
  stop: (f) => f.dynamics.close(),
  fake: (f) => ({
    sends: () => apiCalls(f).filter((r) => r.method === 'PATCH').map((r) => ({ body: JSON.parse(r.body) as unknown, raw: r.body, receivedAt: r.receivedAt })),
    requestCount: () => f.dynamics.requests.length,
    held: (run) => rowsOf(f, run.leadId).length,
    violations: () => f.dynamics.violations,
    reset: () => f.dynamics.reset(),
  }),
  endpoint: (f) => ({ kind: 'dynamics', ...CLIENT, tenantId: TENANT, orgUrl: f.dynamics.baseUrl, alternateKey: 'new_leadref', mapping: MAPPING, backoff: ['1s'], timeoutMs: 1500 }),
  lead: () => ({ first_name: 'Ada', last_name: 'Lovelace', email: `ada.${++counter}@example.com`, phone: '(555) 010-0000', custom: { company: 'Analytical Engines Ltd' } }),
  secretFields: ['clientSecret'],
  secrets: (f, settings) => [String(settings.clientSecret), ...f.dynamics.tokensIssued],
  maskedHeaders: ['Authorization'],
  parse: (body) => JSON.parse(body) as unknown,
  request: (f, run) => ({ method: 'PATCH', url: `${f.dynamics.baseUrl}/api/data/v9.2/leads(new_leadref='${run.leadId}')?$select=leadid`, body: columnsOf(run) }),
  readsBack: true,
  firstSend: {
    when: 'Dataverse creates the row by alternate key',
    status: 200,
    messageId: (f, run) => rowsOf(f, run.leadId)[0]?.leadid,
    check(h, run) {
      const f = h.fixtures;
      const [tokenCall] = tokenCalls(f);
      assert.equal(tokenCall!.path, `/${TENANT}/oauth2/v2.0/token`);
      assert.deepEqual(Object.fromEntries(new URLSearchParams(tokenCall!.body)), { client_id: CLIENT.clientId, scope: `${f.dynamics.baseUrl}/.default`, client_secret: CLIENT.clientSecret, grant_type: 'client_credentials' });
      const [call] = apiCalls(f);
      assert.equal(call!.path, `/api/data/v9.2/leads(new_leadref='${run.leadId}')?$select=leadid`);
      assert.deepEqual([call!.headers['if-none-match'], call!.headers.prefer, call!.headers['odata-version']], ['*', 'return=representation', '4.0']);
      assert.equal(call!.headers['mscrm.suppressduplicatedetection'], undefined);
      assert.deepEqual(rowsOf(f, run.leadId)[0]!.columns, { ...columnsOf(run), new_leadref: run.leadId }, 'the row holds the mapped columns and the alternate key');
    },
  },
  transient: { when: 'Dataverse answers 503', script: (f) => f.dynamics.script([dynamicsErrors.serviceUnavailable()]), codes: ['http_503'] },
  refusal: {
    when: 'the application user lacks a privilege (403)',
    script: (f) => f.dynamics.script([dynamicsErrors.privilegeDenied()]),
    attempts: [['permanent', 'dynamics_forbidden']],
    status: 403,
    reason: /prvCreateLead/,
  },
  timeout: {
    when: 'Dataverse writes the row but answers after our timeout (alternate key)',
    script: (f) => f.dynamics.script([{ type: 'slow', delayMs: 2_500 }]),
    check(h, run, attempts) {
      const f = h.fixtures;
      assert.equal(rowsOf(f, run.leadId)[0]!.writes, 1, 'not rewritten');
      assert.equal(f.dynamics.writes, 1);
      const key = `new_leadref='${run.leadId}'`;
      assert.deepEqual(apiCalls(f).map((c) => [c.method, decodeURIComponent(c.path)]), [
        ['PATCH', `/api/data/v9.2/leads(${key})?$select=leadid`],
        ['GET', `/api/data/v9.2/leads(${key})?$select=leadid`],
      ]);
      assert.match((attempts[1]!.readBack as ReadBack).detail, /exists under alternate key new_leadref/);
    },
  },
  hangUp: {
    when: 'the connection drops after the write was sent and Dataverse applied nothing',
    script: (f) => f.dynamics.script([{ type: 'hangUp' }]),
    code: 'connection_reset',
    check(h, _run, attempts) {
      assert.match((attempts[1]!.readBack as ReadBack).detail, /no lead row under alternate key new_leadref \(GET leads\(<key>\): 404 0x80040217\)/);
      assert.equal(h.fixtures.dynamics.writes, 1);
    },
  },
  preview: {
    check(_h, _run, previews) {
      assert.equal(previews.lead.headers?.['If-None-Match'], '*');
      assert.equal(previews.sample.headers?.['If-None-Match'], '*');
    },
  },
};

describeKind(table, (h) => {
  it('When no alternate key is configured, then the row id is derived from the lead id, and the default mapping fills the standard columns', async () => {
    const { dynamics } = h.fixtures;
    const { apiKey } = await h.route({ alternateKey: undefined, mapping: undefined });
    const { leadId, lead } = await h.post(apiKey, { city: 'London' });
    await h.system.waitForLead(leadId, (v) => v.status === 'delivered');
    const guid = leadGuid(leadId);
    assert.equal(apiCalls(h.fixtures)[0]!.path, `/api/data/v9.2/leads(${guid})?$select=leadid`);
    const row = dynamics.leads.get(guid)!;
    assert.deepEqual(row.columns, { subject: `Lead ${leadId}`, firstname: 'Ada', lastname: 'Lovelace', emailaddress1: lead.email, telephone1: '(555) 010-0000', address1_city: 'London' });
    const [attempt] = await h.attemptsOf(leadId, 1);
    assert.equal(attempt!.response?.messageId, guid);
  });

  it('When Dataverse answers 429 with Retry-After (service protection), then the attempt waits that long and the next one succeeds', async () => {
    h.fixtures.dynamics.script([dynamicsErrors.tooManyRequests(1)]);
    const { leadId } = await h.send();
    await h.system.waitForLead(leadId, (v) => v.status === 'delivered');
    const attempts = await h.attemptsOf(leadId, 2);
    assert.deepEqual(summary(attempts), [[1, 'transient', 'dynamics_rate_limited'], [2, 'success', 'ok']]);
    assert.equal(attempts[0]!.retryAfterMs, 1_000);
    assert.match(attempts[0]!.reason, /0x80072322/);
  });

  it("When the mapping writes a column the table does not have (400), then the failure is permanent with Dataverse's message", async () => {
    const { leadId } = await h.send({ mapping: { ...MAPPING, new_colour: { const: 'teal' } } });
    await h.system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
    const [attempt] = await h.attemptsOf(leadId, 1);
    assert.deepEqual([attempt!.outcome, attempt!.code, attempt!.response?.status], ['permanent', 'dynamics_bad_request', 400]);
    assert.match(attempt!.reason, /Invalid property 'new_colour'/);
    assert.equal(rowsOf(h.fixtures, leadId).length, 0);
  });

  it('When the cached token is refused (401), then it is refreshed once and the write retried within the same attempt', async () => {
    const { dynamics } = h.fixtures;
    const { apiKey } = await h.route();
    await h.system.waitForLead((await h.post(apiKey)).leadId, (v) => v.status === 'delivered');
    dynamics.expireTokens();
    const { leadId } = await h.post(apiKey);
    const view = await h.system.waitForLead(leadId, (v) => v.status === 'delivered');
    assert.equal(view.endpoints[0]!.attempts, 1);
    assert.equal(dynamics.tokensIssued.length, 2);
    assert.deepEqual(apiCalls(h.fixtures).map((c) => c.status), [200, 401, 200]);
    const [attempt] = await h.attemptsOf(leadId, 1);
    assert.match(attempt!.reason, /after one token refresh/);
  });

  it('When Entra ID refuses the client secret (invalid_client), then the failure is permanent and nothing reaches Dataverse', async () => {
    const { leadId } = await h.send({ clientSecret: 'wrong-secret' });
    await h.system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
    const [attempt] = await h.attemptsOf(leadId, 1);
    assert.deepEqual([attempt!.outcome, attempt!.code, attempt!.response?.status], ['permanent', 'dynamics_invalid_client', 401]);
    assert.match(attempt!.reason, /AADSTS7000215/);
    assert.equal(apiCalls(h.fixtures).length, 0);
  });

  it('When Dataverse writes the row but answers after our timeout (derived row id), then the attempt is unknown and the retry reads the row back: success found_on_read_back, nothing written again', async () => {
    const { dynamics } = h.fixtures;
    dynamics.script([{ type: 'slow', delayMs: 2_500 }]);
    const { leadId } = await h.send({ alternateKey: undefined });
    await h.system.waitForLead(leadId, (v) => v.status === 'delivered');
    const attempts = await h.attemptsOf(leadId, 2);
    assert.deepEqual(summary(attempts), [[1, 'unknown', 'timeout'], [2, 'success', 'found_on_read_back']]);
    const rows = rowsOf(h.fixtures, leadId);
    assert.equal(rows.length, 1, 'one row');
    assert.equal(rows[0]!.writes, 1, 'not rewritten');
    assert.equal(dynamics.writes, 1);
    const key = leadGuid(leadId);
    assert.deepEqual(apiCalls(h.fixtures).map((c) => [c.method, decodeURIComponent(c.path)]), [
      ['PATCH', `/api/data/v9.2/leads(${key})?$select=leadid`],
      ['GET', `/api/data/v9.2/leads(${key})?$select=leadid`],
    ]);
    const readBack = attempts[1]!.readBack as ReadBack;
    assert.deepEqual([readBack.found, readBack.messageId], [true, rows[0]!.leadid]);
    assert.match(readBack.detail, /exists under the row id derived from the lead id/);
    assert.equal(attempts[1]!.response?.messageId, rows[0]!.leadid);
  });

  it('When the read-back is answered 429 (service protection), then nothing is sent by that attempt and a later one finishes the lead: one row', async () => {
    const { dynamics } = h.fixtures;
    dynamics.script([{ type: 'slow', delayMs: 2_500 }]);
    dynamics.scriptReads([dynamicsErrors.tooManyRequests(1)]);
    const { leadId } = await h.send({ backoff: ['1s', '1s'] });
    await h.system.waitForLead(leadId, (v) => v.status === 'delivered');
    const attempts = await h.attemptsOf(leadId, 3);
    assert.deepEqual(summary(attempts).slice(0, 2), [[1, 'unknown', 'timeout'], [2, 'transient', 'read_back_dynamics_rate_limited']]);
    assert.match(String(attempts[1]!.error), /Dataverse could not be read back: dynamics_rate_limited/);
    assert.equal(attempts[2]!.outcome, 'success');
    assert.equal(rowsOf(h.fixtures, leadId).length, 1);
    assert.equal(rowsOf(h.fixtures, leadId)[0]!.writes, 1);
  });

  it('When duplicate detection is on and the lead duplicates another (500 0x80040333), then the failure is permanent', async () => {
    const { apiKey } = await h.route({ duplicateDetection: true });
    const first = await h.post(apiKey, { email: 'same@example.com' });
    await h.system.waitForLead(first.leadId, (v) => v.status === 'delivered');
    assert.equal(apiCalls(h.fixtures)[0]!.headers['mscrm.suppressduplicatedetection'], 'false');
    const second = await h.post(apiKey, { email: 'same@example.com', first_name: 'Augusta' });
    await h.system.waitForLead(second.leadId, (v) => v.status === 'dead_lettered');
    const [attempt] = await h.attemptsOf(second.leadId, 1);
    assert.deepEqual([attempt!.outcome, attempt!.code, attempt!.response?.status], ['permanent', 'dynamics_duplicate_detected', 500]);
  });

  it('When the settings are wrong, then the endpoint is refused when saved, field by field', async () => {
    const { dynamics } = h.fixtures;
    const buyerId = await h.system.createBuyer();
    const save = (body: Record<string, unknown>) => h.system.admin<{ fields: Array<{ path: string; message: string }> }>('POST', `/buyers/${buyerId}/endpoints`, { kind: 'dynamics', ...CLIENT, tenantId: TENANT, orgUrl: dynamics.baseUrl, ...body });
    assert.deepEqual((await save({ orgUrl: `${dynamics.baseUrl}/api/data` })).body.fields.map((f) => f.path), ['orgUrl']);
    assert.deepEqual((await save({ tenantId: 'not a tenant' })).body.fields.map((f) => f.path), ['tenantId']);
    assert.deepEqual((await save({ clientId: 'app' })).body.fields.map((f) => f.path), ['clientId']);
    assert.deepEqual((await save({ alternateKey: 'new_leadref', mapping: { EmailAddress1: 'email', new_leadref: 'lead_id' } })).body.fields.map((f) => f.path), ['mapping.EmailAddress1', 'mapping.new_leadref']);
    assert.equal(dynamics.requests.length, 0, 'saving sends nothing');
  });
});
