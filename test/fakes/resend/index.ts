/**
 * A local Resend: enough of https://api.resend.com for the real `resend` SDK (pointed here with
 * its `baseUrl` option) to send email, checked against Resend's own OpenAPI document
 * (test/fakes/specs/resend/resend.json, OpenAPI 3.1, validated with Ajv2020).
 *
 * POST /emails:
 *  - `Authorization: Bearer <key>` required (401 missing_api_key; an unknown key is 401
 *    validation_error "API key is invalid", as Resend's errors page documents for sending);
 *  - the body must be JSON and valid against `SendEmailRequest`; beyond the schema, the rules the
 *    spec states in prose (tag names/values: ASCII letters, digits, `_`, `-`, ≤ 256) and real
 *    addresses in from/to/cc/bcc/reply_to. A refused body is 422 validation_error and is recorded
 *    in `violations` (tests assert there are none);
 *  - the from domain must be one of the fake account's verified domains (403 validation_error
 *    "The <domain> domain is not verified…", as Resend answers);
 *  - `Idempotency-Key` as Resend documents it: 1-256 characters (else 400 invalid_idempotency_key);
 *    the same key with the same body replays the first answer (same id, no second email); the same
 *    key with another body is 409 invalid_idempotent_request; while the first is still being
 *    processed, 409 concurrent_idempotent_requests. Only successful sends are remembered.
 *  - scriptable per request: any Resend error (429 with retry-after, 5xx, 422, 403, quotas), a slow
 *    answer (the email is sent at once, the answer comes late: our attempt times out after the
 *    fact), a held request (processing takes long), a hang-up; and `down()` / `up()` to refuse
 *    connections altogether.
 * Error bodies have Resend's shape `{ statusCode, message, name }`.
 *
 * It also plays Resend's webhook sender: `event()` builds an event from a sent email, validated
 * against the spec's event schemas, and `postWebhook()` signs it as Resend does (Resend sends
 * through Svix, which is the Standard Webhooks scheme under `svix-*` header names: signed with the
 * `standardwebhooks` library, the one the `svix` package wraps) and posts it.
 */
import { createHash, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { Webhook } from 'standardwebhooks';
import spec from '../specs/resend/resend.json';

export interface ResendError {
  status: number;
  name: string;
  message: string;
  headers?: Record<string, string>;
}

export type ResendStep =
  | { type: 'ok' }
  | ({ type: 'error' } & ResendError)
  /** Send the email at once, answer after `delayMs` (an attempt that times out after the fact). */
  | { type: 'slow'; delayMs: number }
  /** Keep the request "in progress" for `holdMs` before sending (same key meanwhile: 409 concurrent). */
  | { type: 'hold'; holdMs: number }
  /** Destroy the connection without an answer and without sending. */
  | { type: 'hangUp' };

/** Resend's documented errors, ready to script. */
export const resendErrors = {
  rateLimit: (retryAfterS = 1): ResendStep => ({
    type: 'error', status: 429, name: 'rate_limit_exceeded',
    message: 'Too many requests. You can only make 5 requests per second. See rate limit response headers for more information. Or contact support to increase rate limit.',
    headers: { 'retry-after': String(retryAfterS), 'ratelimit-limit': '5', 'ratelimit-remaining': '0', 'ratelimit-reset': String(retryAfterS) },
  }),
  dailyQuota: (): ResendStep => ({ type: 'error', status: 429, name: 'daily_quota_exceeded', message: 'You have reached your daily email sending quota.' }),
  monthlyQuota: (): ResendStep => ({ type: 'error', status: 429, name: 'monthly_quota_exceeded', message: 'You have reached your monthly email sending quota.' }),
  serverError: (): ResendStep => ({ type: 'error', status: 500, name: 'internal_server_error', message: 'An unexpected error occurred.' }),
  validation: (message = 'Invalid `to` field. The email address needs to follow the `email@example.com` or `Name <email@example.com>` format.'): ResendStep => ({ type: 'error', status: 422, name: 'validation_error', message }),
  domainNotVerified: (domain: string): ResendStep => ({ type: 'error', status: 403, name: 'validation_error', message: `The ${domain} domain is not verified. Please, add and verify your domain on https://resend.com/domains` }),
  invalidApiKey: (): ResendStep => ({ type: 'error', status: 403, name: 'invalid_api_key', message: 'API key is invalid' }),
};

export interface SentEmail {
  id: string;
  /** The request body as received (snake_case API fields). */
  body: Record<string, unknown>;
  raw: string;
  apiKey: string;
  idempotencyKey?: string;
  createdAt: string;
}

export interface ResendRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  raw: string;
  receivedAt: number;
  /** What the fake answered (0 for a hang-up). */
  status: number;
  errorName?: string;
}

