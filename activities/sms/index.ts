import https from 'node:https';
import { z } from 'zod';
import twilio from 'twilio';
import type BaseRequestClient from 'twilio/lib/base/RequestClient';
import type { Classification, EndpointKind, KindAnswer, LoadedEndpoint, Prepared } from '../types';
import type { ReadBack } from '../../shared/delivery';
import type { KindDeps } from '../providers';
import type { FieldError } from '../../shared/errors';
import { OutboundError } from '../../shared/http/outbound';
import { applyMapping, flattenLead, MappingError, validateMapping, type Mapping } from '../../shared/mapping';
import { parseTemplate, renderTemplate, validateTemplate } from '../../shared/templates';
import { maskSecret } from '../../shared/redact';
import { classifyHttpStatus, parseRetryAfter } from '../http-classify';

/**
 * SMS through Twilio (the `twilio` SDK, Messages API 2010-04-01) with the buyer's own keys:
 * Account SID + auth token, or an API key (SID + secret) of that account. The text comes from a
 * `{first_name}`-style template (plain text, never HTML-escaped) and goes to the buyer's number(s)
 * from a Twilio number or a Messaging Service. Twilio's error codes decide the outcome (see
 * `classifySms`); 21610 (the number texted STOP) also suppresses the number, so later leads fail
 * fast without calling Twilio. Twilio has no idempotency key: after an ambiguous attempt, `lookup`
 * searches the Messages list for a message already created for this lead (recorded as
 * `found_on_read_back` with its SID); any other retry checks the list too before sending (see
 * README, "Idempotency").
 */

export const E164 = /^\+[1-9]\d{6,14}$/;
const e164 = z.string().trim().regex(E164, 'must be an E.164 number such as +14155550100');
export const MAX_BODY_CHARS = 1600;
export const MAX_RECIPIENTS = 5;

export const smsConfig = z
  .object({
    from: e164.optional(),
    messagingServiceSid: z.string().regex(/^MG[0-9a-fA-F]{32}$/, 'must be a Messaging Service SID (MG + 32 hex digits)').optional(),
    to: z
      .union([e164, z.array(e164).min(1, 'must name at least one number').max(MAX_RECIPIENTS, `must name at most ${MAX_RECIPIENTS} numbers`)])
      .transform((value) => (Array.isArray(value) ? [...new Set(value)] : [value])),
    body: z.string().min(1, 'must not be empty').max(MAX_BODY_CHARS, `must be at most ${MAX_BODY_CHARS} characters`),
  })
  .strict()
  .refine((c) => (c.from === undefined) !== (c.messagingServiceSid === undefined), { message: 'give either from (a Twilio number) or messagingServiceSid', path: ['from'] });

export const smsSecrets = z
  .object({
    accountSid: z.string().regex(/^AC[0-9a-fA-F]{32}$/, 'must be an Account SID (AC + 32 hex digits)'),
    authToken: z.string().regex(/^[A-Za-z0-9]{16,128}$/, 'must be the account auth token').optional(),
    apiKeySid: z.string().regex(/^SK[0-9a-fA-F]{32}$/, 'must be an API key SID (SK + 32 hex digits)').optional(),
    apiKeySecret: z.string().min(16, 'must be the API key secret').max(256).optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    if ((s.apiKeySid === undefined) !== (s.apiKeySecret === undefined)) {
      ctx.addIssue({ code: 'custom', path: [s.apiKeySid === undefined ? 'apiKeySid' : 'apiKeySecret'], message: 'apiKeySid and apiKeySecret go together' });
    }
    if (s.authToken === undefined && s.apiKeySid === undefined) {
      ctx.addIssue({ code: 'custom', path: ['authToken'], message: 'give authToken, or apiKeySid + apiKeySecret' });
    }
  });

type Config = z.infer<typeof smsConfig>;
type Secrets = z.infer<typeof smsSecrets>;

interface OutgoingMessage {
  to: string;
  from?: string;
  messagingServiceSid?: string;
  body: string;
  statusCallback?: string;
}

interface SmsPayload {
  leadId: string;
  messages: OutgoingMessage[];
  /** On a retry: look for a message this lead already produced before sending again. */
  lookup: boolean;
  /** The text carries lead fields, so a message in the list can be told apart from another lead's. */
  attributable: boolean;
  /** The lead's arrival (ms): a message created before it cannot be this lead's. */
  since: number;
}

