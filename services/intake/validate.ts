import type { Request } from 'express';
import type { z } from 'zod';
import { fieldErrorsFromIssues, NotFoundError, ValidationError } from '../../shared/errors';
import { SAFE_ID_RE } from '../../shared/ids';

/** Parses a body with a schema; a failure is a 400 with every field's problem. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new ValidationError([{ path: '(body)', message: 'must be a JSON object' }]);
  }
  const result = schema.safeParse(body);
  if (!result.success) throw new ValidationError(fieldErrorsFromIssues(result.error.issues));
  return result.data;
}

/** A path id, checked before it reaches a query (no operators, no odd characters). */
export function idParam(req: Request, name: string, what: string): string {
  const value = req.params[name];
  if (typeof value !== 'string' || !SAFE_ID_RE.test(value)) throw new NotFoundError(what);
  return value;
}
