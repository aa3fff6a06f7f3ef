import { z } from 'zod';
import { Resend, type CreateEmailOptions } from 'resend';
import type { Classification, EndpointKind, KindAnswer } from '../types';
import type { KindDeps } from '../providers';
import type { FieldError } from '../../shared/errors';
import { applyMapping, flattenLead, validateMapping, type Mapping } from '../../shared/mapping';
import { renderTemplate, validateTemplate } from '../../shared/templates';
import { maskSecret } from '../../shared/redact';
import { ENDPOINT_FAULT_STATUSES, parseRetryAfter } from '../http-classify';

/**
 * Email through Resend (the `resend` SDK): from a verified sender domain, to the buyer's
 * recipients, subject + HTML + text rendered from `{first_name}`-style templates (values
 * HTML-escaped in the HTML part only). Every attempt of one lead to one endpoint carries the
 * same `Idempotency-Key`, so a retry after an ambiguous timeout never sends a second email.
 * Recipients on the suppression list (hard bounces, complaints reported by Resend's webhooks)
 * fail fast, without calling Resend.
 */

export const USER_AGENT = 'lead-delivery/0.1 (resend-node)';

const address = z.email({ message: 'must be an email address' }).max(254);
/** One address or a list; stored as a list. */
const addressList = (max: number) =>
  z
    .union([address, z.array(address).min(1, 'must name at least one address').max(max, `must name at most ${max} addresses`)])
    .transform((value) => (Array.isArray(value) ? value : [value]));

/** `leads@acme.com` or `Acme Leads <leads@acme.com>`: the address, or undefined when it is neither. */
export function parseFrom(value: string): { name?: string; address: string } | undefined {
  const trimmed = value.trim();
  const named = /^(.*?)\s*<([^<>\s]+)>$/.exec(trimmed);
  const addr = named ? named[2]! : trimmed;
  if (!address.safeParse(addr).success) return undefined;
  const name = named?.[1]?.replace(/^"(.*)"$/, '$1').trim();
  if (name && /[\r\n<>]/.test(name)) return undefined;
  return name ? { name, address: addr } : { address: addr };
}

export function domainOf(addr: string): string {
  return addr.slice(addr.lastIndexOf('@') + 1).toLowerCase();
}

export const emailConfig = z
  .object({
    from: z.string().max(320).refine((v) => parseFrom(v) !== undefined, 'must be an address or "Name <address>"'),
    to: addressList(50),
    cc: addressList(50).optional(),
    bcc: addressList(50).optional(),
    replyTo: addressList(50).optional(),
    subject: z.string().min(1, 'must not be empty').max(998, 'must be at most 998 characters'),
    html: z.string().min(1).max(500_000).optional(),
    text: z.string().min(1).max(500_000).optional(),
  })
  .strict()
  .refine((c) => c.html !== undefined || c.text !== undefined, { message: 'give an html or a text template (or both)', path: ['html'] });

export const emailSecrets = z
  .object({
    apiKey: z.string().min(1).max(256).regex(/^\S+$/, 'must not contain spaces').optional(),
  })
  .strict();

type Config = z.infer<typeof emailConfig>;
type Secrets = z.infer<typeof emailSecrets>;

export interface EmailPayload {
  apiKey: string;
  idempotencyKey: string;
  email: CreateEmailOptions;
  /** Every recipient (to, cc, bcc), lower-cased: checked against the suppression list. */
  recipients: string[];
  fromDomain: string;
}

/** Stable across every attempt of one lead to one endpoint (Resend keeps keys 24 h; max 256 chars). */
export const idempotencyKeyFor = (leadId: string, endpointId: string): string => `lead-delivery/${leadId}/${endpointId}`;

/** Resend tag values may hold ASCII letters, digits, `_` and `-` only. */
const tagValue = (value: string): string => value.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 256);

/** Answers made without calling Resend, or with no HTTP status: recorded under these provider codes. */
const LOCAL = { suppressed: 'suppressed', noKey: 'missing_api_key', unverified: 'domain_not_verified', timeout: 'timeout', cancelled: 'cancelled' } as const;

