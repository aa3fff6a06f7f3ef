import { z } from 'zod';
import type { Classification, EndpointKind, KindAnswer, SendIO } from '../types';
import type { KindDeps } from '../providers';
import type { FieldError } from '../../shared/errors';
import type { ReadBack } from '../../shared/delivery';
import { applyMapping, requireKeys, validateMapping, type Mapping } from '../../shared/mapping';
import { classifyHttpStatus, parseRetryAfter } from '../http-classify';
import { ClientCredentialsCache, classifyTokenFailure, deadline, oneLine, parseJson, tokenCacheKey, type CachedToken, type TokenRequest } from '../oauth';

/**
 * Salesforce Lead, upserted by an external-id field that holds our lead id.
 *
 * 1. Token: OAuth 2.0 client-credentials flow, `POST <loginUrl>/services/oauth2/token`
 *    (grant_type=client_credentials, client_id, client_secret) → `access_token` + `instance_url`.
 *    The flow is not served by login.salesforce.com / test.salesforce.com: `loginUrl` is the org's
 *    My Domain login URL (or the deployment's SALESFORCE_LOGIN_URL). Cached per endpoint in the
 *    worker; the answer has no lifetime, so a token is used until the API answers 401
 *    INVALID_SESSION_ID, then refreshed once and the request retried once, within the attempt.
 * 2. `PATCH <instance_url>/services/data/vXX.X/sobjects/Lead/<externalIdField>/<leadId>` with the
 *    mapped fields: 201 created, 200 updated (`created: false`) — the same lead id never makes a
 *    second Lead, so a retry after an ambiguous timeout is harmless. The Lead id is the message id.
 *
 * 3. Read-back (after an ambiguous attempt, before upserting again): `GET` the same
 *    `…/sobjects/Lead/<externalIdField>/<leadId>?fields=Id` with the same token: 200 → the Lead is
 *    there (its Id recorded, nothing sent); 404 → not there, the upsert goes ahead.
 *
 * LastName and Company are required on a Lead: the mapping must fill them (checked when the
 * endpoint is saved, and a lead without them fails permanently before anything is sent).
 * Sources: developer.salesforce.com/docs/platform/api-rest/guide/dome-upsert.html,
 * .../api_rest.meta/api_rest/errorcodes.htm, chatterapi quickstart_connecting.htm (client-credentials
 * token answer), help.salesforce.com article 000886201 (no client-credentials on login/test domains).
 */

export const USER_AGENT = 'lead-delivery/0.1 (+salesforce)';
export const REQUIRED_FIELDS = ['LastName', 'Company'] as const;
/** REQUEST_LIMIT_EXCEEDED: the org's rolling 24 h API allowance is spent; come back in an hour. */
export const REQUEST_LIMIT_WAIT_MS = 3_600_000;
/** Hosts that do not serve the client-credentials flow (Salesforce: use the My Domain URL). */
const GENERIC_LOGIN_HOSTS = new Set(['login.salesforce.com', 'test.salesforce.com']);

const apiName = /^[A-Za-z][A-Za-z0-9_]{0,79}$/;

export const salesforceConfig = z
  .object({
    loginUrl: z.url({ protocol: /^https?$/, message: 'must be an http(s) URL: the org\'s My Domain login URL, e.g. https://acme.my.salesforce.com' }).max(500).optional(),
    externalIdField: z.string().regex(apiName, 'must be the API name of a Lead field marked External ID (and Unique), e.g. "Lead_Id__c"'),
    apiVersion: z.string().regex(/^\d{2,3}\.0$/, 'must be a REST API version such as "62.0"').default('62.0'),
  })
  .strict();

export const salesforceSecrets = z
  .object({
    clientId: z.string().min(1).max(256).regex(/^\S+$/, 'must not contain spaces'),
    clientSecret: z.string().min(1).max(256).regex(/^\S+$/, 'must not contain spaces'),
  })
  .strict();

