/** A buyer: its name, how it accepts (all endpoints or any), and a pause when it has one. */
import { Schema } from 'mongoose';
import type { Caps, Schedule } from '../buyer-controls';
import { defineSchema } from './schema';

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
  },
  { timestamps: true, versionKey: false },
);
