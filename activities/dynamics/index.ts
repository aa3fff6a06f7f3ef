import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Classification, EndpointKind, KindAnswer, SendIO } from '../types';
import type { KindDeps } from '../providers';
import type { FieldError } from '../../shared/errors';
import type { ReadBack } from '../../shared/delivery';
import { applyMapping, validateMapping, type Mapping } from '../../shared/mapping';
import { classifyHttpStatus, parseRetryAfter } from '../http-classify';
import { ClientCredentialsCache, classifyTokenFailure, deadline, oneLine, parseJsonObject, tokenCacheKey, type CachedToken, type TokenRequest } from '../oauth';

/**
 * Microsoft Dynamics 365 / Dataverse Web API: one `lead` row per lead.
 *
 * 1. Token: OAuth 2.0 client credentials against Microsoft Entra ID,
 *    `POST <authority>/<tenantId>/oauth2/v2.0/token` (client_id, client_secret,
 *    scope=<orgUrl>/.default, grant_type=client_credentials). Cached per endpoint until
 *    `expires_in` (less a minute); a 401 from the Web API refreshes it once and retries once.
 * 2. The row is written with an upsert that may only create (Dataverse "prevent update in upsert"):
 *    `PATCH <orgUrl>/api/data/v9.2/leads(<key>)` with `If-None-Match: *`, where `<key>` is
 *      - `<alternateKey>='<leadId>'` when the endpoint names an alternate key of the lead table
 *        (a column holding our lead id), or
 *      - the row's primary key `leadid`, a GUID derived from our lead id (Dataverse lets a client
 *        choose the id of a row it creates; the same lead always gets the same GUID).
 *    A retry after an ambiguous timeout therefore cannot make a second row: Dataverse answers
 *    412 "A record with matching key values already exists", which is success (`already_present`,
 *    nothing rewritten). `Prefer: return=representation` + `$select=leadid` returns the row id.
 *    With `duplicateDetection`, `MSCRM.SuppressDuplicateDetection: false` makes the org's duplicate
 *    rules refuse a lead that duplicates another record (500, 0x80040333: permanent).
 * 3. Read-back (after an ambiguous attempt, before writing again): `GET leads(<key>)?$select=leadid`
 *    with the same token: 200 → the row is there (its id recorded, nothing sent); 404 → not there.
 * Sources: learn.microsoft.com/power-apps/developer/data-platform/webapi/ (create-entity-web-api,
 * update-delete-entities-using-web-api "Upsert a table row", perform-conditional-operations-using-
 * web-api "Prevent update in upsert", compose-http-requests-handle-errors, manage-duplicate-
 * detection-create-update), data-platform/api-limits (429 + Retry-After), and
 * learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow.
 */

export const USER_AGENT = 'lead-delivery/0.1 (+dynamics)';

/** Columns written when the endpoint has no mapping (the lead table's standard columns). */
export const DEFAULT_MAPPING: Mapping = {
  subject: { template: 'Lead {lead_id}' },
  firstname: 'first_name',
  lastname: 'last_name',
  emailaddress1: 'email',
  telephone1: 'phone',
  address1_line1: 'address',
  address1_city: 'city',
  address1_stateorprovince: 'state',
  address1_postalcode: 'zip',
  address1_country: 'country',
};

const logicalName = /^[a-z][a-z0-9_]{0,99}$/;

