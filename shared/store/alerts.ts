/** Operator alerts and the channels they go to. */
import { Schema } from 'mongoose';
import { defineSchema } from './schema';

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

/** Every kind of operator alert (the alerts list filters by them). */
export const ALERT_TYPES = ['breaker_opened', 'breaker_recovered', 'dead_letter_digest', 'lead_internal_error', 'journal_conflict', 'stuck_lead', 'cap_reached', 'cap_near'] as const;
export type AlertType = (typeof ALERT_TYPES)[number];

export interface AlertDoc {
  _id: string;
  type: AlertType;
  title: string;
  message: string;
  endpointId?: string;
  buyerId?: string;
  at: Date;
  deliveries: Array<{ channelId: string; kind: string; outcome: string; code: string; at: Date }>;
}

export const alertChannelSchema = defineSchema<AlertChannelDoc>(
  {
    _id: { type: String, required: true },
    name: String,
    kind: { type: String, required: true },
    config: { type: Schema.Types.Mixed, default: {} },
    secrets: { type: String, required: true },
  },
  { timestamps: true, versionKey: false, minimize: false },
);

export const alertSchema = defineSchema<AlertDoc>(
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