// ---- classification ---------------------------------------------------------------------------

/**
 * Twilio error codes (https://www.twilio.com/docs/api/errors) that mean "this will not work
 * until someone changes something": never retried.
 */
export const PERMANENT_CODES: Readonly<Record<number, string>> = {
  20003: 'authentication failed (check the Account SID and auth token / API key)',
  20005: 'the account is not active',
  20404: 'resource not found (account or Messaging Service)',
  21211: "invalid 'To' phone number",
  21212: "invalid 'From' phone number",
  21217: 'phone number does not appear to be valid',
  21401: 'invalid phone number',
  21408: 'permission to send SMS has not been enabled for the region',
  21601: "'From' is not an SMS-capable number of the account",
  21602: 'message body is required',
  21603: "a 'From' number or Messaging Service is required",
  21604: "a 'To' number is required",
  21606: "'From' is not a valid message-capable Twilio number for this destination",
  21608: "'To' is not verified (trial account)",
  21610: "'To' has unsubscribed (replied STOP)",
  21612: "'To' cannot be reached from this 'From'",
  21614: "'To' is not a mobile number",
  21617: 'body exceeds 1600 characters',
  21619: 'a body, media or content SID is required',
  21635: "'To' is a landline",
  21659: "'From' is not a Twilio phone number or short code of the account",
  21660: "'From' does not belong to the account",
  21701: 'the Messaging Service does not exist',
  21703: 'the Messaging Service has no phone numbers',
  21705: 'invalid Messaging Service',
};

/** Codes that say "later": Twilio's own rate limits, queue overflow, service trouble. */
export const TRANSIENT_CODES: Readonly<Record<number, string>> = {
  14107: 'SMS send rate limit exceeded',
  20429: 'too many requests',
  20500: 'Twilio internal error',
  20503: 'Twilio service unavailable',
  21611: "'From' has too many queued messages",
  30001: 'queue overflow',
};

/** Error codes of a status callback (the carrier's outcome after Twilio accepted the message). */
export const CARRIER_CODES: Readonly<Record<number, string>> = {
  30003: 'unreachable destination handset',
  30004: 'message blocked',
  30005: 'unknown destination handset',
  30006: 'landline or unreachable carrier',
  30007: 'message filtered (carrier violation)',
  30008: 'unknown error',
  30034: 'message from an unregistered number (US A2P 10DLC)',
};
/** Carrier outcomes that mean the number cannot receive our texts: the number is suppressed. */
export const SUPPRESSING_CARRIER_CODES = new Set([30004, 30005, 30006]);
/**
 * Permanent codes about the endpoint itself (its credentials, its sender), not about one lead's
 * number: they count against the endpoint's breaker. The other permanent codes are about the lead.
 */
export const ENDPOINT_FAULT_CODES: ReadonlySet<number> = new Set([
  20003, // authentication failed
  21606, // 'From' is not a valid message-capable number
  21608, // 'To' is not verified: a trial account
]);

export function classifySms(answer: KindAnswer): Classification {
  if (answer.providerCode === 'suppressed') return { outcome: 'permanent', code: 'suppressed', reason: answer.providerMessage ?? 'the number is on the suppression list', countsAgainstEndpoint: false };
  const status = answer.status ?? 0;
  if (status >= 200 && status < 300) {
    return { outcome: 'success', code: answer.providerCode === 'already_sent' ? 'already_sent' : 'ok', reason: answer.providerMessage ?? `${status}`, countsAgainstEndpoint: false };
  }
  const retryAfterMs = parseRetryAfter(answer.headers?.['retry-after']);
  const after = retryAfterMs !== undefined ? { retryAfterMs } : {};
  const code = answer.providerCode !== undefined && /^\d+$/.test(answer.providerCode) ? Number(answer.providerCode) : undefined;
  if (code === undefined) {
    // No Twilio code (a proxy's answer, an HTML error page): the HTTP status decides.
    const byStatus = classifyHttpStatus(answer);
    return { ...byStatus, reason: `${byStatus.reason}${answer.providerMessage ? '' : ' (no Twilio error code)'}` };
  }
  const label = `${code} ${answer.providerMessage ?? PERMANENT_CODES[code] ?? TRANSIENT_CODES[code] ?? ''}`.trim();
  if (PERMANENT_CODES[code] !== undefined) return { outcome: 'permanent', code: `twilio_${code}`, reason: label, countsAgainstEndpoint: ENDPOINT_FAULT_CODES.has(code) };
  if (TRANSIENT_CODES[code] !== undefined || status === 429 || status >= 500) return { outcome: 'transient', code: `twilio_${code}`, reason: label, countsAgainstEndpoint: true, ...after };
  // An unknown code: retried, and the endpoint's backoff schedule bounds how often.
  return { outcome: 'transient', code: `twilio_${code}`, reason: `${label} (unknown Twilio code: retried within the backoff schedule)`, countsAgainstEndpoint: true, ...after };
}

