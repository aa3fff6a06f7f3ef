/** A lead source: its API keys (hashed), its waterfall of buyers and its settings. */
import { defineSchema } from './schema';

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

export const sourceSchema = defineSchema<SourceDoc>(
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
