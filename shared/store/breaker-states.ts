/** The state each endpoint's breaker workflow publishes on every transition. */
import { defineSchema } from './schema';

/**
 * The breaker workflow's state as published for routing (the workflow is the authority and
 * writes this on every transition; attempts and buyer checks read it without a Temporal query).
 */
export interface BreakerStateDoc {
  _id: string; // endpoint id
  buyerId: string;
  state: 'closed' | 'open' | 'half_open';
  /** At least one failure since the last success: successes must be reported to reset it. */
  failing: boolean;
  updatedAt: Date;
}

export const breakerStateSchema = defineSchema<BreakerStateDoc>(
  {
    _id: { type: String, required: true },
    buyerId: { type: String, required: true },
    state: { type: String, required: true },
    failing: { type: Boolean, default: false },
    updatedAt: { type: Date, required: true },
  },
  { versionKey: false, timestamps: false },
);
