/**
 * Field mapping: which keys a buyer receives and where their values come from.
 *   "first_name"            a lead field (also "custom.<key>", "consent.<key>", "lead_id", "source_id", …)
 *   { "const": "acme" }     a constant
 *   { "field": "email" }    the long form of a field reference
 * Pure functions: the mapping preview and the delivery activity run the same code.
 */
import type { Lead } from './lead';
import { ENVELOPE_FIELDS, LEAD_FIELDS } from './lead';
import type { FieldError } from './errors';

export type MappingValue = string | { field: string } | { const: string | number | boolean | null };
export type Mapping = Record<string, MappingValue>;

export interface LeadContext {
  leadId: string;
  sourceId: string;
  receivedAt: number;
  clientId?: string;
  lead: Lead;
}

/** The flat view a mapping reads: envelope fields, standard fields, consent.* and custom.*. */
export function flattenLead(ctx: LeadContext): Record<string, string | number | boolean | null | undefined> {
  const flat: Record<string, string | number | boolean | null | undefined> = {
    lead_id: ctx.leadId,
    source_id: ctx.sourceId,
    received_at: new Date(ctx.receivedAt).toISOString(),
    client_id: ctx.clientId,
  };
  for (const [key, value] of Object.entries(ctx.lead)) {
    if (key === 'custom' || key === 'consent') continue;
    flat[key] = value as string | undefined;
  }
  for (const [key, value] of Object.entries(ctx.lead.consent ?? {})) flat[`consent.${key}`] = value;
  for (const [key, value] of Object.entries(ctx.lead.custom ?? {})) flat[`custom.${key}`] = value;
  return flat;
}

export function isKnownField(path: string): boolean {
  return (
    (LEAD_FIELDS as readonly string[]).includes(path) ||
    (ENVELOPE_FIELDS as readonly string[]).includes(path) ||
    /^custom\.[A-Za-z0-9_]{1,64}$/.test(path)
  );
}

/** Configuration errors, found when the endpoint is saved. */
export function validateMapping(mapping: unknown, prefix = 'mapping'): FieldError[] {
  if (mapping === undefined) return [];
  if (mapping === null || typeof mapping !== 'object' || Array.isArray(mapping)) {
    return [{ path: prefix, message: 'must be an object of buyer key → lead field or {"const": value}' }];
  }
  const errors: FieldError[] = [];
  const entries = Object.entries(mapping);
  if (entries.length > 200) errors.push({ path: prefix, message: 'must have at most 200 keys' });
  for (const [key, value] of entries) {
    const path = `${prefix}.${key}`;
    if (!/^[^\u0000-\u001f]{1,128}$/.test(key)) errors.push({ path, message: 'buyer keys must be 1-128 printable characters' });
    const field = typeof value === 'string' ? value : value && typeof value === 'object' && 'field' in value ? (value as { field: unknown }).field : undefined;
    if (field !== undefined) {
      if (typeof field !== 'string' || !isKnownField(field)) errors.push({ path, message: `"${typeof field === 'string' ? field : JSON.stringify(field)}" is not a lead field (use e.g. "first_name", "custom.<key>", "lead_id")` });
      continue;
    }
    if (value && typeof value === 'object' && 'const' in value) {
      const constant = (value as { const: unknown }).const;
      if (!['string', 'number', 'boolean'].includes(typeof constant) && constant !== null) errors.push({ path, message: 'a constant must be a string, number, boolean or null' });
      continue;
    }
    errors.push({ path, message: 'must be a lead field name or {"const": value}' });
  }
  return errors;
}

/** Applies a mapping; without one, the buyer gets the standard flat lead. */
export function applyMapping(mapping: Mapping | undefined, ctx: LeadContext): Record<string, unknown> {
  const flat = flattenLead(ctx);
  if (!mapping) return defaultPayload(ctx);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(mapping)) {
    if (typeof value === 'string') {
      if (flat[value] !== undefined) out[key] = flat[value];
    } else if ('field' in value) {
      if (flat[value.field] !== undefined) out[key] = flat[value.field];
    } else {
      out[key] = value.const;
    }
  }
  return out;
}

export function defaultPayload(ctx: LeadContext): Record<string, unknown> {
  return { lead_id: ctx.leadId, source_id: ctx.sourceId, received_at: new Date(ctx.receivedAt).toISOString(), ...(ctx.clientId ? { client_id: ctx.clientId } : {}), ...ctx.lead };
}
