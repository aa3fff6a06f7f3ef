/**
 * The log service's read API: the delivery log of a lead (attempts, and the whole journal).
 */
import express, { Router } from 'express';
import type { Connection } from 'mongoose';
import { authenticate, requireAdmin, createSourceAuth } from '../intake/auth';
import { errorHandler, notFound, requestContext, securityHeaders } from '../../shared/http/express';
import type { Logger } from '../../shared/logger';
import type { LogEntryDoc, Models } from '../../shared/models';
import { pingStore } from '../../shared/models';
import { NotFoundError } from '../../shared/errors';
import { idParam } from '../intake/validate';

export interface LogAppDeps {
  store: Connection;
  models: Models;
  logger: Logger;
  adminToken: string;
}

export function attemptView(doc: LogEntryDoc): Record<string, unknown> {
  return { seq: doc.seq, ...doc.data, hash: doc.hash, prevHash: doc.prevHash };
}

export function entryView(doc: LogEntryDoc): Record<string, unknown> {
  return { seq: doc.seq, type: doc.type, at: doc.at.getTime(), ...doc.data, hash: doc.hash, prevHash: doc.prevHash };
}

export function createLogApp(deps: LogAppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use(requestContext(), securityHeaders());
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const store = await pingStore(deps.store);
    res.status(store ? 200 : 503).json({ status: store ? 'ready' : 'not_ready', store });
  });

  const router = Router();
  router.use(authenticate({ adminToken: deps.adminToken, sources: createSourceAuth(deps.models), allowSources: false }), requireAdmin());

  router.get('/v1/leads/:leadId/attempts', async (req, res) => {
    const leadId = idParam(req, 'leadId', 'Lead');
    const docs = await deps.models.LogEntry.find({ leadId, type: 'attempt' }).sort({ seq: 1 }).lean<LogEntryDoc[]>();
    if (docs.length === 0 && !(await deps.models.LogEntry.exists({ leadId }))) throw new NotFoundError('Lead');
    res.json({ leadId, items: docs.map(attemptView) });
  });

  router.get('/v1/leads/:leadId/log', async (req, res) => {
    const leadId = idParam(req, 'leadId', 'Lead');
    const docs = await deps.models.LogEntry.find({ leadId }).sort({ seq: 1 }).lean<LogEntryDoc[]>();
    if (docs.length === 0) throw new NotFoundError('Lead');
    res.json({ leadId, items: docs.map(entryView) });
  });

  app.use(router);
  app.use(notFound());
  app.use(errorHandler(deps.logger));
  return app;
}