type Config = z.infer<typeof salesforceConfig>;
type Secrets = z.infer<typeof salesforceSecrets>;

export interface SalesforcePayload {
  tokenUrl: string;
  /** /services/data/vXX.X/sobjects/Lead/<field>/<leadId>, appended to the token's instance_url. */
  path: string;
  body: string;
  headers: Record<string, string>;
}

export interface SalesforceAnswer extends KindAnswer {
  phase?: 'token' | 'api';
  /** The first error's errorCode (REQUIRED_FIELD_MISSING, REQUEST_LIMIT_EXCEEDED, …). */
  errorCode?: string;
  fields?: string[];
  /** 201 (true) or 200 `created: false`. */
  created?: boolean;
  /** The token was refused (401) and refreshed within this attempt. */
  refreshed?: boolean;
}

function loginUrlOf(config: Config, deps: KindDeps): string {
  return (config.loginUrl ?? deps.providers.salesforceLoginUrl).replace(/\/+$/, '');
}

export function validateSalesforce(config: Config, mapping: unknown, deps: KindDeps): FieldError[] {
  const errors: FieldError[] = [];
  try {
    const host = new URL(loginUrlOf(config, deps)).hostname.toLowerCase();
    if (GENERIC_LOGIN_HOSTS.has(host)) {
      errors.push({ path: 'loginUrl', message: `the client-credentials flow is not served by ${host}: give the org's My Domain login URL (https://<MyDomain>.my.salesforce.com, or …sandbox.my.salesforce.com for a sandbox)` });
    }
  } catch {
    errors.push({ path: 'loginUrl', message: 'must be a URL' });
  }
  if (mapping === undefined || mapping === null) {
    errors.push({ path: 'mapping', message: `is required: a Salesforce Lead needs ${REQUIRED_FIELDS.join(' and ')} (e.g. {"LastName": "last_name", "Company": {"field": "custom.company", "default": "[not provided]"}})` });
    return errors;
  }
  errors.push(...validateMapping(mapping));
  if (typeof mapping !== 'object' || Array.isArray(mapping)) return errors;
  const keys = Object.keys(mapping);
  for (const required of REQUIRED_FIELDS) {
    if (!keys.includes(required)) errors.push({ path: `mapping.${required}`, message: `is required: Salesforce refuses a Lead without ${required}` });
  }
  for (const key of keys) {
    if (!apiName.test(key)) errors.push({ path: `mapping.${key}`, message: 'must be a Lead field API name (letters, digits, _; custom fields end in __c)' });
    else if (key.toLowerCase() === config.externalIdField.toLowerCase() || key === 'Id') {
      errors.push({ path: `mapping.${key}`, message: `is set from the URL (${config.externalIdField} = the lead id); remove it from the mapping` });
    }
  }
  return errors;
}

