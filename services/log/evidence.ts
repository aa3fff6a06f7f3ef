/**
 * Evidence routes of the log service: chain verification, signed receipts (and checking one
 * against the log), the public receipt keys, daily Merkle roots, retention, reconciliation.
 */
import express, { Router } from 'express';
import { z } from 'zod';
import { AppError, NotFoundError, ValidationError } from '../../shared/errors';
import type { DailyRootDoc, LeadDoc, LogEntryDoc } from '../../shared/store';
import { lookupHash } from './pii';
import { idParam, parseWith } from '../../shared/http/validate';
import { verifyChain } from './chain';
import type { LogDeps } from './deps';
import { createMaintenanceActivities } from './maintenance';
import { BrokenChainError, checkReceipt, issueReceipt, type Receipt } from './receipts';
import { reconcile, ReconcileInputError } from './reconcile';

const instant = z.string().refine((v) => !Number.isNaN(Date.parse(v)), 'must be an ISO date-time');

/** The receipt keys are public: served without authentication. */
export function createPublicEvidenceRoutes(deps: LogDeps): Router {
  const router = Router();
  router.get('/.well-known/delivery-receipt-keys.json', (_req, res) => {
    res.setHeader('Cache-Control', 'public, max-age=300');
    res.json(deps.signer.jwks());
  });
  return router;
}

export function createEvidenceRoutes(deps: LogDeps): Router {
  const { models } = deps;
  const router = Router();
  const maintenance = createMaintenanceActivities(deps);
  const journalOf = async (leadId: string) => {
    const docs = await models.LogEntry.find({ leadId }).sort({ seq: 1 }).lean<LogEntryDoc[]>();
    if (docs.length === 0) throw new NotFoundError('Lead');
    return docs;
  };

  // Find leads by id, email or phone: email and phone through their keyed hashes.
  router.get('/v1/lookup', async (req, res) => {
    const { leadId, email, phone } = parseWith(z.object({ leadId: z.string().max(128).optional(), email: z.string().max(254).optional(), phone: z.string().max(40).optional() }).strict(), req.query, 'query.');
    if ([leadId, email, phone].filter(Boolean).length !== 1) throw new ValidationError([{ path: 'query', message: 'give one of leadId, email, phone' }]);
    const [field, value] = leadId ? ['_id', leadId] : email ? ['emailHash', lookupHash(deps.lookupKey, 'email', email)] : ['phoneHash', lookupHash(deps.lookupKey, 'phone', phone!)];
    const leads = await models.Lead.find({ [field]: value } as Record<string, string>).sort({ receivedAt: -1 }).limit(100).lean<LeadDoc[]>();
    res.json({ items: leads.map((l) => ({ leadId: l._id, sourceId: l.sourceId, status: l.status, ...(l.buyerId ? { buyerId: l.buyerId } : {}), receivedAt: l.receivedAt.toISOString(), updatedAt: l.updatedAt.toISOString() })) });
  });

  router.get('/v1/leads/:leadId/verify', async (req, res) => {
    const docs = await journalOf(idParam(req, 'leadId', 'Lead'));
    res.json(verifyChain(docs));
  });

  router.get('/v1/leads/:leadId/receipt', async (req, res) => {
    const docs = await journalOf(idParam(req, 'leadId', 'Lead'));
    try {
      res.json(issueReceipt(docs, deps.signer));
    } catch (error) {
      if (error instanceof BrokenChainError) throw new AppError(409, 'chain_broken', error.message);
      throw error;
    }
  });

  router.post('/v1/receipts/verify', express.json({ limit: '2mb' }), async (req, res) => {
    const receipt = req.body as Partial<Receipt> | undefined;
    if (!receipt || typeof receipt !== 'object' || typeof receipt.leadId !== 'string' || typeof receipt.signature !== 'string' || typeof receipt.keyId !== 'string' || !Array.isArray(receipt.entries)) {
      throw new ValidationError([{ path: '(body)', message: 'must be a delivery receipt (leadId, entries, keyId, signature)' }]);
    }
    const docs = await models.LogEntry.find({ leadId: receipt.leadId }).sort({ seq: 1 }).lean<LogEntryDoc[]>();
    res.json({ leadId: receipt.leadId, ...checkReceipt(receipt as Receipt, docs, deps.signer), chain: verifyChain(docs) });
  });

  router.get('/v1/roots/:day', async (req, res) => {
    const doc = await models.DailyRoot.findById(String(req.params.day)).lean<DailyRootDoc>();
    if (!doc) throw new NotFoundError('Daily root');
    res.json({ day: doc._id, root: doc.root, count: doc.count, keyId: doc.keyId, signature: doc.signature, computedAt: doc.computedAt });
  });
  router.post('/v1/roots/:day', async (req, res) => {
    const day = String(req.params.day);
    if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) throw new ValidationError([{ path: 'day', message: 'must be YYYY-MM-DD' }]);
    const doc = await maintenance.computeDailyRoot({ day });
    res.json({ day: doc._id, root: doc.root, count: doc.count, keyId: doc.keyId, signature: doc.signature, computedAt: doc.computedAt });
  });

  router.post('/v1/retention/run', express.json(), async (req, res) => {
    const body = parseWith(z.object({ at: instant.optional() }).strict(), req.body ?? {});
    res.json(await maintenance.shredExpiredLeads({ now: body.at ? Date.parse(body.at) : Date.now() }));
  });

  const reconcileQuery = z
    .object({
      buyerId: z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/, 'must be a buyer id'),
      from: instant,
      to: instant,
      leadIdColumn: z.string().min(1).max(100).optional(),
      emailColumn: z.string().min(1).max(100).optional(),
      phoneColumn: z.string().min(1).max(100).optional(),
    })
    .strict()
    .refine((q) => [q.leadIdColumn, q.emailColumn, q.phoneColumn].filter(Boolean).length === 1, { message: 'name exactly one of leadIdColumn, emailColumn, phoneColumn', path: ['leadIdColumn'] });
  router.post('/v1/reconcile', express.text({ type: ['text/csv', 'text/plain', 'application/csv'], limit: '50mb' }), async (req, res) => {
    if (typeof req.body !== 'string') throw new AppError(415, 'unsupported_media_type', 'Send the buyer’s export as text/csv.');
    const q = parseWith(reconcileQuery, req.query, 'query.');
    const from = Date.parse(q.from);
    const to = Date.parse(q.to);
    if (!(from < to)) throw new ValidationError([{ path: 'query.to', message: 'must be after from' }]);
    if (to - from > 366 * 86_400_000) throw new ValidationError([{ path: 'query.to', message: 'a period of at most a year' }]);
    const column = q.leadIdColumn ? { name: q.leadIdColumn, kind: 'leadId' as const } : q.emailColumn ? { name: q.emailColumn, kind: 'email' as const } : { name: q.phoneColumn!, kind: 'phone' as const };
    try {
      res.json(await reconcile(models, deps.lookupKey, { buyerId: q.buyerId, from, to, csv: req.body, column }));
    } catch (error) {
      if (error instanceof ReconcileInputError) throw new ValidationError([{ path: error.path, message: error.message }]);
      throw error;
    }
  });

  return router;
}
