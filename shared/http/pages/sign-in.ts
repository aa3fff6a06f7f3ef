/**
 * Sign-in for the operators' web pages (the log service's dispute pages, intake's console): one
 * implementation of the login form's routes, the guard of every page, the same-origin check of
 * every form post, the HTML headers and the error page of a failed handler. Each app brings its own
 * look (`views`) and where its pages live (`base`: "" or "/console"). The session is the admin token's
 * stateless cookie (session.ts): one sign-in serves every page of the host.
 */
import express, { Router, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { tokensEqual } from '../../api-keys';
import type { Logger } from '../../logger';
import { securityHeaders } from '../express';
import type { Part } from './html';
import { accessOf, clearSessionCookie, createLoginThrottle, createSession, readCookie, safeNext, sameOriginPost, SESSION_COOKIE, sessionValid, setSessionCookie } from './session';

export interface SignInViews {
  loginPage(options: { next: string; error?: string; action: string }): string;
  errorPage(title: string, message: Part, options?: { nav?: boolean }): string;
}

export interface SignInOptions {
  adminToken: string;
  logger: Logger;
  /** Where this app's pages live: "" (the log service's root) or "/console". */
  base: string;
  /** What the logs call these pages ("dispute page", "console"). */
  name: string;
  views: SignInViews;
}

type Handler = (req: Request, res: Response) => Promise<void> | void;

export function createSignIn(options: SignInOptions) {
  const { adminToken, logger, base, views } = options;
  const home = base || '/';
  const loginPath = `${base}/login`;
  const throttle = createLoginThrottle();
  const sendHtml = (res: Response, status: number, body: string) => {
    res.status(status).type('html').send(body);
  };

  /** HTML security headers; same-origin referrers so that our own form posts carry their Origin. */
  const htmlHeaders: RequestHandler = (req, res, next) => {
    securityHeaders({ html: true })(req, res, () => {
      res.setHeader('Referrer-Policy', 'same-origin');
      next();
    });
  };

  /** A page's errors as a page (the app's JSON error handler is for the API). */
  const page = (handler: Handler): RequestHandler => async (req: Request, res: Response, _next: NextFunction) => {
    try {
      await handler(req, res);
    } catch (error) {
      logger.error({ err: error, path: req.path }, `${options.name} failed`);
      if (!res.headersSent) sendHtml(res, 500, views.errorPage('Something went wrong', 'The page could not be built; nothing was changed by it. Try again, and see the service’s logs.'));
    }
  };

  /** A session or the admin token; browsers without either are sent to the login form. */
  const requireAccess: RequestHandler = (req, res, next) => {
    const access = accessOf(req, adminToken);
    if (access.ok) return next();
    if (access.reason === 'bad_token') return sendHtml(res, 401, views.errorPage('Not signed in', 'The Authorization header does not carry the admin token.', { nav: false }));
    res.redirect(302, `${loginPath}?next=${encodeURIComponent(safeNext(req.originalUrl, home, base))}`);
  };

  /** True (and the 403 page sent) when a form post does not come from this site's own pages. */
  const refuseCrossSite = (req: Request, res: Response): boolean => {
    if (sameOriginPost(req)) return false;
    logger.warn({ path: req.path, origin: req.get('origin') ?? null }, `${options.name}: cross-site form post refused`);
    sendHtml(res, 403, views.errorPage('Refused', 'This form must be sent from these pages themselves (the Origin of the request does not match).', { nav: false }));
    return true;
  };

  /** A form post of a signed-in operator: headers, the form body, same-origin, the session. */
  const formPost = (limit = '64kb'): RequestHandler[] => [
    htmlHeaders,
    express.urlencoded({ extended: false, limit, parameterLimit: 1000 }),
    (req, res, next) => {
      if (!refuseCrossSite(req, res)) next();
    },
    requireAccess,
  ];

  const router = Router();
  router.get('/login', htmlHeaders, (req, res) => {
    const next = safeNext(req.query.next, home, base);
    if (sessionValid(adminToken, readCookie(req, SESSION_COOKIE))) return res.redirect(303, next);
    sendHtml(res, 200, views.loginPage({ next, action: loginPath }));
  });

  router.post('/login', htmlHeaders, express.urlencoded({ extended: false, limit: '8kb', parameterLimit: 10 }), (req, res) => {
    if (refuseCrossSite(req, res)) return;
    const body = (req.body ?? {}) as Record<string, unknown>;
    const next = safeNext(body.next, home, base);
    const client = req.ip ?? 'unknown';
    const wait = throttle.blocked(client);
    if (wait !== undefined) {
      res.setHeader('Retry-After', String(wait));
      return sendHtml(res, 429, views.loginPage({ next, action: loginPath, error: `Too many wrong tokens from this address: try again in ${wait} s.` }));
    }
    const token = typeof body.token === 'string' ? body.token.trim() : '';
    if (!token || !tokensEqual(token, adminToken)) {
      throttle.fail(client);
      logger.warn({ ip: client }, `${options.name}: wrong admin token`);
      return sendHtml(res, 401, views.loginPage({ next, action: loginPath, error: 'That is not the admin token.' }));
    }
    throttle.succeed(client);
    setSessionCookie(req, res, createSession(adminToken).value);
    res.redirect(303, next);
  });

  router.post('/logout', htmlHeaders, (req, res) => {
    if (refuseCrossSite(req, res)) return;
    clearSessionCookie(req, res);
    res.redirect(303, loginPath);
  });

  return { router, htmlHeaders, page, requireAccess, refuseCrossSite, formPost, sendHtml };
}
export type SignIn = ReturnType<typeof createSignIn>;
