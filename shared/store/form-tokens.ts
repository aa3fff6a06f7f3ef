/**
 * One-time form tokens of the console: the form of an action whose result page shows a secret once
 * (a new source or source key, a new endpoint's signing secret) carries a random token, and the
 * action first spends it, an insert the unique `_id` makes atomic on MongoDB and FerretDB alike. A
 * form posted again (a reload of the page that showed the secret, a double click) finds its token
 * spent and does nothing (services/intake/console/once.ts). Only spent
 * tokens are stored; those older than FORM_TOKEN_TTL_MS are pruned whenever one is spent (no TTL
 * indexes on FerretDB).
 */
import { defineSchema } from './schema';

export interface FormTokenDoc {
  _id: string;
  /** What the token was spent on (`source:create`, `source:<id>:key`, `buyer:<id>:endpoint`). */
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
