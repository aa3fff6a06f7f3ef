/** The CRM kinds' pure parts: classification tables, keys, the rendered requests, settings checks, the token cache. */
import assert from 'node:assert/strict';
import { AddressGuard } from '../../shared/http/address-guard';
import type { Outbound, OutboundRequest, OutboundResponse } from '../../shared/http/outbound';
import { MappingError } from '../../shared/mapping';
import { defaultProviderSettings } from '../../activities/providers';
import { ClientCredentialsCache, classifyTokenFailure, tokenCacheKey } from '../../activities/oauth';
import { capRetryAfter } from '../../activities/registry';
import { classifyHubspotAnswer, createHubspotKind, hubspotReadBack, HubspotReadBackError, nextMidnight, readHubspotAnswer, validateHubspot } from '../../activities/hubspot';
import { classifySalesforceAnswer, createSalesforceKind, readSalesforceAnswer, salesforceReadBack, SalesforceReadBackError, validateSalesforce } from '../../activities/salesforce';
import { classifyDynamicsAnswer, createDynamicsKind, dynamicsReadBack, DynamicsReadBackError, keySegment, leadGuid, readDynamicsAnswer, validateDynamics } from '../../activities/dynamics';

const ctx = (lead: Record<string, unknown>) => ({ leadId: 'ld_01TEST', sourceId: 'src_1', receivedAt: 0, lead, endpointId: 'ep_1', buyerId: 'buy_1', attempt: 1, now: 0 });
const endpoint = <C, S>(kind: string, config: C, secrets: S, mapping?: Record<string, unknown>) => ({ endpointId: 'ep_1', buyerId: 'buy_1', kind, role: 'accept' as const, config, secrets, ...(mapping ? { mapping } : {}), timeoutMs: 10_000 });

