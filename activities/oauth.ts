/**
 * OAuth 2.0 client-credentials tokens for the CRM kinds (Salesforce, Dynamics 365), cached per
 * endpoint in the worker's memory.
 *
 * - The cache key is the endpoint id plus a fingerprint of the token URL, the form sent (client id,
 *   secret, scope) — so changed credentials never reuse an old token and no secret is kept as a key.
 * - One token request at a time per key: a burst of leads to one endpoint shares the request in
 *   flight instead of asking the authorization server once per lead.
 * - A token is used until `expires_in` (less a minute) or, when the server gives no lifetime
 *   (Salesforce's client-credentials answer has none: the session lasts as the org's session
 *   settings say), until the API refuses it; the kind then calls `invalidate` and asks again once.
 * - Token requests go through `io.outbound` (the SSRF guard) like every other call. A refusal from
 *   the token endpoint comes back as the endpoint's answer (status, body, `error`,
 *   `error_description`) for the kind to classify; network errors are thrown (the registry
 *   classifies them, transient).
 */
import { createHash } from 'node:crypto';
import type { Outbound } from '../shared/http/outbound';
import type { Classification, KindAnswer } from './types';

export interface CachedToken {
  accessToken: string;
  /** ms since epoch after which the token is not used (Infinity: until refused). */
  expiresAt: number;
  /** The token answer's other fields (Salesforce's `instance_url`, …). */
  fields: Record<string, unknown>;
}

export interface TokenRequest {
  /** From `tokenCacheKey`. */
  key: string;
  tokenUrl: string;
  /** application/x-www-form-urlencoded fields: grant_type, client_id, client_secret, scope, … */
  form: Record<string, string>;
  userAgent: string;
}

/** The token endpoint's refusal, in the shape the kinds classify. */
export interface TokenFailure extends KindAnswer {
  phase: 'token';
}

export type TokenOutcome = { ok: true; token: CachedToken; fresh: boolean } | { ok: false; answer: TokenFailure };

/** Refresh this long before the announced expiry (clock skew, the request's own duration). */
export const EXPIRY_MARGIN_MS = 60_000;

export function tokenCacheKey(endpointId: string, tokenUrl: string, form: Record<string, string>): string {
  const material = JSON.stringify([tokenUrl, Object.entries(form).sort(([a], [b]) => a.localeCompare(b))]);
  return `${endpointId}:${createHash('sha256').update(material).digest('hex').slice(0, 24)}`;
}

interface IO {
  outbound: Outbound;
  timeoutMs: number;
  signal?: AbortSignal;
}

export class ClientCredentialsCache {
  private readonly tokens = new Map<string, CachedToken>();
  private readonly inflight = new Map<string, Promise<TokenOutcome>>();
  /** Token requests sent (tests and metrics). */
  requests = 0;

  constructor(private readonly clock: () => number = Date.now) {}

  /** A cached token, or a new one from the token endpoint (shared with concurrent callers). */
  async get(request: TokenRequest, io: IO): Promise<TokenOutcome> {
    const cached = this.tokens.get(request.key);
    if (cached && cached.expiresAt > this.clock()) return { ok: true, token: cached, fresh: false };
    let pending = this.inflight.get(request.key);
    if (!pending) {
      // Not tied to the first caller's signal: one cancelled attempt must not fail the others
      // waiting on the same request. The timeout still bounds it.
      pending = this.fetch(request, { outbound: io.outbound, timeoutMs: io.timeoutMs }).finally(() => this.inflight.delete(request.key));
      this.inflight.set(request.key, pending);
    }
    return pending;
  }

  /** Forget a token the API refused (only that token: a newer one may already be cached). */
  invalidate(key: string, accessToken: string): void {
    if (this.tokens.get(key)?.accessToken === accessToken) this.tokens.delete(key);
  }

  clear(): void {
    this.tokens.clear();
  }

  private async fetch(request: TokenRequest, io: IO): Promise<TokenOutcome> {
    this.requests++;
    const body = new URLSearchParams(request.form).toString();
    const response = await io.outbound.request({
      method: 'POST',
      url: request.tokenUrl,
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', 'user-agent': request.userAgent },
      body,
      timeoutMs: io.timeoutMs,
      ...(io.signal ? { signal: io.signal } : {}),
    });
    const text = response.body.toString('utf8');
    const parsed = parseJsonObject(text);
    const accessToken = parsed?.access_token;
    if (response.status >= 200 && response.status < 300 && typeof accessToken === 'string' && accessToken) {
      const expiresIn = Number(parsed?.expires_in);
      const expiresAt = Number.isFinite(expiresIn) && expiresIn > 0 ? this.clock() + Math.max(expiresIn * 1000 - EXPIRY_MARGIN_MS, 1_000) : Infinity;
      const { access_token: _token, ...fields } = parsed ?? {};
      void _token;
      const token: CachedToken = { accessToken, expiresAt, fields };
      this.tokens.set(request.key, token);
      return { ok: true, token, fresh: true };
    }
    const error = typeof parsed?.error === 'string' ? parsed.error : undefined;
    const description = typeof parsed?.error_description === 'string' ? parsed.error_description : undefined;
    return {
      ok: false,
      answer: {
        phase: 'token',
        status: response.status,
        headers: response.headers,
        body: text,
        bodyBytes: response.bodyBytes,
        ...(error ? { providerCode: error } : response.status < 300 ? { providerCode: 'no_access_token' } : {}),
        ...(description ? { providerMessage: description } : response.status < 300 ? { providerMessage: 'the token answer has no access_token' } : {}),
      },
    };
  }
}

export function parseJsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const parsed = JSON.parse(text) as unknown;
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** What is left of an attempt's time budget (token request, API call and one retry share it). */
export function deadline(timeoutMs: number, clock: () => number = Date.now): () => number {
  const end = clock() + timeoutMs;
  return () => Math.max(end - clock(), 1);
}

/** Classification of a token endpoint's refusal (RFC 6749 §5.2 errors), shared by both kinds. */
/**
 * OAuth error codes (RFC 6749 5.2, and Salesforce's `invalid_client_id`) that say the endpoint's
 * client credentials are refused: they count against the endpoint's breaker. The other refusals
 * (`invalid_request`, `invalid_scope`, `unsupported_grant_type`, an unnamed status, …) do not.
 */
const CREDENTIAL_ERRORS = new Set(['invalid_client', 'invalid_client_id', 'invalid_grant', 'unauthorized_client']);

export function classifyTokenFailure(provider: string, answer: KindAnswer): Classification & { outcome: 'transient' | 'permanent' } {
  const status = answer.status ?? 0;
  const error = answer.providerCode ?? '';
  const label = `token endpoint ${status}${error ? ` ${error}` : ''}${answer.providerMessage ? `: ${oneLine(answer.providerMessage)}` : ''}`;
  if (status >= 500 || status === 429 || status === 408 || error === 'temporarily_unavailable' || error === 'server_error') {
    return { outcome: 'transient', code: `${provider}_token_${status >= 500 ? 'unavailable' : 'rate_limited'}`, reason: label, countsAgainstEndpoint: true };
  }
  const named = /^[a-z_]{1,64}$/.test(error);
  const code = named ? `${provider}_${error}` : `${provider}_token_${status}`;
  return { outcome: 'permanent', code, reason: `${label} (check the client id, the client secret and the app's client-credentials setup)`, countsAgainstEndpoint: named && CREDENTIAL_ERRORS.has(error) };
}

export function oneLine(text: string, max = 300): string {
  return text.replace(/\s+/g, ' ').trim().slice(0, max);
}
