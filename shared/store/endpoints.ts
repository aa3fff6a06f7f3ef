/** An endpoint of a buyer: its kind, settings, sealed credentials and delivery settings (shared/endpoint.ts knows their rules). */
import { Schema } from 'mongoose';
import { defineSchema } from './schema';

export interface EndpointDoc {
  _id: string;
  buyerId: string;
  kind: string;
  name?: string;
  role: 'accept' | 'notify';
  /** Non-secret settings of the kind (url, format, …). */
  config: Record<string, unknown>;
  /** Secrets (signing secret, auth, header values) sealed with the credentials key ring. */
  secrets: string;
  mapping?: Record<string, unknown>;
  backoff: string[];
  timeoutMs: number;
  breaker?: { threshold: number; coolDown: string };
  /** At most this many sends per second / minute across all workers (absent: none). */
  throttle?: { perSecond?: number; perMinute?: number };
  version: number;
  /** Archived (soft-deleted): an attempt at it sends nothing; kept for the delivery log. */
  archivedAt?: Date;
  createdAt: Date;
  updatedAt: Date;
}

export const endpointSchema = defineSchema<EndpointDoc>(
  {
    _id: { type: String, required: true },
    buyerId: { type: String, required: true, index: true },
    kind: { type: String, required: true },
    name: String,
    role: { type: String, enum: ['accept', 'notify'], default: 'accept' },
    config: { type: Schema.Types.Mixed, default: {} },
    secrets: { type: String, required: true },
    mapping: { type: Schema.Types.Mixed },
    backoff: { type: [String], default: undefined },
    timeoutMs: { type: Number, required: true },
    breaker: { _id: false, threshold: Number, coolDown: String },
    // A sub-schema with no default: an endpoint without a throttle stores none (not an empty object).
    throttle: { type: new Schema({ perSecond: Number, perMinute: Number }, { _id: false }), default: undefined },
    version: { type: Number, default: 1 },
    archivedAt: Date,
  },
  { timestamps: true, versionKey: false, minimize: false },
);
