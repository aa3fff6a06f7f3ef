import { z } from 'zod';
import type { Classification, EndpointKind, KindAnswer } from '../types';
import type { KindDeps } from '../providers';
import type { FieldError } from '../../shared/errors';
import type { ReadBack } from '../../shared/delivery';
import { applyMapping, requireKeys, validateMapping, type Mapping } from '../../shared/mapping';
import { maskSecret } from '../../shared/redact';
import { classifyHttpStatus, ENDPOINT_FAULT_STATUSES, parseRetryAfter } from '../http-classify';
import { oneLine, parseJsonObject } from '../oauth';

/**
 * HubSpot CRM contacts with a private-app access token (sent as `Authorization: Bearer`).
 *
 * Every lead is one `POST /crm/v3/objects/contacts/batch/upsert` with one input
 * `{idProperty: "email", id: <email>, properties: {…mapped…}}`: HubSpot creates the contact or
 * updates the one with that email, so a retry after an ambiguous timeout never makes a second
 * contact. Email is therefore required. The contact id is the attempt's message id.
 *
 * Read-back (after an ambiguous attempt, before upserting again): `GET /crm/v3/objects/contacts/
 * <email>?idProperty=email&properties=<the mapped properties>`. Found only when the contact exists
 * *and* holds every value this upsert writes (the lead-id property too, when the mapping writes
 * one): a contact with that email alone may predate the lead, and skipping the upsert would then
 * drop the lead's data while recording a success. Anything less is "not found" and the upsert (which
 * cannot make a second contact) goes ahead.
 *
 * 429s carry a `policyName`: TEN_SECONDLY_ROLLING (the burst limit: back in ~10 s, or as
 * Retry-After says) or DAILY (the account's daily allowance: parked until midnight in the account's
 * time zone, `timeZone`, UTC by default; the workflow caps any wait at 6 h and retries after that).
 * Sources: developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/batch/upsert-contacts,
 * /docs/api/usage-details (429 format, policyName, daily reset), /docs/faq/api-error-responses.
 */

export const USER_AGENT = 'lead-delivery/0.1 (+hubspot)';
export const UPSERT_PATH = '/crm/v3/objects/contacts/batch/upsert';
/** Read one contact: `/crm/v3/objects/contacts/{contactId}`, here the email with `idProperty=email`. */
export const CONTACT_PATH = '/crm/v3/objects/contacts/';
/** Scope the read-back needs (the upsert needs crm.objects.contacts.write). */
export const READ_SCOPE = 'crm.objects.contacts.read';
/** HubSpot's documented burst window: 100-190 requests per rolling 10 s per app. */
export const TEN_SECONDLY_WAIT_MS = 10_000;

/** Properties written when the endpoint has no mapping (HubSpot's default contact properties). */
export const DEFAULT_MAPPING: Mapping = {
  email: 'email',
  firstname: 'first_name',
  lastname: 'last_name',
  phone: 'phone',
  address: 'address',
  city: 'city',
  state: 'state',
  zip: 'zip',
  country: 'country',
};

function isTimeZone(value: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: value });
    return true;
  } catch {
    return false;
  }
}

export const hubspotConfig = z
  .object({
    timeZone: z.string().max(64).refine(isTimeZone, 'must be an IANA time zone such as "UTC" or "America/New_York" (the HubSpot account\'s time zone)').default('UTC'),
  })
  .strict();

export const hubspotSecrets = z
  .object({
    token: z.string().min(10, 'must be the private app access token (pat-…)').max(512).regex(/^\S+$/, 'must not contain spaces'),
  })
  .strict();

type Config = z.infer<typeof hubspotConfig>;
type Secrets = z.infer<typeof hubspotSecrets>;

export interface HubspotPayload {
  url: string;
  headers: Record<string, string>;
  body: string;
  /** The read-back: the contact by this lead's email, with the properties the upsert writes. */
  lookupUrl: string;
  /** What the upsert writes (property → value): the read-back compares the contact with it. */
  properties: Record<string, string>;
}

export interface HubspotAnswer extends KindAnswer {
  /** HubSpot's error `category` (VALIDATION_ERROR, MISSING_SCOPES, RATE_LIMITS, …). */
  category?: string;
  /** On 429: TEN_SECONDLY_ROLLING, DAILY, … */
  policyName?: string;
  /** Scopes a 403 says are missing. */
  missingScopes?: string[];
  /** The upsert created the contact (false: an existing contact with that email was updated). */
  created?: boolean;
  /** The account's time zone (from the endpoint), for the daily reset. */
  timeZone?: string;
}

