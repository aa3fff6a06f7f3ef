/**
 * Field mapping: which keys a buyer receives and where their values come from.
 *   "first_name"                                  a lead field (also "custom.<key>", "consent.<key>", "lead_id", …)
 *   { "field": "phone", "transform": "e164" }      a field with transforms, a default, required
 *   { "const": "acme" }                            a constant
 *   { "template": "{first_name} {last_name}" }     a template
 * Transforms: trim, lower, upper, digits, e164 (or e164:<country code>, default 1), date:<format>
 * (YYYY, MM, DD, HH, mm, ss), name:first, name:last (split a full name). `required: true` makes a
 * missing value a permanent failure that names the key, found before anything is sent.
 * Pure functions: the mapping preview and the delivery activity run the same code.
 */
import type { Lead } from './lead';
import type { FieldError } from './errors';
import { isKnownField } from './mapping-fields';
import { renderTemplate, validateTemplate } from './templates';

export { isKnownField } from './mapping-fields';

type Scalar = string | number | boolean | null;
export interface FieldSpec {
  field: string;
  transform?: string | string[];
  default?: Scalar;
  required?: boolean;
}
export interface TemplateSpec {
  template: string;
  required?: boolean;
}
export type MappingValue = string | FieldSpec | { const: Scalar } | TemplateSpec;
export type Mapping = Record<string, MappingValue>;

export interface LeadContext {
  leadId: string;
  sourceId: string;
  receivedAt: number;
  clientId?: string;
  lead: Lead;
}

/** The lead cannot be sent as configured (a required value is missing): a permanent failure. */
export class MappingError extends Error {
  constructor(message: string, readonly key?: string) {
    super(message);
    this.name = 'MappingError';
  }
}

/** The flat view a mapping reads: envelope fields, standard fields, consent.* and custom.*. */
export function flattenLead(ctx: LeadContext): Record<string, Scalar | undefined> {
  const flat: Record<string, Scalar | undefined> = {
    lead_id: ctx.leadId,
    source_id: ctx.sourceId,
    received_at: new Date(ctx.receivedAt).toISOString(),
    client_id: ctx.clientId,
  };
  for (const [key, value] of Object.entries(ctx.lead)) {
    if (key === 'custom' || key === 'consent') continue;
    flat[key] = value as Scalar;
  }
  for (const [key, value] of Object.entries(ctx.lead.consent ?? {})) flat[`consent.${key}`] = value;
  for (const [key, value] of Object.entries(ctx.lead.custom ?? {})) flat[`custom.${key}`] = value;
  return flat;
}

// ---- transforms ------------------------------------------------------------------------------

const TRANSFORM_RE = /^(trim|lower|upper|digits|e164(:\d{1,3})?|date:[YMDHms/.: T-]{2,40}|name:(first|last))$/;

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

function formatDate(value: string, format: string): string | undefined {
  const date = /^\d{4}-\d{2}-\d{2}$/.test(value) ? new Date(`${value}T00:00:00Z`) : new Date(value);
  if (Number.isNaN(date.getTime())) return undefined;
  const tokens: Record<string, string> = {
    YYYY: String(date.getUTCFullYear()), MM: pad(date.getUTCMonth() + 1), DD: pad(date.getUTCDate()),
    HH: pad(date.getUTCHours()), mm: pad(date.getUTCMinutes()), ss: pad(date.getUTCSeconds()),
  };
  return format.replace(/YYYY|MM|DD|HH|mm|ss/g, (t) => tokens[t]!);
}

/** +<country><number> from what a person typed; undefined when it cannot be one. */
export function toE164(value: string, defaultCountry = '1'): string | undefined {
  const digits = value.replace(/\D/g, '');
  if (value.trim().startsWith('+')) return digits.length >= 8 && digits.length <= 15 ? `+${digits}` : undefined;
  if (digits.startsWith('00')) return toE164(`+${digits.slice(2)}`);
  if (defaultCountry === '1' && digits.length === 11 && digits.startsWith('1')) return `+${digits}`;
  const national = digits.replace(/^0+/, '');
  const full = `${defaultCountry}${national}`;
  if (defaultCountry === '1' && national.length !== 10) return undefined;
  return full.length >= 8 && full.length <= 15 ? `+${full}` : undefined;
}

export function applyTransform(value: Scalar | undefined, transform: string): Scalar | undefined {
  if (value === undefined || value === null) return value;
  const text = typeof value === 'string' ? value : String(value);
  if (transform === 'trim') return text.trim();
  if (transform === 'lower') return text.toLowerCase();
  if (transform === 'upper') return text.toUpperCase();
  if (transform === 'digits') return text.replace(/\D/g, '');
  if (transform.startsWith('e164')) return toE164(text, transform.split(':')[1] ?? '1');
  if (transform.startsWith('date:')) return formatDate(text, transform.slice(5));
  if (transform === 'name:first' || transform === 'name:last') {
    const words = text.trim().split(/\s+/).filter(Boolean);
    if (words.length === 0) return undefined;
    return transform === 'name:first' ? words[0] : words.length > 1 ? words.slice(1).join(' ') : undefined;
  }
  return value;
}

