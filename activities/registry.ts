/**
 * The registry: the only place that names every endpoint kind, and the one place that applies
 * the attempt timeout, builds the attempt's evidence (request as sent, answer, timing) and turns
 * whatever a kind throws into an outcome. A new kind is one folder plus one line in `KINDS`.
 */
import { isIP } from 'node:net';
import type { z } from 'zod';
import type { AttemptRecord, BuyerAnswer, ReadBack, SentRequest } from '../shared/delivery';
import type { FieldError } from '../shared/errors';
import { fieldErrorsFromIssues } from '../shared/errors';
import { OutboundError, type Outbound } from '../shared/http/outbound';
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
          return { outcome: 'success', code: 'found_on_read_back', reason: `already there: ${readBack.detail}; not sent again`, readBack, startedAt, finishedAt: Date.now(), ...(readBack.messageId ? { response: { messageId: readBack.messageId } } : {}) };
        }
      }
      phase = 'send';
      const answer = await withTimeout(endpoint.timeoutMs, (io) => kind.send(prepared, endpoint, { ...io, outbound: deps.outbound }));
      const classification = kind.classify(answer);
      return { ...classification, request, response: excerpt(answer), startedAt, finishedAt: Date.now(), ...(readBack ? { readBack } : {}) };
    } catch (error) {
      if (phase === 'lookup') {
        // Nothing was sent by this attempt: the read-back failed, so the attempt waits for the next
        // one. A kind that classified the provider's refusal (429 with Retry-After, 5xx) says so.
        const own = readBackClassification(error);
        const cause = own ?? classifyThrown(error, endpoint.timeoutMs);
        if (!own && cause.code === 'internal_error') deps.logger?.error({ err: error, kind: endpoint.kind }, 'endpoint kind lookup threw');
        const classification: Classification = {
          outcome: 'transient',
          code: `read_back_${cause.code}`,
          reason: `could not read back before re-sending: ${cause.reason}`,
          ...(cause.retryAfterMs !== undefined ? { retryAfterMs: cause.retryAfterMs } : {}),
        };
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

/**
 * Thrown errors become outcomes. Nothing reached the buyer (refused connection, DNS, TLS, our own
 * refusals): transient or permanent. The request may have reached the buyer (a timeout or a reset
 * after it was written, or from a transport that cannot tell): `unknown` — the lead stays with
 * that buyer and the endpoint is retried with the same idempotency key.
 */
export function classifyThrown(error: unknown, timeoutMs: number): Classification {
  const noAnswer = `no answer within ${timeoutMs / 1000}s`;
  if (error instanceof AttemptTimeout) return { outcome: 'unknown', code: 'timeout', reason: `${noAnswer}; the request may have reached the buyer` };
  if (error instanceof MappingError) return { outcome: 'permanent', code: 'mapping_error', reason: error.message };
  if (error instanceof OutboundError) {
    const mayHaveArrived = error.sent !== false;
    switch (error.code) {
      case 'timeout':
        return mayHaveArrived
          ? { outcome: 'unknown', code: 'timeout', reason: `${noAnswer} after the request was sent` }
          : { outcome: 'transient', code: 'connect_timeout', reason: `${noAnswer}; the request was not sent` };
      case 'connection_reset':
      case 'network_error':
        return mayHaveArrived
          ? { outcome: 'unknown', code: error.code, reason: `${error.message}, after the request was sent` }
          : { outcome: 'transient', code: error.code, reason: `${error.message}, before the request was sent` };
      case 'aborted':
        return mayHaveArrived ? { outcome: 'unknown', code: 'cancelled', reason: `${error.message} after the request was sent` } : { outcome: 'transient', code: 'cancelled', reason: error.message };
      case 'blocked_address':
        return { outcome: 'permanent', code: 'blocked_address', reason: error.message };
      case 'invalid_url':
        return { outcome: 'permanent', code: 'invalid_url', reason: error.message };
      default:
        return { outcome: 'transient', code: error.code, reason: error.message };
    }
  }
  return { outcome: 'transient', code: 'internal_error', reason: 'the endpoint kind failed unexpectedly' };
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
