/** The summary of a lead, written by the log service from the journal. */
import { defineSchema } from './schema';

export interface LeadDoc {
  _id: string;
  sourceId: string;
  clientId?: string;
  status: string;
  buyerId?: string;
  reason?: string;
  receivedAt: Date;
  updatedAt: Date;
  /** Journal seq of the status last applied (a late retry of an older write never wins). */
  statusSeq: number;
  /** Keyed hashes (HMAC) of the email and phone, for lookups; removed when the lead's PII expires. */
  emailHash?: string;
  phoneHash?: string;
  /** sha256 of the lead's fields as received (canonical JSON; `leadBodyHash`): intake's idempotency check after Temporal's retention. */
  bodyHash?: string;
  /** Dead letters: when, why (code + text), and which buyers were tried. */
  deadLetteredAt?: Date;
  reasonCode?: string;
  buyersTried?: string[];
  /** When the lead was delivered (its `delivered` status entry): a buyer's return window counts from it. */
  deliveredAt?: Date;
  /** The buyer's return of the lead (shared/returns.ts), from the journal's return entries. */
  returnId?: string;
  returnStatus?: string;
  returnReason?: string;
  returnRequestedAt?: Date;
  returnDecidedAt?: Date;
  /** The operator's reason for the decision (a denial needs one). */
  returnDecisionReason?: string;
  /** Journal seq of the return entry last applied (a late retry of an older write never wins). */
  returnSeq?: number;
}

export const leadDocSchema = defineSchema<LeadDoc>(
  {
    _id: { type: String, required: true },
    sourceId: { type: String, required: true },
    clientId: String,
    status: { type: String, required: true },
    buyerId: String,
    reason: String,
    receivedAt: { type: Date, required: true },
    updatedAt: { type: Date, required: true },
    statusSeq: { type: Number, default: 0 },
    bodyHash: String,
    deadLetteredAt: Date,
    emailHash: String,
    phoneHash: String,
    reasonCode: String,
    buyersTried: { type: [String], default: undefined },
    deliveredAt: Date,
    returnId: String,
    returnStatus: String,
    returnReason: String,
    returnRequestedAt: Date,
    returnDecidedAt: Date,
    returnDecisionReason: String,
    returnSeq: Number,
  },
  { versionKey: false, timestamps: false },
);
leadDocSchema.index({ sourceId: 1, receivedAt: -1 });
leadDocSchema.index({ status: 1, updatedAt: -1 });
leadDocSchema.index({ status: 1, deadLetteredAt: -1, _id: -1 });
leadDocSchema.index({ emailHash: 1 }, { sparse: true });
leadDocSchema.index({ phoneHash: 1 }, { sparse: true });
// Returns: a buyer's own list and the operators' list with counts per status, by buyer or source
// (equality on buyerId/sourceId and returnStatus, newest first); a buyer resolving its lead by the
// source's own id (clientId).
leadDocSchema.index({ buyerId: 1, returnStatus: 1, returnRequestedAt: -1, _id: -1 });
leadDocSchema.index({ sourceId: 1, returnStatus: 1, returnRequestedAt: -1, _id: -1 });
leadDocSchema.index({ returnStatus: 1, returnRequestedAt: -1, _id: -1 });
leadDocSchema.index({ clientId: 1, buyerId: 1 });
