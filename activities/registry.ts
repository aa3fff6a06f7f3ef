/**
 * The registry: the only place that names every endpoint kind, and the one place that applies
 * the attempt timeout, builds the attempt's evidence (request as sent, answer, timing), caps the
 * wait a provider asks for (`MAX_RETRY_AFTER_MS`), names network failures (`NETWORK_ERRORS`) and
 * turns whatever a kind throws into an outcome. A new kind is one folder plus one line in `KINDS`.
 */
import { isIP } from 'node:net';
import type { z } from 'zod';
import { MAX_RETRY_AFTER_MS, type AttemptRecord, type BuyerAnswer, type ReadBack, type SentRequest } from '../shared/delivery';
import type { FieldError } from '../shared/errors';
import { fieldErrorsFromIssues } from '../shared/errors';
import { OutboundError, type Outbound, type OutboundErrorCode } from '../shared/http/outbound';
import { redactSecrets, redactText } from '../shared/redact';
import type { Logger } from '../shared/logger';
import { MappingError, type AttemptContext, type Classification, type EndpointKind, type KindAnswer, type LoadedEndpoint } from './types';
import { webhook } from './webhook';
import { createEmailKind } from './email';
import { zapier } from './zapier';
import { createSmsKind } from './sms';
import { createSheetsKind } from './sheets';
import { createHubspotKind } from './hubspot';
import { createSalesforceKind } from './salesforce';
import { createDynamicsKind } from './dynamics';
import { defaultProviderSettings, type KindDeps } from './providers';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- kinds differ in config/secrets/payload types; the registry only passes them through
type AnyKind = EndpointKind<any, any, any>;

/** Every endpoint kind, in listing order. Adding a kind = its folder + one line here. */
export function createKinds(deps: KindDeps): AnyKind[] {
  void deps; // kinds built from provider settings take it (see activities/providers.ts)
  return [
    webhook,
    createEmailKind(deps),
    zapier,
    createSmsKind(deps),
    createSheetsKind(deps),
    createHubspotKind(deps),
    createSalesforceKind(deps),
    createDynamicsKind(deps),
  ];
}

/** Response headers worth keeping as evidence. */
const NOTABLE_HEADERS = /^(content-type|retry-after|location|date|x-request-id|request-id|x-correlation-id|x-amzn-requestid|(x-)?ratelimit-.*|x-hubspot-.*|sforce-limit-info|x-ms-.*)$/i;
export const BODY_EXCERPT_BYTES = 4096;

export interface AttemptOutcome extends Classification {
  request?: SentRequest;
  response?: BuyerAnswer;
  startedAt: number;
  finishedAt: number;
  error?: string;
  readBack?: ReadBack;
}

export interface Registry {
  kinds(): readonly AnyKind[];
  get(kind: string): AnyKind | undefined;
  /** Validates and splits an admin input into the kind's config and secrets. */
  parseSettings(kind: string, settings: Record<string, unknown>, options?: { generate?: boolean }): { config: Record<string, unknown>; secrets: Record<string, unknown> } | { errors: FieldError[] };
  /** Names of the secret settings of a kind (masked when shown). */
  secretKeys(kind: string): string[];
  preview(endpoint: LoadedEndpoint, ctx: AttemptContext): SentRequest;
  attempt(endpoint: LoadedEndpoint, ctx: AttemptContext): Promise<AttemptOutcome>;
}

