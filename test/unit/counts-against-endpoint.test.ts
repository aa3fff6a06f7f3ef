/**
 * Each kind decides whether a failure counts against its endpoint (`countsAgainstEndpoint`), where
 * the breaker once matched code names with one regular expression. This test enumerates the
 * outcomes every kind (and the registry) produces and checks that the kind's decision is the one
 * that expression made: the old regex and the old `healthOf` are kept here, as the oracle only.
 */
import assert from 'node:assert/strict';
import { z } from 'zod';
import { classifyHttpStatus } from '../../activities/http-classify';
import { classifyZapierAnswer } from '../../activities/zapier';
import { classifyResendAnswer } from '../../activities/email';
import { CARRIER_CODES, classifySms, PERMANENT_CODES, TRANSIENT_CODES } from '../../activities/sms';
import { classifySheets } from '../../activities/sheets';
import { classifyHubspotAnswer, type HubspotAnswer } from '../../activities/hubspot';
import { classifySalesforceAnswer, type SalesforceAnswer } from '../../activities/salesforce';
import { classifyDynamicsAnswer, type DynamicsAnswer } from '../../activities/dynamics';
import { classifyTokenFailure } from '../../activities/oauth';
import { classifyThrown, createRegistry, NETWORK_ERRORS } from '../../activities/registry';
import type { AttemptContext, Classification, EndpointKind, KindAnswer, LoadedEndpoint } from '../../activities/types';
import { MappingError } from '../../activities/types';
import { healthOf } from '../../shared/breaker';
import { createOutbound, OutboundError, type OutboundErrorCode } from '../../shared/http/outbound';
import { MAX_RETRY_AFTER_MS, type OutcomeClass } from '../../shared/delivery';

// ---- the oracle: shared/breaker.ts as it was ---------------------------------------------------

const OLD_ENDPOINT_FAULT = /^(http_(401|403|404|405|410)|redirect_refused|blocked_address|invalid_url|.*(auth|unauthori[sz]ed|forbidden|api_key|invalid_token|invalid_client|invalid_grant|domain_not_verified|invalid_from|not_shared|insufficient_scope|session|twilio_(20003|21606|21608)).*)$/;

function oldHealthOf(outcome: OutcomeClass, code: string): 'success' | 'failure' | 'neutral' {
  if (outcome === 'success') return 'success';
  if (code === 'cancelled' || code === 'interrupted' || code.startsWith('read_back_')) return 'neutral';
  if (outcome === 'transient' || outcome === 'unknown') return 'failure';
  return OLD_ENDPOINT_FAULT.test(code) ? 'failure' : 'neutral';
}