// ---- the request ------------------------------------------------------------------------------

/** Form encoding as the SDK does it (qs, RFC 3986: spaces as %20, !'()* escaped). */
function formValue(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The fields the SDK posts, in its order (To, StatusCallback, From, MessagingServiceSid, Body). */
export function messageForm(message: OutgoingMessage): string {
  const fields: Array<[string, string | undefined]> = [
    ['To', message.to],
    ['StatusCallback', message.statusCallback],
    ['From', message.from],
    ['MessagingServiceSid', message.messagingServiceSid],
    ['Body', message.body],
  ];
  return fields
    .filter((f): f is [string, string] => f[1] !== undefined)
    .map(([k, v]) => `${k}=${formValue(v)}`)
    .join('&');
}

function hasVariables(template: string): boolean {
  try {
    return parseTemplate(template).some((part) => typeof part !== 'string');
  } catch {
    return false;
  }
}

/** The user name and password of the SDK's basic auth: an API key when given, else the account. */
function credentialsOf(secrets: Secrets): { username: string; password: string } {
  if (secrets.apiKeySid && secrets.apiKeySecret) return { username: secrets.apiKeySid, password: secrets.apiKeySecret };
  return { username: secrets.accountSid, password: secrets.authToken ?? '' };
}

// One keep-alive agent for every client of this process (the SDK would otherwise make one per client).
const sharedAgent = new https.Agent({ keepAlive: true, maxSockets: 50 });

interface RawResponse {
  statusCode: number;
  body: unknown;
  headers: Record<string, unknown>;
}

/**
 * The SDK's HTTP client pointed at the configured base URL (the fake in tests), with the attempt's
 * deadline and abort signal; it keeps the raw answer for the delivery record. One per send.
 * The SDK's own retries (autoRetry) stay off: the workflow owns retries.
 */
class ProviderRequestClient extends twilio.RequestClient {
  last?: RawResponse;

  constructor(
    private readonly baseUrl: string,
    private readonly io: { signal: AbortSignal; timeoutMs: number },
  ) {
    super({ timeout: io.timeoutMs, autoRetry: false, keepAlive: true });
    this.axios.defaults.httpsAgent = sharedAgent;
    this.axios.interceptors.request.use((config) => {
      config.signal = io.signal;
      return config;
    });
  }

  override async request<TData>(opts: BaseRequestClient.RequestOptions<TData>) {
    const uri = opts.uri.startsWith('https://api.twilio.com') ? `${this.baseUrl}${opts.uri.slice('https://api.twilio.com'.length)}` : opts.uri;
    this.last = undefined;
    const response = await super.request({ ...opts, uri, timeout: this.io.timeoutMs });
    this.last = { statusCode: response.statusCode, body: response.body, headers: (response.headers ?? {}) as Record<string, unknown> };
    return response;
  }
}

function headerRecord(headers: Record<string, unknown> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (typeof value === 'string') out[name.toLowerCase()] = value;
    else if (typeof value === 'number') out[name.toLowerCase()] = String(value);
  }
  return out;
}

function bodyText(body: unknown): string {
  if (body === undefined || body === null) return '';
  return typeof body === 'string' ? body : JSON.stringify(body);
}

/**
 * A failure of the SDK's transport (an axios error: Twilio did not answer) as the registry's
 * `network_error`, the original as its cause: the registry names it (refused, reset, DNS, TLS,
 * timeout, cancelled) from its one table. Anything else is not a network failure: undefined.
 */