export function createRegistry(deps: { outbound: Outbound; logger?: Logger; kinds?: readonly AnyKind[] }): Registry {
  const byKind = new Map((deps.kinds ?? createKinds({ providers: defaultProviderSettings(), ...(deps.logger ? { logger: deps.logger } : {}) })).map((k) => [k.kind, k]));

  const shapeKeys = (schema: z.ZodType): string[] => {
    const shape = (schema as unknown as { shape?: Record<string, unknown> }).shape;
    return shape ? Object.keys(shape) : [];
  };

  function parseSettings(kindName: string, settings: Record<string, unknown>, options: { generate?: boolean } = {}) {
    const kind = byKind.get(kindName);
    if (!kind) return { errors: [{ path: 'kind', message: `must be one of ${[...byKind.keys()].join(', ')}` }] };
    const secretNames = new Set(shapeKeys(kind.secretsSchema));
    const configIn: Record<string, unknown> = {};
    const secretsIn: Record<string, unknown> = options.generate ? { ...kind.generateSecrets?.() } : {};
    for (const [key, value] of Object.entries(settings)) {
      if (value === undefined) continue;
      (secretNames.has(key) ? secretsIn : configIn)[key] = value;
    }
    const config = kind.configSchema.safeParse(configIn);
    const secrets = kind.secretsSchema.safeParse(secretsIn);
    const errors = [
      ...(config.success ? [] : fieldErrorsFromIssues(config.error.issues)),
      ...(secrets.success ? [] : fieldErrorsFromIssues(secrets.error.issues)),
    ];
    if (errors.length) return { errors };
    const targets = checkTargets({ ...(config.data as Record<string, unknown>), ...(secrets.data as Record<string, unknown>) });
    if (targets.length) return { errors: targets };
    return { config: config.data as Record<string, unknown>, secrets: secrets.data as Record<string, unknown> };
  }

  /**
   * A URL setting that names a refused address literally (an IP, localhost) is a configuration
   * error found when the endpoint is saved. Host names are checked again at every send, on the
   * address actually connected to.
   */
  function checkTargets(config: Record<string, unknown>): FieldError[] {
    const errors: FieldError[] = [];
    for (const [key, value] of Object.entries(config)) {
      if (!/url$/i.test(key) || typeof value !== 'string') continue;
      let host: string;
      try {
        host = new URL(value).hostname.replace(/^\[|\]$/g, '');
      } catch {
        continue;
      }
      const literal = host === 'localhost' || host.endsWith('.localhost') ? '127.0.0.1' : isIP(host) ? host : undefined;
      const refusal = literal && deps.outbound.guard.refusal(literal);
      if (refusal) errors.push({ path: key, message: `${refusal}; such targets are refused unless OUTBOUND_ALLOW opens them` });
    }
    return errors;
  }

  function preview(endpoint: LoadedEndpoint, ctx: AttemptContext): SentRequest {
    const kind = mustGet(endpoint.kind);
    return redactSecrets(kind.map(endpoint, ctx).describe);
  }

  async function attempt(endpoint: LoadedEndpoint, ctx: AttemptContext): Promise<AttemptOutcome> {
    const kind = mustGet(endpoint.kind);
    const startedAt = Date.now();
    let request: SentRequest | undefined;
    let readBack: ReadBack | undefined;
    let phase: 'prepare' | 'lookup' | 'send' = 'prepare';
    try {
      const prepared = kind.map(endpoint, { ...ctx, now: startedAt });
      request = redactSecrets(prepared.describe);
      if (ctx.readBack && kind.lookup) {
        // An earlier send may have arrived: look before sending again, and record what was found.
        phase = 'lookup';
        const lookup = kind.lookup.bind(kind);
        readBack = await withTimeout(endpoint.timeoutMs, (io) => lookup(prepared, endpoint, { ...io, outbound: deps.outbound }));
        if (readBack.found) {
          return { outcome: 'success', code: 'found_on_read_back', reason: `already there: ${readBack.detail}; not sent again`, countsAgainstEndpoint: false, readBack, startedAt, finishedAt: Date.now(), ...(readBack.messageId ? { response: { messageId: readBack.messageId } } : {}) };
        }
      }
      phase = 'send';
      const answer = await withTimeout(endpoint.timeoutMs, (io) => kind.send(prepared, endpoint, { ...io, outbound: deps.outbound }));
      const classification = capRetryAfter(kind.classify(answer));
      return { ...classification, request, response: excerpt(answer), startedAt, finishedAt: Date.now(), ...(readBack ? { readBack } : {}) };
    } catch (error) {
      if (phase === 'lookup') {
        // Nothing was sent by this attempt: the read-back failed, so the attempt waits for the next
        // one. A kind that classified the provider's refusal (429 with Retry-After, 5xx) says so.
        const own = readBackClassification(error);
        const cause = own ?? classifyThrown(error, endpoint.timeoutMs);
        if (!own && cause.code === 'internal_error') deps.logger?.error({ err: error, kind: endpoint.kind }, 'endpoint kind lookup threw');
        const classification: Classification = capRetryAfter({
          outcome: 'transient',
          code: `read_back_${cause.code}`,
          reason: `could not read back before re-sending: ${cause.reason}`,
          // Nothing was sent: the breaker hears nothing of it (see healthOf).
          countsAgainstEndpoint: false,
          ...(cause.retryAfterMs !== undefined ? { retryAfterMs: cause.retryAfterMs } : {}),
        });
        return { ...classification, startedAt, finishedAt: Date.now(), error: redactText(errorText(error)) };
      }
      const classification = classifyThrown(error, endpoint.timeoutMs);
      if (classification.code === 'internal_error') deps.logger?.error({ err: error, kind: endpoint.kind }, 'endpoint kind threw');
      return { ...classification, ...(request ? { request } : {}), startedAt, finishedAt: Date.now(), error: redactText(errorText(error)), ...(readBack ? { readBack } : {}) };
    }
  }

  function mustGet(kindName: string): AnyKind {
    const kind = byKind.get(kindName);
    if (!kind) throw new Error(`unknown endpoint kind "${kindName}"`);
    return kind;
  }

  return {
    kinds: () => [...byKind.values()],
    get: (k) => byKind.get(k),
    parseSettings,
    secretKeys: (k) => shapeKeys(mustGet(k).secretsSchema),
    preview,
    attempt,
  };
}

