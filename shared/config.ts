import { z } from 'zod';
import { tryParseDuration, DURATION_HINT } from './durations';

/**
 * Every setting in one place: env name, meaning, default. Services call `loadConfig()` at
 * boot; a bad value fails the boot with the variable's name, never later at 2 am.
 */
const port = (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback);
const duration = (fallback: string) =>
  z.string().default(fallback).refine((v) => tryParseDuration(v) !== undefined, { message: `must be ${DURATION_HINT}` });

/** A comma-separated list of reason codes (`invalid_contact,duplicate`): lower case, digits and `_`. */
const reasonList = (fallback: string, options: { allowEmpty?: boolean } = {}) =>
  z
    .string()
    .default(fallback)
    .refine((v) => (options.allowEmpty && v.trim() === '') || v.split(',').every((r) => /^[a-z][a-z0-9_]{0,63}$/.test(r.trim())), { message: 'must be comma-separated codes (lower case letters, digits, _), e.g. "invalid_contact,duplicate"' });

/** The list settings as arrays (trimmed, no empties). */
export function listSetting(value: string): string[] {
  return value.split(',').map((v) => v.trim()).filter(Boolean);
}

export const configSchema = z.object({
  /** Temporal frontend (host:port). */
  TEMPORAL_ADDRESS: z.string().default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().default('default'),
  /** Temporal Web UI, printed by `npm start` and linked from pages. */
  TEMPORAL_UI_URL: z.string().default('http://127.0.0.1:8233'),
  /** The log service as operators' browsers reach it (the console links to its dispute pages); default http://HOST:LOG_PORT. */
  LOG_PUBLIC_URL: z.string().default(''),
  /** Task queue of the delivery worker (deliverLead, breakers, endpoint-kind activities). */
  DELIVERY_TASK_QUEUE: z.string().default('delivery'),
  /** Task queue of the log service's worker (writes the delivery log). */
  LOG_TASK_QUEUE: z.string().default('delivery-log'),
  /** MongoDB (or a MongoDB-compatible server) with the database name in the path. */
  MONGO_URL: z.string().default('mongodb://127.0.0.1:27017/lead_delivery'),
  HOST: z.string().default('127.0.0.1'),
  INTAKE_PORT: port(8080),
  LOG_PORT: port(8081),
  /** Bearer token of the admin and log APIs. Required. */
  ADMIN_TOKEN: z.string().min(16, 'must be at least 16 characters'),
  /**
   * Keys that encrypt buyer credentials at rest: `kid:base64(32 bytes)` comma-separated; the
   * first encrypts new writes, all decrypt (rotation).
   */
  CREDENTIALS_KEYS: z.string().min(1),
  /**
   * Keys of the payload codec that encrypts everything sent to Temporal: `kid:base64(32 bytes)`,
   * comma-separated; the first encrypts, all decrypt (rotation). Every client and worker needs them.
   */
  PAYLOAD_KEYS: z.string().min(1),
  /**
   * A token for the Temporal UI's codec endpoint when the UI cannot send credentials (the dev
   * server's UI): `/v1/codec/t/<CODEC_TOKEN>/decode`. Empty disables that path.
   */
  CODEC_TOKEN: z.string().default(''),
  /** Origins (comma-separated) allowed to call the codec endpoint from a browser: the Temporal UI. */
  CODEC_CORS_ORIGINS: z.string().default('http://127.0.0.1:8233,http://localhost:8233'),
  /**
   * Keys (same format) that seal each lead's data key in the delivery log. Lead PII in the log is
   * encrypted with the lead's own key; deleting that key at expiry removes the PII (crypto-shredding).
   */
  LOG_KEYS: z.string().default(''),
  /** Secret of the keyed hashes that let operators find a lead by email or phone (no clear-text index). */
  LOOKUP_KEY: z.string().default(''),
  /**
   * Ed25519 keys that sign delivery receipts and daily roots: `kid:base64(PKCS#8 DER)`,
   * comma-separated; the first signs, all are published (old receipts still verify).
   */
  RECEIPT_KEYS: z.string().default(''),
  /** How long lead PII is kept in the delivery log unless the source says otherwise. */
  PII_RETENTION: duration('730d'),
  /** CIDRs that outbound calls to buyer URLs may reach although private (e.g. 127.0.0.0/8,::1/128). */
  OUTBOUND_ALLOW: z.string().default(''),
  /** Largest intake body. */
  INTAKE_BODY_LIMIT: z.string().default('64kb'),
  /** Intake requests per source key per minute. */
  INTAKE_RATE_LIMIT: z.coerce.number().int().positive().default(600),
  /** How long a dead-lettered lead waits for an operator (redeliver / discard) before it is discarded. */
  DEAD_LETTER_RETENTION: duration('30d'),
  /** How often the dead-letter digest alert goes out (when there are new dead letters). */
  DEAD_LETTER_DIGEST_EVERY: duration('1h'),
  /**
   * Buyer returns: the reasons a buyer may give (comma-separated codes, lower case; a reason not in
   * the list is a 400 naming `reason` and listing these), and those approved at once (the others wait
   * for an operator). Every auto-approved reason must be in RETURN_REASONS (checked at boot).
   */
  RETURN_REASONS: reasonList('invalid_contact,duplicate,out_of_area,fraud,other'),
  RETURN_AUTO_APPROVE: reasonList('invalid_contact,duplicate,out_of_area,fraud', { allowEmpty: true }),
  /** How long a pending return waits for an operator's decision before it is recorded `expired`. */
  RETURN_DECISION_WINDOW: duration('30d'),
  /** How long a call to Temporal may take before intake answers 503. */
  TEMPORAL_CALL_TIMEOUT: duration('5s'),
  /** Margin over a lead's expected horizon (freshness × buyers, or the holding buyer's schedule) before it is "stuck". */
  STUCK_HORIZON_SLACK: duration('1m'),
  /** A lead whose workflow recorded no progress this long after its start is stuck. */
  STUCK_NOT_STARTED_AFTER: duration('2m'),
  /** How often the stuck-lead sweep looks (and alerts once per stuck lead). */
  STUCK_SWEEP_EVERY: duration('1m'),
  /**
   * Lead workflows a delivery worker keeps in memory between their tasks (the sticky cache; beyond it a
   * workflow is replayed from its history when it next has work). Bounds the worker's memory: measured
   * about 0.6 MB per cached lead workflow (bench:park); 200 kept throughput at saturation (bench, 30/s).
   */
  WORKER_CACHED_WORKFLOWS: z.coerce.number().int().min(0).max(100_000).default(200),
  /**
   * The delivery worker's own HTTP port: GET /healthz (alive: the worker has not failed) and GET /readyz
   * (its worker is polling). 0 picks a free port (logged).
   */
  WORKER_HEALTH_PORT: port(8082),
  /**
   * Where the Temporal SDK serves its own worker metrics (Prometheus, GET /metrics: task slots, poll and
   * schedule-to-start latencies, sticky cache) in the delivery worker and in the log service's worker;
   * 0 turns them off. Bound on HOST.
   */
  WORKER_SDK_METRICS_PORT: port(9464),
  LOG_SDK_METRICS_PORT: port(9465),
  /**
   * At shutdown (SIGTERM), how long a worker lets running activities finish before it cancels them
   * (Temporal's shutdownGraceTime). A supervisor's kill timeout must be longer (k8s: terminationGracePeriodSeconds).
   */
  SHUTDOWN_GRACE: duration('20s'),
  /** At shutdown, how long an HTTP service lets in-flight requests finish after it stopped accepting new ones. */
  HTTP_DRAIN_TIMEOUT: duration('10s'),
  /** Bearer token that GET /metrics of the intake and log services requires (open when empty: keep the port internal). */
  METRICS_TOKEN: z.string().default(''),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

  // ---- providers (endpoint kinds). Base URLs point the SDKs at the real APIs by default; tests and
  // local runs point them at the fakes in test/fakes/.
  /** Public base URL of the intake service, for provider callbacks (Twilio status, Resend events). */
  PUBLIC_URL: z.string().default(''),
  RESEND_BASE_URL: z.string().default('https://api.resend.com'),
  /** Platform Resend key (an endpoint may bring its own). */
  RESEND_API_KEY: z.string().default(''),
  /** Sender domains verified at Resend, comma-separated; a send from any other domain is a permanent error. */
  RESEND_VERIFIED_DOMAINS: z.string().default(''),
  /** Signing secret (whsec_…) of the Resend webhook that reports bounces and complaints. */
  RESEND_WEBHOOK_SECRET: z.string().default(''),
  TWILIO_API_BASE_URL: z.string().default('https://api.twilio.com'),
  GOOGLE_API_ROOT_URL: z.string().default('https://sheets.googleapis.com/'),
  /** A shared Google service-account key (JSON) for Sheets endpoints that bring none. */
  GOOGLE_SERVICE_ACCOUNT: z.string().default(''),
  HUBSPOT_API_BASE_URL: z.string().default('https://api.hubapi.com'),
  SALESFORCE_LOGIN_URL: z.string().default('https://login.salesforce.com'),
  DYNAMICS_AUTHORITY_URL: z.string().default('https://login.microsoftonline.com'),
});

export type Config = z.infer<typeof configSchema>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}


export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const result = configSchema.safeParse(env);
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`));
  }
  return result.data;
}