/** HubSpot property values are strings; numbers and booleans are sent as their text, null clears. */
function toProperty(value: unknown): string {
  if (value === null || value === undefined) return '';
  return typeof value === 'string' ? value : typeof value === 'number' || typeof value === 'boolean' ? String(value) : JSON.stringify(value);
}

export function validateHubspot(mapping: unknown): FieldError[] {
  const errors = validateMapping(mapping);
  if (mapping !== undefined && mapping !== null && typeof mapping === 'object' && !Array.isArray(mapping)) {
    const keys = Object.keys(mapping);
    for (const key of keys) {
      if (!/^[a-z0-9_]{1,100}$/.test(key)) errors.push({ path: `mapping.${key}`, message: 'must be a HubSpot property internal name (lower-case letters, digits, _), e.g. "firstname"' });
    }
    if (!keys.includes('email')) errors.push({ path: 'mapping.email', message: 'is required: contacts are upserted by email (idProperty "email"), so the mapping must fill "email"' });
  }
  return errors;
}

export function createHubspotKind(deps: KindDeps) {
  const baseUrl = deps.providers.hubspotApiBaseUrl.replace(/\/+$/, '');
  return {
    kind: 'hubspot',
    description: 'HubSpot contact upserted by email (batch upsert, idProperty email) with a private-app token',
    configSchema: hubspotConfig,
    secretsSchema: hubspotSecrets,
    validate: (_config, _secrets, mapping) => validateHubspot(mapping),
    map(endpoint, ctx) {
      const mapped = applyMapping((endpoint.mapping as Mapping | undefined) ?? DEFAULT_MAPPING, ctx);
      requireKeys(mapped, ['email']);
      const properties = Object.fromEntries(Object.entries(mapped).map(([k, v]) => [k, toProperty(v)]));
      const body = JSON.stringify({ inputs: [{ idProperty: 'email', id: properties.email, properties }] });
      const url = `${baseUrl}${UPSERT_PATH}`;
      const headers = { authorization: `Bearer ${endpoint.secrets.token}`, 'content-type': 'application/json', accept: 'application/json', 'user-agent': USER_AGENT };
      const lookupUrl = `${baseUrl}${CONTACT_PATH}${encodeURIComponent(properties.email!)}?idProperty=email&properties=${Object.keys(properties).map(encodeURIComponent).join(',')}`;
      return {
        payload: { url, headers, body, lookupUrl, properties },
        describe: { method: 'POST', url, headers: { ...headers, authorization: `Bearer ${maskSecret(endpoint.secrets.token)}` }, body },
      };
    },
    async send(prepared, endpoint, io): Promise<HubspotAnswer> {
      const { url, headers, body } = prepared.payload;
      const response = await io.outbound.request({ method: 'POST', url, headers, body, timeoutMs: io.timeoutMs, signal: io.signal });
      const text = response.body.toString('utf8');
      return { ...readHubspotAnswer(response.status, text), headers: response.headers, body: text, bodyBytes: response.bodyBytes, timeZone: endpoint.config.timeZone };
    },
    classify: (answer) => classifyHubspotAnswer(answer),
    async lookup(prepared, endpoint, io): Promise<ReadBack> {
      const { lookupUrl, headers, properties } = prepared.payload;
      const { authorization, accept, 'user-agent': userAgent } = headers;
      const response = await io.outbound.request({ method: 'GET', url: lookupUrl, headers: { authorization: authorization!, accept: accept!, 'user-agent': userAgent! }, timeoutMs: io.timeoutMs, signal: io.signal });
      return hubspotReadBack(response.status, response.body.toString('utf8'), properties, { headers: response.headers, timeZone: endpoint.config.timeZone });
    },
  } satisfies EndpointKind<Config, Secrets, HubspotPayload>;
}

/** A read-back the provider could not answer now (429, 5xx): the registry makes the attempt transient, nothing is sent. */
export class HubspotReadBackError extends Error {
  constructor(readonly classification: Classification) {
    super(`HubSpot could not be read back: ${classification.code} (${classification.reason})`);
    this.name = 'HubspotReadBackError';
  }
}

const sameValue = (name: string, sent: string, held: unknown): boolean => {
  // HubSpot answers property values as strings (null when empty).
  const value = typeof held === 'string' ? held : typeof held === 'number' || typeof held === 'boolean' ? String(held) : '';
  // HubSpot keeps e-mail addresses lower-cased.
  return name === 'email' ? value.toLowerCase() === sent.toLowerCase() : value === sent;
};

