/** Intake's duplicate-window claims on payloads posted without an id. */
import { defineSchema } from './schema';

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

export const payloadClaimSchema = defineSchema<PayloadClaimDoc>(
  {
    _id: { type: String, required: true },
    leadId: { type: String, required: true },
    at: { type: Date, required: true },
    expiresAt: { type: Date, required: true },
  },
  { versionKey: false, timestamps: false },
);
payloadClaimSchema.index({ expiresAt: 1 });
