/**
 * Request validation shared by every service: a body or query parsed with a zod schema (a failure
 * is a 400 naming every field), a path id checked before it reaches a query, and the small schemas
 * several APIs share (a name, a duration).
 */
import type { Request } from 'express';
import { z } from 'zod';
import { DURATION_HINT, tryParseDuration } from '../durations';
import { fieldErrorsFromIssues, NotFoundError, ValidationError } from '../errors';
import { SAFE_ID_RE } from '../ids';

/** A duration setting such as "90s", "15m", "1h". */
export const durationString = z.string().refine((v) => tryParseDuration(v) !== undefined, { message: `must be ${DURATION_HINT}` });
/** An id in a body or query (the same characters a path id may have). */
export const idString = z.string().regex(SAFE_ID_RE, 'must be an id');
/** A display name. */
export const nameString = z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters');

/**
 * Parses any value with a schema; a failure is a 400 with every field's problem, paths prefixed
 * with `prefix` (e.g. "lead." when the value sits under that key of the body).
 */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, prefix = ''): z.infer<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new ValidationError(fieldErrorsFromIssues(result.error.issues, prefix));
  return result.data;
}

/** Parses a body with a schema; a failure is a 400 with every field's problem. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new ValidationError([{ path: '(body)', message: 'must be a JSON object' }]);
  }
  return parseWith(schema, body);
}

/** A path id, checked before it reaches a query (no operators, no odd characters). */
export function idParam(req: Request, name: string, what: string): string {
  const value = req.params[name];
  if (typeof value !== 'string' || !SAFE_ID_RE.test(value)) throw new NotFoundError(what);
  return value;
}