function validateEmail(config: Config, secrets: Secrets, mapping: unknown, deps: KindDeps): FieldError[] {
  const errors: FieldError[] = [];
  const from = parseFrom(config.from);
  if (from) {
    const domain = domainOf(from.address);
    const verified = deps.providers.resendVerifiedDomains;
    if (!verified.includes(domain)) {
      errors.push({
        path: 'from',
        message: verified.length
          ? `the domain ${domain} is not a verified Resend sender domain (verified: ${verified.join(', ')})`
          : `the domain ${domain} is not verified: no Resend sender domain is configured (RESEND_VERIFIED_DOMAINS)`,
      });
    }
  }
  if (!secrets.apiKey && !deps.providers.resendApiKey) errors.push({ path: 'apiKey', message: 'is required: no platform Resend key is configured (RESEND_API_KEY)' });
  errors.push(...validateTemplate(config.subject, 'subject'));
  if (config.html !== undefined) errors.push(...validateTemplate(config.html, 'html'));
  if (config.text !== undefined) errors.push(...validateTemplate(config.text, 'text'));
  errors.push(...validateMapping(mapping));
  return errors;
}

/**
 * The JSON body exactly as resend-node 6 serialises it (its parseEmailToApiOptions: snake_case,
 * this key order, undefined keys dropped by JSON.stringify): what `describe` records.
 */
function apiBody(email: CreateEmailOptions): string {
  return JSON.stringify({
    attachments: undefined,
    bcc: email.bcc,
    cc: email.cc,
    from: email.from,
    headers: email.headers,
    html: email.html,
    reply_to: email.replyTo,
    scheduled_at: undefined,
    subject: email.subject,
    tags: email.tags,
    text: email.text,
    to: email.to,
    template: undefined,
    topic_id: undefined,
  });
}

