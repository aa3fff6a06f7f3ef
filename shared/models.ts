import mongoose, { Schema, type Connection, type Model, type SchemaOptions } from 'mongoose';

/**
 * Mongoose models, bound to a connection (no global connection: tests run several stores).
 * The data layer sticks to what both MongoDB 7 and FerretDB (on PostgreSQL) support: no
 * transactions, no TTL indexes, no $group accumulators beyond the basics.
 */

export interface SourceKey {
  keyId: string;
  /** sha256 of the key's secret part, hex. */
  hash: string;
  createdAt: Date;
  revokedAt?: Date;
}

export interface SourceDoc {
  _id: string;
  name: string;
  keys: SourceKey[];
  waterfall: string[];
  /** How long one buyer may hold a lead before it moves on (a duration, default "10m"). */
  freshness?: string;
  /** How long its leads' PII is kept in the delivery log (a duration; default PII_RETENTION). */
  retention?: string;
  /** Identical payloads without an id within this window are duplicates (a duration; default "60s", "0s" = off). */
  duplicateWindow?: string;
  /** Archived (soft-deleted): its keys no longer authenticate; kept for the delivery log and dead letters. */
  archivedAt?: Date;
  createdAt: Date;
  updatedAt: Date;
}

export interface BuyerPause {
  reason: string;
  /** `operator` (paused by hand) or `breaker` (auto-paused when an endpoint's breaker opened). */
  by: 'operator' | 'breaker';
  endpointId?: string;
  at: Date;
}

export interface BuyerDoc {
  _id: string;
  name: string;
  accept: 'all' | 'any';
  paused: boolean;
  pause?: BuyerPause;
  /** Archived (soft-deleted): routing skips it; kept for in-flight leads, dead letters and the log. */
  archivedAt?: Date;
  createdAt: Date;
  updatedAt: Date;
}

export interface EndpointDoc {
  _id: string;
  buyerId: string;
  kind: string;
  name?: string;
  role: 'accept' | 'notify';
  /** Non-secret settings of the kind (url, format, …). */
  config: Record<string, unknown>;
  /** Secrets (signing secret, auth, header values) sealed with the credentials key ring. */
  secrets: string;
  mapping?: Record<string, unknown>;
  backoff: string[];
  timeoutMs: number;
  breaker?: { threshold: number; coolDown: string };
  version: number;
  /** Archived (soft-deleted): an attempt at it sends nothing; kept for the delivery log. */
  archivedAt?: Date;
  createdAt: Date;
  updatedAt: Date;
}

export interface LeadDoc {
  _id: string;
  sourceId: string;
  clientId?: string;
  status: string;
  buyerId?: string;
  reason?: string;
  receivedAt: Date;
  updatedAt: Date;
  /** Journal seq of the status last applied (a late retry of an older write never wins). */
  statusSeq: number;
  /** Keyed hashes (HMAC) of the email and phone, for lookups; removed when the lead's PII expires. */
  emailHash?: string;
  phoneHash?: string;
  /** sha256 of the lead's fields as received (canonical JSON; `leadBodyHash`): intake's idempotency check after Temporal's retention. */
  bodyHash?: string;
  /** Dead letters: when, why (code + text), and which buyers were tried. */
  deadLetteredAt?: Date;
  reasonCode?: string;
  buyersTried?: string[];
}

/**
 * Intake's claim on a payload posted without an id or Idempotency-Key: an identical payload from
 * the same source within the source's duplicate window reuses `leadId`. Expired claims are
 * deleted by intake (no TTL index: FerretDB has none).
 */
export interface PayloadClaimDoc {
  _id: string; // `<sourceId>:<bodyHash>`
  leadId: string;
  at: Date;
  expiresAt: Date;
}

