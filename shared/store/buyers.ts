/** A buyer: its name, how it accepts (all endpoints or any), a pause when it has one, its API keys (hashed). */
import { Schema } from 'mongoose';
import type { Caps, Schedule } from '../buyer-controls';
import { defineSchema } from './schema';
import type { SourceKey } from './sources';

/** A buyer's API key (`ldb_…`, shared/api-keys.ts): stored as sources store theirs, only the secret's hash. */
export type BuyerKey = SourceKey;

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
  /** Buyer controls (shared/buyer-controls*.ts), stored as given; defaults apply when read. */
  timeZone?: string;
  caps?: Caps;
  schedule?: Schedule;
  duplicateWindow?: string;
  returnWindow?: string;
  /** Caps of the leads from one source, by source id (beside `caps`). */
  sourceCaps?: Record<string, Caps>;
  /** Percent of a cap at which one `cap_near` alert goes out per window. */
  capWarning?: number;
  /** Keys of the buyer API (`/v1/buyer/…`: returns); absent until the first is issued. */
  keys?: BuyerKey[];
  createdAt: Date;
  updatedAt: Date;
}

export const buyerSchema = defineSchema<BuyerDoc>(
  {
    _id: { type: String, required: true },
    name: { type: String, required: true },
    accept: { type: String, enum: ['all', 'any'], default: 'all' },
    paused: { type: Boolean, default: false },
    pause: { _id: false, reason: String, by: String, endpointId: String, at: Date },
    archivedAt: Date,
    timeZone: String,
    caps: { type: Schema.Types.Mixed },
    schedule: { type: Schema.Types.Mixed },
    duplicateWindow: String,
    returnWindow: String,
    sourceCaps: { type: Schema.Types.Mixed },
    capWarning: Number,
    keys: { type: [{ _id: false, keyId: String, hash: String, createdAt: Date, revokedAt: Date }], default: undefined },
  },
  { timestamps: true, versionKey: false },
);
buyerSchema.index({ 'keys.keyId': 1 });
