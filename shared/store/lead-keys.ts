/** The per-lead data keys of the PII in the delivery log (deleted to shred it). */
import { defineSchema } from './schema';

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

export const leadKeySchema = defineSchema<LeadKeyDoc>(
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