export function createSalesforceKind(deps: KindDeps, tokens = new ClientCredentialsCache()) {
  function tokenRequest(payload: SalesforcePayload, endpointId: string, secrets: Secrets): TokenRequest {
    const form = { grant_type: 'client_credentials', client_id: secrets.clientId, client_secret: secrets.clientSecret };
    return { key: tokenCacheKey(endpointId, payload.tokenUrl, form), tokenUrl: payload.tokenUrl, form, userAgent: USER_AGENT };
  }

  async function upsert(payload: SalesforcePayload, token: CachedToken, io: SendIO, remaining: () => number): Promise<SalesforceAnswer> {
    const instanceUrl = typeof token.fields.instance_url === 'string' ? token.fields.instance_url.replace(/\/+$/, '') : '';
    const response = await io.outbound.request({
      method: 'PATCH',
      url: `${instanceUrl}${payload.path}`,
      headers: { ...payload.headers, authorization: `Bearer ${token.accessToken}` },
      body: payload.body,
      timeoutMs: remaining(),
      signal: io.signal,
    });
    const text = response.body.toString('utf8');
    return { ...readSalesforceAnswer(response.status, text), headers: response.headers, body: text, bodyBytes: response.bodyBytes };
  }

  async function read(payload: SalesforcePayload, token: CachedToken, io: SendIO, remaining: () => number): Promise<SalesforceAnswer> {
    const instanceUrl = typeof token.fields.instance_url === 'string' ? token.fields.instance_url.replace(/\/+$/, '') : '';
    const { accept, 'user-agent': userAgent } = payload.headers;
    const response = await io.outbound.request({
      method: 'GET',
      url: `${instanceUrl}${payload.path}?fields=Id`,
      headers: { accept: accept!, 'user-agent': userAgent!, authorization: `Bearer ${token.accessToken}` },
      timeoutMs: remaining(),
      signal: io.signal,
    });
    const text = response.body.toString('utf8');
    return { ...readSalesforceAnswer(response.status, text), headers: response.headers, body: text, bodyBytes: response.bodyBytes };
  }

  return {
    kind: 'salesforce',
    description: 'Salesforce Lead upserted by an external-id field holding the lead id (OAuth client credentials)',
    configSchema: salesforceConfig,
    secretsSchema: salesforceSecrets,
    validate: (config, _secrets, mapping) => validateSalesforce(config, mapping, deps),
    map(endpoint, ctx) {
      const fields = applyMapping(endpoint.mapping as Mapping | undefined, ctx);
      requireKeys(fields, REQUIRED_FIELDS);
      const { config } = endpoint;
      const path = `/services/data/v${config.apiVersion}/sobjects/Lead/${encodeURIComponent(config.externalIdField)}/${encodeURIComponent(ctx.leadId)}`;
      const body = JSON.stringify(fields);
      const headers = { 'content-type': 'application/json', accept: 'application/json', 'user-agent': USER_AGENT };
      const tokenUrl = `${loginUrlOf(config, deps)}/services/oauth2/token`;
      return {
        payload: { tokenUrl, path, body, headers },
        // The instance URL comes with the token (client-credentials answer from tokenUrl).
        describe: { method: 'PATCH', url: `{instance_url from ${tokenUrl}}${path}`, headers: { authorization: 'Bearer ****', ...headers }, body },
      };
    },
    async send(prepared, endpoint, io): Promise<SalesforceAnswer> {
      const remaining = deadline(io.timeoutMs);
      const request = tokenRequest(prepared.payload, endpoint.endpointId, endpoint.secrets);
      let grant = await tokens.get(request, { outbound: io.outbound, timeoutMs: remaining(), signal: io.signal });
      if (!grant.ok) return grant.answer;
      if (typeof grant.token.fields.instance_url !== 'string' || !grant.token.fields.instance_url) {
        tokens.invalidate(request.key, grant.token.accessToken);
        return { phase: 'token', status: 200, providerCode: 'no_instance_url', providerMessage: 'the token answer has no instance_url' };
      }
      const answer = await upsert(prepared.payload, grant.token, io, remaining);
      if (answer.status !== 401) return answer;
      // A token the org no longer accepts (INVALID_SESSION_ID: expired or revoked session): one new token, one retry.
      tokens.invalidate(request.key, grant.token.accessToken);
      grant = await tokens.get(request, { outbound: io.outbound, timeoutMs: remaining(), signal: io.signal });
      if (!grant.ok) return { ...grant.answer, refreshed: true };
      return { ...(await upsert(prepared.payload, grant.token, io, remaining)), refreshed: true };
    },
    classify: (answer) => classifySalesforceAnswer(answer),
    async lookup(prepared, endpoint, io): Promise<ReadBack> {
      const remaining = deadline(io.timeoutMs);
      const request = tokenRequest(prepared.payload, endpoint.endpointId, endpoint.secrets);
      const field = endpoint.config.externalIdField;
      let grant = await tokens.get(request, { outbound: io.outbound, timeoutMs: remaining(), signal: io.signal });
      if (!grant.ok) return salesforceReadBack(grant.answer, field);
      if (typeof grant.token.fields.instance_url !== 'string' || !grant.token.fields.instance_url) {
        tokens.invalidate(request.key, grant.token.accessToken);
        return salesforceReadBack({ phase: 'token', status: 200, providerCode: 'no_instance_url', providerMessage: 'the token answer has no instance_url' }, field);
      }
      let answer = await read(prepared.payload, grant.token, io, remaining);
      if (answer.status === 401) {
        // The same one refresh as the upsert gets.
        tokens.invalidate(request.key, grant.token.accessToken);
        grant = await tokens.get(request, { outbound: io.outbound, timeoutMs: remaining(), signal: io.signal });
        if (!grant.ok) return salesforceReadBack({ ...grant.answer, refreshed: true }, field);
        answer = { ...(await read(prepared.payload, grant.token, io, remaining)), refreshed: true };
      }
      return salesforceReadBack(answer, field);
    },
  } satisfies EndpointKind<Config, Secrets, SalesforcePayload>;
}

