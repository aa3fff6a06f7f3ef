/**
 * A local Twilio: enough of https://api.twilio.com for the real `twilio` SDK (pointed here through
 * its `httpClient` option) to send SMS, checked against Twilio's own OpenAPI document
 * (test/fakes/specs/twilio/twilio_api_v2010.messages-create.json, OpenAPI 3.0, Ajv draft-07).
 *
 * POST /2010-04-01/Accounts/{AccountSid}/Messages.json (CreateMessage):
 *  - AccountSid checked against the spec's path parameter (`^AC[0-9a-fA-F]{32}$`), and must be an
 *    account of the fake (else 404, code 20404);
 *  - HTTP basic auth (the spec's `accountSid_authToken` scheme): the account SID + auth token, or an
 *    API key SID (SK…) + secret of that account; anything else is 401, code 20003 "Authenticate";
 *  - `Content-Type: application/x-www-form-urlencoded`, the form validated against the spec's
 *    requestBody schema (`CreateMessageRequest`: `To` required, types, enums, SID patterns; unknown
 *    fields refused: the spec lists every field). A refused form is a 400 in Twilio's error shape
 *    and is recorded in `violations` (tests assert there are none);
 *  - beyond the schema, the rules the spec states in prose, answered with Twilio's codes: `To` in
 *    E.164 (21211), `From` or `MessagingServiceSid` (21603), a `Body`/`MediaUrl`/`ContentSid` (21602),
 *    `Body` ≤ 1600 characters (21617), `From` a number of the account when the account lists its
 *    numbers (21606);
 *  - answers 201 with a message resource shaped like the spec's example (checked against the spec's
 *    `api.v2010.account.message` schema: a fake that drifts records a violation itself).
 * GET /2010-04-01/Accounts/{AccountSid}/Messages.json (ListMessage, the read-back of retries: is
 * the message already there?), as Twilio's API reference describes it (this operation was trimmed
 * from the stored spec): the same basic auth; query filters To, From, DateSent / DateSent< /
 * DateSent> (on date_sent, so a message still queued — date_sent null — never matches a DateSent
 * filter), PageSize 1-1000 (default 50), Page, PageToken; unknown parameters and a malformed
 * DateSent or PageSize are 400 20001 and recorded as violations. Newest first. The answer is the
 * list page {messages, end, first_page_uri, next_page_uri, page, page_size, previous_page_uri,
 * start, uri} (checked against a ListMessageResponse schema written from the reference, each
 * message against the spec's `api.v2010.account.message`). Scriptable apart (`scriptList`): an
 * error answer, a slow answer, a hang-up.
 *
 * Errors have Twilio's shape `{code, message, more_info, status}` (test/fakes/specs/twilio/
 * twilio_error.schema.json). Scriptable per create request, in order: any error code with its HTTP
 * status (and Retry-After), a slow answer (the message is created at once, the answer comes late:
 * the ambiguous timeout), a hang-up. `statusCallback()` plays Twilio's status callback: it posts the
 * documented form fields to the message's StatusCallback URL, signed with the account's auth token
 * (X-Twilio-Signature, HMAC-SHA1 as `twilio.getExpectedTwilioSignature` computes it).
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import twilio from 'twilio';
import spec from '../specs/twilio/twilio_api_v2010.messages-create.json';
import errorSchema from '../specs/twilio/twilio_error.schema.json';

export interface TwilioAccount {
  sid: string;
  authToken: string;
  apiKeys?: Array<{ sid: string; secret: string }>;
  /** The account's numbers; when given, a From outside them is refused (21606). */
  numbers?: string[];
}

export type TwilioStep =
  | { type: 'ok' }
  /** Answer a Twilio error (no message is created). */
  | { type: 'error'; status: number; code: number; message?: string; headers?: Record<string, string> }
  /** Create the message at once, answer after `delayMs` (our attempt times out after the fact). */
  | { type: 'slow'; delayMs: number }
  /** Destroy the connection without an answer and without creating anything. */
  | { type: 'hangUp' };

