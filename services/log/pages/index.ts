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
import { Router } from 'express';
import { securityHeaders } from '../../../shared/http/express';
import { html } from '../../../shared/http/pages/html';
import { publicOrigin } from '../../../shared/http/pages/session';
import { createSignIn } from '../../../shared/http/pages/sign-in';
import type { LeadDoc, BuyerDoc } from '../../../shared/store';
import type { LogDeps } from '../deps';
import { BrokenChainError, issueReceipt } from '../receipts';
import { classifyQuery, LEAD_ID_RE, loadLead, searchLeads, type SearchKind } from './data';
import { errorPage, leadPage, loginPage, searchPage } from './views';

export function createPageRoutes(deps: LogDeps): Router {
  const router = Router();
  // Sign in / out, the guard of every page and of every form post (shared with intake's console).
  const signIn = createSignIn({ adminToken: deps.adminToken, logger: deps.logger, base: '', name: 'dispute page', views: { loginPage, errorPage } });
  const { htmlHeaders, page, requireAccess, sendHtml } = signIn;
  router.use(signIn.router);

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