describe('hubspot kind: classification, reset time and the rendered request', () => {
  const at = Date.UTC(2025, 5, 10, 20, 30, 0);

  it('reads the contact id of a batch upsert answer, and the error shape of a refusal', () => {
    assert.deepEqual(readHubspotAnswer(200, JSON.stringify({ status: 'COMPLETE', results: [{ id: '512', new: true, properties: {} }] })), { status: 200, messageId: '512', created: true });
    const limited = readHubspotAnswer(429, JSON.stringify({ status: 'error', message: 'You have reached your daily limit.', errorType: 'RATE_LIMIT', policyName: 'DAILY' }));
    assert.deepEqual([limited.category, limited.policyName], ['RATE_LIMIT', 'DAILY']);
    const scopes = readHubspotAnswer(403, JSON.stringify({ category: 'MISSING_SCOPES', message: 'no', errors: [{ message: 'x', context: { requiredGranularScopes: ['crm.objects.contacts.write'] } }] }));
    assert.deepEqual(scopes.missingScopes, ['crm.objects.contacts.write']);
    const batch = readHubspotAnswer(207, JSON.stringify({ status: 'COMPLETE', results: [], numErrors: 1, errors: [{ status: 'error', category: 'VALIDATION_ERROR', message: 'bad email' }] }));
    assert.deepEqual([batch.category, batch.providerMessage], ['VALIDATION_ERROR', 'bad email']);
  });

  it('classifies: 2xx success, 429 by policy, 401/403/400 permanent, 5xx transient', () => {
    const table: Array<[Parameters<typeof classifyHubspotAnswer>[0], string, string, number?]> = [
      [{ status: 200, messageId: '1', created: true }, 'success', 'ok'],
      [{ status: 200, messageId: '1', created: false }, 'success', 'ok'],
      [{ status: 200 }, 'transient', 'hubspot_unexpected_answer'],
      [{ status: 429, policyName: 'TEN_SECONDLY_ROLLING', category: 'RATE_LIMIT' }, 'transient', 'hubspot_rate_limit_secondly', 10_000],
      [{ status: 429, policyName: 'TEN_SECONDLY_ROLLING', headers: { 'retry-after': '3' } }, 'transient', 'hubspot_rate_limit_secondly', 3_000],
      [{ status: 429, policyName: 'DAILY' }, 'transient', 'hubspot_rate_limit_daily', Date.UTC(2025, 5, 11) - at],
      [{ status: 429 }, 'transient', 'hubspot_rate_limited', 10_000],
      [{ status: 401, category: 'INVALID_AUTHENTICATION' }, 'permanent', 'hubspot_invalid_token'],
      [{ status: 403, category: 'MISSING_SCOPES', missingScopes: ['crm.objects.contacts.write'] }, 'permanent', 'hubspot_missing_scopes'],
      [{ status: 400, category: 'VALIDATION_ERROR', providerMessage: 'Property values were not valid' }, 'permanent', 'hubspot_validation_error'],
      [{ status: 409, category: 'CONFLICT' }, 'permanent', 'hubspot_conflict'],
      [{ status: 404 }, 'permanent', 'http_404'],
      [{ status: 207, category: 'VALIDATION_ERROR' }, 'permanent', 'hubspot_validation_error'],
      [{ status: 207, category: 'SOMETHING_NEW' }, 'transient', 'hubspot_something_new'],
      [{ status: 500 }, 'transient', 'http_500'],
      [{ status: 502 }, 'transient', 'http_502'],
    ];
    for (const [answer, outcome, code, retryAfterMs] of table) {
      const c = classifyHubspotAnswer(answer, at);
      assert.deepEqual([c.outcome, c.code], [outcome, code], JSON.stringify(answer));
      if (retryAfterMs !== undefined) assert.equal(c.retryAfterMs, retryAfterMs, JSON.stringify(answer));
    }
    assert.match(classifyHubspotAnswer({ status: 403, category: 'MISSING_SCOPES', missingScopes: ['crm.objects.contacts.write'] }).reason, /crm\.objects\.contacts\.write/);
  });

  it("parks a daily limit until midnight in the account's time zone, at most 6 h (the registry's cap)", () => {
    assert.equal(nextMidnight('UTC', at), Date.UTC(2025, 5, 11));
    // 20:30 UTC is 16:30 in New York (EDT, UTC-4): midnight there is 04:00 UTC.
    assert.equal(nextMidnight('America/New_York', at), Date.UTC(2025, 5, 11, 4));
    const early = Date.UTC(2025, 5, 10, 1, 0, 0);
    assert.equal(capRetryAfter(classifyHubspotAnswer({ status: 429, policyName: 'DAILY', timeZone: 'UTC' }, early)).retryAfterMs, 6 * 3_600_000);
    // 20:30 UTC: midnight in New York is 7.5 h away (as the kind says), capped at 6 h; at 23:00 UTC it is 5 h away.
    assert.equal(classifyHubspotAnswer({ status: 429, policyName: 'DAILY', timeZone: 'America/New_York' }, at).retryAfterMs, 7.5 * 3_600_000);
    assert.equal(capRetryAfter(classifyHubspotAnswer({ status: 429, policyName: 'DAILY', timeZone: 'America/New_York' }, at)).retryAfterMs, 6 * 3_600_000);
    assert.equal(capRetryAfter(classifyHubspotAnswer({ status: 429, policyName: 'DAILY', timeZone: 'America/New_York' }, Date.UTC(2025, 5, 10, 23))).retryAfterMs, 5 * 3_600_000);
  });

  it('renders one batch upsert input by email, values as strings, the token masked; email is required', () => {
    const kind = createHubspotKind({ providers: defaultProviderSettings({ hubspotApiBaseUrl: 'https://api.hubapi.com/' }) });
    const ep = endpoint('hubspot', { timeZone: 'UTC' }, { token: 'pat-na1-secret-secret' }, { email: 'email', firstname: 'first_name', score: { const: 7 }, optin: 'consent.granted' });
    const prepared = kind.map(ep, ctx({ first_name: 'Ada', email: 'ada@example.com', consent: { granted: true } }));
    assert.equal(prepared.payload.url, 'https://api.hubapi.com/crm/v3/objects/contacts/batch/upsert');
    assert.deepEqual(JSON.parse(prepared.payload.body), { inputs: [{ idProperty: 'email', id: 'ada@example.com', properties: { email: 'ada@example.com', firstname: 'Ada', score: '7', optin: 'true' } }] });
    assert.equal(prepared.payload.headers.authorization, 'Bearer pat-na1-secret-secret');
    assert.ok(!JSON.stringify(prepared.describe).includes('pat-na1-secret-secret'));
    assert.throws(() => kind.map(ep, ctx({ first_name: 'Ada', phone: '+15550100000' })), (e: unknown) => e instanceof MappingError && e.key === 'email');
    // Without a mapping, the default one (email, names, phone, address) is used.
    const plain = kind.map(endpoint('hubspot', { timeZone: 'UTC' }, { token: 'pat-na1-secret-secret' }), ctx({ first_name: 'Ada', last_name: 'L', email: 'a@b.co' }));
    assert.deepEqual((JSON.parse(plain.payload.body) as { inputs: Array<{ properties: unknown }> }).inputs[0]!.properties, { email: 'a@b.co', firstname: 'Ada', lastname: 'L' });
  });

  it('refuses at save time a mapping without email or with keys that are not property names', () => {
    assert.deepEqual(validateHubspot(undefined), []);
    assert.deepEqual(validateHubspot({ firstname: 'first_name', 'First Name': 'first_name' }).map((e) => e.path), ['mapping.First Name', 'mapping.email']);
  });
});