/** A read-back Salesforce could not answer now (5xx, lock, request limit): the attempt is transient, nothing is sent. */
export class SalesforceReadBackError extends Error {
  constructor(readonly classification: Classification) {
    super(`Salesforce could not be read back: ${classification.code} (${classification.reason})`);
    this.name = 'SalesforceReadBackError';
  }
}

/**
 * What the read of `Lead/<externalIdField>/<leadId>` says: 200 with an Id → the Lead is there.
 * 404 → it is not (or the field is not an external id: the upsert then fails permanently on its
 * own). An answer that says "later" throws (nothing sent this attempt); any other refusal does not
 * block: the upsert by external id cannot make a second Lead, so it goes ahead and its answer decides.
 */
export function salesforceReadBack(answer: SalesforceAnswer, field: string): ReadBack {
  const what = `GET Lead/${field}/<lead id>`;
  const status = answer.status ?? 0;
  if (answer.phase === 'api' && status === 200) {
    const id = answer.messageId;
    if (!id) throw new SalesforceReadBackError({ outcome: 'transient', code: 'salesforce_unexpected_answer', reason: `${what}: 200 without an Id`, countsAgainstEndpoint: true });
    return { found: true, messageId: id, detail: `Lead ${id} holds this lead id in ${field}${answer.refreshed ? ' (read after one token refresh)' : ''}` };
  }
  if (answer.phase === 'api' && status === 404) {
    const note = answer.providerMessage && !/requested resource does not exist/i.test(answer.providerMessage) ? ` — ${oneLine(answer.providerMessage)}` : '';
    const code = answer.errorCode ? ` ${answer.errorCode}` : '';
    return { found: false, detail: `no Lead holds this lead id in ${field} (${what}: 404${code}${note})` };
  }
  const classification = classifySalesforceAnswer(answer);
  if (classification.outcome !== 'permanent') throw new SalesforceReadBackError(classification);
  return { found: false, detail: `could not read back (${classification.code}: ${classification.reason}); the upsert by external id cannot make a second Lead, so it goes ahead and its answer decides` };
}

/** Salesforce answers errors as an array `[{message, errorCode, fields}]`; a success as `{id, success, errors, created}`. */
export function readSalesforceAnswer(status: number, text: string): SalesforceAnswer {
  const answer: SalesforceAnswer = { phase: 'api', status };
  const parsed = parseJson(text);
  if (status >= 200 && status < 300) {
    // 201 created, 200 {created:false} updated; before API v46 an update answered 204 without a body.
    const body = parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
    // An upsert answers {id, …}; a read of the record answers its fields ({attributes, Id, …}).
    if (typeof body.id === 'string') answer.messageId = body.id;
    else if (typeof body.Id === 'string') answer.messageId = body.Id;
    answer.created = typeof body.created === 'boolean' ? body.created : status === 201;
    return answer;
  }
  const first = Array.isArray(parsed) ? (parsed[0] as Record<string, unknown> | undefined) : undefined;
  if (first && typeof first === 'object') {
    if (typeof first.errorCode === 'string') answer.errorCode = first.errorCode;
    if (typeof first.message === 'string') answer.providerMessage = first.message;
    if (Array.isArray(first.fields)) answer.fields = first.fields.filter((f): f is string => typeof f === 'string');
    if (answer.errorCode) answer.providerCode = answer.errorCode;
  }
  return answer;
}