/** One entry of a lead's journal: intake, attempts, decisions, status changes. */
export interface LogEntryDoc {
  _id: string;
  leadId: string;
  seq: number;
  type: string;
  at: Date;
  sourceId: string;
  buyerId?: string;
  endpointId?: string;
  outcome?: string;
  data: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

/**
 * A schema typed by its document interface. The definition object is not inferred against
 * mongoose's generic schema types: with a dozen schemas that inference costs gigabytes of
 * compiler memory (measured: tsc needed 2.3 GB); the interfaces stay the source of truth.
 */
function defineSchema<T>(definition: Record<string, unknown>, options: SchemaOptions): Schema<T> {
  return new Schema(definition, options) as unknown as Schema<T>;
}

const sourceSchema = defineSchema<SourceDoc>(
  {
    _id: { type: String, required: true },
    name: { type: String, required: true },
    keys: [{ _id: false, keyId: String, hash: String, createdAt: Date, revokedAt: Date }],
    waterfall: { type: [String], default: [] },
    freshness: String,
    retention: String,
    duplicateWindow: String,
    archivedAt: Date,
  },
  { timestamps: true, versionKey: false },
);
sourceSchema.index({ 'keys.keyId': 1 });

const buyerSchema = defineSchema<BuyerDoc>(
  {
    _id: { type: String, required: true },
    name: { type: String, required: true },
    accept: { type: String, enum: ['all', 'any'], default: 'all' },
    paused: { type: Boolean, default: false },
    pause: { _id: false, reason: String, by: String, endpointId: String, at: Date },
    archivedAt: Date,
  },
  { timestamps: true, versionKey: false },
);

const endpointSchema = defineSchema<EndpointDoc>(
  {
    _id: { type: String, required: true },
    buyerId: { type: String, required: true, index: true },
    kind: { type: String, required: true },
    name: String,
    role: { type: String, enum: ['accept', 'notify'], default: 'accept' },
    config: { type: Schema.Types.Mixed, default: {} },
    secrets: { type: String, required: true },
    mapping: { type: Schema.Types.Mixed },
    backoff: { type: [String], default: undefined },
    timeoutMs: { type: Number, required: true },
    breaker: { _id: false, threshold: Number, coolDown: String },
    version: { type: Number, default: 1 },
    archivedAt: Date,
  },
  { timestamps: true, versionKey: false, minimize: false },
);

const leadSchema = defineSchema<LeadDoc>(
  {
    _id: { type: String, required: true },
    sourceId: { type: String, required: true },
    clientId: String,
    status: { type: String, required: true },
    buyerId: String,
    reason: String,
    receivedAt: { type: Date, required: true },
    updatedAt: { type: Date, required: true },
    statusSeq: { type: Number, default: 0 },
    bodyHash: String,
    deadLetteredAt: Date,
    emailHash: String,
    phoneHash: String,
    reasonCode: String,
    buyersTried: { type: [String], default: undefined },
  },
  { versionKey: false, timestamps: false },
);
leadSchema.index({ sourceId: 1, receivedAt: -1 });
leadSchema.index({ status: 1, updatedAt: -1 });
leadSchema.index({ status: 1, deadLetteredAt: -1, _id: -1 });
leadSchema.index({ emailHash: 1 }, { sparse: true });
leadSchema.index({ phoneHash: 1 }, { sparse: true });

const logEntrySchema = defineSchema<LogEntryDoc>(
  {
    _id: { type: String, required: true },
    leadId: { type: String, required: true },
    seq: { type: Number, required: true },
    type: { type: String, required: true },
    at: { type: Date, required: true },
    sourceId: { type: String, required: true },
    buyerId: String,
    endpointId: String,
    outcome: String,
    data: { type: Schema.Types.Mixed, required: true },
    prevHash: { type: String, default: '' },
    hash: { type: String, required: true },
  },
  { versionKey: false, timestamps: false, minimize: false },
);
logEntrySchema.index({ leadId: 1, seq: 1 }, { unique: true });
// The log's queries walk these (type first: attempts, decisions and status entries share the
// collection; `_id` last: a stable cursor under concurrent writes).
logEntrySchema.index({ type: 1, at: 1, _id: 1 });
logEntrySchema.index({ type: 1, buyerId: 1, at: 1, _id: 1 });
logEntrySchema.index({ type: 1, sourceId: 1, at: 1, _id: 1 });
logEntrySchema.index({ type: 1, endpointId: 1, at: 1, _id: 1 });
logEntrySchema.index({ type: 1, outcome: 1, at: 1, _id: 1 });
// Provider callbacks find the attempt that created a message.
logEntrySchema.index({ 'data.response.messageId': 1 }, { sparse: true });

/** An address that must not be sent to again (hard bounce, complaint, unsubscribed or blocked number). */
export interface SuppressionDoc {
  /** `<channel>:<address>`: email lower-cased, phone in E.164. */
  _id: string;
  channel: 'email' | 'sms';
  address: string;
  reason: string;
  /** What reported it: "resend:email.bounced", "twilio:21610", … */
  source: string;
  at: Date;
}

/** A provider's report about something we sent (delivery status, bounce, carrier outcome). */
export interface ProviderEventDoc {
  /** `<provider>:<messageId>:<type>`: a provider's retried callback never duplicates. */
  _id: string;
  provider: string;
  messageId: string;
  type: string;
  leadId?: string;
  endpointId?: string;
  attemptId?: string;
  at: Date;
  data: Record<string, unknown>;
}

/** Where operator alerts go: an endpoint kind (webhook, email, sms) with its settings. */
export interface AlertChannelDoc {
  _id: string;
  name?: string;
  kind: string;
  config: Record<string, unknown>;
  secrets: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface AlertDoc {
  _id: string;
  type: 'breaker_opened' | 'breaker_recovered' | 'dead_letter_digest' | 'lead_internal_error' | 'journal_conflict' | 'stuck_lead';
  title: string;
  message: string;
  endpointId?: string;
  buyerId?: string;
  at: Date;
  deliveries: Array<{ channelId: string; kind: string; outcome: string; code: string; at: Date }>;
}

/**
 * The breaker workflow's state as published for routing (the workflow is the authority and
 * writes this on every transition; attempts and buyer checks read it without a Temporal query).
 */
export interface BreakerStateDoc {
  _id: string; // endpoint id
  buyerId: string;
  state: 'closed' | 'open' | 'half_open';
  /** At least one failure since the last success: successes must be reported to reset it. */
  failing: boolean;
  updatedAt: Date;
}

/** A lead's data key for its PII in the delivery log; deleted (shredded) when the PII expires. */
export interface LeadKeyDoc {
  _id: string; // lead id
  sourceId: string;
  /** The 32-byte key, sealed with LOG_KEYS; absent once shredded. */
  key?: string;
  createdAt: Date;
  expiresAt: Date;
  shreddedAt?: Date;
}

/** The Merkle root over one UTC day's journal entries, signed. */
export interface DailyRootDoc {
  _id: string; // YYYY-MM-DD
  root: string;
  count: number;
  keyId: string;
  signature: string;
  computedAt: Date;
}

export interface Models {
  PayloadClaim: Model<PayloadClaimDoc>;
  LeadKey: Model<LeadKeyDoc>;
  DailyRoot: Model<DailyRootDoc>;
  BreakerState: Model<BreakerStateDoc>;
  AlertChannel: Model<AlertChannelDoc>;
  Alert: Model<AlertDoc>;
  Suppression: Model<SuppressionDoc>;
  ProviderEvent: Model<ProviderEventDoc>;
  Source: Model<SourceDoc>;
  Buyer: Model<BuyerDoc>;
  Endpoint: Model<EndpointDoc>;
  Lead: Model<LeadDoc>;
  LogEntry: Model<LogEntryDoc>;
}

const suppressionSchema = defineSchema<SuppressionDoc>(
  {
    _id: { type: String, required: true },
    channel: { type: String, required: true },
    address: { type: String, required: true },
    reason: { type: String, required: true },
    source: { type: String, required: true },
    at: { type: Date, required: true },
  },
  { versionKey: false, timestamps: false },
);

const providerEventSchema = defineSchema<ProviderEventDoc>(
  {
    _id: { type: String, required: true },
    provider: { type: String, required: true },
    messageId: { type: String, required: true },
    type: { type: String, required: true },
    leadId: String,
    endpointId: String,
    attemptId: String,
    at: { type: Date, required: true },
    data: { type: Schema.Types.Mixed, default: {} },
  },
  { versionKey: false, timestamps: false, minimize: false },
);
providerEventSchema.index({ leadId: 1, at: 1 });
providerEventSchema.index({ provider: 1, messageId: 1 });

const alertChannelSchema = defineSchema<AlertChannelDoc>(
  {
    _id: { type: String, required: true },
    name: String,
    kind: { type: String, required: true },
    config: { type: Schema.Types.Mixed, default: {} },
    secrets: { type: String, required: true },
  },
  { timestamps: true, versionKey: false, minimize: false },
);

const alertSchema = defineSchema<AlertDoc>(
  {
    _id: { type: String, required: true },
    type: { type: String, required: true },
    title: { type: String, required: true },
    message: { type: String, required: true },
    endpointId: String,
    buyerId: String,
    at: { type: Date, required: true },
    deliveries: [{ _id: false, channelId: String, kind: String, outcome: String, code: String, at: Date }],
  },
  { versionKey: false, timestamps: false },
);
alertSchema.index({ at: -1 });

const breakerStateSchema = defineSchema<BreakerStateDoc>(
  {
    _id: { type: String, required: true },
    buyerId: { type: String, required: true },
    state: { type: String, required: true },
    failing: { type: Boolean, default: false },
    updatedAt: { type: Date, required: true },
  },
  { versionKey: false, timestamps: false },
);

const leadKeySchema = defineSchema<LeadKeyDoc>(
  {
    _id: { type: String, required: true },
    sourceId: { type: String, required: true },
    key: String,
    createdAt: { type: Date, required: true },
    expiresAt: { type: Date, required: true },
    shreddedAt: Date,
  },
  { versionKey: false, timestamps: false },
);
leadKeySchema.index({ expiresAt: 1 });

const payloadClaimSchema = defineSchema<PayloadClaimDoc>(
  {
    _id: { type: String, required: true },
    leadId: { type: String, required: true },
    at: { type: Date, required: true },
    expiresAt: { type: Date, required: true },
  },
  { versionKey: false, timestamps: false },
);
payloadClaimSchema.index({ expiresAt: 1 });

const dailyRootSchema = defineSchema<DailyRootDoc>(
  {
    _id: { type: String, required: true },
    root: { type: String, required: true },
    count: { type: Number, required: true },
    keyId: { type: String, required: true },
    signature: { type: String, required: true },
    computedAt: { type: Date, required: true },
  },
  { versionKey: false, timestamps: false },
);

export function createModels(connection: Connection): Models {
  return {
    PayloadClaim: connection.model<PayloadClaimDoc>('PayloadClaim', payloadClaimSchema, 'payloadclaims'),
    LeadKey: connection.model<LeadKeyDoc>('LeadKey', leadKeySchema, 'leadkeys'),
    DailyRoot: connection.model<DailyRootDoc>('DailyRoot', dailyRootSchema, 'dailyroots'),
    BreakerState: connection.model<BreakerStateDoc>('BreakerState', breakerStateSchema, 'breakerstates'),
    AlertChannel: connection.model<AlertChannelDoc>('AlertChannel', alertChannelSchema, 'alertchannels'),
    Alert: connection.model<AlertDoc>('Alert', alertSchema, 'alerts'),
    Suppression: connection.model<SuppressionDoc>('Suppression', suppressionSchema, 'suppressions'),
    ProviderEvent: connection.model<ProviderEventDoc>('ProviderEvent', providerEventSchema, 'providerevents'),
    Source: connection.model<SourceDoc>('Source', sourceSchema, 'sources'),
    Buyer: connection.model<BuyerDoc>('Buyer', buyerSchema, 'buyers'),
    Endpoint: connection.model<EndpointDoc>('Endpoint', endpointSchema, 'endpoints'),
    Lead: connection.model<LeadDoc>('Lead', leadSchema, 'leads'),
    LogEntry: connection.model<LogEntryDoc>('LogEntry', logEntrySchema, 'deliverylog'),
  };
}

/** Opens a connection and makes sure every index exists (idempotent). */
export async function connectStore(url: string, options: { serverSelectionTimeoutMS?: number } = {}): Promise<{ connection: Connection; models: Models }> {
  const connection = await mongoose
    .createConnection(url, { serverSelectionTimeoutMS: options.serverSelectionTimeoutMS ?? 10_000, autoIndex: false })
    .asPromise();
  const models = createModels(connection);
  await Promise.all(Object.values(models).map((model: Model<unknown>) => model.createIndexes()));
  return { connection, models };
}

/**
 * The fields each collection is queried on by equality: `_id`, and every top-level String field
 * of its indexes (Date and Number fields are ranges and sorts). MongoDB serves these from the
 * indexes above; FerretDB on PostgreSQL cannot (see deploy/local/ferretdb-indexes.ts), and gets
 * one containment index per field from them.
 */
export function equalityFields(models: Models): Record<string, string[]> {
  const fields: Record<string, string[]> = {};
  for (const model of Object.values(models) as Array<Model<unknown>>) {
    const names = new Set<string>(['_id']);
    for (const [keys] of model.schema.indexes()) {
      for (const key of Object.keys(keys)) {
        if (!key.includes('.') && model.schema.path(key)?.instance === 'String') names.add(key);
      }
    }
    fields[model.collection.collectionName] = [...names];
  }
  return fields;
}

/** True when the store answers a ping within the timeout. */
export async function pingStore(connection: Connection, timeoutMs = 2_000): Promise<boolean> {
  const db = connection.db;
  if (!db || connection.readyState !== mongoose.ConnectionStates.connected) return false;
  try {
    await Promise.race([
      db.admin().ping(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('ping timeout')), timeoutMs).unref()),
    ]);
    return true;
  } catch {
    return false;
  }
}

/**
 * True when a write failed only on duplicate keys (code 11000): a single insert, or an unordered
 * bulk insert whose every write error is a duplicate (the other documents were inserted).
 */
export function isDuplicateKeyError(error: unknown): boolean {
  const e = error as { code?: unknown; writeErrors?: unknown } | null;
  if (!e) return false;
  if (e.code === 11000) return true;
  const writeErrors = Array.isArray(e.writeErrors) ? (e.writeErrors as Array<{ code?: unknown }>) : e.writeErrors ? [e.writeErrors as { code?: unknown }] : [];
  return writeErrors.length > 0 && writeErrors.every((w) => w.code === 11000);
}
