/** The names a mapping or a template may read. Pure. */
import { ENVELOPE_FIELDS, LEAD_FIELDS } from './lead';

export function isKnownField(path: string): boolean {
  return (
    (LEAD_FIELDS as readonly string[]).includes(path) ||
    (ENVELOPE_FIELDS as readonly string[]).includes(path) ||
    /^custom\.[A-Za-z0-9_]{1,64}$/.test(path)
  );
}