export interface Violation {
  path: string;
  errors: string[];
  raw: string;
}

export interface ResendFake {
  baseUrl: string;
  emails: SentEmail[];
  requests: ResendRequest[];
  violations: Violation[];
  verifiedDomains: Set<string>;
  apiKeys: Set<string>;
  /** Steps for the next requests to /emails, one each, in order; then normal service. */
  script(steps: ResendStep[]): void;
  waitForRequests(count: number, timeoutMs?: number): Promise<ResendRequest[]>;
  /** Refuse connections (the port is closed) until `up()`. */
  down(): Promise<void>;
  up(): Promise<void>;
  /** A webhook event about a sent email, valid against the spec's schema for its type. */
  event(type: 'email.sent' | 'email.delivered' | 'email.bounced' | 'email.complained', email: SentEmail, extra?: Record<string, unknown>): Record<string, unknown>;
  /** Signs `body` as Resend does (Standard Webhooks, `svix-*` headers) and posts it; returns the status and body. */
  postWebhook(url: string, secret: string, body: string, options?: { msgId?: string; timestamp?: Date; signature?: string }): Promise<{ status: number; body: string }>;
  reset(): void;
  close(): Promise<void>;
}

const EVENT_SCHEMAS: Record<string, string> = {
  'email.sent': 'EmailSentEvent',
  'email.delivered': 'EmailDeliveredEvent',
  'email.bounced': 'EmailBouncedEvent',
  'email.complained': 'EmailComplainedEvent',
};

let ajv: Ajv2020 | undefined;
function schema(name: string): ValidateFunction {
  if (!ajv) {
    // The whole OpenAPI 3.1 document as one schema resource; its components are JSON Schema 2020-12.
    ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats(ajv);
    ajv.addSchema(spec, 'resend.json');
  }
  const validate = ajv.getSchema(`resend.json#/components/schemas/${name}`);
  if (!validate) throw new Error(`no schema ${name} in the Resend spec`);
  return validate;
}

