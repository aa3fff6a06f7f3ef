/**
 * The store: one module per collection (its document interface and mongoose schema), bound here to
 * a connection (no global connection: tests run several stores). The data layer sticks to what both
 * MongoDB 7 and FerretDB (on PostgreSQL) support: no transactions, no TTL indexes, no $group
 * accumulators beyond the basics.
 */
import mongoose, { type Connection, type Model } from 'mongoose';
import { sourceSchema, type SourceDoc } from './sources';
import { buyerSchema, type BuyerDoc } from './buyers';
import { endpointSchema, type EndpointDoc } from './endpoints';
import { leadDocSchema, type LeadDoc } from './leads';
import { payloadClaimSchema, type PayloadClaimDoc } from './payload-claims';
import { logEntrySchema, type LogEntryDoc } from './delivery-log';
import { suppressionSchema, type SuppressionDoc } from './suppressions';
import { providerEventSchema, type ProviderEventDoc } from './provider-events';
import { alertChannelSchema, alertSchema, type AlertChannelDoc, type AlertDoc } from './alerts';
import { breakerStateSchema, type BreakerStateDoc } from './breaker-states';
import { leadKeySchema, type LeadKeyDoc } from './lead-keys';
import { dailyRootSchema, type DailyRootDoc } from './daily-roots';
import { buyerUsageSchema, type BuyerUsageDoc } from './buyer-usage';
import { sendSlotSchema, type SendSlotDoc } from './send-slots';
import { formTokenSchema, type FormTokenDoc } from './form-tokens';

export type { SourceKey, SourceDoc } from './sources';
export type { BuyerPause, BuyerDoc, BuyerKey } from './buyers';
export type { EndpointDoc } from './endpoints';
export type { LeadDoc } from './leads';
export type { PayloadClaimDoc } from './payload-claims';
export type { LogEntryDoc } from './delivery-log';
export type { SuppressionDoc } from './suppressions';
export type { ProviderEventDoc } from './provider-events';
export type { AlertChannelDoc, AlertDoc } from './alerts';
export type { BreakerStateDoc } from './breaker-states';
export type { LeadKeyDoc } from './lead-keys';
export type { DailyRootDoc } from './daily-roots';
export type { BuyerUsageDoc } from './buyer-usage';
export type { SendSlotDoc } from './send-slots';
export type { FormTokenDoc } from './form-tokens';

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
  BuyerUsage: Model<BuyerUsageDoc>;
  SendSlot: Model<SendSlotDoc>;
  FormToken: Model<FormTokenDoc>;
  Endpoint: Model<EndpointDoc>;
  Lead: Model<LeadDoc>;
  LogEntry: Model<LogEntryDoc>;
}

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
    BuyerUsage: connection.model<BuyerUsageDoc>('BuyerUsage', buyerUsageSchema, 'buyerusage'),
    SendSlot: connection.model<SendSlotDoc>('SendSlot', sendSlotSchema, 'sendslots'),
    FormToken: connection.model<FormTokenDoc>('FormToken', formTokenSchema, 'formtokens'),
    Endpoint: connection.model<EndpointDoc>('Endpoint', endpointSchema, 'endpoints'),
    Lead: connection.model<LeadDoc>('Lead', leadDocSchema, 'leads'),
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