/**
 * What a contact read (GET by email) says about the upsert: found when the contact holds every
 * value it writes. 404: not there. An answer that says "later" (429, 5xx) throws: nothing is sent
 * this attempt. Any other refusal (401, 403 without the read scope, …) does not block: the upsert
 * cannot make a second contact, so it goes ahead and its own answer decides.
 */
export function hubspotReadBack(status: number, text: string, expected: Record<string, string>, context: { headers?: Record<string, string>; timeZone?: string; now?: number } = {}): ReadBack {
  const what = 'GET contact by email (idProperty=email)';
  if (status === 200) {
    const contact = parseJsonObject(text);
    const id = typeof contact?.id === 'string' ? contact.id : undefined;
    const held = (contact?.properties && typeof contact.properties === 'object' ? contact.properties : {}) as Record<string, unknown>;
    if (!id) throw new HubspotReadBackError({ outcome: 'transient', code: 'hubspot_unexpected_answer', reason: `${what}: 200 without a contact id`, countsAgainstEndpoint: true });
    const differing = Object.entries(expected).filter(([name, value]) => !sameValue(name, value, held[name])).map(([name]) => name);
    const names = Object.keys(expected).join(', ');
    if (differing.length === 0) return { found: true, messageId: id, detail: `contact ${id} (matched by email) holds every property this lead writes (${names})` };
    return { found: false, messageId: id, detail: `contact ${id} has this lead's email but not its values (${differing.join(', ')} differ): it may predate the lead, so it is upserted again (the same contact, no second one)` };
  }
  if (status === 404) return { found: false, detail: `no contact with this lead's email (${what}: 404)` };
  const answer = { ...readHubspotAnswer(status, text), ...(context.headers ? { headers: context.headers } : {}), ...(context.timeZone ? { timeZone: context.timeZone } : {}) };
  const classification = classifyHubspotAnswer(answer, context.now);
  if (classification.outcome !== 'permanent') throw new HubspotReadBackError(classification);
  return { found: false, detail: `could not read back (${classification.code}: ${classification.reason}); the upsert by email cannot make a second contact, so it goes ahead and its answer decides` };
}

/** The parts of HubSpot's answer that decide the outcome (success body, or its error shape). */
export function readHubspotAnswer(status: number, text: string): HubspotAnswer {
  const answer: HubspotAnswer = { status };
  const parsed = parseJsonObject(text);
  if (!parsed) return answer;
  const results = Array.isArray(parsed.results) ? (parsed.results as Array<Record<string, unknown>>) : [];
  const first = results[0];
  if (status >= 200 && status < 300 && first && typeof first.id === 'string') {
    answer.messageId = first.id;
    if (typeof first.new === 'boolean') answer.created = first.new;
  }
  // A 207 (multi-status) carries the failed inputs in `errors`; error answers carry the error at top level.
  const batchError = Array.isArray(parsed.errors) && status >= 200 && status < 300 ? (parsed.errors[0] as Record<string, unknown> | undefined) : undefined;
  const error = batchError ?? (status >= 300 ? parsed : undefined);
  if (error) {
    const category = typeof error.category === 'string' ? error.category : typeof error.errorType === 'string' ? error.errorType : undefined;
    if (category) answer.category = category;
    if (typeof error.message === 'string') answer.providerMessage = error.message;
    if (typeof error.policyName === 'string') answer.policyName = error.policyName;
    const scopes = findScopes(error);
    if (scopes.length) answer.missingScopes = scopes;
    if (category) answer.providerCode = category;
  }
  return answer;
}

/** `context.requiredGranularScopes` (top level or in `errors[]`), as HubSpot's 403 lists them. */
function findScopes(error: Record<string, unknown>): string[] {
  const out = new Set<string>();
  const visit = (value: unknown) => {
    if (!value || typeof value !== 'object') return;
    const context = (value as Record<string, unknown>).context as Record<string, unknown> | undefined;
    for (const key of ['requiredGranularScopes', 'requiredScopes', 'missingScopes']) {
      const list = context?.[key];
      if (Array.isArray(list)) for (const s of list) if (typeof s === 'string') out.add(s);
    }
  };
  visit(error);
  if (Array.isArray(error.errors)) error.errors.forEach(visit);
  return [...out];
}

