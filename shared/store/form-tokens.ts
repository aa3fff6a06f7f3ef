/**
 * One-time form tokens of the console: the confirmation page of an action whose result cannot be
 * shown twice (a new API key) carries a random token, and the action first spends it, an insert the
 * unique `_id` makes atomic on MongoDB and FerretDB alike. A form posted again (a reload of the
 * page that showed the key, a double click) finds its token spent and does nothing. Only spent
 * tokens are stored; those older than FORM_TOKEN_TTL_MS are pruned whenever one is spent (no TTL
 * indexes on FerretDB).
 */
import { defineSchema } from './schema';

export interface FormTokenDoc {
  _id: string;
  /** What the token was spent on (`source:create`, `source:<id>:key`). */
  action: string;
  spentAt: Date;
}

export const formTokenSchema = defineSchema<FormTokenDoc>(
  {
    _id: { type: String, required: true },
    action: { type: String, required: true },
    spentAt: { type: Date, required: true, index: true },
  },
  { versionKey: false, timestamps: false },
);
