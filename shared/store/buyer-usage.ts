/**
 * The leads a buyer took in each cap window (buyer controls), one document per counted lead: slot
 * `n` (1…limit) of a window is the document `${buyerId}|${key}|${n}`. Taking a slot is an insert,
 * which the unique `_id` makes atomic on MongoDB and on FerretDB alike (FerretDB 1.x applies a
 * conditional update as read-then-write, so a counter's `$inc` under `count < limit` over-counts
 * when leads race: 5 of 50 took 3 slots, measured). A lead holds at most one slot of a window, so
 * a retried activity, a replay or a redelivery to the same buyer counts once; releasing deletes
 * the lead's own slot. Slot 0 marks that the window met its cap once (the alert goes out once).
 */
import { defineSchema } from './schema';

export interface BuyerUsageDoc {
  _id: string; // `${buyerId}|${key}|${slot}`
  buyerId: string;
  /** The window: "daily:2026-12-04", "hourly:2026-12-04T18-06:00", "window:2026-12-04T08:00/20:00", "total". */
  key: string;
  /** 1…limit: a counted lead; 0: the cap-reached marker. */
  slot: number;
  leadId: string;
  at: Date;
  /** When the window ends (absent for total): rows of past windows can be pruned after it. */
  endsAt?: Date;
}

export const buyerUsageSchema = defineSchema<BuyerUsageDoc>(
  {
    _id: { type: String, required: true },
    buyerId: { type: String, required: true, index: true },
    key: { type: String, required: true, index: true },
    slot: { type: Number, required: true },
    leadId: { type: String, required: true, index: true },
    at: { type: Date, required: true },
    endsAt: Date,
  },
  { versionKey: false, timestamps: false },
);