/** Checks every classification; returns the distinct (outcome, code) pairs seen, for the coverage asserts. */
function check(kind: string, classifications: Classification[]): Set<string> {
  const seen = new Set<string>();
  for (const c of classifications) {
    const what = `${kind}: ${c.outcome} ${c.code}`;
    assert.equal(typeof c.countsAgainstEndpoint, 'boolean', what);
    const old = oldHealthOf(c.outcome, c.code);
    // The regex decided permanent answers: the kind's flag is what it said.
    if (c.outcome === 'permanent') assert.equal(c.countsAgainstEndpoint, OLD_ENDPOINT_FAULT.test(c.code), what);
    // For every outcome the flag says whether the breaker counted it, and the breaker's decision is unchanged…
    assert.equal(c.countsAgainstEndpoint, old === 'failure', what);
    assert.equal(healthOf(c.outcome, c.code, c.countsAgainstEndpoint), old, what);
    // … and so is the fallback for results recorded before the flag existed.
    assert.equal(healthOf(c.outcome, c.code, undefined), old, `${what} (fallback)`);
    seen.add(`${c.outcome} ${c.code}`);
  }
  return seen;
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const STATUSES = [0, ...range(100, 599)];
const grid = <A, B>(as: readonly A[], bs: readonly B[]): Array<[A, B]> => as.flatMap((a) => bs.map((b) => [a, b] as [A, B]));

describe('countsAgainstEndpoint: each kind decides as the breaker regex did', () => {
  it('plain HTTP (webhook, and the fallback of the others)', () => {
    const seen = check('http', [...STATUSES.map((status) => classifyHttpStatus({ status })), classifyHttpStatus({ status: 302, headers: { location: 'http://elsewhere.test/' } }), classifyHttpStatus({})]);
    for (const code of ['permanent redirect_refused', 'permanent http_401', 'permanent http_404', 'permanent http_410', 'permanent http_422', 'transient http_503']) assert.ok(seen.has(code), code);
  });

  it('zapier', () => {
    check('zapier', STATUSES.map((status) => classifyZapierAnswer({ status, headers: { 'retry-after': '3' } })));
  });

  it('email (Resend)', () => {
    const now = Date.parse('2026-03-14T15:00:00Z');
    // Resend's error names (https://resend.com/docs/api-reference/errors), an unnamed and a malformed one.
    const names = [
      'validation_error', 'missing_required_field', 'missing_api_key', 'invalid_api_key', 'restricted_api_key', 'suspended_api_key',
      'invalid_from_address', 'invalid_to_address', 'invalid_attachment', 'invalid_parameter', 'invalid_access', 'invalid_region',
      'invalid_scope', 'invalid_idempotency_key', 'invalid_idempotent_request', 'not_found', 'method_not_allowed', 'security_error',
      'rate_limit_exceeded', 'daily_quota_exceeded', 'monthly_quota_exceeded', 'concurrent_idempotent_requests', 'application_error', 'internal_server_error',
      '', 'Not A Name',
    ];
    const messages = ['x', 'The example.com domain is not verified', 'API key is invalid'];
    const statuses = [200, 302, 400, 401, 402, 403, 404, 405, 408, 409, 410, 422, 429, 451, 500, 502, 503];
    const answers: KindAnswer[] = [
      ...grid(grid(statuses, names), messages).map(([[status, name], message]) => ({ status, providerCode: name, providerMessage: message })),
      // Answers the kind makes itself (no status): suppressed, no key, unverified domain, timeout, cancelled, the SDK's network failure.
      ...['suppressed', 'missing_api_key', 'domain_not_verified', 'timeout', 'cancelled', 'application_error', ''].map((providerCode) => ({ providerCode, providerMessage: 'm' })),
    ];
    const seen = check('email', answers.map((a) => classifyResendAnswer(a, now)));
    for (const code of ['permanent resend_invalid_api_key', 'permanent resend_domain_not_verified', 'permanent resend_missing_api_key', 'permanent resend_invalid_from_address', 'permanent suppressed', 'permanent http_401', 'unknown cancelled', 'unknown resend_network_error']) assert.ok(seen.has(code), code);
  });

  it('sms (Twilio)', () => {
    const codes = [...Object.keys(PERMANENT_CODES), ...Object.keys(TRANSIENT_CODES), ...Object.keys(CARRIER_CODES), '99999'];
    const answers: KindAnswer[] = [
      ...grid([400, 401, 403, 404, 429, 500, 503], codes).map(([status, providerCode]) => ({ status, providerCode, providerMessage: 'm' })),
      ...STATUSES.map((status) => ({ status })),
      { providerCode: 'suppressed', providerMessage: 'suppressed' },
      { status: 200, providerCode: 'already_sent' },
    ];
    const seen = check('sms', answers.map((a) => classifySms(a)));
    for (const code of ['permanent twilio_20003', 'permanent twilio_21606', 'permanent twilio_21608', 'permanent twilio_21211', 'permanent suppressed', 'transient twilio_99999']) assert.ok(seen.has(code), code);
  });

  it('sheets (Google)', () => {
    const answers: KindAnswer[] = [
      ...grid(grid(STATUSES, [undefined, 'RESOURCE_EXHAUSTED', 'PERMISSION_DENIED', 'NOT_FOUND', 'INVALID_ARGUMENT', 'UNAUTHENTICATED']), ['', 'Rate Limit Exceeded', 'Unable to parse range: Leads!A1']).map(([[status, providerCode], providerMessage]) => ({ status, ...(providerCode ? { providerCode } : {}), providerMessage })),
      ...['already_present', 'quota_wait', 'header_mismatch'].map((providerCode) => ({ providerCode, providerMessage: 'm' })),
    ];
    const seen = check('sheets', answers.map((a) => classifySheets(a)));
    for (const code of ['permanent sheets_header_mismatch', 'permanent sheets_tab_not_found', 'permanent http_403', 'transient sheets_quota_wait']) assert.ok(seen.has(code), code);
  });

  it('hubspot', () => {
    const categories = [undefined, 'VALIDATION_ERROR', 'INVALID_EMAIL', 'PROPERTY_DOESNT_EXIST', 'CONFLICT', 'OBJECT_NOT_FOUND', 'MISSING_SCOPES', 'INVALID_AUTHENTICATION', 'BAD_REQUEST', 'RATE_LIMITS', 'RATE_LIMIT', 'OBJECT_ALREADY_EXISTS', 'Not a category'];
    const answers: HubspotAnswer[] = grid(grid(STATUSES, categories), [undefined, 'DAILY', 'TEN_SECONDLY_ROLLING']).map(([[status, category], policyName]) => ({
      status,
      ...(category ? { category } : {}),
      ...(policyName ? { policyName } : {}),
      ...(status >= 200 && status < 300 ? { messageId: '101' } : {}),
    }));
    answers.push({ status: 200 });
    const seen = check('hubspot', answers.map((a) => classifyHubspotAnswer(a, Date.UTC(2025, 5, 10, 20, 30))));
    for (const code of ['permanent hubspot_invalid_token', 'permanent hubspot_missing_scopes', 'permanent hubspot_validation_error', 'permanent http_404', 'transient hubspot_unexpected_answer']) assert.ok(seen.has(code), code);
  });

  // OAuth's error codes (RFC 6749 5.2) and those Salesforce and Entra ID add.
  const tokenErrors = ['invalid_client', 'invalid_client_id', 'invalid_grant', 'unauthorized_client', 'invalid_request', 'unsupported_grant_type', 'invalid_scope', 'inactive_user', 'inactive_org', 'invalid_app_access', 'invalid_resource', 'temporarily_unavailable', 'server_error', '', 'NotOAuth'];
  const tokenAnswers = grid([400, 401, 403, 408, 429, 500, 503], tokenErrors).map(([status, providerCode]) => ({ phase: 'token' as const, status, providerCode, providerMessage: 'm' }));

  it('salesforce, its token endpoint included', () => {
    const errorCodes = [undefined, 'REQUEST_LIMIT_EXCEEDED', 'UNABLE_TO_LOCK_ROW', 'SERVER_UNAVAILABLE', 'QUERY_TIMEOUT', 'INVALID_SESSION_ID', 'INVALID_AUTH_HEADER', 'REQUIRED_FIELD_MISSING', 'INVALID_FIELD', 'DUPLICATE_VALUE', 'FIELD_CUSTOM_VALIDATION_EXCEPTION', 'NOT_FOUND', 'INSUFFICIENT_ACCESS_OR_READONLY', 'INVALID_EMAIL_ADDRESS', 'STRING_TOO_LONG', 'API_DISABLED_FOR_ORG', 'ENTITY_IS_DELETED', 'INVALID_TYPE', 'METHOD_NOT_ALLOWED', 'CODE_1', 'lowercase'];
    const answers: SalesforceAnswer[] = [
      ...grid(STATUSES, errorCodes).map(([status, errorCode]) => ({ phase: 'api' as const, status, ...(errorCode ? { errorCode, providerCode: errorCode } : {}), messageId: '00Q1' })),
      ...tokenAnswers,
    ];
    const seen = check('salesforce', answers.map((a) => classifySalesforceAnswer(a)));
    for (const code of ['permanent salesforce_invalid_session', 'permanent salesforce_invalid_session_id', 'permanent salesforce_invalid_auth_header', 'permanent salesforce_required_field_missing', 'permanent salesforce_invalid_client', 'permanent salesforce_invalid_request', 'permanent salesforce_token_401']) assert.ok(seen.has(code), code);
  });

  it('dynamics, its token endpoint included', () => {
    const odataCodes = [undefined, '0x80072322', '0x80072321', '0x80072326', '0x80040333', '0x80040217', '0x80048306'];
    const answers: DynamicsAnswer[] = [
      ...grid(STATUSES, odataCodes).map(([status, odataCode]) => ({ phase: 'api' as const, status, ...(odataCode ? { odataCode, providerCode: odataCode } : {}) })),
      { phase: 'api', status: 412, providerCode: 'already_present', messageId: 'g' },
      ...tokenAnswers,
    ];
    const seen = check('dynamics', answers.map((a) => classifyDynamicsAnswer(a)));
    for (const code of ['permanent dynamics_unauthorized', 'permanent dynamics_forbidden', 'permanent dynamics_not_found', 'permanent dynamics_method_not_allowed', 'permanent dynamics_duplicate_detected', 'permanent dynamics_unauthorized_client']) assert.ok(seen.has(code), code);
  });

  it('oauth token failures on their own', () => {
    check('oauth', tokenAnswers.map((a) => classifyTokenFailure('salesforce', a)));
  });

  it('the registry: thrown errors, network failures, read-backs', async () => {
    const codes: OutboundErrorCode[] = ['timeout', 'dns_error', 'connection_refused', 'connection_reset', 'tls_error', 'blocked_address', 'invalid_url', 'aborted', 'network_error'];
    const sents = [true, false, undefined];
    const thrown: Classification[] = [
      ...grid(codes, sents).map(([code, sent]) => classifyThrown(new OutboundError(code, 'x', sent === undefined ? {} : { sent }), 10_000)),
      ...grid([...Object.keys(NETWORK_ERRORS), 'ERR_TLS_X', 'EHOSTUNREACH'], sents).map(([code, sent]) => classifyThrown(new OutboundError('network_error', 'x', { cause: Object.assign(new Error(code), { code }), ...(sent === undefined ? {} : { sent }) }), 10_000)),
      classifyThrown(new MappingError('last_name is required'), 10_000),
      classifyThrown(new TypeError('bug'), 10_000),
    ];
    const seen = check('registry', thrown);
    for (const code of ['permanent blocked_address', 'permanent invalid_url', 'permanent mapping_error', 'unknown cancelled', 'transient internal_error']) assert.ok(seen.has(code), code);

    // Through `attempt`: the kind's flag passes, a read-back that fails is neutral, the attempt timeout counts.
    let behaviour: 'answer' | 'lookup_fails' | 'lookup_found' | 'hang' = 'answer';
    const fake: EndpointKind = {
      kind: 'fake',
      description: 'test double',
      configSchema: z.record(z.string(), z.unknown()),
      secretsSchema: z.record(z.string(), z.unknown()),
      map: () => ({ payload: {}, describe: { method: 'POST', url: 'https://buyer.test/' } }),
      send: () => (behaviour === 'hang' ? new Promise<KindAnswer>(() => undefined) : Promise.resolve({ status: 401, headers: { 'retry-after': '99999999' } })),
      classify: (answer) => ({ ...classifyHttpStatus(answer), outcome: 'transient', code: 'http_401', countsAgainstEndpoint: true, retryAfterMs: 99_999_999_000 }),
      lookup: () => {
        if (behaviour === 'lookup_found') return Promise.resolve({ found: true, detail: 'row 2' });
        return Promise.reject(Object.assign(new Error('later'), { classification: { outcome: 'transient', code: 'http_503', reason: '503', countsAgainstEndpoint: true, retryAfterMs: 99_999_999_000 } }));
      },
    };
    const registry = createRegistry({ outbound: createOutbound(), kinds: [fake] });
    const endpoint: LoadedEndpoint = { endpointId: 'ep_1', buyerId: 'buy_1', kind: 'fake', role: 'accept', config: {}, secrets: {}, timeoutMs: 50 };
    const ctx: AttemptContext = { leadId: 'ld_1', sourceId: 'src_1', receivedAt: 0, lead: {}, endpointId: 'ep_1', buyerId: 'buy_1', attempt: 2, now: 0 };
    const answered = await registry.attempt(endpoint, ctx);
    assert.deepEqual([answered.code, answered.countsAgainstEndpoint, answered.retryAfterMs], ['http_401', true, MAX_RETRY_AFTER_MS], "the kind's flag passes; the wait is capped");
    behaviour = 'lookup_fails';
    const readBack = await registry.attempt(endpoint, { ...ctx, readBack: true });
    assert.deepEqual([readBack.code, readBack.countsAgainstEndpoint, readBack.retryAfterMs], ['read_back_http_503', false, MAX_RETRY_AFTER_MS]);
    behaviour = 'lookup_found';
    const found = await registry.attempt(endpoint, { ...ctx, readBack: true });
    behaviour = 'hang';
    const timedOut = await registry.attempt(endpoint, ctx);
    assert.equal(timedOut.code, 'timeout');
    check('registry attempt', [answered, readBack, found, timedOut]);
  });

  it("the attempt's own refusals (nothing sent) were never the endpoint's fault", () => {
    for (const code of ['endpoint_deleted', 'endpoint_archived', 'credentials_unreadable', 'breaker_open']) assert.equal(OLD_ENDPOINT_FAULT.test(code), false, code);
  });
});
