/**
 * `{first_name}`-style templates for email subjects and bodies and SMS text.
 *   {first_name}          a lead field (also {custom.x}, {consent.granted}, {lead_id}, …)
 *   {city|unknown}        with a default when the field is empty
 *   {{ and }}             literal braces
 * Values are HTML-escaped where they land in HTML, never in plain text or SMS. Unknown variables
 * and syntax errors are configuration errors, reported when the endpoint is saved.
 * Pure functions.
 */
import type { FieldError } from './errors';
import { isKnownField } from './mapping-fields';

export interface TemplateVar {
  path: string;
  fallback?: string;
}
export type TemplatePart = string | TemplateVar;

export class TemplateSyntaxError extends Error {}

export function parseTemplate(source: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let text = '';
  for (let i = 0; i < source.length; i++) {
    const ch = source[i]!;
    if (ch === '{' && source[i + 1] === '{') {
      text += '{';
      i++;
    } else if (ch === '}' && source[i + 1] === '}') {
      text += '}';
      i++;
    } else if (ch === '{') {
      const end = source.indexOf('}', i + 1);
      if (end < 0) throw new TemplateSyntaxError(`unclosed "{" at character ${i + 1}`);
      const inner = source.slice(i + 1, end);
      const bar = inner.indexOf('|');
      const path = (bar < 0 ? inner : inner.slice(0, bar)).trim();
      if (!/^[A-Za-z0-9_.]+$/.test(path)) throw new TemplateSyntaxError(`"{${inner}}" at character ${i + 1} is not a variable (write {{ for a literal brace)`);
      if (text) parts.push(text);
      text = '';
      parts.push(bar < 0 ? { path } : { path, fallback: inner.slice(bar + 1) });
      i = end;
    } else if (ch === '}') {
      throw new TemplateSyntaxError(`unmatched "}" at character ${i + 1} (write }} for a literal brace)`);
    } else {
      text += ch;
    }
  }
  if (text) parts.push(text);
  return parts;
}

/** Configuration errors of a template: syntax, and variables that are not lead fields. */
export function validateTemplate(source: unknown, path: string): FieldError[] {
  if (typeof source !== 'string') return [{ path, message: 'must be a template string' }];
  let parts: TemplatePart[];
  try {
    parts = parseTemplate(source);
  } catch (error) {
    return [{ path, message: (error as Error).message }];
  }
  return parts
    .filter((p): p is TemplateVar => typeof p !== 'string' && !isKnownField(p.path))
    .map((p) => ({ path, message: `{${p.path}} is not a lead field (use e.g. {first_name}, {custom.<key>}, {lead_id})` }));
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

export function renderTemplate(source: string, values: Record<string, unknown>, options: { html?: boolean } = {}): string {
  return parseTemplate(source)
    .map((part) => {
      if (typeof part === 'string') return part;
      const raw = values[part.path];
      const value = raw === undefined || raw === null || raw === '' ? (part.fallback ?? '') : typeof raw === 'string' ? raw : JSON.stringify(raw);
      return options.html ? escapeHtml(value) : value;
    })
    .join('');
}
