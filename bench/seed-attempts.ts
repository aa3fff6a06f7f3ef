/**
 * Synthetic attempt entries for the log benchmarks: realistic records as the log service stores
 * them (ids, times, classification, sealed request and body), spread over a month, 40 buyers with
 * two endpoints each, 25 sources, 80 % success, 15 % transient, 5 % permanent.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { LogEntryDoc } from '../shared/store';

export const BUYERS = 40;
export const ENDPOINTS_PER_BUYER = 2;
export const SOURCES = 25;
export const START = Date.UTC(2025, 0, 1);
/** A month of traffic. */
export const SPAN_MS = 31 * 86_400_000;

/** A stand-in for a sealed PII value (enc:v1: + base64 of nonce, ciphertext and tag). */
const sealed = (bytes: number) => `enc:v1:${randomBytes(bytes).toString('base64')}`;

/** One attempt entry as the log service stores it: ids, times, classification, sealed request. */
export function attemptDoc(i: number, rows: number): LogEntryDoc {
  const leadNo = Math.floor(i / 2);
  const leadId = `ld_bench${String(leadNo).padStart(9, '0')}`;
  const buyer = leadNo % BUYERS;
  const endpointId = `ep_b${buyer}_${i % ENDPOINTS_PER_BUYER}`;
  const buyerId = `buy_${buyer}`;
  const sourceId = `src_${leadNo % SOURCES}`;
  const attempt = 1 + (i % 3 === 0 ? 1 : 0);
  const roll = i % 20;
  const outcome = roll < 16 ? 'success' : roll < 19 ? 'transient' : 'permanent';
  const status = outcome === 'success' ? 200 : outcome === 'transient' ? 503 : 422;
  const startedAt = START + Math.floor((i / rows) * SPAN_MS);
  const latencyMs = 40 + (i % 700);
  const finishedAt = startedAt + latencyMs;
  const seq = 2 + (i % 4);
  const final = outcome !== 'transient' || attempt === 2;
  const hash = createHash('sha256').update(`${leadId}:${seq}`).digest('hex');
  return {
    _id: `${leadId}:${String(seq).padStart(6, '0')}`,
    leadId,
    seq,
    type: 'attempt',
    at: new Date(finishedAt),
    sourceId,
    buyerId,
    endpointId,
    outcome,
    data: {
      attemptId: `${leadId}.${endpointId}.${attempt}`,
      leadId,
      sourceId,
      buyerId,
      endpointId,
      kind: 'webhook',
      role: 'accept',
      attempt,
      startedAt,
      finishedAt,
      latencyMs,
      firstAttemptAt: startedAt - (attempt - 1) * 300_000,
      final,
      request: sealed(420),
      response: { status, headers: { 'content-type': 'application/json', 'x-request-id': randomBytes(8).toString('hex') }, body: sealed(48), bodyBytes: 32 },
      outcome,
      code: outcome === 'success' ? 'ok' : `http_${status}`,
      reason: outcome === 'success' ? '200 OK' : outcome === 'transient' ? '503 Service Unavailable' : '422 Unprocessable Entity',
    },
    prevHash: createHash('sha256').update(`${leadId}:${seq - 1}`).digest('hex'),
    hash,
  };
}