export function createEmailKind(deps: KindDeps) {
  const baseUrl = deps.providers.resendBaseUrl.replace(/\/+$/, '');

  async function suppressedAmong(recipients: string[]): Promise<Array<{ address: string; reason: string; source: string }>> {
    if (!deps.models || recipients.length === 0) return [];
    const found = await deps.models.Suppression.find({ _id: { $in: recipients.map((r) => `email:${r}`) } }, { address: 1, reason: 1, source: 1 }).lean();
    return found.map((s) => ({ address: s.address, reason: s.reason, source: s.source }));
  }

  return {
    kind: 'email',
    description: 'Email through Resend from a verified sender domain, subject/HTML/text from templates',
    configSchema: emailConfig,
    secretsSchema: emailSecrets,
    validate: (config, secrets, mapping) => validateEmail(config, secrets, mapping, deps),
    map(endpoint, ctx) {
      const { config } = endpoint;
      // The message comes from the templates; a mapping, when given, only adds its required-field checks.
      if (endpoint.mapping) applyMapping(endpoint.mapping as Mapping, ctx);
      const flat = flattenLead(ctx);
      const html = config.html !== undefined ? renderTemplate(config.html, flat, { html: true }) : undefined;
      const text = config.text !== undefined ? renderTemplate(config.text, flat) : undefined;
      const email = {
        from: config.from,
        to: config.to,
        ...(config.cc ? { cc: config.cc } : {}),
        ...(config.bcc ? { bcc: config.bcc } : {}),
        ...(config.replyTo ? { replyTo: config.replyTo } : {}),
        // A subject is one header line: line breaks from lead values are folded into spaces.
        subject: renderTemplate(config.subject, flat).replace(/[\r\n]+/g, ' ').trim(),
        ...(html !== undefined ? { html } : {}),
        ...(text !== undefined ? { text } : {}),
        tags: [
          { name: 'lead_id', value: tagValue(ctx.leadId) },
          { name: 'endpoint_id', value: tagValue(endpoint.endpointId) },
        ],
      } as CreateEmailOptions; // the schema guarantees html or text: the SDK's RequireAtLeastOne holds
      const apiKey = endpoint.secrets.apiKey ?? deps.providers.resendApiKey;
      const idempotencyKey = idempotencyKeyFor(ctx.leadId, endpoint.endpointId);
      const recipients = [...config.to, ...(config.cc ?? []), ...(config.bcc ?? [])].map((r) => r.toLowerCase());
      return {
        payload: { apiKey, idempotencyKey, email, recipients, fromDomain: domainOf(parseFrom(config.from)?.address ?? config.from) },
        describe: {
          method: 'POST',
          url: `${baseUrl}/emails`,
          headers: {
            authorization: apiKey ? `Bearer ${maskSecret(apiKey)}` : '(none)',
            'user-agent': USER_AGENT,
            'content-type': 'application/json',
            'idempotency-key': idempotencyKey,
          },
          body: apiBody(email),
        },
      };
    },
    async send(prepared, _endpoint, io): Promise<KindAnswer> {
      const { apiKey, idempotencyKey, email, recipients, fromDomain } = prepared.payload;
      if (!apiKey) return { providerCode: LOCAL.noKey, providerMessage: 'no Resend API key: set apiKey on the endpoint or RESEND_API_KEY' };
      if (!deps.providers.resendVerifiedDomains.includes(fromDomain)) {
        return { providerCode: LOCAL.unverified, providerMessage: `the sender domain ${fromDomain} is not in RESEND_VERIFIED_DOMAINS` };
      }
      const suppressed = await suppressedAmong(recipients);
      if (suppressed.length) {
        return {
          providerCode: LOCAL.suppressed,
          providerMessage: `suppressed recipient${suppressed.length > 1 ? 's' : ''}: ${suppressed.map((s) => `${s.address} (${s.reason}, ${s.source})`).join('; ')}`,
        };
      }

      const timeout = AbortSignal.timeout(io.timeoutMs);
      const signal = AbortSignal.any([io.signal, timeout]);
      const resend = new Resend(apiKey, { baseUrl, userAgent: USER_AGENT });
      // The SDK never throws: API errors and network failures both come back as `error`.
      const result = await resend.emails.send(email, { idempotencyKey, signal });
      const headers = result.headers ?? {};
      if (result.error) {
        const { statusCode, name, message } = result.error;
        if (statusCode === null || statusCode === undefined) {
          if (timeout.aborted) return { providerCode: LOCAL.timeout, providerMessage: `no answer from Resend within ${io.timeoutMs / 1000}s` };
          if (io.signal.aborted) return { providerCode: LOCAL.cancelled, providerMessage: 'the attempt was cancelled' };
          return { headers, providerCode: name, providerMessage: message };
        }
        const body = JSON.stringify(result.error);
        return { status: statusCode, headers, body, bodyBytes: Buffer.byteLength(body), providerCode: name, providerMessage: message };
      }
      const body = JSON.stringify(result.data);
      return { status: 200, headers, body, bodyBytes: Buffer.byteLength(body), messageId: result.data.id };
    },
    classify: (answer) => classifyResendAnswer(answer),
  } satisfies EndpointKind<Config, Secrets, EmailPayload>;
}

// ---- classification (pure; the table is in README.md) -------------------------------------------

/** Resend error names that mean "this request, as configured, will never succeed". */
const PERMANENT_NAMES = new Set([
  'validation_error', 'missing_required_field', 'missing_api_key', 'invalid_api_key', 'restricted_api_key', 'suspended_api_key',
  'invalid_from_address', 'invalid_to_address', 'invalid_attachment', 'invalid_parameter', 'invalid_access', 'invalid_region',
  'invalid_scope', 'invalid_idempotency_key', 'invalid_idempotent_request', 'not_found', 'method_not_allowed', 'security_error',
]);
/**
 * Resend error names about the endpoint itself (its API key, its sender), not about one lead's
 * email: they count against the endpoint's breaker. Any other refusal is about this lead.
 */
const ENDPOINT_FAULT_NAMES = new Set(['missing_api_key', 'invalid_api_key', 'restricted_api_key', 'suspended_api_key', 'invalid_from_address']);

