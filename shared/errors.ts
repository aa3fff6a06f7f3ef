/**
 * Typed errors. HTTP-facing errors carry a status and a stable `error` code; the error
 * middleware renders them, anything else becomes a 500 without details.
 */
export interface FieldError {
  path: string;
  message: string;
}

export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'AppError';
  }

  toBody(): Record<string, unknown> {
    return { error: this.code, message: this.message, ...this.details };
  }
}

export class ValidationError extends AppError {
  constructor(readonly fields: FieldError[], message = 'The request has invalid fields.') {
    super(400, 'validation_failed', message, { fields });
    this.name = 'ValidationError';
  }
}

export class NotFoundError extends AppError {
  constructor(what: string) {
    super(404, 'not_found', `${what} not found.`);
    this.name = 'NotFoundError';
  }
}

export class ConflictError extends AppError {
  constructor(code: string, message: string, details: Record<string, unknown> = {}) {
    super(409, code, message, details);
    this.name = 'ConflictError';
  }
}

export class UnauthorizedError extends AppError {
  constructor(message = 'Missing or invalid credentials.') {
    super(401, 'unauthorized', message, {}, { 'WWW-Authenticate': 'Bearer' });
    this.name = 'UnauthorizedError';
  }
}

export class ForbiddenError extends AppError {
  constructor(message = 'These credentials may not do that.') {
    super(403, 'forbidden', message);
    this.name = 'ForbiddenError';
  }
}

export class UnavailableError extends AppError {
  constructor(message: string, retryAfterSeconds: number, options?: { cause?: unknown }) {
    super(503, 'unavailable', message, { retryAfter: retryAfterSeconds }, { 'Retry-After': String(retryAfterSeconds) }, options);
    this.name = 'UnavailableError';
  }
}

interface IssueLike {
  code?: string;
  path: ReadonlyArray<PropertyKey>;
  message: string;
  keys?: string[];
  issues?: ReadonlyArray<IssueLike>;
}

/**
 * Turns zod issues into our field-level errors (`custom.score`, `email`, …): one entry per
 * unknown field, and the inner message for a bad record key.
 */
export function fieldErrorsFromIssues(issues: ReadonlyArray<IssueLike>, prefix = ''): FieldError[] {
  const join = (path: ReadonlyArray<PropertyKey>) => prefix + (path.length ? path.map(String).join('.') : '(body)');
  return issues.flatMap((issue): FieldError[] => {
    if (issue.code === 'unrecognized_keys' && issue.keys?.length) {
      return issue.keys.map((key) => ({ path: join([...issue.path, key]), message: 'is not a known field' }));
    }
    if (issue.code === 'invalid_key' && issue.issues?.length) {
      return [{ path: join(issue.path), message: issue.issues[0]!.message }];
    }
    return [{ path: join(issue.path), message: issue.message }];
  });
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