const TRANSIENT_CODES = new Set(['UNABLE_TO_LOCK_ROW', 'SERVER_UNAVAILABLE', 'QUERY_TIMEOUT', 'REQUEST_RUNNING_TOO_LONG', 'CONCURRENT_PER_ORG_LONG_TXN_LIMIT_EXCEEDED']);
/**
 * Error codes about the endpoint itself (the app's session or its Authorization header), not about
 * one lead: they count against the endpoint's breaker. Any other named refusal is about this lead.
 */
const ENDPOINT_FAULT_CODES = new Set(['INVALID_SESSION_ID', 'INVALID_AUTH_HEADER']);

export function classifySalesforceAnswer(answer: SalesforceAnswer, now = Date.now()): Classification {
  if (answer.phase === 'token') return classifyTokenFailure('salesforce', answer);
  const status = answer.status ?? 0;
  const errorCode = answer.errorCode ?? '';
  const fields = answer.fields?.length ? ` [${answer.fields.join(', ')}]` : '';
  const label = `${status}${errorCode ? ` ${errorCode}` : ''}${answer.providerMessage ? `: ${oneLine(answer.providerMessage)}` : ''}${fields}${answer.refreshed ? ' (after one token refresh)' : ''}`;
  const retryAfterMs = parseRetryAfter(answer.headers?.['retry-after'], now);

  if (status >= 200 && status < 300) {
    const what = answer.created === false ? 'updated (an earlier attempt or another system had created it)' : 'created';
    return { outcome: 'success', code: 'ok', reason: `Lead ${answer.messageId ?? '(no id)'} ${what}${answer.refreshed ? ' after one token refresh' : ''}`, countsAgainstEndpoint: false };
  }
  if (status === 300) return { outcome: 'permanent', code: 'salesforce_multiple_matches', reason: `${label}: the external id matches several Leads (make the field Unique)`, countsAgainstEndpoint: false };
  if (errorCode === 'REQUEST_LIMIT_EXCEEDED') {
    return { outcome: 'transient', code: 'salesforce_request_limit_exceeded', reason: `${label} (the org's API allowance is spent: paused, not failed)`, countsAgainstEndpoint: true, retryAfterMs: Math.max(retryAfterMs ?? 0, REQUEST_LIMIT_WAIT_MS) };
  }
  if (TRANSIENT_CODES.has(errorCode)) return { outcome: 'transient', code: `salesforce_${errorCode.toLowerCase()}`, reason: label, countsAgainstEndpoint: true, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
  if (status === 401) return { outcome: 'permanent', code: 'salesforce_invalid_session', reason: `${label}: the org refuses the app's token`, countsAgainstEndpoint: true };
  if (status >= 500 || status === 408 || status === 429) return { outcome: 'transient', code: errorCode ? `salesforce_${errorCode.toLowerCase()}` : `http_${status}`, reason: label, countsAgainstEndpoint: true, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
  if (/^[A-Z_]{1,80}$/.test(errorCode)) return { outcome: 'permanent', code: `salesforce_${errorCode.toLowerCase()}`, reason: label, countsAgainstEndpoint: ENDPOINT_FAULT_CODES.has(errorCode) };
  return { ...classifyHttpStatus(answer), reason: label };
}