const TAG_RE = /^[A-Za-z0-9_-]{1,256}$/;
const ADDRESS_RE = /^[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+$/;
function addressOf(value: string): string | undefined {
  const named = /^(.*?)\s*<([^<>]+)>$/.exec(value.trim());
  const addr = named ? named[2]! : value.trim();
  return ADDRESS_RE.test(addr) ? addr : undefined;
}
const list = (v: unknown): string[] => (v === undefined ? [] : Array.isArray(v) ? (v as string[]) : [v as string]);

/** Checks the spec states in words rather than in the schema, and Resend's address rules. */
function proseChecks(body: Record<string, unknown>): string[] {
  const errors: string[] = [];
  if (typeof body.from === 'string' && !addressOf(body.from)) errors.push('Invalid `from` field. The email address needs to follow the `email@example.com` or `Name <email@example.com>` format.');
  for (const field of ['to', 'cc', 'bcc', 'reply_to']) {
    for (const value of list(body[field])) if (typeof value !== 'string' || !addressOf(value)) errors.push(`Invalid \`${field}\` field. The email address needs to follow the \`email@example.com\` or \`Name <email@example.com>\` format.`);
  }
  if (Array.isArray(body.tags)) {
    for (const tag of body.tags as Array<Record<string, unknown>>) {
      if (typeof tag?.name !== 'string' || !TAG_RE.test(tag.name)) errors.push('Tag names can only contain ASCII letters (a–z, A–Z), numbers (0–9), underscores (_), or dashes (-), at most 256 characters.');
      if (typeof tag?.value !== 'string' || !TAG_RE.test(tag.value)) errors.push('Tag values can only contain ASCII letters (a–z, A–Z), numbers (0–9), underscores (_), or dashes (-), at most 256 characters.');
    }
  }
  return errors;
}

export async function startResendFake(options: { apiKeys?: string[]; verifiedDomains?: string[] } = {}): Promise<ResendFake> {
  const emails: SentEmail[] = [];
  const requests: ResendRequest[] = [];
  const violations: Violation[] = [];
  const verifiedDomains = new Set((options.verifiedDomains ?? []).map((d) => d.toLowerCase()));
  const apiKeys = new Set(options.apiKeys ?? []);
  let steps: ResendStep[] = [];
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  /** Idempotency keys (per API key): the body's hash and the answer, or pending. */
  const keys = new Map<string, { hash: string; pending: boolean; answer?: { id: string } }>();

  const notify = () => {
    for (const waiter of waiters.filter((w) => requests.length >= w.count)) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const record: ResendRequest = { method: req.method ?? '', path: (req.url ?? '').split('?')[0]!, headers: req.headers, raw, receivedAt: Date.now(), status: 0 };
      requests.push(record);
      notify();
      const answer = (status: number, body: unknown, headers: Record<string, string> = {}, delayMs = 0) => {
        record.status = status;
        if (status >= 400) record.errorName = (body as { name?: string }).name;
        const send = () => {
          if (res.destroyed || req.socket.destroyed) return;
          res.writeHead(status, { 'content-type': 'application/json', 'ratelimit-limit': '5', 'ratelimit-remaining': '4', 'ratelimit-reset': '1', ...headers });
          res.end(JSON.stringify(body));
        };
        if (delayMs) setTimeout(send, delayMs).unref();
        else send();
      };
      const fail = (e: ResendError, delayMs = 0) => answer(e.status, { statusCode: e.status, message: e.message, name: e.name }, e.headers, delayMs);

      if (record.path !== '/emails') return fail({ status: 404, name: 'not_found', message: 'The requested endpoint does not exist.' });
      if (record.method !== 'POST') return fail({ status: 405, name: 'method_not_allowed', message: 'Method is not allowed for the requested path.' });

      const auth = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
      if (!auth) return fail({ status: 401, name: 'missing_api_key', message: 'Missing API key in the authorization header. Include the following header in the request: Authorization: Bearer YOUR_API_KEY' });
      const apiKey = auth[1]!;
      if (!apiKeys.has(apiKey)) return fail({ status: 401, name: 'validation_error', message: 'API key is invalid' });

      // What the spec says about the request, recorded whatever the script answers.
      let body: Record<string, unknown> | undefined;
      const errors: string[] = [];
      if (!/^application\/json\b/.test(req.headers['content-type'] ?? '')) errors.push('content-type must be application/json');
      try {
        body = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        errors.push('the body is not JSON');
      }
      if (body) {
        const validate = schema('SendEmailRequest');
        if (!validate(body)) errors.push(...(validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`.trim()));
        else errors.push(...proseChecks(body));
      }
      if (errors.length) violations.push({ path: record.path, errors, raw });

      const step = steps.shift() ?? { type: 'ok' };
      if (step.type === 'hangUp') return req.socket.destroy();
      if (step.type === 'error') return fail(step);
      if (errors.length || !body) return fail({ status: 422, name: 'validation_error', message: errors.join('; ') });

      const key = req.headers['idempotency-key'];
      const idempotencyKey = typeof key === 'string' ? key : undefined;
      if (idempotencyKey !== undefined && (idempotencyKey.length < 1 || idempotencyKey.length > 256)) {
        return fail({ status: 400, name: 'invalid_idempotency_key', message: 'The key must be between 1-256 chars.' });
      }
      const from = addressOf(String(body.from))!;
      const domain = from.slice(from.lastIndexOf('@') + 1).toLowerCase();
      if (!verifiedDomains.has(domain)) return fail({ status: 403, name: 'validation_error', message: `The ${domain} domain is not verified. Please, add and verify your domain on https://resend.com/domains` });

      const hash = createHash('sha256').update(JSON.stringify(body)).digest('hex');
      const slot = idempotencyKey !== undefined ? `${apiKey}\u0000${idempotencyKey}` : undefined;
      const known = slot ? keys.get(slot) : undefined;
      if (known) {
        if (known.hash !== hash) return fail({ status: 409, name: 'invalid_idempotent_request', message: 'Same idempotency key used with a different request payload. Change your idempotency key or payload.' });
        if (known.pending) return fail({ status: 409, name: 'concurrent_idempotent_requests', message: 'Same idempotency key used while original request is still in progress. Try the request again later.' });
        return answer(200, known.answer);
      }
      const sendNow = () => {
        const email: SentEmail = { id: randomUUID(), body, raw, apiKey, ...(idempotencyKey !== undefined ? { idempotencyKey } : {}), createdAt: new Date().toISOString() };
        emails.push(email);
        if (slot) keys.set(slot, { hash, pending: false, answer: { id: email.id } });
        return email;
      };
      if (step.type === 'hold') {
        if (slot) keys.set(slot, { hash, pending: true });
        setTimeout(() => {
          if (slot) keys.delete(slot);
          const email = sendNow();
          answer(200, { id: email.id });
        }, step.holdMs).unref();
        return;
      }
      const email = sendNow();
      answer(200, { id: email.id }, {}, step.type === 'slow' ? step.delayMs : 0);
    });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  const fake: ResendFake = {
    baseUrl: `http://127.0.0.1:${port}`,
    emails,
    requests,
    violations,
    verifiedDomains,
    apiKeys,
    script(next) {
      steps = [...next];
    },
    waitForRequests(count, timeoutMs = 30_000) {
      if (requests.length >= count) return Promise.resolve(requests);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`resend fake: ${requests.length} of ${count} requests after ${timeoutMs} ms`)), timeoutMs);
        waiters.push({ count, resolve: () => (clearTimeout(timer), resolve(requests)) });
      });
    },
    down: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
    up: () => new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve)),
    event(type, email, extra = {}) {
      const sentTags = Array.isArray(email.body.tags) ? (email.body.tags as Array<{ name: string; value: string }>) : [];
      const tags = Object.fromEntries(sentTags.map((t) => [t.name, t.value]));
      const event = {
        type,
        created_at: new Date().toISOString(),
        data: {
          email_id: email.id,
          created_at: email.createdAt,
          from: String(email.body.from),
          to: list(email.body.to),
          subject: String(email.body.subject),
          ...(Object.keys(tags).length ? { tags } : {}),
          ...extra,
        },
      };
      const validate = schema(EVENT_SCHEMAS[type]!);
      if (!validate(event)) throw new Error(`resend fake: the ${type} event does not match the spec: ${JSON.stringify(validate.errors)}`);
      return event;
    },
    async postWebhook(url, secret, body, opts = {}) {
      const msgId = opts.msgId ?? `msg_${randomUUID().replace(/-/g, '')}`;
      const timestamp = opts.timestamp ?? new Date();
      const signature = opts.signature ?? new Webhook(secret).sign(msgId, timestamp, body);
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'svix-id': msgId, 'svix-timestamp': String(Math.floor(timestamp.getTime() / 1000)), 'svix-signature': signature },
        body,
      });
      return { status: response.status, body: await response.text() };
    },
    reset() {
      emails.length = 0;
      requests.length = 0;
      violations.length = 0;
      steps = [];
      keys.clear();
    },
    close: () =>
      new Promise<void>((resolve) => {
        if (!server.listening) return resolve();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  return fake;
}
