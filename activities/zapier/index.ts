import { z } from 'zod';
import type { Classification, EndpointKind, KindAnswer } from '../types';
import { encodeBody } from '../webhook';
import { parseRetryAfter } from '../http-classify';
import { applyMapping, validateMapping, type Mapping } from '../../shared/mapping';

/**
 * Zapier: POST the mapped lead as JSON to a Zap's catch-hook URL
 * (https://hooks.zapier.com/hooks/catch/<account>/<hook>/). No signing, no auth header: the
 * URL itself is the credential, so it is stored sealed (a secret) and masked in the delivery
 * log. Any non-2xx answer is retried (transient) along the endpoint's backoff schedule; Zapier
 * answers `{"status":"success","id":…}` and the id is kept as the message id.
 */
export const USER_AGENT = 'lead-delivery/0.1 (+zapier)';

export const zapierConfig = z.object({}).strict();
export const zapierSecrets = z
  .object({
    url: z.url({ protocol: /^https?$/, message: 'must be an http(s) URL (a Zapier catch hook: https://hooks.zapier.com/hooks/catch/…)' }).max(2000),
  })
  .strict();

type Config = z.infer<typeof zapierConfig>;
type Secrets = z.infer<typeof zapierSecrets>;

interface ZapierPayload {
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** The hook's URL for the record: host and the path up to the account id kept, the hook's secret segments masked. */
export function maskHookUrl(raw: string): string {
  try {
    const url = new URL(raw);
    const segments = url.pathname.split('/');
    // /hooks/catch/<account>/<hook>/ : keep "hooks", "catch" and the account id; mask what follows.
    const keep = url.hostname.endsWith('zapier.com') && segments[1] === 'hooks' ? 4 : 2;
    url.pathname = segments.map((s, i) => (i < keep || s === '' ? s : '****')).join('/');
    url.search = url.search ? '?****' : '';
    url.username = url.username ? '****' : '';
    url.password = url.password ? '****' : '';
    return url.toString();
  } catch {
    return '****';
  }
}

export const zapier = {
  kind: 'zapier',
  description: 'JSON POST of the mapped lead to a Zapier catch hook; any non-2xx answer is retried',
  configSchema: zapierConfig,
  secretsSchema: zapierSecrets,
  validate: (_config, _secrets, mapping) => validateMapping(mapping),
  map(endpoint, ctx) {
    const body = encodeBody('json', applyMapping(endpoint.mapping as Mapping | undefined, ctx));
    const headers = { 'content-type': 'application/json', 'user-agent': USER_AGENT };
    return {
      payload: { url: endpoint.secrets.url, headers, body },
      describe: { method: 'POST', url: maskHookUrl(endpoint.secrets.url), headers, body },
    };
  },
  async send(prepared, _endpoint, io) {
    const { url, headers, body } = prepared.payload;
    const response = await io.outbound.request({ method: 'POST', url, headers, body, timeoutMs: io.timeoutMs, signal: io.signal });
    const text = response.body.toString('utf8');
    const answer: KindAnswer = { status: response.status, providerMessage: response.statusText, headers: response.headers, body: text, bodyBytes: response.bodyBytes };
    const messageId = zapierId(text);
    if (messageId && response.status >= 200 && response.status < 300) answer.messageId = messageId;
    return answer;
  },
  classify: (answer) => classifyZapierAnswer(answer),
} satisfies EndpointKind<Config, Secrets, ZapierPayload>;

/** The id of Zapier's `{"status":"success","id":…,"request_id":…}` answer, if it is one. */
export function zapierId(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as unknown;
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
      const { id, request_id: requestId } = parsed as Record<string, unknown>;
      const value = typeof id === 'string' && id ? id : typeof requestId === 'string' && requestId ? requestId : undefined;
      return value?.slice(0, 200);
    }
  } catch {
    /* not JSON: no id */
  }
  return undefined;
}

/**
 * 2xx success; every other status transient (Retry-After honoured): the schedule bounds the
 * retries. A hook that does not take the lead counts against the endpoint, whatever the status.
 */
export function classifyZapierAnswer(answer: KindAnswer): Classification {
  const status = answer.status ?? 0;
  const label = `${status}${answer.providerMessage ? ` ${answer.providerMessage}` : ''}`;
  if (status >= 200 && status < 300) return { outcome: 'success', code: 'ok', reason: answer.messageId ? `${label}, Zapier id ${answer.messageId}` : label, countsAgainstEndpoint: false };
  const retryAfterMs = parseRetryAfter(answer.headers?.['retry-after']);
  const reason = status >= 300 && status < 400 ? `${label}: redirect not followed; retried` : `${label}; retried`;
  return { outcome: 'transient', code: `http_${status}`, reason, countsAgainstEndpoint: true, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
}
