/**
 * Express plumbing shared by the intake and log services: request context (request id in every
 * log line), security headers, JSON bodies with a size limit and a content-type check, a JSON
 * 404, and the one error handler (typed errors → their status and body; anything else → 500
 * without details; never a stack trace to the client).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { type ErrorRequestHandler, type RequestHandler } from 'express';
import { pinoHttp } from 'pino-http';
import { AppError, UnavailableError } from '../errors';
import { isTemporalUnreachable } from '../temporal';
import type { Logger } from '../logger';
import { withLogContext } from '../logger';

const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,100}$/;

export function requestContext(): RequestHandler {
  return (req, res, next) => {
    const given = req.get('x-request-id');
    const requestId = given && REQUEST_ID_RE.test(given) ? given : randomUUID();
    res.setHeader('X-Request-Id', requestId);
    withLogContext({ requestId }, () => next());
  };
}

/**
 * The path of a request as it may be logged: no query string (lookups carry emails and phones
 * there), and the token of a token-in-path route (/v1/codec/t/<token>/…) masked.
 */
export function loggablePath(url: string): string {
  const path = url.split('?')[0] ?? '';
  return path.replace(/\/t\/[^/]+/g, '/t/****');
}

const UNLOGGED_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * Access log (pino-http): one line per request when its response is finished — method, path (see
 * loggablePath), status, response time, request id — through the service's logger and so its
 * redaction. Probes and scrapes are not logged.
 */
export function accessLog(logger: Logger): RequestHandler {
  const originalUrl = (req: IncomingMessage) => (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '';
  return pinoHttp({
    logger,
    genReqId: (_req, res) => String(res.getHeader('x-request-id') ?? randomUUID()),
    autoLogging: { ignore: (req) => UNLOGGED_PATHS.has(loggablePath(originalUrl(req))) },
    wrapSerializers: false,
    serializers: {
      req: (req: IncomingMessage & { id?: unknown }) => ({ id: req.id, method: req.method, path: loggablePath(originalUrl(req)) }),
      res: (res: ServerResponse) => ({ statusCode: res.statusCode }),
    },
    customLogLevel: (_req, res, error) => (error || res.statusCode >= 500 ? 'warn' : 'info'),
    customSuccessMessage: (req, res) => `${req.method} ${loggablePath(originalUrl(req))} ${res.statusCode}`,
    customErrorMessage: (req, res) => `${req.method} ${loggablePath(originalUrl(req))} ${res.statusCode}`,
  });
}

export function securityHeaders(options: { html?: boolean } = {}): RequestHandler {
  return (_req, res, next) => {
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader(
      'Content-Security-Policy',
      options.html ? "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'" : "default-src 'none'; frame-ancestors 'none'",
    );
    next();
  };
}

/** JSON bodies only (415 otherwise), at most `limit` (413), parse errors as 400 invalid_json. */
export function jsonBody(limit: string): RequestHandler[] {
  const requireJson: RequestHandler = (req, _res, next) => {
    const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
    if (!hasBody || !['POST', 'PUT', 'PATCH'].includes(req.method)) return next();
    if (!req.is('application/json')) {
      return next(new AppError(415, 'unsupported_media_type', 'Send the body as application/json.', { contentType: req.get('content-type') ?? null }));
    }
    next();
  };
  return [requireJson, express.json({ limit, strict: true, type: 'application/json' })];
}

export function notFound(): RequestHandler {
  return (req, res) => {
    res.status(404).json({ error: 'not_found', message: `No route for ${req.method} ${req.path}.` });
  };
}

interface BodyParserError extends Error {
  type?: string;
  status?: number;
  limit?: number;
}

export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    if (res.headersSent) return res.destroy();
    const parserError = error as BodyParserError;
    if (parserError?.type === 'entity.too.large') {
      return res.status(413).json({ error: 'payload_too_large', message: `The body is larger than ${parserError.limit} bytes.` });
    }
    if (parserError?.type === 'entity.parse.failed') {
      return res.status(400).json({ error: 'invalid_json', message: 'The body is not valid JSON.' });
    }
    if (parserError?.type && typeof parserError.status === 'number' && parserError.status < 500) {
      return res.status(parserError.status).json({ error: 'bad_request', message: parserError.message });
    }
    if (error instanceof AppError) {
      for (const [name, value] of Object.entries(error.headers)) res.setHeader(name, value);
      if (error.status >= 500) logger.warn({ err: error, path: req.path }, error.message);
      return res.status(error.status).json(error.toBody());
    }
    // Our dependencies not answering is an outage to retry, not a bug: 503 with Retry-After.
    const unavailable = isStoreUnavailable(error)
      ? new UnavailableError('The store did not answer in time; nothing was changed. Retry later.', 5)
      : isTemporalUnreachable(error)
        ? new UnavailableError('The delivery engine (Temporal) did not answer in time. Retry later.', 5)
        : undefined;
    if (unavailable) {
      logger.warn({ err: error, path: req.path }, unavailable.message);
      for (const [name, value] of Object.entries(unavailable.headers)) res.setHeader(name, value);
      return res.status(503).json(unavailable.toBody());
    }
    logger.error({ err: error, method: req.method, path: req.path }, 'unhandled error');
    return res.status(500).json({ error: 'internal_error', message: 'Something went wrong on our side; nothing you sent was lost if you retry.' });
  };
}

const STORE_DOWN_NAMES = new Set(['MongoServerSelectionError', 'MongooseServerSelectionError', 'MongoNetworkError', 'MongoNetworkTimeoutError', 'MongoNotConnectedError', 'MongoTopologyClosedError', 'MongoPoolClearedError']);

/** A MongoDB driver/mongoose error that means the store is not reachable (vs. a query's own fault). */
export function isStoreUnavailable(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    if (!(e instanceof Error)) return false;
    if (STORE_DOWN_NAMES.has(e.name)) return true;
    if (e.name === 'MongooseError' && /buffering timed out|Client must be connected/i.test(e.message)) return true;
  }
  return false;
}

/** True once the app's server began to shut down (readiness answers 503 from then on). */
export function isDraining(app: express.Express): boolean {
  return app.locals.draining === true;
}

export interface ListeningServer {
  port: number;
  /**
   * Graceful stop: readiness turns 503 (the app's `isDraining`), the server stops accepting, idle
   * keep-alive connections close, requests in flight may finish for up to `drainTimeoutMs`, then
   * whatever is left is cut.
   */
  close: (drainTimeoutMs?: number) => Promise<void>;
}

/** Starts listening; resolves with the bound port (tests use port 0). */
export function listen(app: express.Express, port: number, host: string): Promise<ListeningServer> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host, (error?: Error) => {
      if (error) return reject(error);
      const address = server.address();
      const bound = typeof address === 'object' && address ? address.port : port;
      let closing: Promise<void> | undefined;
      resolve({
        port: bound,
        close: (drainTimeoutMs = 0) => (closing ??= new Promise<void>((done) => {
          app.locals.draining = true;
          const timer = setTimeout(() => server.closeAllConnections(), drainTimeoutMs);
          timer.unref();
          server.close(() => {
            clearTimeout(timer);
            done();
          });
          server.closeIdleConnections();
        })),
      });
    });
    server.on('error', reject);
    server.keepAliveTimeout = 65_000;
    // A keep-alive connection that turns idle while the server drains is closed at once.
    server.on('request', (_req, res) => {
      res.on('finish', () => {
        if (app.locals.draining === true) setImmediate(() => server.closeIdleConnections());
      });
    });
  });
}
