/** Providers' reports about what we sent (delivery status, bounces, carrier outcomes). */
import { Schema } from 'mongoose';
import { defineSchema } from './schema';

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

export const providerEventSchema = defineSchema<ProviderEventDoc>(
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