/** Twilio's documented errors, ready to script. */
export const twilioErrors = {
  invalidTo: (): TwilioStep => ({ type: 'error', status: 400, code: 21211, message: "The 'To' number is not a valid phone number." }),
  unsubscribed: (): TwilioStep => ({ type: 'error', status: 400, code: 21610, message: 'Attempt to send to unsubscribed recipient' }),
  notMobile: (): TwilioStep => ({ type: 'error', status: 400, code: 21614, message: "'To' number is not a valid mobile number" }),
  regionNotEnabled: (): TwilioStep => ({ type: 'error', status: 400, code: 21408, message: 'Permission to send an SMS has not been enabled for the region indicated by the \'To\' number' }),
  fromNotValid: (): TwilioStep => ({ type: 'error', status: 400, code: 21606, message: "The 'From' phone number provided is not a valid message-capable Twilio phone number for this destination/account" }),
  unverified: (): TwilioStep => ({ type: 'error', status: 400, code: 21608, message: "The 'to' phone number provided is not yet verified for this account." }),
  tooManyRequests: (retryAfterS?: number): TwilioStep => ({ type: 'error', status: 429, code: 20429, message: 'Too Many Requests', ...(retryAfterS !== undefined ? { headers: { 'retry-after': String(retryAfterS) } } : {}) }),
  serverError: (): TwilioStep => ({ type: 'error', status: 500, code: 20500, message: 'Internal Server Error' }),
  serviceUnavailable: (): TwilioStep => ({ type: 'error', status: 503, code: 20503, message: 'Service Unavailable' }),
  unknown: (code = 29999, status = 400): TwilioStep => ({ type: 'error', status, code, message: 'An error the kind does not know' }),
};

/** A message resource as the fake keeps it (the API's snake_case fields), plus what was posted. */
export interface TwilioMessage {
  sid: string;
  account_sid: string;
  to: string;
  from: string | null;
  messaging_service_sid: string | null;
  body: string;
  status: string;
  error_code: number | null;
  date_created: string;
  createdAt: number;
  /** When a status callback said it was sent (date_sent); undefined while queued. */
  dateSent?: number;
  statusCallback?: string;
  /** The form fields as posted. */
  form: Record<string, string | string[]>;
  /** The user name of the basic auth used (an AC or SK SID). */
  authUser: string;
}

export interface TwilioRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  raw: string;
  receivedAt: number;
  /** What the fake answered (0 for a hang-up). */
  status: number;
  code?: number;
}

export interface TwilioViolation {
  path: string;
  errors: string[];
  raw: string;
}

export interface TwilioFake {
  baseUrl: string;
  accounts: Map<string, TwilioAccount>;
  messages: TwilioMessage[];
  requests: TwilioRequest[];
  violations: TwilioViolation[];
  addAccount(account: TwilioAccount): void;
  /** Steps for the next create requests, one each, in order; then normal service. */
  script(steps: TwilioStep[]): void;
  /** Steps for the next Messages list reads, one each, in order; then normal service. */
  scriptList(steps: TwilioStep[]): void;
  /** Messages list reads answered (200) since the last reset. */
  lists: number;
  /** Plays Twilio's status callback for a message; answers the receiver's status and body. */
  statusCallback(sid: string, status: 'sent' | 'delivered' | 'undelivered' | 'failed', options?: { errorCode?: number; signature?: string; url?: string }): Promise<{ status: number; body: string; url: string; params: Record<string, string> }>;
  reset(): void;
  close(): Promise<void>;
}

/** A random account SID / auth token pair, as Twilio issues them. */
export function newTwilioAccount(options: { numbers?: string[]; withApiKey?: boolean } = {}): TwilioAccount {
  const hex = (n: number) => randomBytes(n).toString('hex');
  return {
    sid: `AC${hex(16)}`,
    authToken: hex(16),
    ...(options.withApiKey ? { apiKeys: [{ sid: `SK${hex(16)}`, secret: hex(16) }] } : {}),
    ...(options.numbers ? { numbers: options.numbers } : {}),
  };
}

const MESSAGES_PATH = '/2010-04-01/Accounts/{AccountSid}/Messages.json';
const PATH_RE = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/;
const E164 = /^\+[1-9]\d{1,14}$/;
const LIST_PARAMS = new Set(['To', 'From', 'DateSent', 'DateSent<', 'DateSent>', 'PageSize', 'Page', 'PageToken']);