/** Next reset of Resend's sending quotas (UTC): the next midnight, or the first of next month. */
export function quotaResetAt(kind: 'daily' | 'monthly', now: number): number {
  const d = new Date(now);
  return kind === 'daily' ? Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1) : Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

export function classifyResendAnswer(answer: KindAnswer, now = Date.now()): Classification {
  const status = answer.status;
  const name = answer.providerCode ?? '';
  const message = answer.providerMessage ?? '';
  const reason = (text: string) => text.replace(/\s+/g, ' ').trim().slice(0, 300);

  if (status !== undefined && status >= 200 && status < 300) return { outcome: 'success', code: 'ok', reason: `sent, Resend id ${answer.messageId ?? '(none)'}`, countsAgainstEndpoint: false };

  if (status === undefined) {
    switch (name) {
      case LOCAL.suppressed:
        return { outcome: 'permanent', code: 'suppressed', reason: reason(message), countsAgainstEndpoint: false };
      case LOCAL.noKey:
        return { outcome: 'permanent', code: 'resend_missing_api_key', reason: reason(message), countsAgainstEndpoint: true };
      case LOCAL.unverified:
        return { outcome: 'permanent', code: 'resend_domain_not_verified', reason: reason(message), countsAgainstEndpoint: true };
      case LOCAL.timeout:
        // Resend may have accepted the email before our deadline: ambiguous (the retry carries the same Idempotency-Key).
        return { outcome: 'unknown', code: 'timeout', reason: reason(message), countsAgainstEndpoint: true };
      case LOCAL.cancelled:
        // Cancelled mid-request: it may have reached Resend (the retry carries the same Idempotency-Key).
        return { outcome: 'unknown', code: 'cancelled', reason: reason(`${message}; Resend may have received it`), countsAgainstEndpoint: false };
      default:
        // The SDK swallows network failures ({ error, statusCode: null }) without their cause: a refused
        // connection and a reset after the request was sent look the same, so it may have reached Resend.
        return { outcome: 'unknown', code: 'resend_network_error', reason: reason(`no answer from Resend (${message || 'network error'}); the SDK does not say whether the request reached it`), countsAgainstEndpoint: true };
    }
  }

  const label = reason(`${status} ${name}: ${message}`);
  const retryAfterMs = parseRetryAfter(answer.headers?.['retry-after'], now);
  if (name === 'daily_quota_exceeded' || name === 'monthly_quota_exceeded') {
    // Park until the quota resets (the registry caps the wait; the schedule bounds the rest).
    const resetAt = quotaResetAt(name === 'daily_quota_exceeded' ? 'daily' : 'monthly', now);
    const wait = Math.max(resetAt - now, retryAfterMs ?? 0);
    return { outcome: 'transient', code: `resend_${name}`, reason: reason(`${label} (resets ${new Date(resetAt).toISOString()})`), countsAgainstEndpoint: true, retryAfterMs: wait };
  }
  if (name === 'validation_error' && status === 403 && /not verified/i.test(message)) return { outcome: 'permanent', code: 'resend_domain_not_verified', reason: label, countsAgainstEndpoint: true };
  if (name === 'validation_error' && (status === 401 || status === 403) && /api key/i.test(message)) return { outcome: 'permanent', code: 'resend_invalid_api_key', reason: label, countsAgainstEndpoint: true };

  const named = /^[a-z_]{1,64}$/.test(name);
  const code = named ? `resend_${name}` : `http_${status}`;
  const transient = status >= 500 || status === 429 || status === 408 || name === 'rate_limit_exceeded' || name === 'concurrent_idempotent_requests';
  if (transient) return { outcome: 'transient', code, reason: label, countsAgainstEndpoint: true, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
  if (PERMANENT_NAMES.has(name) || (status >= 400 && status < 500)) {
    // Named: Resend says what is wrong; unnamed: the status does (as for any HTTP endpoint).
    return { outcome: 'permanent', code, reason: label, countsAgainstEndpoint: named ? ENDPOINT_FAULT_NAMES.has(name) : ENDPOINT_FAULT_STATUSES.has(status) };
  }
  return { outcome: 'transient', code, reason: label, countsAgainstEndpoint: true };
}
