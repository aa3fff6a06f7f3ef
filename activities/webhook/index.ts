import { z } from 'zod';
import type { EndpointKind, LoadedEndpoint } from '../types';
import { classifyHttpStatus } from '../http-classify';
import { applyMapping, validateMapping, type Mapping } from '../../shared/mapping';
import { generateSigningSecret, isSigningSecret, webhookHeaders } from '../../shared/webhook-signature';
import { maskSecret, redactUrl } from '../../shared/redact';

/**
 * Webhook: POST (or PUT) the mapped lead as JSON or form-encoded, with custom headers, Bearer /
 * API-key / basic auth, signed per Standard Webhooks. `webhook-id` is the same for every retry
 * of one lead to one endpoint, so the buyer can drop duplicates.
 */
const RESERVED_HEADERS = /^(host|content-length|content-type|transfer-encoding|connection|webhook-(id|timestamp|signature)|authorization)$/i;
const headerName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/, 'must be an HTTP header name');

export const webhookConfig = z
  .object({
    url: z.url({ protocol: /^https?$/, message: 'must be an http(s) URL' }).max(2000),
    format: z.enum(['json', 'form']).default('json'),
    method: z.enum(['POST', 'PUT']).default('POST'),
  })
  .strict();

export const webhookSecrets = z
  .object({
    signingSecret: z.string().refine(isSigningSecret, 'must be "whsec_" followed by base64 of 16-64 bytes'),
    auth: z
      .discriminatedUnion('type', [
        z.object({ type: z.literal('bearer'), token: z.string().min(1).max(4096) }).strict(),
        z.object({ type: z.literal('apiKey'), header: headerName.default('X-API-Key'), value: z.string().min(1).max(4096) }).strict(),
        z.object({ type: z.literal('basic'), username: z.string().min(1).max(256), password: z.string().max(1024) }).strict(),
      ])
      .optional(),
    headers: z
      .record(headerName, z.string().max(4096).regex(/^[^\r\n]*$/, 'must not contain line breaks'))
      .refine((h) => Object.keys(h).every((name) => !RESERVED_HEADERS.test(name)), 'may not set Host, Content-*, Authorization (use auth) or webhook-* headers')
      .optional(),
  })
  .strict();

type Config = z.infer<typeof webhookConfig>;
type Secrets = z.infer<typeof webhookSecrets>;

interface WebhookPayload {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string;
}

export function authHeaders(auth: Secrets['auth']): Record<string, string> {
  if (!auth) return {};
  switch (auth.type) {
    case 'bearer':
      return { authorization: `Bearer ${auth.token}` };
    case 'apiKey':
      return { [auth.header.toLowerCase()]: auth.value };
    case 'basic':
      return { authorization: `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}` };
  }
}

export function encodeBody(format: 'json' | 'form', fields: Record<string, unknown>): string {
  if (format === 'json') return JSON.stringify(fields);
  const form = new URLSearchParams();
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    form.append(key, value === null ? '' : typeof value === 'string' ? value : (JSON.stringify(value) ?? ''));
  }
  return form.toString();
}

/** Headers as recorded: auth and every custom header value masked (custom headers often carry keys). */
function describeHeaders(headers: Record<string, string>, endpoint: LoadedEndpoint<Config, Secrets>): Record<string, string> {
  const secretNames = new Set(Object.keys(endpoint.secrets.headers ?? {}).map((n) => n.toLowerCase()));
  const auth = endpoint.secrets.auth;
  if (auth?.type === 'apiKey') secretNames.add(auth.header.toLowerCase());
  if (auth && auth.type !== 'apiKey') secretNames.add('authorization');
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) out[name] = secretNames.has(name.toLowerCase()) ? maskSecret(value) : value;
  return out;
}

export const webhook = {
  kind: 'webhook',
  description: 'HTTP POST/PUT of the lead as JSON or a form, signed per Standard Webhooks',
  configSchema: webhookConfig,
  secretsSchema: webhookSecrets,
  generateSecrets: () => ({ signingSecret: generateSigningSecret() }),
  validate: (_config, _secrets, mapping) => validateMapping(mapping),
  map(endpoint, ctx) {
    const fields = applyMapping(endpoint.mapping as Mapping | undefined, ctx);
    const body = encodeBody(endpoint.config.format, fields);
    const msgId = `msg_${ctx.leadId}_${endpoint.endpointId}`;
    const headers: Record<string, string> = {
      'content-type': endpoint.config.format === 'json' ? 'application/json' : 'application/x-www-form-urlencoded',
      'user-agent': 'lead-delivery/0.1 (+standard-webhooks)',
      ...Object.fromEntries(Object.entries(endpoint.secrets.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v])),
      ...authHeaders(endpoint.secrets.auth),
      ...webhookHeaders(endpoint.secrets.signingSecret, msgId, Math.floor(ctx.now / 1000), body),
    };
    return {
      payload: { url: endpoint.config.url, method: endpoint.config.method, headers, body },
      describe: { method: endpoint.config.method, url: redactUrl(endpoint.config.url), headers: describeHeaders(headers, endpoint), body },
    };
  },
  async send(prepared, _endpoint, io) {
    const { url, method, headers, body } = prepared.payload;
    const response = await io.outbound.request({ method, url, headers, body, timeoutMs: io.timeoutMs, signal: io.signal });
    return { status: response.status, providerMessage: response.statusText, headers: response.headers, body: response.body.toString('utf8'), bodyBytes: response.bodyBytes };
  },
  classify: (answer) => {
    // The receiver stops retries of this lead: `webhook-delivery: abort` on a non-2xx answer is a
    // permanent refusal by the buyer of this one lead (not a fault of the endpoint).
    const status = answer.status ?? 0;
    if ((status < 200 || status >= 300) && answer.headers?.['webhook-delivery']?.trim().toLowerCase() === 'abort') {
      return { outcome: 'permanent', code: 'receiver_abort', reason: `${status} with webhook-delivery: abort (the buyer stopped retries of this lead)`, countsAgainstEndpoint: false };
    }
    return classifyHttpStatus(answer);
  },
} satisfies EndpointKind<Config, Secrets, WebhookPayload>;
