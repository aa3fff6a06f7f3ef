/**
 * Classification of an HTTP answer, shared by every kind that speaks plain HTTP (webhook,
 * zapier, the CRMs): 2xx success; 408, 425, 429 and 5xx transient; 3xx (we never follow
 * redirects) and other 4xx permanent. Retry-After (seconds or an HTTP date) is kept.
 */
import type { Classification, KindAnswer } from './types';
import { MAX_RETRY_AFTER_MS } from '../shared/delivery';

const TRANSIENT_STATUSES = new Set([408, 425, 429]);

export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  let ms: number | undefined;
  if (/^\d+$/.test(trimmed)) ms = Number(trimmed) * 1000;
  else {
    const at = Date.parse(trimmed);
    if (!Number.isNaN(at)) ms = Math.max(0, at - now);
  }
  return ms === undefined ? undefined : Math.min(ms, MAX_RETRY_AFTER_MS);
}

export function classifyHttpStatus(answer: KindAnswer, options: { transientStatuses?: ReadonlySet<number> } = {}): Classification {
  const status = answer.status ?? 0;
  const retryAfterMs = parseRetryAfter(answer.headers?.['retry-after']);
  const label = `${status}${answer.providerMessage ? ` ${answer.providerMessage}` : ''}`;
  if (status >= 200 && status < 300) return { outcome: 'success', code: 'ok', reason: label };
  if (status >= 300 && status < 400) {
    return { outcome: 'permanent', code: 'redirect_refused', reason: `${status} redirect to ${answer.headers?.location ?? '(no location)'} not followed` };
  }
  const transient = options.transientStatuses ?? TRANSIENT_STATUSES;
  if (status >= 500 || transient.has(status)) {
    return { outcome: 'transient', code: `http_${status}`, reason: label, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
  }
  return { outcome: 'permanent', code: `http_${status}`, reason: label };
}
