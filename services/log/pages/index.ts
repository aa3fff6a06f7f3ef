/**
 * The dispute pages of the log service: plain server-side HTML (no scripts, no external
 * resources) that settles a "you never sent that lead" dispute at a glance.
 *
 *   GET  /login, POST /login, POST /logout   the admin token once, then a 12 h session cookie
 *   GET  /                                   search by lead id, email or phone (keyed hashes)
 *   GET  /leads/:leadId[?print=1]            the lead's summary and timeline (and its print view)
 *   GET  /leads/:leadId/receipt.json         its signed receipt (the same as /v1/leads/:id/receipt)
 *
 * Every page needs a session cookie or `Authorization: Bearer <admin token>`; without one a
 * browser is sent to the login form. The POST forms accept only same-origin requests.
 */
import express, { Router, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { tokensEqual } from '../../../shared/api-keys';
import { securityHeaders } from '../../../shared/http/express';
import type { LeadDoc, BuyerDoc } from '../../../shared/store';
import type { LogDeps } from '../deps';
import { BrokenChainError, issueReceipt } from '../receipts';
import { classifyQuery, LEAD_ID_RE, loadLead, searchLeads, type SearchKind } from './data';
import { html } from './html';
import { accessOf, clearSessionCookie, createLoginThrottle, createSession, publicOrigin, safeNext, sameOriginPost, sessionValid, readCookie, SESSION_COOKIE, setSessionCookie } from './session';
import { errorPage, leadPage, loginPage, searchPage } from './views';

type Handler = (req: Request, res: Response) => Promise<void> | void;

export function createPageRoutes(deps: LogDeps): Router {
  const router = Router();
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
      deps.logger.error({ err: error, path: req.path }, 'dispute page failed');
      if (!res.headersSent) sendHtml(res, 500, errorPage('Something went wrong', 'The page could not be built; the delivery log is unchanged. Try again, and see the log service’s logs.'));
    }
  };

  /** A session or the admin token; browsers without either are sent to the login form. */
  const requireAccess: RequestHandler = (req, res, next) => {
    const access = accessOf(req, deps.adminToken);
    if (access.ok) return next();
    if (access.reason === 'bad_token') return sendHtml(res, 401, errorPage('Not signed in', 'The Authorization header does not carry the admin token.', { nav: false }));
    res.redirect(302, `/login?next=${encodeURIComponent(safeNext(req.originalUrl))}`);
  };

  const refuseCrossSite = (req: Request, res: Response): boolean => {
    if (sameOriginPost(req)) return false;
    deps.logger.warn({ path: req.path, origin: req.get('origin') ?? null }, 'dispute page: cross-site form post refused');
    sendHtml(res, 403, errorPage('Refused', 'This form must be sent from the delivery log’s own pages (the Origin of the request does not match).', { nav: false }));
    return true;
  };

  // ---- sign in / out ---------------------------------------------------------------------------

  router.get('/login', htmlHeaders, (req, res) => {
    const next = safeNext(req.query.next);
    if (sessionValid(deps.adminToken, readCookie(req, SESSION_COOKIE))) return res.redirect(303, next);
    sendHtml(res, 200, loginPage({ next }));
  });

  router.post('/login', htmlHeaders, express.urlencoded({ extended: false, limit: '8kb', parameterLimit: 10 }), (req, res) => {
    if (refuseCrossSite(req, res)) return;
    const body = (req.body ?? {}) as Record<string, unknown>;
    const next = safeNext(body.next);
    const client = req.ip ?? 'unknown';
    const wait = throttle.blocked(client);
    if (wait !== undefined) {
      res.setHeader('Retry-After', String(wait));
      return sendHtml(res, 429, loginPage({ next, error: `Too many wrong tokens from this address: try again in ${wait} s.` }));
    }
    const token = typeof body.token === 'string' ? body.token.trim() : '';
    if (!token || !tokensEqual(token, deps.adminToken)) {
      throttle.fail(client);
      deps.logger.warn({ ip: client }, 'dispute page: wrong admin token');
      return sendHtml(res, 401, loginPage({ next, error: 'That is not the admin token.' }));
    }
    throttle.succeed(client);
    setSessionCookie(req, res, createSession(deps.adminToken).value);
    res.redirect(303, next);
  });

  router.post('/logout', htmlHeaders, (req, res) => {
    if (refuseCrossSite(req, res)) return;
    clearSessionCookie(req, res);
    res.redirect(303, '/login');
  });

  // ---- search ----------------------------------------------------------------------------------

  const buyerNames = async (leads: LeadDoc[]) => {
    const ids = [...new Set(leads.map((l) => l.buyerId).filter((b): b is string => !!b))];
    const buyers = ids.length ? await deps.models.Buyer.find({ _id: { $in: ids } }, { name: 1 }).lean<Array<Pick<BuyerDoc, '_id' | 'name'>>>() : [];
    return new Map(buyers.map((b) => [b._id, b.name]));
  };

  router.get(
    '/',
    htmlHeaders,
    requireAccess,
    page(async (req, res) => {
      const one = (name: string) => (typeof req.query[name] === 'string' ? req.query[name].trim() : '');
      const explicit = (['leadId', 'email', 'phone'] as const).find((k) => one(k));
      const q = explicit ? one(explicit) : one('q');
      if (!q) return sendHtml(res, 200, searchPage({}));
      const query: { kind: SearchKind; value: string } | undefined = explicit ? { kind: explicit, value: q } : classifyQuery(q);
      if (!query || (query.kind === 'leadId' && !LEAD_ID_RE.test(query.value))) {
        return sendHtml(res, 400, searchPage({ q, message: html`<span class="bad">“${q}” is not a lead id, an email or a phone number.</span>` }));
      }
      const leads = await searchLeads(deps, query.kind, query.value);
      if (leads.length === 1) return res.redirect(303, `/leads/${encodeURIComponent(leads[0]!._id)}`);
      if (leads.length === 0) {
        const what = { leadId: 'with the id', email: 'with the email', phone: 'with the phone number' }[query.kind];
        return sendHtml(res, 404, searchPage({ q, message: html`<strong id="no-lead">No lead found</strong> ${what} “${query.value}”.${query.kind === 'leadId' ? '' : ' (A lead whose personal data expired can only be found by its id.)'}` }));
      }
      sendHtml(res, 200, searchPage({ q, results: leads, buyers: await buyerNames(leads) }));
    }),
  );

  // ---- one lead --------------------------------------------------------------------------------

  router.get(
    '/leads/:leadId',
    htmlHeaders,
    requireAccess,
    page(async (req, res) => {
      const leadId = String(req.params.leadId);
      const record = LEAD_ID_RE.test(leadId) ? await loadLead(deps, leadId) : undefined;
      if (!record) return sendHtml(res, 404, errorPage('No lead found', html`The delivery log has no entry for the lead <code>${leadId}</code>.`));
      sendHtml(res, 200, leadPage(record, { print: req.query.print === '1' || req.query.print === 'true', origin: publicOrigin(req), now: Date.now() }));
    }),
  );

  router.get(
    '/leads/:leadId/receipt.json',
    securityHeaders(),
    requireAccess,
    page(async (req, res) => {
      const leadId = String(req.params.leadId);
      const docs = LEAD_ID_RE.test(leadId) ? await deps.models.LogEntry.find({ leadId }).sort({ seq: 1 }).lean() : [];
      if (docs.length === 0) {
        res.status(404).json({ error: 'not_found', message: 'Lead not found.' });
        return;
      }
      try {
        res.json(issueReceipt(docs, deps.signer));
      } catch (error) {
        if (!(error instanceof BrokenChainError)) throw error;
        res.status(409).json({ error: 'chain_broken', message: error.message });
      }
    }),
  );

  return router;
}