/** ListMessageResponse, from Twilio's API reference (the stored spec was trimmed to the create). */
const listPageSchema = {
  type: 'object',
  required: ['messages', 'end', 'first_page_uri', 'next_page_uri', 'page', 'page_size', 'previous_page_uri', 'start', 'uri'],
  additionalProperties: false,
  properties: {
    messages: { type: 'array' },
    end: { type: 'integer', minimum: 0 },
    first_page_uri: { type: 'string', pattern: '^/2010-04-01/Accounts/AC[0-9a-fA-F]{32}/Messages\\.json\\?' },
    next_page_uri: { type: ['string', 'null'] },
    page: { type: 'integer', minimum: 0 },
    page_size: { type: 'integer', minimum: 1, maximum: 1000 },
    previous_page_uri: { type: ['string', 'null'] },
    start: { type: 'integer', minimum: 0 },
    uri: { type: 'string', pattern: '^/2010-04-01/Accounts/AC[0-9a-fA-F]{32}/Messages\\.json' },
  },
} as const;
const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

interface Validators {
  createRequest: ValidateFunction;
  message: ValidateFunction;
  listPage: ValidateFunction;
  error: ValidateFunction;
  accountSid: ValidateFunction;
  requestFields: Record<string, { type?: string; items?: unknown }>;
}

let validators: Validators | undefined;
function schemas(): Validators {
  if (validators) return validators;
  // OpenAPI 3.0 schemas are draft-04/07 JSON Schema plus `nullable` (which Ajv understands).
  const ajv = new Ajv({ strict: false, allErrors: true, coerceTypes: 'array' });
  addFormats(ajv);
  // Twilio's own formats. Phone numbers are checked by the fake's rules (with Twilio's codes).
  ajv.addFormat('phone-number', true);
  ajv.addFormat('date-time-rfc-2822', (v: string) => !Number.isNaN(Date.parse(v)));
  ajv.addFormat('currency', /^[A-Z]{3}$/);
  ajv.addFormat('uri-map', true);
  const operation = spec.paths[MESSAGES_PATH].post;
  const requestSchema = operation.requestBody.content['application/x-www-form-urlencoded'].schema;
  // The spec lists every field of the form: anything else is a mistake of the client.
  const compile = (schema: object) => ajv.compile({ ...schema, components: spec.components });
  validators = {
    createRequest: compile({ ...requestSchema, additionalProperties: false }),
    message: compile(spec.components.schemas['api.v2010.account.message']),
    listPage: ajv.compile(listPageSchema),
    error: ajv.compile({ ...errorSchema, required: ['code', 'message', 'more_info', 'status'] }),
    accountSid: ajv.compile(operation.parameters[0]!.schema),
    requestFields: requestSchema.properties as Record<string, { type?: string; items?: unknown }>,
  };
  return validators;
}

function explain(errors: ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map((e) => `${e.instancePath || '(form)'} ${e.message ?? 'invalid'}${e.params && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''}`);
}

function rfc2822(ms: number): string {
  return new Date(ms).toUTCString().replace('GMT', '+0000');
}