describe('salesforce kind: classification, the rendered request and settings', () => {
  it('reads success bodies and the [{message, errorCode, fields}] error array', () => {
    assert.deepEqual(readSalesforceAnswer(201, '{"id":"00Q1","success":true,"errors":[],"created":true}'), { phase: 'api', status: 201, messageId: '00Q1', created: true });
    assert.deepEqual(readSalesforceAnswer(200, '{"id":"00Q1","success":true,"errors":[],"created":false}').created, false);
    assert.deepEqual(readSalesforceAnswer(204, '').created, false);
    const error = readSalesforceAnswer(400, '[{"message":"Required fields are missing: [LastName]","errorCode":"REQUIRED_FIELD_MISSING","fields":["LastName"]}]');
    assert.deepEqual([error.errorCode, error.fields], ['REQUIRED_FIELD_MISSING', ['LastName']]);
  });

  it('classifies by errorCode: REQUEST_LIMIT_EXCEEDED pauses, lock/unavailable transient, data errors permanent', () => {
    const table: Array<[Parameters<typeof classifySalesforceAnswer>[0], string, string, number?]> = [
      [{ phase: 'api', status: 201, messageId: '00Q1', created: true }, 'success', 'ok'],
      [{ phase: 'api', status: 200, messageId: '00Q1', created: false }, 'success', 'ok'],
      [{ phase: 'api', status: 403, errorCode: 'REQUEST_LIMIT_EXCEEDED' }, 'transient', 'salesforce_request_limit_exceeded', 3_600_000],
      [{ phase: 'api', status: 403, errorCode: 'REQUEST_LIMIT_EXCEEDED', headers: { 'retry-after': '7200' } }, 'transient', 'salesforce_request_limit_exceeded', 7_200_000],
      [{ phase: 'api', status: 400, errorCode: 'UNABLE_TO_LOCK_ROW' }, 'transient', 'salesforce_unable_to_lock_row'],
      [{ phase: 'api', status: 503, errorCode: 'SERVER_UNAVAILABLE' }, 'transient', 'salesforce_server_unavailable'],
      [{ phase: 'api', status: 500 }, 'transient', 'http_500'],
      [{ phase: 'api', status: 502, errorCode: 'UNKNOWN_EXCEPTION' }, 'transient', 'salesforce_unknown_exception'],
      [{ phase: 'api', status: 401, errorCode: 'INVALID_SESSION_ID', refreshed: true }, 'permanent', 'salesforce_invalid_session'],
      [{ phase: 'api', status: 400, errorCode: 'REQUIRED_FIELD_MISSING', fields: ['LastName'] }, 'permanent', 'salesforce_required_field_missing'],
      [{ phase: 'api', status: 400, errorCode: 'INVALID_FIELD' }, 'permanent', 'salesforce_invalid_field'],
      [{ phase: 'api', status: 400, errorCode: 'FIELD_CUSTOM_VALIDATION_EXCEPTION' }, 'permanent', 'salesforce_field_custom_validation_exception'],
      [{ phase: 'api', status: 400, errorCode: 'DUPLICATES_DETECTED' }, 'permanent', 'salesforce_duplicates_detected'],
      [{ phase: 'api', status: 404, errorCode: 'NOT_FOUND' }, 'permanent', 'salesforce_not_found'],
      [{ phase: 'api', status: 300 }, 'permanent', 'salesforce_multiple_matches'],
      [{ phase: 'api', status: 415 }, 'permanent', 'http_415'],
      [{ phase: 'token', status: 400, providerCode: 'invalid_client', providerMessage: 'invalid client credentials' }, 'permanent', 'salesforce_invalid_client'],
      [{ phase: 'token', status: 400, providerCode: 'invalid_grant', providerMessage: 'no client credentials user enabled' }, 'permanent', 'salesforce_invalid_grant'],
      [{ phase: 'token', status: 503 }, 'transient', 'salesforce_token_unavailable'],
    ];
    for (const [answer, outcome, code, retryAfterMs] of table) {
      const c = classifySalesforceAnswer(answer);
      assert.deepEqual([c.outcome, c.code], [outcome, code], JSON.stringify(answer));
      if (retryAfterMs !== undefined) assert.equal(c.retryAfterMs, retryAfterMs);
    }
    assert.match(classifySalesforceAnswer({ phase: 'api', status: 400, errorCode: 'REQUIRED_FIELD_MISSING', providerMessage: 'Required fields are missing: [Company]', fields: ['Company'] }).reason, /\[Company\]/);
  });

  it('renders the upsert by external id; LastName and Company are required before anything is sent', () => {
    const kind = createSalesforceKind({ providers: defaultProviderSettings({ salesforceLoginUrl: 'https://acme.my.salesforce.com' }) });
    const ep = endpoint('salesforce', { externalIdField: 'Lead_Id__c', apiVersion: '62.0' }, { clientId: 'id', clientSecret: 'shh-secret' }, { LastName: 'last_name', Company: { field: 'custom.company', default: '[not provided]' }, Email: 'email' });
    const prepared = kind.map(ep, ctx({ last_name: 'Lovelace', email: 'ada@example.com' }));
    assert.equal(prepared.payload.tokenUrl, 'https://acme.my.salesforce.com/services/oauth2/token');
    assert.equal(prepared.payload.path, '/services/data/v62.0/sobjects/Lead/Lead_Id__c/ld_01TEST');
    assert.deepEqual(JSON.parse(prepared.payload.body), { LastName: 'Lovelace', Company: '[not provided]', Email: 'ada@example.com' });
    assert.equal(prepared.describe.method, 'PATCH');
    assert.ok(!JSON.stringify(prepared).includes('shh-secret'));
    assert.throws(() => kind.map(ep, ctx({ first_name: 'Ada', email: 'ada@example.com' })), (e: unknown) => e instanceof MappingError && e.key === 'LastName' && /"LastName"/.test(e.message));
  });

  it('refuses at save time: no LastName/Company, a generic login host, the external id in the mapping, no mapping', () => {
    const config = { externalIdField: 'Lead_Id__c', apiVersion: '62.0' };
    const paths = (mapping: unknown, extra: Record<string, unknown> = {}, providers = defaultProviderSettings({ salesforceLoginUrl: 'https://acme.my.salesforce.com' })) =>
      validateSalesforce({ ...config, ...extra }, mapping, { providers }).map((e) => e.path);
    assert.deepEqual(paths({ LastName: 'last_name', Company: { const: 'x' } }), []);
    assert.deepEqual(paths({ FirstName: 'first_name' }), ['mapping.LastName', 'mapping.Company']);
    assert.deepEqual(paths(undefined), ['mapping']);
    assert.deepEqual(paths({ LastName: 'last_name', Company: { const: 'x' }, lead_id__c: 'lead_id', 'Bad Key': 'email' }), ['mapping.lead_id__c', 'mapping.Bad Key']);
    assert.deepEqual(paths({ LastName: 'last_name', Company: { const: 'x' } }, { loginUrl: 'https://test.salesforce.com' }), ['loginUrl']);
    assert.deepEqual(paths({ LastName: 'last_name', Company: { const: 'x' } }, {}, defaultProviderSettings()), ['loginUrl'], 'the default login.salesforce.com does not serve the flow');
  });
});

