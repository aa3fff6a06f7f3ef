/**
 * Send slots of the throttles (endpoint throttles, the Sheets kind's Google quotas): one document per
 * send a window counts, `${key}|${unit}|${window}|${n}` (n = 0…limit-1). Taking a slot is an insert,
 * which the unique `_id` makes atomic on MongoDB and FerretDB alike (as for the buyers' cap slots in
 * buyer-usage.ts). A slot may lie in a future window: a send beyond the rate reserves the first free
 * one and waits for it (a queue in order of arrival, no herd at each window's start). Slots of past
 * windows are pruned whenever a window's first slot is taken.
 */
import { defineSchema } from './schema';

export interface SendSlotDoc {
  _id: string; // `${key}|${unit}|${window}|${n}`
  /** What is throttled: `endpoint:<id>`, `sheets:write:account:<email>`, … */
  key: string;
  /** `s` (per second) or `m` (per minute). */
  unit: string;
  /** The window's number: floor(ms since epoch / the unit's length). */
  window: number;
  n: number;
  /** Who holds it (an attempt id): a retried execution finds its own slot instead of taking another. */
  holder: string;
  /** When the send may go (the slot's planned time). */
  at: Date;
}

export const sendSlotSchema = defineSchema<SendSlotDoc>(
  {
    _id: { type: String, required: true },
    key: { type: String, required: true, index: true },
    unit: { type: String, required: true },
    window: { type: Number, required: true },
    n: { type: Number, required: true },
    holder: { type: String, required: true, index: true },
    at: { type: Date, required: true },
  },
  { versionKey: false, timestamps: false },
);