export async function startTwilioFake(options: { accounts?: TwilioAccount[] } = {}): Promise<TwilioFake> {
  const v = schemas();
  const accounts = new Map<string, TwilioAccount>((options.accounts ?? []).map((a) => [a.sid, a]));
  const messages: TwilioMessage[] = [];
  const requests: TwilioRequest[] = [];
  const violations: TwilioViolation[] = [];
  let steps: TwilioStep[] = [];
  let listSteps: TwilioStep[] = [];
  const state = { lists: 0 };

  function errorBody(status: number, code: number, message: string) {
    const body = { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status };
    if (!v.error(body)) violations.push({ path: 'error answer', errors: explain(v.error.errors), raw: JSON.stringify(body) });
    return body;
  }

  /** Who is calling: the account when the basic auth matches it (account token or one of its API keys). */
  function authenticate(req: http.IncomingMessage, account: TwilioAccount | undefined): string | undefined {
    const header = req.headers.authorization ?? '';
    const match = /^Basic ([A-Za-z0-9+/=]+)$/.exec(header);
    if (!match || !account) return undefined;
    const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return undefined;
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    if (user === account.sid && password === account.authToken) return user;
    if ((account.apiKeys ?? []).some((k) => k.sid === user && k.secret === password)) return user;
    return undefined;
  }

  /** The form as the spec's schema sees it: repeated fields of array type as arrays. */
  function parseForm(raw: string): Record<string, string | string[]> {
    const out: Record<string, string | string[]> = {};
    for (const [key, value] of new URLSearchParams(raw)) {
      const isArray = v.requestFields[key]?.type === 'array';
      const prior = out[key];
      if (isArray) out[key] = [...(Array.isArray(prior) ? prior : prior !== undefined ? [prior] : []), value];
      else out[key] = value;
    }
    return out;
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const url = new URL(req.url ?? '/', 'http://fake');
      const record: TwilioRequest = { method: req.method ?? '', path: `${url.pathname}${url.search}`, headers: req.headers, raw, receivedAt: Date.now(), status: 0 };
      requests.push(record);
      const answer = (status: number, body: unknown, headers: Record<string, string> = {}) => {
        record.status = status;
        if (body && typeof body === 'object' && 'code' in body && status >= 400) record.code = (body as { code: number }).code;
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'twilio-request-id': `RQ${randomBytes(16).toString('hex')}`, ...headers });
        res.end(JSON.stringify(body));
      };
      const fail = (status: number, code: number, message: string, headers?: Record<string, string>) => answer(status, errorBody(status, code, message), headers);

      const match = PATH_RE.exec(url.pathname);
      if (!match) return fail(404, 20404, `The requested resource ${url.pathname} was not found`);
      const accountSid = decodeURIComponent(match[1]!);
      if (!v.accountSid(accountSid)) violations.push({ path: 'AccountSid', errors: explain(v.accountSid.errors), raw: accountSid });
      const account = accounts.get(accountSid);
      const user = authenticate(req, account);
      if (!user) return fail(401, 20003, 'Authenticate');
      if (!account) return fail(404, 20404, `The requested resource ${url.pathname} was not found`);

      if (req.method === 'GET') {
        if (raw.length) violations.push({ path: 'ListMessage', errors: ['a GET with a body'], raw });
        const step = listSteps.shift() ?? { type: 'ok' };
        if (step.type === 'hangUp') {
          record.status = 0;
          return req.socket.destroy();
        }
        if (step.type === 'error') return fail(step.status, step.code, step.message ?? `Error ${step.code}`, step.headers);
        if (step.type === 'slow') {
          setTimeout(() => {
            if (!res.destroyed) list(account, url, answer, fail);
          }, step.delayMs).unref();
          return;
        }
        return list(account, url, answer, fail);
      }
      if (req.method !== 'POST') return fail(405, 20004, 'Method not allowed');

      const contentType = String(req.headers['content-type'] ?? '');
      if (!contentType.startsWith('application/x-www-form-urlencoded')) {
        violations.push({ path: 'content-type', errors: [`expected application/x-www-form-urlencoded, got ${contentType || '(none)'}`], raw });
        return fail(400, 20001, 'Unsupported content type');
      }
      const form = parseForm(raw);
      const checked: Record<string, unknown> = JSON.parse(JSON.stringify(form)) as Record<string, unknown>;
      if (!v.createRequest(checked)) {
        const errors = explain(v.createRequest.errors);
        violations.push({ path: 'CreateMessageRequest', errors, raw });
        return fail(400, 20001, `Invalid parameter: ${errors.join('; ')}`);
      }
      const step = steps.shift() ?? { type: 'ok' };
      if (step.type === 'hangUp') {
        record.status = 0;
        return req.socket.destroy();
      }
      if (step.type === 'error') return fail(step.status, step.code, step.message ?? `Error ${step.code}`, step.headers);

      // The rules the spec states in its descriptions, with Twilio's codes.
      const one = (key: string) => {
        const value = form[key];
        return typeof value === 'string' ? value : undefined;
      };
      const to = one('To') ?? '';
      const from = one('From');
      const service = one('MessagingServiceSid');
      const body = one('Body');
      if (!E164.test(to) && !/^[a-z]+:/.test(to)) return fail(400, 21211, `The 'To' number ${to} is not a valid phone number.`);
      if (!from && !service) return fail(400, 21603, "A 'From' phone number is required.");
      if (body === undefined && form.MediaUrl === undefined && !one('ContentSid')) return fail(400, 21602, 'Message body is required.');
      if (body !== undefined && body.length > 1600) return fail(400, 21617, 'The concatenated message body exceeds the 1600 character limit.');
      if (from && account.numbers && !account.numbers.includes(from)) return fail(400, 21606, `The From phone number ${from} is not a valid, SMS-capable inbound phone number or short code for your account.`);

      const now = Date.now();
      const sid = `SM${randomBytes(16).toString('hex')}`;
      const message: TwilioMessage = {
        sid,
        account_sid: account.sid,
        to,
        from: from ?? null,
        messaging_service_sid: service ?? null,
        body: body ?? '',
        status: service ? 'accepted' : 'queued',
        error_code: null,
        date_created: rfc2822(now),
        createdAt: now,
        ...(one('StatusCallback') ? { statusCallback: one('StatusCallback') } : {}),
        form,
        authUser: user,
      };
      messages.push(message);
      const resource = resourceOf(message);
      if (!v.message(resource)) violations.push({ path: 'api.v2010.account.message (the fake answer)', errors: explain(v.message.errors), raw: JSON.stringify(resource) });
      if (step.type === 'slow') {
        setTimeout(() => {
          if (!res.destroyed) answer(201, resource);
        }, step.delayMs).unref();
        return;
      }
      answer(201, resource);
    });
  });

  function resourceOf(m: TwilioMessage): Record<string, unknown> {
    const uri = `/2010-04-01/Accounts/${m.account_sid}/Messages/${m.sid}.json`;
    return {
      account_sid: m.account_sid,
      api_version: '2010-04-01',
      body: m.body,
      date_created: m.date_created,
      date_sent: m.dateSent !== undefined ? rfc2822(m.dateSent) : null,
      date_updated: m.date_created,
      direction: 'outbound-api',
      error_code: m.error_code,
      error_message: null,
      from: m.from,
      messaging_service_sid: m.messaging_service_sid,
      num_media: '0',
      num_segments: String(Math.max(1, Math.ceil(m.body.length / 160))),
      price: null,
      price_unit: 'USD',
      sid: m.sid,
      status: m.status,
      subresource_uris: { media: `${uri.replace(/\.json$/, '')}/Media.json` },
      to: m.to,
      uri,
    };
  }

  function list(account: TwilioAccount, url: URL, answer: (status: number, body: unknown) => void, fail: (status: number, code: number, message: string) => void) {
    const errors = [...url.searchParams.keys()].filter((k) => !LIST_PARAMS.has(k)).map((k) => `unknown parameter ${k}`);
    const sizeText = url.searchParams.get('PageSize');
    const pageSize = sizeText === null ? 50 : Number(sizeText);
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 1000) errors.push(`PageSize ${String(sizeText)} (1-1000)`);
    const pageText = url.searchParams.get('Page');
    const page = pageText === null ? 0 : Number(pageText);
    if (!Number.isInteger(page) || page < 0) errors.push(`Page ${String(pageText)}`);
    const dates: Array<[string, (sent: number, at: number) => boolean]> = [
      ['DateSent', (sent, at) => Math.floor(sent / 86_400_000) === Math.floor(at / 86_400_000)],
      ['DateSent<', (sent, at) => sent <= at],
      ['DateSent>', (sent, at) => sent >= at],
    ];
    const dateFilters: Array<(m: TwilioMessage) => boolean> = [];
    for (const [name, test] of dates) {
      const value = url.searchParams.get(name);
      if (value === null) continue;
      if (!DATE_ONLY.test(value) && !DATE_TIME.test(value)) {
        errors.push(`${name} ${value} (YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ)`);
        continue;
      }
      const at = Date.parse(DATE_ONLY.test(value) ? `${value}T00:00:00Z` : value);
      // Twilio filters on date_sent: a message not sent yet has none and never matches.
      dateFilters.push((m) => m.dateSent !== undefined && test(m.dateSent, at));
    }
    if (errors.length) {
      violations.push({ path: 'ListMessage query', errors, raw: url.search });
      return fail(400, 20001, `Invalid parameter: ${errors.join('; ')}`);
    }
    state.lists++;
    const to = url.searchParams.get('To');
    const from = url.searchParams.get('From');
    const all = messages
      .filter((m) => m.account_sid === account.sid && (!to || m.to === to) && (!from || m.from === from) && dateFilters.every((f) => f(m)))
      .sort((a, b) => b.createdAt - a.createdAt);
    const found = all.slice(page * pageSize, (page + 1) * pageSize);
    const base = `/2010-04-01/Accounts/${account.sid}/Messages.json`;
    const filters = new URLSearchParams([...url.searchParams].filter(([k]) => k !== 'Page' && k !== 'PageSize' && k !== 'PageToken'));
    const pageUri = (n: number) => `${base}?${filters.toString() ? `${filters.toString()}&` : ''}PageSize=${pageSize}&Page=${n}`;
    const body = {
      messages: found.map(resourceOf),
      end: page * pageSize + Math.max(0, found.length - 1),
      first_page_uri: pageUri(0),
      next_page_uri: all.length > (page + 1) * pageSize ? `${pageUri(page + 1)}&PageToken=PA${randomBytes(16).toString('hex')}` : null,
      page,
      page_size: pageSize,
      previous_page_uri: page > 0 ? pageUri(page - 1) : null,
      start: page * pageSize,
      uri: `${base}${url.search}`,
    };
    if (!v.listPage(body)) violations.push({ path: 'ListMessageResponse (the fake answer)', errors: explain(v.listPage.errors), raw: JSON.stringify(body).slice(0, 500) });
    for (const message of body.messages) if (!v.message(message)) violations.push({ path: 'api.v2010.account.message in a list (the fake answer)', errors: explain(v.message.errors), raw: JSON.stringify(message) });
    answer(200, body);
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    baseUrl: `http://127.0.0.1:${port}`,
    accounts,
    messages,
    requests,
    violations,
    addAccount(account) {
      accounts.set(account.sid, account);
    },
    script(next) {
      steps = [...next];
    },
    scriptList(next) {
      listSteps = [...next];
    },
    get lists() {
      return state.lists;
    },
    async statusCallback(sid, status, options = {}) {
      const message = messages.find((m) => m.sid === sid);
      if (!message) throw new Error(`twilio fake: no message ${sid}`);
      const url = options.url ?? message.statusCallback;
      if (!url) throw new Error(`twilio fake: message ${sid} has no StatusCallback`);
      const account = accounts.get(message.account_sid)!;
      message.status = status;
      message.error_code = options.errorCode ?? null;
      if (status !== 'failed') message.dateSent ??= Date.now();
      // The fields Twilio documents for a message status callback.
      const params: Record<string, string> = {
        AccountSid: message.account_sid,
        ApiVersion: '2010-04-01',
        From: message.from ?? '',
        MessageSid: sid,
        MessageStatus: status,
        SmsSid: sid,
        SmsStatus: status,
        To: message.to,
        ...(message.messaging_service_sid ? { MessagingServiceSid: message.messaging_service_sid } : {}),
        ...(options.errorCode !== undefined ? { ErrorCode: String(options.errorCode) } : {}),
      };
      const signature = options.signature ?? twilio.getExpectedTwilioSignature(account.authToken, url, params);
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': signature, 'user-agent': 'TwilioProxy/1.1', 'i-twilio-idempotency-token': randomBytes(16).toString('hex') },
        body: new URLSearchParams(params).toString(),
      });
      return { status: response.status, body: await response.text(), url, params };
    },
    reset() {
      messages.length = 0;
      requests.length = 0;
      violations.length = 0;
      steps = [];
      listSteps = [];
      state.lists = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