describe('dynamics kind: keys, classification, the rendered request and settings', () => {
  it('derives a stable RFC 9562 GUID from the lead id, and quotes alternate keys', () => {
    const guid = leadGuid('ld_01TEST');
    assert.match(guid, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(leadGuid('ld_01TEST'), guid);
    assert.notEqual(leadGuid('ld_01TESU'), guid);
    assert.equal(keySegment(undefined, 'ld_01TEST'), guid);
    assert.equal(keySegment('new_leadref', 'ld_01TEST'), "new_leadref='ld_01TEST'");
    assert.equal(keySegment('new_leadref', "o'brien"), "new_leadref='o''brien'");
  });

  it('reads the row id from the body, the OData-EntityId header or the derived key; and the OData error', () => {
    assert.equal(readDynamicsAnswer(200, '{"leadid":"aaaaaaaa-0000-4000-8000-000000000001"}', {}).messageId, 'aaaaaaaa-0000-4000-8000-000000000001');
    assert.equal(readDynamicsAnswer(204, '', { 'odata-entityid': 'https://x.crm.dynamics.com/api/data/v9.2/leads(bbbbbbbb-0000-4000-8000-000000000002)' }).messageId, 'bbbbbbbb-0000-4000-8000-000000000002');
    assert.equal(readDynamicsAnswer(204, '', {}, 'cccccccc-0000-4000-8000-000000000003').messageId, 'cccccccc-0000-4000-8000-000000000003');
    const error = readDynamicsAnswer(429, '{"error":{"code":"0x80072322","message":"Number of requests exceeded"}}', {});
    assert.deepEqual([error.odataCode, error.providerMessage], ['0x80072322', 'Number of requests exceeded']);
  });

  it('classifies: 429 with Retry-After transient, 5xx transient, 400/401/403/404 permanent, 412 on our create-only write is success', () => {
    const table: Array<[Parameters<typeof classifyDynamicsAnswer>[0], string, string, number?]> = [
      [{ phase: 'api', status: 200, messageId: 'x' }, 'success', 'ok'],
      [{ phase: 'api', status: 204, messageId: 'x' }, 'success', 'ok'],
      [{ phase: 'api', status: 412, providerCode: 'already_present', messageId: 'x' }, 'success', 'already_present'],
      [{ phase: 'api', status: 429, odataCode: '0x80072322', headers: { 'retry-after': '30' } }, 'transient', 'dynamics_rate_limited', 30_000],
      [{ phase: 'api', status: 503 }, 'transient', 'http_503'],
      [{ phase: 'api', status: 500, odataCode: '0x80040333' }, 'permanent', 'dynamics_duplicate_detected'],
      [{ phase: 'api', status: 500, odataCode: '0x80040216' }, 'transient', 'http_500'],
      [{ phase: 'api', status: 400, odataCode: '0x80060888' }, 'permanent', 'dynamics_bad_request'],
      [{ phase: 'api', status: 401, refreshed: true }, 'permanent', 'dynamics_unauthorized'],
      [{ phase: 'api', status: 403, odataCode: '0x80040220' }, 'permanent', 'dynamics_forbidden'],
      [{ phase: 'api', status: 404 }, 'permanent', 'dynamics_not_found'],
      [{ phase: 'token', status: 401, providerCode: 'invalid_client', providerMessage: 'AADSTS7000215: Invalid client secret provided.' }, 'permanent', 'dynamics_invalid_client'],
      [{ phase: 'token', status: 400, providerCode: 'invalid_scope' }, 'permanent', 'dynamics_invalid_scope'],
      [{ phase: 'token', status: 503, providerCode: 'temporarily_unavailable' }, 'transient', 'dynamics_token_unavailable'],
    ];
    for (const [answer, outcome, code, retryAfterMs] of table) {
      const c = classifyDynamicsAnswer(answer);
      assert.deepEqual([c.outcome, c.code], [outcome, code], JSON.stringify(answer));
      if (retryAfterMs !== undefined) assert.equal(c.retryAfterMs, retryAfterMs);
    }
  });

  it('renders a create-only upsert with the OData headers; duplicate detection on request', () => {
    const kind = createDynamicsKind({ providers: defaultProviderSettings() });
    const config = { orgUrl: 'https://contoso.crm.dynamics.com', tenantId: 'contoso.onmicrosoft.com', apiVersion: '9.2', duplicateDetection: true, alternateKey: 'new_leadref' };
    const prepared = kind.map(endpoint('dynamics', config, { clientId: '535fb089-9ff3-47b6-9bfb-4f1264799865', clientSecret: 'shh-secret' }, { lastname: 'last_name' }), ctx({ last_name: 'Lovelace', email: 'a@b.co' }));
    assert.equal(prepared.payload.tokenUrl, 'https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token');
    assert.equal(prepared.payload.scope, 'https://contoso.crm.dynamics.com/.default');
    assert.equal(prepared.payload.writeUrl, "https://contoso.crm.dynamics.com/api/data/v9.2/leads(new_leadref='ld_01TEST')?$select=leadid");
    assert.deepEqual(
      [prepared.payload.headers['If-None-Match'], prepared.payload.headers.Prefer, prepared.payload.headers['OData-Version'], prepared.payload.headers['MSCRM.SuppressDuplicateDetection']],
      ['*', 'return=representation', '4.0', 'false'],
    );
    assert.deepEqual(JSON.parse(prepared.payload.body), { lastname: 'Lovelace' });
    assert.equal(prepared.payload.leadGuid, undefined);
    assert.ok(!JSON.stringify(prepared).includes('shh-secret'));
  });

  it('refuses at save time mapping keys that are not logical names or that set the row key', () => {
    const config = { orgUrl: 'https://contoso.crm.dynamics.com', tenantId: 'contoso.onmicrosoft.com', apiVersion: '9.2', duplicateDetection: false, alternateKey: 'new_leadref' };
    assert.deepEqual(validateDynamics(config, undefined), []);
    assert.deepEqual(validateDynamics(config, { EmailAddress1: 'email', leadid: 'lead_id', new_leadref: 'lead_id', 'parentcontactid@odata.bind': { const: '/contacts(x)' } }).map((e) => e.path), ['mapping.EmailAddress1', 'mapping.leadid', 'mapping.new_leadref']);
  });
});

describe('client-credentials token cache', () => {
  function fakeOutbound(answers: Array<{ status: number; body: unknown }>, delayMs = 0): Outbound & { calls: OutboundRequest[] } {
    const calls: OutboundRequest[] = [];
    return {
      calls,
      guard: new AddressGuard(''),
      async request(req) {
        calls.push(req);
        if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
        const answer = answers.shift() ?? { status: 500, body: {} };
        const body = Buffer.from(JSON.stringify(answer.body));
        return { status: answer.status, statusText: '', headers: {}, body, bodyBytes: body.length } satisfies OutboundResponse;
      },
    };
  }
  const request = { key: tokenCacheKey('ep_1', 'https://login.example/token', { client_id: 'a', client_secret: 'b' }), tokenUrl: 'https://login.example/token', form: { client_id: 'a', client_secret: 'b', grant_type: 'client_credentials' }, userAgent: 'test' };

  it('shares one token request among concurrent callers and caches the token until it expires', async () => {
    let now = 1_000_000;
    const cache = new ClientCredentialsCache(() => now);
    const outbound = fakeOutbound([{ status: 200, body: { access_token: 't1', expires_in: 3599 } }, { status: 200, body: { access_token: 't2', expires_in: 3599 } }], 20);
    const [a, b] = await Promise.all([cache.get(request, { outbound, timeoutMs: 1000 }), cache.get(request, { outbound, timeoutMs: 1000 })]);
    assert.equal(outbound.calls.length, 1);
    assert.ok(a.ok && b.ok && a.token.accessToken === 't1' && b.token.accessToken === 't1');
    assert.equal(new URLSearchParams(String(outbound.calls[0]!.body)).get('grant_type'), 'client_credentials');
    assert.equal(outbound.calls[0]!.headers['content-type'], 'application/x-www-form-urlencoded');
    now += 3_000_000;
    const cached = await cache.get(request, { outbound, timeoutMs: 1000 });
    assert.ok(cached.ok && !cached.fresh && cached.token.accessToken === 't1');
    now += 600_000; // past expires_in less the margin
    const renewed = await cache.get(request, { outbound, timeoutMs: 1000 });
    assert.ok(renewed.ok && renewed.fresh && renewed.token.accessToken === 't2');
  });

  it('keeps a token without expires_in until it is invalidated, and only that token', async () => {
    const cache = new ClientCredentialsCache();
    const outbound = fakeOutbound([{ status: 200, body: { access_token: 't1', instance_url: 'https://x.my.salesforce.com' } }, { status: 200, body: { access_token: 't2', instance_url: 'https://x.my.salesforce.com' } }]);
    const first = await cache.get(request, { outbound, timeoutMs: 1000 });
    assert.ok(first.ok && first.token.expiresAt === Infinity && first.token.fields.instance_url === 'https://x.my.salesforce.com');
    assert.ok(!('access_token' in (first.ok ? first.token.fields : {})));
    cache.invalidate(request.key, 'not-the-cached-one');
    assert.equal(((await cache.get(request, { outbound, timeoutMs: 1000 })) as { token: { accessToken: string } }).token.accessToken, 't1');
    cache.invalidate(request.key, 't1');
    assert.equal(((await cache.get(request, { outbound, timeoutMs: 1000 })) as { token: { accessToken: string } }).token.accessToken, 't2');
  });

  it("returns the token endpoint's refusal for the kind to classify, and caches nothing", async () => {
    const cache = new ClientCredentialsCache();
    const outbound = fakeOutbound([{ status: 400, body: { error: 'invalid_client', error_description: 'invalid client credentials' } }]);
    const outcome = await cache.get(request, { outbound, timeoutMs: 1000 });
    assert.ok(!outcome.ok);
    assert.deepEqual([outcome.answer.phase, outcome.answer.status, outcome.answer.providerCode, outcome.answer.providerMessage], ['token', 400, 'invalid_client', 'invalid client credentials']);
    assert.deepEqual(classifyTokenFailure('salesforce', outcome.answer).outcome, 'permanent');
  });

  it('keys the cache by endpoint and credentials, never holding the secret in the key', () => {
    const a = tokenCacheKey('ep_1', 'u', { client_secret: 'secret-one' });
    assert.notEqual(a, tokenCacheKey('ep_1', 'u', { client_secret: 'secret-two' }));
    assert.notEqual(a, tokenCacheKey('ep_2', 'u', { client_secret: 'secret-one' }));
    assert.ok(!a.includes('secret-one'));
  });
});

describe('CRM kinds: read-back before re-sending (lookup)', () => {
  /** An Outbound that answers from a script, one answer per request, and keeps the requests. */
  function scripted(answers: Array<{ status: number; body?: unknown; headers?: Record<string, string> }>): Outbound & { calls: OutboundRequest[] } {
    const calls: OutboundRequest[] = [];
    return {
      calls,
      guard: new AddressGuard(''),
      request(req) {
        calls.push(req);
        const answer = answers.shift();
        if (!answer) throw new Error(`unexpected request ${req.method} ${req.url}`);
        const body = Buffer.from(answer.body === undefined ? '' : typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body));
        return Promise.resolve({ status: answer.status, statusText: '', headers: answer.headers ?? {}, body, bodyBytes: body.length } satisfies OutboundResponse);
      },
    };
  }
  const io = (outbound: Outbound) => ({ signal: new AbortController().signal, timeoutMs: 5_000, outbound });

  describe('hubspot', () => {
    const kind = createHubspotKind({ providers: defaultProviderSettings({ hubspotApiBaseUrl: 'https://api.hubapi.com' }) });
    const ep = endpoint('hubspot', { timeZone: 'UTC' }, { token: 'pat-na1-secret-secret' }, { email: 'email', firstname: 'first_name', lead_ref: 'lead_id' });
    const prepared = kind.map(ep, ctx({ first_name: 'Ada', email: 'Ada@Example.com' }));
    const expected = prepared.payload.properties;

    it('When the contact found by email holds every value the upsert writes (the lead-id property included), then it is found, with its id; the read is a GET by email with the same token', async () => {
      const outbound = scripted([{ status: 200, body: { id: '512', properties: { email: 'ada@example.com', firstname: 'Ada', lead_ref: 'ld_01TEST', hs_object_id: '512' }, archived: false } }]);
      const readBack = await kind.lookup(prepared, ep, io(outbound));
      assert.deepEqual([readBack.found, readBack.messageId], [true, '512']);
      assert.match(readBack.detail, /matched by email\) holds every property this lead writes \(email, firstname, lead_ref\)/);
      const [call] = outbound.calls;
      assert.deepEqual([call!.method, call!.url, call!.body], ['GET', 'https://api.hubapi.com/crm/v3/objects/contacts/Ada%40Example.com?idProperty=email&properties=email,firstname,lead_ref', undefined]);
      assert.equal(call!.headers.authorization, 'Bearer pat-na1-secret-secret');
      assert.ok(!readBack.detail.includes('Ada'), 'no lead value in the detail');
    });

    it('When the contact exists but a written value differs (e.g. another lead id), then it is not found: the upsert goes ahead, and the detail names the property, not its value', () => {
      const readBack = hubspotReadBack(200, JSON.stringify({ id: '512', properties: { email: 'ada@example.com', firstname: 'Ada', lead_ref: 'ld_OTHER' } }), expected);
      assert.deepEqual([readBack.found, readBack.messageId], [false, '512']);
      assert.match(readBack.detail, /\(lead_ref differ\)/);
      assert.ok(!readBack.detail.includes('ld_OTHER'));
    });

    it('When a written value is empty, then null or a missing property on the contact matches it', () => {
      assert.equal(hubspotReadBack(200, JSON.stringify({ id: '7', properties: { email: 'a@b.co', city: null } }), { email: 'a@b.co', city: '', zip: '' }).found, true);
    });

    it('When no contact has the email (404), then it is not found', () => {
      const readBack = hubspotReadBack(404, JSON.stringify({ status: 'error', message: 'Object not found.  objectId are usually numeric.', category: 'OBJECT_NOT_FOUND' }), expected);
      assert.deepEqual([readBack.found, readBack.messageId], [false, undefined]);
      assert.match(readBack.detail, /no contact with this lead's email/);
    });

    it('When HubSpot answers "later" (429, 5xx), then the read-back throws with that classification: nothing is sent this attempt', () => {
      const limited = () => hubspotReadBack(429, JSON.stringify({ status: 'error', message: 'ten secondly', errorType: 'RATE_LIMIT', policyName: 'TEN_SECONDLY_ROLLING' }), expected, { headers: { 'retry-after': '2' } });
      assert.throws(limited, (e: unknown) => e instanceof HubspotReadBackError && e.classification.code === 'hubspot_rate_limit_secondly' && e.classification.retryAfterMs === 2_000);
      assert.throws(() => hubspotReadBack(502, '', expected), (e: unknown) => e instanceof HubspotReadBackError && e.classification.code === 'http_502' && /http_502/.test(e.message));
      assert.throws(() => hubspotReadBack(200, '{}', expected), HubspotReadBackError);
    });

    it('When the token cannot read contacts (403 MISSING_SCOPES) or is refused (401), then the read-back does not block: not found, and the upsert (which cannot duplicate) decides', () => {
      const scopes = hubspotReadBack(403, JSON.stringify({ status: 'error', category: 'MISSING_SCOPES', message: 'no', errors: [{ context: { requiredGranularScopes: ['crm.objects.contacts.read'] } }] }), expected);
      assert.equal(scopes.found, false);
      assert.match(scopes.detail, /could not read back \(hubspot_missing_scopes: .*crm\.objects\.contacts\.read/);
      assert.equal(hubspotReadBack(401, JSON.stringify({ status: 'error', category: 'INVALID_AUTHENTICATION', message: 'x' }), expected).found, false);
    });
  });

  describe('salesforce', () => {
    const settings = { providers: defaultProviderSettings({ salesforceLoginUrl: 'https://acme.my.salesforce.com' }) };
    const ep = endpoint('salesforce', { externalIdField: 'Lead_Id__c', apiVersion: '62.0' }, { clientId: 'id', clientSecret: 'shh-secret' }, { LastName: 'last_name', Company: { const: 'x' } });
    const token = { status: 200, body: { access_token: 't1', instance_url: 'https://acme.my.salesforce.com' } };

    it('When the Lead holding the lead id exists, then it is found with its Id; the read is a GET of the upsert URL with ?fields=Id, after one token request', async () => {
      const kind = createSalesforceKind(settings, new ClientCredentialsCache());
      const prepared = kind.map(ep, ctx({ last_name: 'Lovelace' }));
      const outbound = scripted([token, { status: 200, body: { attributes: { type: 'Lead', url: '/services/data/v62.0/sobjects/Lead/00Q1' }, Id: '00Q1' } }]);
      const readBack = await kind.lookup(prepared, ep, io(outbound));
      assert.deepEqual([readBack.found, readBack.messageId], [true, '00Q1']);
      assert.deepEqual(outbound.calls.map((c) => [c.method, c.url]), [
        ['POST', 'https://acme.my.salesforce.com/services/oauth2/token'],
        ['GET', 'https://acme.my.salesforce.com/services/data/v62.0/sobjects/Lead/Lead_Id__c/ld_01TEST?fields=Id'],
      ]);
      assert.equal(outbound.calls[1]!.headers.authorization, 'Bearer t1');
    });

    it('When the session was refused (401), then the token is refreshed once and the read retried', async () => {
      const kind = createSalesforceKind(settings, new ClientCredentialsCache());
      const prepared = kind.map(ep, ctx({ last_name: 'Lovelace' }));
      const outbound = scripted([token, { status: 401, body: [{ errorCode: 'INVALID_SESSION_ID', message: 'Session expired or invalid' }] }, { status: 200, body: { access_token: 't2', instance_url: 'https://acme.my.salesforce.com' } }, { status: 404, body: [{ errorCode: 'NOT_FOUND', message: 'The requested resource does not exist' }] }]);
      const readBack = await kind.lookup(prepared, ep, io(outbound));
      assert.equal(readBack.found, false);
      assert.equal(outbound.calls[3]!.headers.authorization, 'Bearer t2');
    });

    it('When the answer is 404, then not found; "later" answers throw; other refusals (token or API) do not block the upsert', () => {
      assert.deepEqual(salesforceReadBack({ phase: 'api', status: 404, errorCode: 'NOT_FOUND', providerMessage: 'The requested resource does not exist' }, 'Lead_Id__c'), { found: false, detail: 'no Lead holds this lead id in Lead_Id__c (GET Lead/Lead_Id__c/<lead id>: 404 NOT_FOUND)' });
      assert.match(salesforceReadBack({ phase: 'api', status: 404, errorCode: 'NOT_FOUND', providerMessage: 'Provided external ID field does not exist or is not accessible: Lead_Id__c' }, 'Lead_Id__c').detail, /field does not exist/);
      for (const answer of [{ phase: 'api', status: 503, errorCode: 'SERVER_UNAVAILABLE' }, { phase: 'api', status: 403, errorCode: 'REQUEST_LIMIT_EXCEEDED' }, { phase: 'token', status: 503 }, { phase: 'api', status: 200 }] as const) {
        assert.throws(() => salesforceReadBack(answer, 'Lead_Id__c'), SalesforceReadBackError, JSON.stringify(answer));
      }
      const refused = salesforceReadBack({ phase: 'token', status: 400, providerCode: 'invalid_client', providerMessage: 'invalid client credentials' }, 'Lead_Id__c');
      assert.equal(refused.found, false);
      assert.match(refused.detail, /could not read back \(salesforce_invalid_client/);
      assert.equal(salesforceReadBack({ phase: 'api', status: 401, errorCode: 'INVALID_SESSION_ID', refreshed: true }, 'Lead_Id__c').found, false);
    });
  });

  describe('dynamics', () => {
    const config = { orgUrl: 'https://contoso.crm.dynamics.com', tenantId: 'contoso.onmicrosoft.com', apiVersion: '9.2', duplicateDetection: false };
    const secrets = { clientId: '535fb089-9ff3-47b6-9bfb-4f1264799865', clientSecret: 'shh-secret' };
    const token = { status: 200, body: { token_type: 'Bearer', expires_in: 3599, access_token: 't1' } };

    it('When the row under the alternate key exists, then it is found with its leadid; the read selects the key column only, with the OData headers and If-None-Match: null', async () => {
      const kind = createDynamicsKind({ providers: defaultProviderSettings() }, new ClientCredentialsCache());
      const ep = endpoint('dynamics', { ...config, alternateKey: 'new_leadref' }, secrets);
      const prepared = kind.map(ep, ctx({ last_name: 'Lovelace' }));
      const outbound = scripted([token, { status: 200, body: { '@odata.etag': 'W/"1"', leadid: 'aaaaaaaa-0000-4000-8000-000000000001' } }]);
      const readBack = await kind.lookup(prepared, ep, io(outbound));
      assert.deepEqual([readBack.found, readBack.messageId], [true, 'aaaaaaaa-0000-4000-8000-000000000001']);
      assert.match(readBack.detail, /exists under alternate key new_leadref/);
      const read = outbound.calls[1]!;
      assert.deepEqual([read.method, read.url], ['GET', "https://contoso.crm.dynamics.com/api/data/v9.2/leads(new_leadref='ld_01TEST')?$select=leadid"]);
      assert.deepEqual([read.headers['OData-Version'], read.headers['If-None-Match'], read.headers.Authorization], ['4.0', 'null', 'Bearer t1']);
    });

    it('When no row has the derived id (404), then not found; 429 throws (Retry-After kept); a refusal (403) does not block the create-only write', async () => {
      const kind = createDynamicsKind({ providers: defaultProviderSettings() }, new ClientCredentialsCache());
      const ep = endpoint('dynamics', config, secrets);
      const prepared = kind.map(ep, ctx({ last_name: 'Lovelace' }));
      const outbound = scripted([token, { status: 404, body: { error: { code: '0x80040217', message: 'lead With Id = x Does Not Exist' } } }]);
      const readBack = await kind.lookup(prepared, ep, io(outbound));
      assert.deepEqual(readBack, { found: false, detail: 'no lead row under the row id derived from the lead id (GET leads(<key>): 404 0x80040217)' });
      assert.equal(outbound.calls[1]!.url, `https://contoso.crm.dynamics.com/api/data/v9.2/leads(${leadGuid('ld_01TEST')})?$select=leadid`);
      assert.throws(
        () => dynamicsReadBack({ phase: 'api', status: 429, odataCode: '0x80072322', headers: { 'retry-after': '30' } }, 'k'),
        (e: unknown) => e instanceof DynamicsReadBackError && e.classification.code === 'dynamics_rate_limited' && e.classification.retryAfterMs === 30_000,
      );
      assert.match(dynamicsReadBack({ phase: 'api', status: 403, odataCode: '0x80040220' }, 'k').detail, /could not read back \(dynamics_forbidden/);
    });
  });
});