export function networkError(error: unknown): OutboundError | undefined {
  if (!(error instanceof Error)) return undefined;
  if (error.name !== 'AxiosError' && (error as { isAxiosError?: unknown }).isAxiosError !== true) return undefined;
  return new OutboundError('network_error', error.message, { cause: error });
}

/** One page of the newest messages to a number: more than a retry after minutes can be behind. */
export const LIST_PAGE_SIZE = 50;

/** A read of the Messages list Twilio refused or failed: the attempt is transient, nothing is sent. */
export class SmsReadBackError extends Error {
  /** Twilio's answer to the list read, classified as an answer to a create would be. */
  readonly classification: Classification;

  constructor(
    readonly status: number,
    readonly twilioCode: number | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'SmsReadBackError';
    this.classification = classifySms({ status, ...(twilioCode !== undefined ? { providerCode: String(twilioCode) } : {}), providerMessage: message });
  }
}

/** The list read's failure: a network error as the registry's OutboundError, Twilio's refusal as SmsReadBackError. */
export function listFailure(error: unknown): Error {
  if (error instanceof Error && typeof (error as { status?: unknown }).status === 'number') {
    const rest = error as unknown as { status: number; code?: number; message: string };
    return new SmsReadBackError(rest.status, rest.code, `Twilio refused the Messages list read: ${rest.status}${rest.code !== undefined ? ` ${rest.code}` : ''} ${rest.message}`.trim());
  }
  return networkError(error) ?? (error instanceof Error ? error : new Error(String(error)));
}

interface RecipientResult {
  to: string;
  answer: KindAnswer;
  sid?: string;
}

