/** The journal (collection `deliverylog`): one hash-chained entry per event of a lead. */
import { Schema } from 'mongoose';
import { defineSchema } from './schema';

/** One entry of a lead's journal: intake, attempts, decisions, status changes. */
export interface LogEntryDoc {
  _id: string;
  leadId: string;
  seq: number;
  type: string;
  at: Date;
  sourceId: string;
  buyerId?: string;
  endpointId?: string;
  outcome?: string;
  data: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

export const logEntrySchema = defineSchema<LogEntryDoc>(
  {
    _id: { type: String, required: true },
    leadId: { type: String, required: true },
    seq: { type: Number, required: true },
    type: { type: String, required: true },
    at: { type: Date, required: true },
    sourceId: { type: String, required: true },
    buyerId: String,
    endpointId: String,
    outcome: String,
    data: { type: Schema.Types.Mixed, required: true },
    prevHash: { type: String, default: '' },
    hash: { type: String, required: true },
  },
  { versionKey: false, timestamps: false, minimize: false },
);
logEntrySchema.index({ leadId: 1, seq: 1 }, { unique: true });
// The log's queries walk these (type first: attempts, decisions and status entries share the
// collection; `_id` last: a stable cursor under concurrent writes).
logEntrySchema.index({ type: 1, at: 1, _id: 1 });
logEntrySchema.index({ type: 1, buyerId: 1, at: 1, _id: 1 });
logEntrySchema.index({ type: 1, sourceId: 1, at: 1, _id: 1 });
logEntrySchema.index({ type: 1, endpointId: 1, at: 1, _id: 1 });
logEntrySchema.index({ type: 1, outcome: 1, at: 1, _id: 1 });
// Provider callbacks find the attempt that created a message.
logEntrySchema.index({ 'data.response.messageId': 1 }, { sparse: true });
