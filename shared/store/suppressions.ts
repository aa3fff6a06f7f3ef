/** Addresses and numbers that must not be sent to again. */
import { defineSchema } from './schema';

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

export const suppressionSchema = defineSchema<SuppressionDoc>(
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