class AttemptTimeout extends Error {}

/** A kind's lookup may throw an error carrying its own classification of the provider's answer. */
function readBackClassification(error: unknown): Classification | undefined {
  const c = error && typeof error === 'object' && 'classification' in error ? (error).classification : undefined;
  if (!c || typeof c !== 'object') return undefined;
  const { outcome, code, reason } = c as Partial<Classification>;
  return typeof outcome === 'string' && typeof code === 'string' && typeof reason === 'string' ? (c as Classification) : undefined;
}

async function withTimeout<T>(timeoutMs: number, run: (io: { signal: AbortSignal; timeoutMs: number }) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new AttemptTimeout());
    }, timeoutMs + 250);
  });
  try {
    return await Promise.race([run({ signal: controller.signal, timeoutMs }), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** The wait a kind's classification asks for, capped at `MAX_RETRY_AFTER_MS`: a buyer cannot park a lead for a week. */
export function capRetryAfter<C extends Classification>(classification: C): C {
  const asked = classification.retryAfterMs;
  return asked === undefined || asked <= MAX_RETRY_AFTER_MS ? classification : { ...classification, retryAfterMs: MAX_RETRY_AFTER_MS };
}

/** What a network failure is, once named. */
type NetworkFailure = Extract<OutboundErrorCode, 'dns_error' | 'connection_refused' | 'connection_reset' | 'timeout' | 'tls_error' | 'aborted'>;

/**
 * The one table of network failures, by the name their transport gives them: Node's errno codes
 * (sockets and DNS, from `shared/http/outbound.ts`), axios's (the Twilio SDK) and fetch's/gaxios's
 * (the Google SDK). Transports hand their failures over as `OutboundError('network_error')` with
 * the original as `cause`; the code, the cause's code, the name or the cause's name is looked up
 * here. A failure not named here is TLS by its code or message, else stays `network_error`.
 */
export const NETWORK_ERRORS: Readonly<Record<string, NetworkFailure>> = {
  ENOTFOUND: 'dns_error',
  EAI_AGAIN: 'dns_error',
  EAI_FAIL: 'dns_error',
  ECONNREFUSED: 'connection_refused',
  ECONNRESET: 'connection_reset',
  EPIPE: 'connection_reset',
  UND_ERR_SOCKET: 'connection_reset',
  ETIMEDOUT: 'timeout',
  // axios's own timeout; fetch's; gaxios aborts a request at its `timeout`.
  ECONNABORTED: 'timeout',
  TimeoutError: 'timeout',
  AbortError: 'timeout',
  // axios: the attempt's signal aborted the request.
  ERR_CANCELED: 'aborted',
  CERT_HAS_EXPIRED: 'tls_error',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'tls_error',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'tls_error',
  ERR_TLS_CERT_ALTNAME_INVALID: 'tls_error',
};

const NETWORK_LABELS: Record<NetworkFailure, (name: string) => string> = {
  dns_error: (name) => `DNS lookup failed (${name})`,
  connection_refused: () => 'connection refused',
  connection_reset: () => 'connection reset by the buyer',
  timeout: () => 'connection timed out',
  tls_error: (name) => `TLS failed (${name})`,
  aborted: () => 'the attempt was cancelled',
};

/** A transport's failure (the `cause` of an `OutboundError('network_error')`) named by `NETWORK_ERRORS`. */
export function nameNetworkFailure(cause: unknown): { code: NetworkFailure; message: string } | undefined {
  if (!cause || typeof cause !== 'object') return undefined;
  const shape = cause as { code?: unknown; name?: unknown; message?: unknown; cause?: { code?: unknown; name?: unknown } };
  const names = [shape.code, shape.cause?.code, shape.name, shape.cause?.name].filter((n): n is string => typeof n === 'string');
  const known = names.find((n) => Object.hasOwn(NETWORK_ERRORS, n));
  if (known) {
    const code = NETWORK_ERRORS[known]!;
    return { code, message: NETWORK_LABELS[code](known) };
  }
  const errno = typeof shape.code === 'string' ? shape.code : undefined;
  const message = typeof shape.message === 'string' ? shape.message : '';
  if (errno?.startsWith('ERR_TLS') || errno?.includes('CERT') || /ssl|tls/i.test(message)) return { code: 'tls_error', message: NETWORK_LABELS.tls_error(errno ?? message) };
  return undefined;
}

/**
 * Thrown errors become outcomes. Nothing reached the buyer (refused connection, DNS, TLS, our own
 * refusals): transient or permanent. The request may have reached the buyer (a timeout or a reset
 * after it was written, or from a transport that cannot tell): `unknown` — the lead stays with
 * that buyer and the endpoint is retried with the same idempotency key. Every failure to reach the
 * endpoint counts against it, except our own cancelling; of the permanent ones, a refused or
 * unusable address does (the endpoint's), a lead its mapping cannot send does not.
 */
export function classifyThrown(error: unknown, timeoutMs: number): Classification {
  const noAnswer = `no answer within ${timeoutMs / 1000}s`;
  if (error instanceof AttemptTimeout) return { outcome: 'unknown', code: 'timeout', reason: `${noAnswer}; the request may have reached the buyer`, countsAgainstEndpoint: true };
  if (error instanceof MappingError) return { outcome: 'permanent', code: 'mapping_error', reason: error.message, countsAgainstEndpoint: false };
  if (error instanceof OutboundError) {
    const mayHaveArrived = error.sent !== false;
    const named = error.code === 'network_error' ? nameNetworkFailure(error.cause) : undefined;
    const code = named?.code ?? error.code;
    const message = named?.message ?? error.message;
    switch (code) {
      case 'timeout':
        return mayHaveArrived
          ? { outcome: 'unknown', code: 'timeout', reason: `${noAnswer} after the request was sent`, countsAgainstEndpoint: true }
          : { outcome: 'transient', code: 'connect_timeout', reason: `${noAnswer}; the request was not sent`, countsAgainstEndpoint: true };
      case 'connection_reset':
      case 'network_error':
        return mayHaveArrived
          ? { outcome: 'unknown', code, reason: `${message}, after the request was sent`, countsAgainstEndpoint: true }
          : { outcome: 'transient', code, reason: `${message}, before the request was sent`, countsAgainstEndpoint: true };
      case 'aborted':
        // Cancelled by us: says nothing about the endpoint.
        return mayHaveArrived
          ? { outcome: 'unknown', code: 'cancelled', reason: `${message} after the request was sent`, countsAgainstEndpoint: false }
          : { outcome: 'transient', code: 'cancelled', reason: message, countsAgainstEndpoint: false };
      case 'blocked_address':
        return { outcome: 'permanent', code: 'blocked_address', reason: message, countsAgainstEndpoint: true };
      case 'invalid_url':
        return { outcome: 'permanent', code: 'invalid_url', reason: message, countsAgainstEndpoint: true };
      default:
        return { outcome: 'transient', code, reason: message, countsAgainstEndpoint: true };
    }
  }
  return { outcome: 'transient', code: 'internal_error', reason: 'the endpoint kind failed unexpectedly', countsAgainstEndpoint: true };
}

/** Headers of note and at most 4 KiB of the body (cut on a character boundary, marked). */
export function excerpt(answer: KindAnswer): BuyerAnswer {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(answer.headers ?? {})) if (NOTABLE_HEADERS.test(name)) headers[name] = value;
  const out: BuyerAnswer = { ...(answer.status !== undefined ? { status: answer.status } : {}), headers, ...(answer.messageId ? { messageId: answer.messageId } : {}) };
  if (answer.body !== undefined) {
    const bytes = Buffer.from(answer.body, 'utf8');
    const total = Math.max(answer.bodyBytes ?? bytes.length, bytes.length);
    if (bytes.length <= BODY_EXCERPT_BYTES) out.body = answer.body;
    else out.body = new TextDecoder('utf-8', { fatal: false }).decode(bytes.subarray(0, BODY_EXCERPT_BYTES)).replace(/\uFFFD+$/, '');
    out.bodyBytes = total;
  }
  return out;
}

export function toRecord(base: Omit<AttemptRecord, 'startedAt' | 'finishedAt' | 'latencyMs' | 'outcome' | 'code' | 'reason'>, outcome: AttemptOutcome): AttemptRecord {
  return {
    ...base,
    startedAt: outcome.startedAt,
    finishedAt: outcome.finishedAt,
    latencyMs: outcome.finishedAt - outcome.startedAt,
    outcome: outcome.outcome,
    code: outcome.code,
    reason: outcome.reason,
    ...(outcome.request ? { request: outcome.request } : {}),
    ...(outcome.response ? { response: outcome.response } : {}),
    ...(outcome.retryAfterMs !== undefined ? { retryAfterMs: outcome.retryAfterMs } : {}),
    ...(outcome.error ? { error: outcome.error } : {}),
    ...(outcome.readBack ? { readBack: outcome.readBack } : {}),
  };
}
