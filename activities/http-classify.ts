/**
 * Classification of an HTTP answer, shared by every kind that speaks plain HTTP (webhook,
 * zapier, the CRMs): 2xx success; 408, 425, 429 and 5xx transient; 3xx (we never follow
 * redirects) and other 4xx permanent. Retry-After (seconds or an HTTP date) is kept as parsed
 * (the registry caps it). A refusal counts against the endpoint when it is about the endpoint,
 * not the lead: 401/403 (its credentials), 404/405/410 and a redirect (its address).
 */
import type { Classification, KindAnswer } from './types';

const TRANSIENT_STATUSES = new Set([408, 425, 429]);
/** Permanent statuses about the endpoint itself (credentials, address), not about one lead. */
export const ENDPOINT_FAULT_STATUSES: ReadonlySet<number> = new Set([401, 403, 404, 405, 410]);

/** Retry-After in ms (seconds, or an HTTP date from `now`), uncapped; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export function classifyHttpStatus(answer: KindAnswer, options: { transientStatuses?: ReadonlySet<number> } = {}): Classification {
  const status = answer.status ?? 0;
  const retryAfterMs = parseRetryAfter(answer.headers?.['retry-after']);
  const label = `${status}${answer.providerMessage ? ` ${answer.providerMessage}` : ''}`;
  if (status >= 200 && status < 300) return { outcome: 'success', code: 'ok', reason: label, countsAgainstEndpoint: false };
  if (status >= 300 && status < 400) {
    // The configured URL answers elsewhere: the endpoint's address is wrong.
    return { outcome: 'permanent', code: 'redirect_refused', reason: `${status} redirect to ${answer.headers?.location ?? '(no location)'} not followed`, countsAgainstEndpoint: true };
  }
  const transient = options.transientStatuses ?? TRANSIENT_STATUSES;
  if (status >= 500 || transient.has(status)) {
    return { outcome: 'transient', code: `http_${status}`, reason: label, countsAgainstEndpoint: true, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
  }
  return { outcome: 'permanent', code: `http_${status}`, reason: label, countsAgainstEndpoint: ENDPOINT_FAULT_STATUSES.has(status) };
}
