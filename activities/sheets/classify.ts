/**
 * What Google's answer (or the batcher's own) means for a Sheets attempt. Counted against the
 * endpoint: Google not answering or asking to wait, and a refusal about the endpoint itself (401,
 * 403: not shared with the service account; 404: no such spreadsheet). Not counted: a tab or
 * header that does not fit, and other refusals about this row.
 */
import type { Classification, KindAnswer } from '../types';
import { classifyHttpStatus, parseRetryAfter } from '../http-classify';

export interface SheetsAnswer extends KindAnswer {
  /** Set when our own quota limiter, not Google, asks to come back later. */
  retryAfterMs?: number;
}

export function classifySheets(answer: SheetsAnswer): Classification {
  const status = answer.status ?? 0;
  const message = answer.providerMessage ?? '';
  if (answer.providerCode === 'already_present') return { outcome: 'success', code: 'already_present', reason: message || 'the lead is already in the sheet', countsAgainstEndpoint: false };
  if (answer.providerCode === 'quota_wait') {
    return { outcome: 'transient', code: 'sheets_quota_wait', reason: message || 'the Sheets quota is used up for now', countsAgainstEndpoint: true, ...(answer.retryAfterMs !== undefined ? { retryAfterMs: answer.retryAfterMs } : {}) };
  }
  if (answer.providerCode === 'header_mismatch') return { outcome: 'permanent', code: 'sheets_header_mismatch', reason: message, countsAgainstEndpoint: false };
  if (status >= 200 && status < 300) return { outcome: 'success', code: 'ok', reason: message || `${status}`, countsAgainstEndpoint: false };
  const retryAfterMs = answer.retryAfterMs ?? parseRetryAfter(answer.headers?.['retry-after']);
  const after = retryAfterMs !== undefined ? { retryAfterMs } : {};
  const label = `${status}${answer.providerCode ? ` ${answer.providerCode}` : ''}${message ? `: ${message}` : ''}`;
  if (status === 429 || (status === 403 && (answer.providerCode === 'RESOURCE_EXHAUSTED' || /rate ?limit/i.test(message)))) {
    return { outcome: 'transient', code: 'http_429', reason: label, countsAgainstEndpoint: true, ...after };
  }
  if (status === 400 && /unable to parse range/i.test(message)) return { outcome: 'permanent', code: 'sheets_tab_not_found', reason: `${label} (the tab does not exist in the spreadsheet)`, countsAgainstEndpoint: false };
  if (status === 401 || status === 403 || status === 404) return { outcome: 'permanent', code: `http_${status}`, reason: label, countsAgainstEndpoint: true };
  if (status >= 500) return { outcome: 'transient', code: `http_${status}`, reason: label, countsAgainstEndpoint: true, ...after };
  return { ...classifyHttpStatus(answer), reason: label };
}
