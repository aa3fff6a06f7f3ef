/**
 * The endpoint-kind interface. Every kind (webhook, email, sms, sheets, crm, …) is one folder
 * that exports an object `satisfies EndpointKind`: validate its settings, map a lead to the
 * exact request (pure, so the preview shows what would be sent), send it, classify the answer.
 * The registry (registry.ts) applies the timeout, builds the attempt record, redacts it and
 * turns thrown errors into outcomes, once for every kind.
 */
import type { z } from 'zod';
import type { FieldError } from '../shared/errors';
import type { OutcomeClass, SentRequest, BuyerAnswer, ReadBack } from '../shared/delivery';
import type { LeadContext } from '../shared/mapping';
import type { Outbound } from '../shared/http/outbound';
import type { LoadedEndpoint } from '../shared/endpoint';

export type { LoadedEndpoint };

export interface AttemptContext extends LeadContext {
  endpointId: string;
  buyerId: string;
  attempt: number;
  /** Wall-clock ms at which the attempt is prepared. */
  now: number;
  /**
   * An earlier send of this lead to this endpoint may have arrived (an `unknown` outcome, or an
   * execution of this attempt that never reported back): kinds with `lookup` read back first.
   */
  readBack?: boolean;
}

/** What a kind's `map` produces: the exact request, and the redacted copy for the record. */
export interface Prepared<P = unknown> {
  payload: P;
  /** The request as it will be sent, secrets masked (delivery log and preview). */
  describe: SentRequest;
}

export interface SendIO {
  signal: AbortSignal;
  timeoutMs: number;
  outbound: Outbound;
}

/** What came back, in a shape the registry can record (status, headers of note, body excerpt). */
export interface KindAnswer extends BuyerAnswer {
  /** Provider-specific code (Twilio 21211, Resend "validation_error", …). */
  providerCode?: string;
  providerMessage?: string;
}

export interface Classification {
  outcome: OutcomeClass;
  code: string;
  reason: string;
  /**
   * Does this answer say the endpoint itself is unhealthy (its credentials, address or account; a
   * buyer not answering or asking to be tried later), so that it counts toward its circuit
   * breaker? False for a success and for a refusal of one lead's data (a 400, a bad number). The
   * kind decides; `shared/breaker.ts` (`healthOf`) applies it to permanent outcomes, and counts
   * every transient or unknown one whatever it says (kinds set true for them).
   */
  countsAgainstEndpoint: boolean;
  /** The wait the provider asked for (Retry-After, a quota reset), as parsed: the registry caps it. */
  retryAfterMs?: number;
}

export interface EndpointKind<Config = Record<string, unknown>, Secrets = Record<string, unknown>, Payload = unknown> {
  readonly kind: string;
  /** One line for the admin API's kind listing. */
  readonly description: string;
  readonly configSchema: z.ZodType<Config>;
  readonly secretsSchema: z.ZodType<Secrets>;
  /** Secrets created for the buyer when not given (e.g. a webhook signing secret), shown once. */
  generateSecrets?(): Partial<Secrets>;
  /** Semantic checks beyond the schemas (mapping fields, template variables). */
  validate?(config: Config, secrets: Secrets, mapping: unknown): FieldError[];
  map(endpoint: LoadedEndpoint<Config, Secrets>, ctx: AttemptContext): Prepared<Payload>;
  send(prepared: Prepared<Payload>, endpoint: LoadedEndpoint<Config, Secrets>, io: SendIO): Promise<KindAnswer>;
  classify(answer: KindAnswer): Classification;
  /**
   * Optional: find out at the provider whether this lead already arrived (CRM record by lead id or
   * email, sheet row by lead id, Twilio message list). Called by the registry before re-sending
   * after an ambiguous outcome; `found` means "do not send again, it is there". Throws like `send`.
   */
  lookup?(prepared: Prepared<Payload>, endpoint: LoadedEndpoint<Config, Secrets>, io: SendIO): Promise<ReadBack>;
}

/** Thrown by `map` when the lead cannot be sent as configured (a required field is missing). */
export { MappingError } from '../shared/mapping';