// ---- validation (when the endpoint is saved) -------------------------------------------------

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

export function validateMapping(mapping: unknown, prefix = 'mapping'): FieldError[] {
  if (mapping === undefined) return [];
  if (!isObject(mapping)) return [{ path: prefix, message: 'must be an object of buyer key → lead field, {"field"}, {"const"} or {"template"}' }];
  const errors: FieldError[] = [];
  const entries = Object.entries(mapping);
  if (entries.length > 200) errors.push({ path: prefix, message: 'must have at most 200 keys' });
  for (const [key, value] of entries) {
    const path = `${prefix}.${key}`;
    if (!/^[^\u0000-\u001f]{1,128}$/.test(key)) errors.push({ path, message: 'buyer keys must be 1-128 printable characters' });
    if (typeof value === 'string') {
      if (!isKnownField(value)) errors.push({ path, message: `"${value}" is not a lead field (use e.g. "first_name", "custom.<key>", "lead_id")` });
      continue;
    }
    if (!isObject(value)) {
      errors.push({ path, message: 'must be a lead field name, {"field"}, {"const"} or {"template"}' });
      continue;
    }
    const allowed = 'field' in value ? ['field', 'transform', 'default', 'required'] : 'template' in value ? ['template', 'required'] : 'const' in value ? ['const'] : [];
    if (allowed.length === 0) {
      errors.push({ path, message: 'must be a lead field name, {"field"}, {"const"} or {"template"}' });
      continue;
    }
    for (const extra of Object.keys(value).filter((k) => !allowed.includes(k))) errors.push({ path: `${path}.${extra}`, message: 'is not a known setting here' });
    if ('required' in value && typeof value.required !== 'boolean') errors.push({ path: `${path}.required`, message: 'must be true or false' });
    if ('const' in value) {
      if (!['string', 'number', 'boolean'].includes(typeof value.const) && value.const !== null) errors.push({ path, message: 'a constant must be a string, number, boolean or null' });
    } else if ('template' in value) {
      errors.push(...validateTemplate(value.template, `${path}.template`));
    } else {
      if (typeof value.field !== 'string' || !isKnownField(value.field)) errors.push({ path: `${path}.field`, message: `"${String(value.field)}" is not a lead field` });
      const transforms = value.transform === undefined ? [] : Array.isArray(value.transform) ? value.transform : [value.transform];
      transforms.forEach((t, i) => {
        if (typeof t !== 'string' || !TRANSFORM_RE.test(t)) errors.push({ path: `${path}.transform${Array.isArray(value.transform) ? `.${i}` : ''}`, message: 'must be trim, lower, upper, digits, e164[:cc], date:<format> or name:first|last' });
      });
      if ('default' in value && !['string', 'number', 'boolean'].includes(typeof value.default) && value.default !== null) errors.push({ path: `${path}.default`, message: 'must be a string, number, boolean or null' });
    }
  }
  return errors;
}

// ---- application -----------------------------------------------------------------------------

function resolve(value: MappingValue, flat: Record<string, Scalar | undefined>): Scalar | undefined {
  if (typeof value === 'string') return flat[value];
  if ('const' in value) return value.const;
  if ('template' in value) {
    const text = renderTemplate(value.template, flat);
    return text === '' ? undefined : text;
  }
  let out = flat[value.field];
  for (const transform of value.transform === undefined ? [] : Array.isArray(value.transform) ? value.transform : [value.transform]) out = applyTransform(out, transform);
  if ((out === undefined || out === '') && value.default !== undefined) out = value.default;
  return out === '' ? undefined : out;
}

/** Applies a mapping; without one, the buyer gets the standard flat lead. Throws MappingError when a required key is empty. */
export function applyMapping(mapping: Mapping | undefined, ctx: LeadContext): Record<string, unknown> {
  if (!mapping) return defaultPayload(ctx);
  const flat = flattenLead(ctx);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(mapping)) {
    const resolved = resolve(value, flat);
    if (resolved !== undefined) out[key] = resolved;
    else if (typeof value === 'object' && 'required' in value && value.required) {
      const from = 'field' in value ? ` (from lead field "${value.field}")` : '';
      throw new MappingError(`required field "${key}" is missing${from}`, key);
    }
  }
  return out;
}

/** Kinds whose buyers require certain keys (Salesforce LastName, Company) check them here. */
export function requireKeys(fields: Record<string, unknown>, keys: readonly string[]): void {
  const missing = keys.filter((k) => fields[k] === undefined || fields[k] === null || fields[k] === '');
  if (missing.length) throw new MappingError(`required field${missing.length > 1 ? 's' : ''} ${missing.map((k) => `"${k}"`).join(', ')} missing`, missing[0]);
}

export function defaultPayload(ctx: LeadContext): Record<string, unknown> {
  return { lead_id: ctx.leadId, source_id: ctx.sourceId, received_at: new Date(ctx.receivedAt).toISOString(), ...(ctx.clientId ? { client_id: ctx.clientId } : {}), ...ctx.lead };
}
