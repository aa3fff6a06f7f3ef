/**
 * The one module that knows an endpoint's settings, whatever its kind: the settings every endpoint
 * has (name, role, mapping, backoff schedule, timeout, breaker, throttle) with their validation and defaults,
 * resolved once when the endpoint is saved; the sealing of its credentials (with the endpoint's id
 * as associated data, so a sealed blob cannot be moved to another endpoint); and what the worker
 * reads back from a stored endpoint (the loaded endpoint a kind sends with, its breaker settings,
 * its delivery settings). The admin API, the worker and the callbacks all import it from here.
 */
import { z } from 'zod';
import type { BreakerSettings } from './breaker';
import { openJson, sealJson, type KeyRing } from './crypto';
import { parseDuration } from './durations';
import { durationString, nameString as name } from './http/validate';
import { throttleSchema } from './buyer-controls-schema';
import type { EndpointDoc } from './store';

/** The retry schedule an endpoint gets when none is given: the waits between attempts. */
export const DEFAULT_BACKOFF: readonly string[] = ['5m', '15m', '1h'];
/** How long one send may take before its outcome is `unknown`. */
export const DEFAULT_TIMEOUT_MS = 10_000;
/** Consecutive failures that open the breaker, and the first cool-down (doubling per trip). */
export const DEFAULT_BREAKER: Readonly<{ threshold: number; coolDown: string }> = { threshold: 5, coolDown: '5m' };

export const ENDPOINT_LIMITS = { backoffSteps: 20, timeoutMs: { min: 100, max: 30_000 }, breakerThreshold: { min: 1, max: 1000 } } as const;


/** Settings every endpoint has, whatever its kind (the rest of an endpoint's body is the kind's). */
export const endpointCommonSchema = z.object({
  kind: z.string(),
  name: name.optional(),
  role: z.enum(['accept', 'notify']).optional(),
  mapping: z.record(z.string(), z.unknown()).optional(),
  backoff: z.array(durationString).max(ENDPOINT_LIMITS.backoffSteps, `at most ${ENDPOINT_LIMITS.backoffSteps} steps`).optional(),
  timeoutMs: z
    .number()
    .int()
    .min(ENDPOINT_LIMITS.timeoutMs.min, `must be at least ${ENDPOINT_LIMITS.timeoutMs.min}`)
    .max(ENDPOINT_LIMITS.timeoutMs.max, `must be at most ${ENDPOINT_LIMITS.timeoutMs.max}`)
    .optional(),
  breaker: z
    .object({
      threshold: z.number().int().min(ENDPOINT_LIMITS.breakerThreshold.min).max(ENDPOINT_LIMITS.breakerThreshold.max).optional(),
      coolDown: durationString.optional(),
    })
    .strict()
    .optional(),
  /** At most N sends per second / minute across all workers (shared/buyer-controls-schema.ts); `null` in a change removes it. */
  throttle: throttleSchema.nullable().optional(),
});
export type EndpointCommonInput = z.infer<typeof endpointCommonSchema>;
/** The body keys that are common settings (the others go to the kind). */
export const ENDPOINT_COMMON_KEYS: ReadonlySet<string> = new Set(Object.keys(endpointCommonSchema.shape));

/** The delivery settings as stored: complete, defaults applied. */
export interface ResolvedDeliverySettings {
  backoff: string[];
  timeoutMs: number;
  breaker: { threshold: number; coolDown: string };
}

/**
 * The delivery settings to store when an endpoint is created (`current` omitted) or changed: what
 * was given, else what it had, else the defaults. Applied once, at save; readers take the stored
 * values as they are.
 */
export function resolveDeliverySettings(given: Pick<EndpointCommonInput, 'backoff' | 'timeoutMs' | 'breaker'>, current?: Partial<ResolvedDeliverySettings>): ResolvedDeliverySettings {
  return {
    backoff: [...(given.backoff ?? current?.backoff ?? DEFAULT_BACKOFF)],
    timeoutMs: given.timeoutMs ?? current?.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    breaker: {
      threshold: given.breaker?.threshold ?? current?.breaker?.threshold ?? DEFAULT_BREAKER.threshold,
      coolDown: given.breaker?.coolDown ?? current?.breaker?.coolDown ?? DEFAULT_BREAKER.coolDown,
    },
  };
}

/**
 * The delivery settings of a stored endpoint. Endpoints are saved resolved; documents written
 * before a setting existed (no `breaker` before the breakers, no `backoff` on hand-made documents)
 * read as the defaults, through the same resolution.
 */
export function deliverySettingsOf(doc: Partial<Pick<EndpointDoc, 'backoff' | 'timeoutMs' | 'breaker'>>): ResolvedDeliverySettings {
  return resolveDeliverySettings({}, doc);
}

/** The endpoint's throttle, or undefined when it has none (a stored empty object is none). */
export function throttleOf(doc: Partial<Pick<EndpointDoc, 'throttle'>>): { perSecond?: number; perMinute?: number } | undefined {
  const t = doc.throttle;
  if (!t || (t.perSecond === undefined && t.perMinute === undefined)) return undefined;
  return { ...(t.perSecond !== undefined ? { perSecond: t.perSecond } : {}), ...(t.perMinute !== undefined ? { perMinute: t.perMinute } : {}) };
}

export function breakerSettingsOf(doc: Partial<Pick<EndpointDoc, 'breaker'>>): BreakerSettings {
  const { breaker } = deliverySettingsOf(doc);
  return { threshold: breaker.threshold, coolDownMs: parseDuration(breaker.coolDown) };
}

/** Associated data of an endpoint's sealed credentials: a blob opens only for its own endpoint. */
function secretsAad(endpointId: string): string {
  return `endpoint:${endpointId}`;
}

export function sealEndpointSecrets(credentials: KeyRing, endpointId: string, secrets: Record<string, unknown>): string {
  return sealJson(credentials, secrets, secretsAad(endpointId));
}

export function openEndpointSecrets(credentials: KeyRing, doc: Pick<EndpointDoc, '_id' | 'secrets'>): Record<string, unknown> {
  return openJson<Record<string, unknown>>(credentials, doc.secrets, secretsAad(doc._id));
}

/** What a kind sends with: an endpoint's settings, its credentials opened. */
export interface LoadedEndpoint<Config = Record<string, unknown>, Secrets = Record<string, unknown>> {
  endpointId: string;
  buyerId: string;
  kind: string;
  role: 'accept' | 'notify';
  config: Config;
  secrets: Secrets;
  mapping?: Record<string, unknown>;
  timeoutMs: number;
}

/** The stored endpoint as a kind sends with it: credentials opened (or left out). */
export function loadEndpointFromDoc(doc: EndpointDoc, credentials: KeyRing, withoutSecrets = false): LoadedEndpoint {
  return {
    endpointId: doc._id,
    buyerId: doc.buyerId,
    kind: doc.kind,
    role: doc.role,
    config: doc.config,
    secrets: withoutSecrets ? {} : openEndpointSecrets(credentials, doc),
    ...(doc.mapping ? { mapping: doc.mapping } : {}),
    timeoutMs: deliverySettingsOf(doc).timeoutMs,
  };
}
