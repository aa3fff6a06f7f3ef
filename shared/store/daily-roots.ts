/** The signed Merkle root of each UTC day's journal entries. */
import { defineSchema } from './schema';

/** The Merkle root over one UTC day's journal entries, signed. */
export interface DailyRootDoc {
  _id: string; // YYYY-MM-DD
  root: string;
  count: number;
  keyId: string;
  signature: string;
  computedAt: Date;
}

export const dailyRootSchema = defineSchema<DailyRootDoc>(
  {
    _id: { type: String, required: true },
    root: { type: String, required: true },
    count: { type: Number, required: true },
    keyId: { type: String, required: true },
    signature: { type: String, required: true },
    computedAt: { type: Date, required: true },
  },
  { versionKey: false, timestamps: false },
);
