/**
 * Reading the console's form posts (application/x-www-form-urlencoded, every value a string) into
 * the bodies the use cases take. Only the encoding is decoded here — a number typed as text, a JSON
 * textarea, a comma-separated list — and a value that does not decode is a field error at the path
 * the API would name; what a value may be is decided by the use cases alone (the same validation as
 * the API), so nothing here repeats their rules.
 */
import type { Request } from 'express';
import { AppError, ValidationError, type FieldError } from '../../../shared/errors';
import { html } from '../../../shared/http/pages/html';
import { errorPage } from './layout';
import type { ConsoleContext } from './index';
import type { Response } from 'express';

export type FormBody = Readonly<Record<string, string | undefined>>;

/** The posted form, one string per field (a repeated field keeps its first value). */
export function formBody(req: Request): FormBody {
  const raw = (req.body ?? {}) as Record<string, unknown>;
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(raw)) {
    const first: unknown = Array.isArray(value) ? (value as unknown[])[0] : value;
    if (typeof first === 'string') out[key] = first;
  }
  return out;
}

/** A field's text, trimmed ('' when absent). */
export function text(body: FormBody, name: string): string {
  return (body[name] ?? '').trim();
}

/** A field's text as typed (secrets, JSON: not trimmed inside). */
export function raw(body: FormBody, name: string): string {
  return body[name] ?? '';
}

/** Decodes fields, collecting the ones that do not decode as field errors at their API path. */
export class FormDecoder {
  readonly errors: FieldError[] = [];

  constructor(private readonly body: FormBody) {}

  /** A number ('' → undefined); whether it is whole, in range, … is the use case's to say. */
  number(name: string, path: string): number | undefined {
    const value = text(this.body, name);
    if (value === '') return undefined;
    const n = Number(value);
    if (!Number.isFinite(n)) {
      this.errors.push({ path, message: 'must be a number' });
      return undefined;
    }
    return n;
  }

  /** A JSON value ('' → undefined); `object`: it must be a JSON object. */
  json(name: string, path: string, options: { object?: boolean } = {}): unknown {
    const value = raw(this.body, name).trim();
    if (value === '') return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch (error) {
      this.errors.push({ path, message: `must be JSON (${error instanceof Error ? error.message : 'does not parse'})` });
      return undefined;
    }
    if (options.object && (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))) {
      this.errors.push({ path, message: 'must be a JSON object {…}' });
      return undefined;
    }
    return parsed;
  }

  /** A comma-separated list ('' → undefined), each item trimmed, empty items dropped. */
  list(name: string): string[] | undefined {
    const value = text(this.body, name);
    if (value === '') return undefined;
    return value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  }
}

/** Field errors of a use case's 400; anything else is thrown on (the page's handler shows it). */
export async function tryUseCase<T>(run: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; errors: FieldError[] }> {
  try {
    return { ok: true, value: await run() };
  } catch (error) {
    if (error instanceof ValidationError) return { ok: false, errors: error.fields };
    throw error;
  }
}

/**
 * A use case's refusal as a page: not found (404), archived or in use (409), unavailable (503), a
 * 400 outside a form (its fields listed). True when a page was sent; anything else is thrown on.
 */
export function sendRefusal(ctx: ConsoleContext, res: Response, error: unknown, back: string): boolean {
  if (!(error instanceof AppError)) return false;
  const fields = error instanceof ValidationError ? html`<ul>${error.fields.map((f) => html`<li><code>${f.path}</code>: ${f.message}</li>`)}</ul>` : '';
  const title = error.status === 404 ? 'Not found' : error.status === 409 ? 'Not possible' : error.status === 503 ? 'Unavailable' : 'Refused';
  ctx.signIn.sendHtml(res, error.status, errorPage(title, html`${error.message}${fields} <a href="${back}">Back</a>`));
  return true;
}