export const dynamicsConfig = z
  .object({
    orgUrl: z
      .url({ protocol: /^https?$/, message: 'must be the environment URL, e.g. https://contoso.crm.dynamics.com' })
      .max(300)
      .refine((v) => !/[?#]/.test(v) && /^[^/]+\/\/[^/]+\/?$/.test(v), 'must be the environment URL without a path, e.g. https://contoso.crm.dynamics.com'),
    tenantId: z.string().regex(/^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)$/, 'must be the Entra ID tenant id (a GUID) or its domain, e.g. contoso.onmicrosoft.com'),
    alternateKey: z.string().regex(logicalName, 'must be the logical name of a lead column that is an alternate key, e.g. "new_leadref"').optional(),
    apiVersion: z.string().regex(/^9\.\d$/, 'must be a Web API version such as "9.2"').default('9.2'),
    duplicateDetection: z.boolean().default(false),
  })
  .strict();

export const dynamicsSecrets = z
  .object({
    clientId: z.string().regex(/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/, 'must be the application (client) id, a GUID'),
    clientSecret: z.string().min(1).max(512),
  })
  .strict();

type Config = z.infer<typeof dynamicsConfig>;
type Secrets = z.infer<typeof dynamicsSecrets>;

export interface DynamicsPayload {
  tokenUrl: string;
  scope: string;
  /** The row: leads(<key>), and the same with `?$select=leadid`. */
  rowUrl: string;
  writeUrl: string;
  headers: Record<string, string>;
  body: string;
  /** Known when the row is keyed by its primary key. */
  leadGuid?: string;
}

export interface DynamicsAnswer extends KindAnswer {
  phase?: 'token' | 'api';
  /** OData error code (frequently empty; hex codes such as 0x80072322). */
  odataCode?: string;
  /** The token was refused (401) and refreshed within this attempt. */
  refreshed?: boolean;
}

/** The lead's row id when no alternate key is configured: a name-based GUID (RFC 9562 version 8) from the lead id. */
export function leadGuid(leadId: string): string {
  const bytes = createHash('sha256').update(`lead-delivery:lead:${leadId}`).digest().subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x80;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** OData key segment: a GUID as is, a string in single quotes (quotes doubled), URL-encoded. */
export function keySegment(alternateKey: string | undefined, leadId: string): string {
  if (!alternateKey) return leadGuid(leadId);
  return `${alternateKey}='${encodeURIComponent(leadId.replace(/'/g, "''"))}'`;
}

export function validateDynamics(config: Config, mapping: unknown): FieldError[] {
  const errors = validateMapping(mapping);
  if (mapping !== undefined && mapping !== null && typeof mapping === 'object' && !Array.isArray(mapping)) {
    for (const key of Object.keys(mapping)) {
      if (!/^[a-z][a-z0-9_]{0,99}(@odata\.bind)?$/.test(key)) errors.push({ path: `mapping.${key}`, message: 'must be a lead column logical name (lower case, e.g. "emailaddress1"), or "<lookup>@odata.bind"' });
      else if (key === 'leadid' || key === config.alternateKey) errors.push({ path: `mapping.${key}`, message: 'is the row key, set from the lead id; remove it from the mapping' });
    }
  }
  return errors;
}

export function createDynamicsKind(deps: KindDeps, tokens = new ClientCredentialsCache()) {
  const authority = deps.providers.dynamicsAuthorityUrl.replace(/\/+$/, '');

  function tokenRequest(payload: DynamicsPayload, endpointId: string, secrets: Secrets): TokenRequest {
    const form = { client_id: secrets.clientId, scope: payload.scope, client_secret: secrets.clientSecret, grant_type: 'client_credentials' };
    return { key: tokenCacheKey(endpointId, payload.tokenUrl, form), tokenUrl: payload.tokenUrl, form, userAgent: USER_AGENT };
  }

  async function write(payload: DynamicsPayload, token: CachedToken, io: SendIO, remaining: () => number): Promise<DynamicsAnswer> {
    const response = await io.outbound.request({
      method: 'PATCH',
      url: payload.writeUrl,
      headers: { ...payload.headers, Authorization: `Bearer ${token.accessToken}` },
      body: payload.body,
      timeoutMs: remaining(),
      signal: io.signal,
    });
    const text = response.body.toString('utf8');
    return { ...readDynamicsAnswer(response.status, text, response.headers, payload.leadGuid), headers: response.headers, body: text, bodyBytes: response.bodyBytes };
  }

  /** GET the row (its key column only). `If-None-Match: null`: the current row, never a cached one. */
  async function read(payload: DynamicsPayload, token: CachedToken, io: SendIO, remaining: () => number): Promise<DynamicsAnswer> {
    const response = await io.outbound.request({
      method: 'GET',
      url: `${payload.rowUrl}?$select=leadid`,
      headers: { Authorization: `Bearer ${token.accessToken}`, Accept: 'application/json', 'OData-MaxVersion': '4.0', 'OData-Version': '4.0', 'If-None-Match': 'null', 'User-Agent': USER_AGENT },
      timeoutMs: remaining(),
      signal: io.signal,
    });
    const text = response.body.toString('utf8');
    return { ...readDynamicsAnswer(response.status, text, response.headers), headers: response.headers, body: text, bodyBytes: response.bodyBytes };
  }

  /** The id of the row that already exists (412): known for a primary key, read for an alternate key. */
  async function existingId(payload: DynamicsPayload, token: CachedToken, io: SendIO, remaining: () => number): Promise<string | undefined> {
    if (payload.leadGuid) return payload.leadGuid;
    const answer = await read(payload, token, io, remaining);
    return answer.status === 200 ? answer.messageId : undefined;
  }

  return {
    kind: 'dynamics',
    description: 'Microsoft Dynamics 365 (Dataverse) lead created once per lead id (alternate key or derived row id; Entra ID client credentials)',
    configSchema: dynamicsConfig,
    secretsSchema: dynamicsSecrets,
    validate: (config, _secrets, mapping) => validateDynamics(config, mapping),
    map(endpoint, ctx) {
      const { config } = endpoint;
      const fields = applyMapping((endpoint.mapping as Mapping | undefined) ?? DEFAULT_MAPPING, ctx);
      const orgUrl = config.orgUrl.replace(/\/+$/, '');
      const rowUrl = `${orgUrl}/api/data/v${config.apiVersion}/leads(${keySegment(config.alternateKey, ctx.leadId)})`;
      const writeUrl = `${rowUrl}?$select=leadid`;
      const headers: Record<string, string> = {
        Accept: 'application/json',
        'Content-Type': 'application/json; charset=utf-8',
        'OData-MaxVersion': '4.0',
        'OData-Version': '4.0',
        'If-None-Match': '*',
        Prefer: 'return=representation',
        ...(config.duplicateDetection ? { 'MSCRM.SuppressDuplicateDetection': 'false' } : {}),
        'User-Agent': USER_AGENT,
      };
      const body = JSON.stringify(fields);
      const tokenUrl = `${authority}/${encodeURIComponent(config.tenantId)}/oauth2/v2.0/token`;
      return {
        payload: { tokenUrl, scope: `${orgUrl}/.default`, rowUrl, writeUrl, headers, body, ...(config.alternateKey ? {} : { leadGuid: leadGuid(ctx.leadId) }) },
        describe: { method: 'PATCH', url: writeUrl, headers: { Authorization: 'Bearer ****', ...headers }, body },
      };
    },
    async send(prepared, endpoint, io): Promise<DynamicsAnswer> {
      const remaining = deadline(io.timeoutMs);
      const payload = prepared.payload;
      const request = tokenRequest(payload, endpoint.endpointId, endpoint.secrets);
      let grant = await tokens.get(request, { outbound: io.outbound, timeoutMs: remaining(), signal: io.signal });
      if (!grant.ok) return grant.answer;
      let answer = await write(payload, grant.token, io, remaining);
      if (answer.status === 401) {
        // The token expired early or was revoked: one new token, one retry.
        tokens.invalidate(request.key, grant.token.accessToken);
        grant = await tokens.get(request, { outbound: io.outbound, timeoutMs: remaining(), signal: io.signal });
        if (!grant.ok) return { ...grant.answer, refreshed: true };
        answer = { ...(await write(payload, grant.token, io, remaining)), refreshed: true };
      }
      if (answer.status === 412) {
        // Our only precondition is If-None-Match: * — the row exists: an earlier attempt made it.
        const id = await existingId(payload, grant.token, io, remaining);
        return { ...answer, providerCode: 'already_present', ...(id ? { messageId: id } : {}) };
      }
      return answer;
    },
    classify: (answer) => classifyDynamicsAnswer(answer),
    async lookup(prepared, endpoint, io): Promise<ReadBack> {
      const remaining = deadline(io.timeoutMs);
      const request = tokenRequest(prepared.payload, endpoint.endpointId, endpoint.secrets);
      const key = endpoint.config.alternateKey ? `alternate key ${endpoint.config.alternateKey}` : 'the row id derived from the lead id';
      let grant = await tokens.get(request, { outbound: io.outbound, timeoutMs: remaining(), signal: io.signal });
      if (!grant.ok) return dynamicsReadBack(grant.answer, key);
      let answer = await read(prepared.payload, grant.token, io, remaining);
      if (answer.status === 401) {
        // The same one refresh as the write gets.
        tokens.invalidate(request.key, grant.token.accessToken);
        grant = await tokens.get(request, { outbound: io.outbound, timeoutMs: remaining(), signal: io.signal });
        if (!grant.ok) return dynamicsReadBack({ ...grant.answer, refreshed: true }, key);
        answer = { ...(await read(prepared.payload, grant.token, io, remaining)), refreshed: true };
      }
      return dynamicsReadBack(answer, key);
    },
  } satisfies EndpointKind<Config, Secrets, DynamicsPayload>;
}

/** A read-back Dataverse could not answer now (429, 5xx): the attempt is transient, nothing is sent. */
export class DynamicsReadBackError extends Error {
  constructor(readonly classification: Classification) {
    super(`Dataverse could not be read back: ${classification.code} (${classification.reason})`);
    this.name = 'DynamicsReadBackError';
  }
}

/**
 * What the read of `leads(<key>)` says: 200 → the row is there; 404 → it is not. An answer that
 * says "later" throws (nothing sent this attempt); any other refusal does not block: the write is
 * create-only on that key, so it cannot make a second row; it goes ahead and its answer decides.
 */
export function dynamicsReadBack(answer: DynamicsAnswer, key: string): ReadBack {
  const status = answer.status ?? 0;
  if (answer.phase === 'api' && status === 200) {
    if (!answer.messageId) throw new DynamicsReadBackError({ outcome: 'transient', code: 'dynamics_unexpected_answer', reason: 'GET leads(<key>): 200 without a leadid', countsAgainstEndpoint: true });
    return { found: true, messageId: answer.messageId, detail: `lead row ${answer.messageId} exists under ${key}${answer.refreshed ? ' (read after one token refresh)' : ''}` };
  }
  if (answer.phase === 'api' && status === 404) return { found: false, detail: `no lead row under ${key} (GET leads(<key>): 404${answer.odataCode ? ` ${answer.odataCode}` : ''})` };
  const classification = classifyDynamicsAnswer(answer);
  if (classification.outcome !== 'permanent') throw new DynamicsReadBackError(classification);
  return { found: false, detail: `could not read back (${classification.code}: ${classification.reason}); the create-only write on that key cannot make a second row, so it goes ahead and its answer decides` };
}

/** Dataverse answers `{leadid, …}` (return=representation), or 204 with OData-EntityId, or `{error:{code,message}}`. */
export function readDynamicsAnswer(status: number, text: string, headers: Record<string, string>, knownGuid?: string): DynamicsAnswer {
  const answer: DynamicsAnswer = { phase: 'api', status };
  const parsed = parseJsonObject(text);
  if (status >= 200 && status < 300) {
    const fromBody = parsed?.leadid;
    const fromHeader = /\(([0-9a-fA-F-]{36})\)\s*$/.exec(headers['odata-entityid'] ?? '')?.[1];
    const id = typeof fromBody === 'string' ? fromBody : (fromHeader ?? knownGuid);
    if (id) answer.messageId = id;
    return answer;
  }
  const error = parsed?.error as Record<string, unknown> | undefined;
  if (error && typeof error === 'object') {
    if (typeof error.code === 'string' && error.code) {
      answer.odataCode = error.code;
      answer.providerCode = error.code;
    }
    if (typeof error.message === 'string') answer.providerMessage = error.message;
  }
  return answer;
}

/** Service protection limit codes (data-platform/api-limits): requests, execution time, concurrency. */
const SERVICE_PROTECTION = new Set(['0x80072322', '0x80072321', '0x80072326']);

export function classifyDynamicsAnswer(answer: DynamicsAnswer, now = Date.now()): Classification {
  if (answer.phase === 'token') return classifyTokenFailure('dynamics', answer);
  const status = answer.status ?? 0;
  const message = answer.providerMessage ? oneLine(answer.providerMessage) : '';
  const label = `${status}${answer.odataCode ? ` ${answer.odataCode}` : ''}${message ? `: ${message}` : ''}${answer.refreshed ? ' (after one token refresh)' : ''}`;
  const retryAfterMs = parseRetryAfter(answer.headers?.['retry-after'], now);
  const after = retryAfterMs !== undefined ? { retryAfterMs } : {};

  if (answer.providerCode === 'already_present') {
    return { outcome: 'success', code: 'already_present', reason: `lead ${answer.messageId ?? '(id not read)'} already exists (an earlier attempt created it): not written again`, countsAgainstEndpoint: false };
  }
  if (status >= 200 && status < 300) return { outcome: 'success', code: 'ok', reason: `lead ${answer.messageId ?? '(no id)'} created${answer.refreshed ? ' after one token refresh' : ''}`, countsAgainstEndpoint: false };
  if (status === 429 || SERVICE_PROTECTION.has(answer.odataCode ?? '')) {
    return { outcome: 'transient', code: 'dynamics_rate_limited', reason: `${label} (Dataverse service protection limit)`, countsAgainstEndpoint: true, ...after };
  }
  if (answer.odataCode === '0x80040333') return { outcome: 'permanent', code: 'dynamics_duplicate_detected', reason: `${label} (the org's duplicate detection rules refuse it)`, countsAgainstEndpoint: false };
  if (status >= 500 || status === 408) return { outcome: 'transient', code: `http_${status}`, reason: label, countsAgainstEndpoint: true, ...after };
  // Refusals Dataverse names, and whether they count against the endpoint: the app's token and its
  // privileges do. 404 and 405 do not (as the breaker has always counted them), though a wrong
  // orgUrl or API version is the endpoint's.
  const named: Record<number, { code: string; endpointFault: boolean }> = {
    400: { code: 'dynamics_bad_request', endpointFault: false },
    401: { code: 'dynamics_unauthorized', endpointFault: true },
    403: { code: 'dynamics_forbidden', endpointFault: true },
    404: { code: 'dynamics_not_found', endpointFault: false },
    405: { code: 'dynamics_method_not_allowed', endpointFault: false },
    413: { code: 'dynamics_payload_too_large', endpointFault: false },
  };
  const hint: Record<number, string> = {
    401: ' (the org refuses the token: is the app registered as an application user of this environment?)',
    403: ' (the application user lacks a privilege, e.g. create on lead)',
    404: ' (wrong orgUrl or API version, or the alternate key does not exist)',
  };
  const refusal = named[status];
  if (refusal) return { outcome: 'permanent', code: refusal.code, reason: `${label}${hint[status] ?? ''}`, countsAgainstEndpoint: refusal.endpointFault };
  return { ...classifyHttpStatus(answer), reason: label };
}