/** Next midnight in `timeZone` after `now` (HubSpot's daily limit resets then). DST days may be an hour off. */
export function nextMidnight(timeZone: string, now: number): number {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', hour: '2-digit', minute: '2-digit', second: '2-digit' }).formatToParts(new Date(now));
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value ?? 0);
  const elapsed = ((get('hour') * 60 + get('minute')) * 60 + get('second')) * 1000 + (now % 1000);
  return now - elapsed + 86_400_000;
}

const PERMANENT_CATEGORIES = new Set(['VALIDATION_ERROR', 'INVALID_EMAIL', 'PROPERTY_DOESNT_EXIST', 'CONFLICT', 'OBJECT_NOT_FOUND', 'MISSING_SCOPES', 'INVALID_AUTHENTICATION', 'BAD_REQUEST']);

export function classifyHubspotAnswer(answer: HubspotAnswer, now = Date.now()): Classification {
  const status = answer.status ?? 0;
  const message = answer.providerMessage ? oneLine(answer.providerMessage) : '';
  const label = `${status}${answer.category ? ` ${answer.category}` : ''}${message ? `: ${message}` : ''}`;
  const retryAfterMs = parseRetryAfter(answer.headers?.['retry-after'], now);

  if (status >= 200 && status < 300 && !answer.category) {
    if (!answer.messageId) return { outcome: 'transient', code: 'hubspot_unexpected_answer', reason: `${status} without a contact id in the answer`, countsAgainstEndpoint: true };
    return { outcome: 'success', code: 'ok', reason: `contact ${answer.messageId} ${answer.created === false ? 'updated (matched by email)' : 'created'}`, countsAgainstEndpoint: false };
  }

  if (status === 429 || answer.category === 'RATE_LIMITS' || answer.category === 'RATE_LIMIT') {
    const policy = answer.policyName ?? '';
    if (/DAILY/i.test(policy)) {
      const zone = answer.timeZone ?? 'UTC';
      const resetAt = nextMidnight(zone, now);
      const wait = Math.max(resetAt - now, retryAfterMs ?? 0);
      return { outcome: 'transient', code: 'hubspot_rate_limit_daily', reason: `${label} (daily limit; resets ${new Date(resetAt).toISOString()}, midnight ${zone})`, countsAgainstEndpoint: true, retryAfterMs: wait };
    }
    const wait = retryAfterMs ?? TEN_SECONDLY_WAIT_MS;
    const code = /SECONDLY/i.test(policy) ? 'hubspot_rate_limit_secondly' : 'hubspot_rate_limited';
    return { outcome: 'transient', code, reason: `${label}${policy ? ` (policy ${policy})` : ''}`, countsAgainstEndpoint: true, retryAfterMs: wait };
  }

  if (status === 401 || answer.category === 'INVALID_AUTHENTICATION') {
    // The endpoint's credentials.
    return { outcome: 'permanent', code: 'hubspot_invalid_token', reason: `the private app token was refused (invalid, rotated or the app deleted): ${label}`, countsAgainstEndpoint: true };
  }
  if (status === 403 || answer.category === 'MISSING_SCOPES') {
    const scopes = answer.missingScopes?.length ? answer.missingScopes.join(', ') : 'crm.objects.contacts.write';
    // Not counted against the endpoint (as the breaker always had it), though it is the app's setup.
    return { outcome: 'permanent', code: 'hubspot_missing_scopes', reason: `the private app lacks the scope(s) ${scopes}: ${label}`, countsAgainstEndpoint: false };
  }
  if (status >= 500 || status === 408 || status === 425) return { outcome: 'transient', code: `http_${status}`, reason: label, countsAgainstEndpoint: true, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };

  const category = answer.category ?? '';
  const code = category === 'VALIDATION_ERROR' ? 'hubspot_validation_error' : /^[A-Z_]{1,64}$/.test(category) ? `hubspot_${category.toLowerCase()}` : `http_${status}`;
  if (status >= 200 && status < 300) {
    // 207: the input failed inside a batch answer: about this contact (retried when HubSpot's category is not a known refusal).
    const permanent = PERMANENT_CATEGORIES.has(category);
    return { outcome: permanent ? 'permanent' : 'transient', code, reason: label, countsAgainstEndpoint: !permanent };
  }
  // HubSpot's category says what is wrong with this contact; without one, the status says it (404/405/410: the address).
  if (status >= 400 && status < 500) return { outcome: 'permanent', code, reason: label, countsAgainstEndpoint: code === `http_${status}` && ENDPOINT_FAULT_STATUSES.has(status) };
  return { ...classifyHttpStatus(answer), reason: label };
}