export function createSmsKind(deps: KindDeps) {
  const baseUrl = deps.providers.twilioApiBaseUrl.replace(/\/+$/, '');
  const publicUrl = deps.providers.publicUrl.replace(/\/+$/, '');

  async function suppression(to: string): Promise<{ reason: string; source: string } | undefined> {
    if (!deps.models) return undefined;
    const found = await deps.models.Suppression.findById(`sms:${to}`, { reason: 1, source: 1 }).lean();
    return found ? { reason: found.reason, source: found.source } : undefined;
  }

  async function suppress(to: string, reason: string, source: string): Promise<void> {
    if (!deps.models) return;
    await deps.models.Suppression.updateOne({ _id: `sms:${to}` }, { $setOnInsert: { channel: 'sms', address: to, reason, source, at: new Date() } }, { upsert: true });
  }

  /** True when another lead's attempt is on record with this message SID. */
  async function attributedElsewhere(sid: string, leadId: string): Promise<boolean> {
    if (!deps.models) return false;
    return (await deps.models.LogEntry.exists({ 'data.response.messageId': sid, leadId: { $ne: leadId } })) !== null;
  }

  /**
   * Twilio has no idempotency key. Before a retry sends again, the newest messages to this number
   * (one page of the Messages list) are searched for one created since the lead arrived, from the
   * same sender, with the same text, not failed, and not on record for another lead. No DateSent
   * filter: a message still queued has no date_sent, and it is exactly the one to find.
   */
  async function findExisting(client: twilio.Twilio, message: OutgoingMessage, payload: SmsPayload): Promise<string | undefined> {
    const page = await client.messages.page({ to: message.to, ...(message.from ? { from: message.from } : {}), pageSize: LIST_PAGE_SIZE });
    const since = Math.floor(payload.since / 1000) * 1000;
    for (const found of page.instances) {
      if (!found.dateCreated || found.dateCreated.getTime() < since) continue;
      if (found.status === 'failed' || found.status === 'canceled') continue;
      if (message.messagingServiceSid && found.messagingServiceSid !== message.messagingServiceSid) continue;
      if (found.body !== message.body && !(found.body ?? '').endsWith(message.body)) continue;
      if (await attributedElsewhere(found.sid, payload.leadId)) continue;
      return found.sid;
    }
    return undefined;
  }

  /** A client of the SDK for one attempt (send or read-back), with the attempt's deadline and signal. */
  function clientFor(secrets: Secrets, io: { signal: AbortSignal; timeoutMs: number }): { client: twilio.Twilio; http: ProviderRequestClient } {
    const { username, password } = credentialsOf(secrets);
    const http = new ProviderRequestClient(baseUrl, io);
    return { client: twilio(username, password, { accountSid: secrets.accountSid, httpClient: http, autoRetry: false }), http };
  }

  /** What this attempt's read-back found, per number (a SID, or null: looked, not there): the send texts only the others. */
  const readBacks = new WeakMap<Prepared<SmsPayload>, Map<string, string | null>>();

  async function sendOne(client: twilio.Twilio, http: ProviderRequestClient, message: OutgoingMessage, payload: SmsPayload, checked?: Map<string, string | null>): Promise<RecipientResult> {
    const blocked = await suppression(message.to);
    if (blocked) {
      return {
        to: message.to,
        answer: { providerCode: 'suppressed', providerMessage: `${message.to} is suppressed (${blocked.reason}, reported by ${blocked.source}); not sent`, body: JSON.stringify({ to: message.to, suppressed: blocked }) },
      };
    }
    try {
      // The read-back of this attempt already looked; otherwise a retry looks now (see README).
      const sid = checked ? checked.get(message.to) : payload.lookup ? await findExisting(client, message, payload) : undefined;
      if (sid) {
        return {
          to: message.to,
          sid,
          answer: { status: 200, messageId: sid, providerCode: 'already_sent', providerMessage: `message ${sid} to ${message.to} was already created by an earlier attempt; not sent again`, body: JSON.stringify({ sid, to: message.to, found: 'existing message' }) },
        };
      }
      const created = await client.messages.create({
        to: message.to,
        body: message.body,
        ...(message.from ? { from: message.from } : {}),
        ...(message.messagingServiceSid ? { messagingServiceSid: message.messagingServiceSid } : {}),
        ...(message.statusCallback ? { statusCallback: message.statusCallback } : {}),
      });
      const raw = http.last;
      return {
        to: message.to,
        sid: created.sid,
        answer: { status: raw?.statusCode ?? 201, headers: headerRecord(raw?.headers), body: bodyText(raw?.body), messageId: created.sid, providerMessage: `message ${created.sid} ${created.status}` },
      };
    } catch (error) {
      if (error instanceof twilio.RestException || (error instanceof Error && typeof (error as { status?: unknown }).status === 'number')) {
        const rest = error as unknown as { status: number; code?: number; message: string };
        const raw = http.last;
        const answer: KindAnswer = {
          status: rest.status,
          headers: headerRecord(raw?.headers),
          body: bodyText(raw?.body),
          ...(rest.code !== undefined ? { providerCode: String(rest.code) } : {}),
          ...(rest.message ? { providerMessage: rest.message } : {}),
        };
        if (rest.code === 21610) await suppress(message.to, 'unsubscribed (replied STOP)', 'twilio:21610');
        return { to: message.to, answer };
      }
      throw networkError(error) ?? error;
    }
  }

  /** One answer for the attempt: a single recipient's as is; several combined (see README). */
  function combine(results: RecipientResult[]): KindAnswer {
    if (results.length === 1) return results[0]!.answer;
    const classified = results.map((r) => ({ ...r, c: classifySms(r.answer) }));
    const sids = results.map((r) => r.sid).filter((s): s is string => s !== undefined);
    const body = JSON.stringify(results.map((r) => ({ to: r.to, status: r.answer.status ?? null, sid: r.sid ?? null, code: r.answer.providerCode ?? null, message: r.answer.providerMessage ?? null })));
    const shared = { body, ...(sids.length ? { messageId: sids.join(',') } : {}) };
    const transient = classified.find((r) => r.c.outcome === 'transient');
    if (transient) return { ...transient.answer, ...shared };
    const sent = classified.filter((r) => r.c.outcome === 'success');
    const failed = classified.filter((r) => r.c.outcome === 'permanent');
    if (sent.length) {
      const notes = failed.map((r) => `${r.to} failed: ${r.c.reason}`).join('; ');
      return { status: 201, ...shared, providerMessage: `sent to ${sent.length} of ${results.length} numbers${notes ? `; ${notes}` : ''}` };
    }
    return { ...failed[0]!.answer, ...shared };
  }

  return {
    kind: 'sms',
    description: "SMS through Twilio with the buyer's own credentials, text from a template",
    configSchema: smsConfig,
    secretsSchema: smsSecrets,
    validate(config, _secrets, mapping): FieldError[] {
      return [...validateTemplate(config.body, 'body'), ...validateMapping(mapping)];
    },
    map(endpoint, ctx) {
      const { config, secrets } = endpoint;
      // The text comes from the template; a mapping, when given, only adds its required-field checks.
      if (endpoint.mapping) applyMapping(endpoint.mapping as Mapping, ctx);
      const body = renderTemplate(config.body, flattenLead(ctx));
      if (body.trim() === '') throw new MappingError('the SMS text is empty for this lead (every template variable was empty)', 'body');
      if (body.length > MAX_BODY_CHARS) throw new MappingError(`the SMS text is ${body.length} characters for this lead; Twilio accepts at most ${MAX_BODY_CHARS}`, 'body');
      // Status callbacks need a public URL, and an auth token to verify Twilio's signature with.
      const statusCallback = publicUrl && secrets.authToken
        ? `${publicUrl}/v1/callbacks/twilio/${encodeURIComponent(endpoint.endpointId)}?lead=${encodeURIComponent(ctx.leadId)}&attempt=${ctx.attempt}`
        : undefined;
      const messages: OutgoingMessage[] = config.to.map((to) => ({
        to,
        ...(config.from ? { from: config.from } : {}),
        ...(config.messagingServiceSid ? { messagingServiceSid: config.messagingServiceSid } : {}),
        body,
        ...(statusCallback ? { statusCallback } : {}),
      }));
      const { username, password } = credentialsOf(secrets);
      const attributable = hasVariables(config.body);
      return {
        payload: { leadId: ctx.leadId, messages, lookup: ctx.attempt > 1 && attributable, attributable, since: ctx.receivedAt },
        describe: {
          method: 'POST',
          url: `${baseUrl}/2010-04-01/Accounts/${maskSecret(secrets.accountSid)}/Messages.json`,
          headers: {
            authorization: `Basic ${maskSecret(Buffer.from(`${username}:${password}`).toString('base64'))}`,
            'content-type': 'application/x-www-form-urlencoded',
          },
          // One request per number, one form body per line.
          body: messages.map(messageForm).join('\n'),
        },
      };
    },
    async send(prepared, endpoint: LoadedEndpoint<Config, Secrets>, io) {
      const { client, http } = clientFor(endpoint.secrets, io);
      const checked = readBacks.get(prepared);
      const results: RecipientResult[] = [];
      for (const message of prepared.payload.messages) results.push(await sendOne(client, http, message, prepared.payload, checked));
      return combine(results);
    },
    classify: classifySms,
    /**
     * The read-back after an ambiguous attempt: one page of the Messages list per number (as
     * `findExisting`). Every number has its message: found, nothing sent. Some: not found, and the
     * send texts only the numbers without one. Twilio refusing or failing the list throws: a
     * re-send could duplicate, so nothing is sent blind (the attempt is transient).
     */
    async lookup(prepared, endpoint: LoadedEndpoint<Config, Secrets>, io): Promise<ReadBack> {
      const payload = prepared.payload;
      if (!payload.attributable) {
        return { found: false, detail: 'not looked up: the text has no lead field, so a message in the list cannot be told from another lead\'s; sent again (a second SMS is possible)' };
      }
      const { client } = clientFor(endpoint.secrets, io);
      const checked = new Map<string, string | null>();
      for (const message of payload.messages) {
        try {
          checked.set(message.to, (await findExisting(client, message, payload)) ?? null);
        } catch (error) {
          throw listFailure(error);
        }
      }
      readBacks.set(prepared, checked);
      const found = [...checked].filter((entry): entry is [string, string] => entry[1] !== null);
      const missing = [...checked].filter(([, sid]) => sid === null).map(([to]) => to);
      const criteria = `Messages list: same sender and text, created since the lead arrived (${new Date(payload.since).toISOString()}), not failed`;
      const sids = found.map(([, sid]) => sid).join(',');
      if (missing.length === 0) return { found: true, messageId: sids, detail: `${found.map(([to, sid]) => `message ${sid} to ${to}`).join('; ')} (${criteria})` };
      if (found.length === 0) return { found: false, detail: `no message to ${missing.join(', ')} (${criteria})` };
      return { found: false, messageId: sids, detail: `${found.map(([to, sid]) => `message ${sid} to ${to}`).join('; ')} found, none to ${missing.join(', ')} (${criteria}): only ${missing.length === 1 ? 'that number is' : 'those numbers are'} texted` };
    },
  } satisfies EndpointKind<Config, Secrets, SmsPayload>;
}
