/**
 * The log service's HTTP side: the delivery log of a lead (attempts, the whole journal), queries
 * and CSV export across leads, evidence (chain verification, signed receipts, daily roots,
 * reconciliation, retention) and the dispute pages. Admin token for everything but the health
 * endpoints and the public receipt keys.
 */
import express, { Router } from 'express';
import { authenticate, requireAdmin, createBuyerAuth, createSourceAuth } from '../../shared/http/auth';
import { accessLog, errorHandler, isDraining, notFound, requestContext, securityHeaders } from '../../shared/http/express';
import { pingStore } from '../../shared/store';
import { NotFoundError } from '../../shared/errors';
import { idParam } from '../../shared/http/validate';
import { createAttemptRoutes } from './attempts';
import type { LogDeps } from './deps';
import { createEvidenceRoutes, createPublicEvidenceRoutes } from './evidence';
import { createPageRoutes } from './pages';
import { attemptItem, entryItem, readJournal } from './read';
import { metricsRoute } from '../../shared/metrics';

export function createLogApp(deps: LogDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use(requestContext(), accessLog(deps.logger), securityHeaders());
  app.get('/metrics', metricsRoute(deps.metrics.registry, deps.metricsToken));
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  // Readiness = can serve (see the intake's /readyz): a store outage is answered by each route (503).
  app.get('/readyz', async (_req, res) => {
    const store = await pingStore(deps.store);
    if (isDraining(app)) return res.status(503).json({ status: 'draining', store });
    res.json({ status: 'ready', store });
  });
  app.use(createPublicEvidenceRoutes(deps));
  app.use(createPageRoutes(deps));

  const api = Router();
  // Source and buyer keys are recognised only to be refused (403): the log API is the operators'.
  api.use(authenticate({ adminToken: deps.adminToken, sources: createSourceAuth(deps.models), buyers: createBuyerAuth(deps.models), allowSources: false }), requireAdmin());

  api.get('/v1/leads/:leadId/attempts', async (req, res) => {
    const leadId = idParam(req, 'leadId', 'Lead');
    const { entries } = await readJournal(deps.models, deps.leadKeys, leadId);
    if (entries.length === 0) throw new NotFoundError('Lead');
    res.json({ leadId, items: entries.filter((e) => e.type === 'attempt').map(attemptItem) });
  });

  api.get('/v1/leads/:leadId/log', async (req, res) => {
    const leadId = idParam(req, 'leadId', 'Lead');
    const { entries } = await readJournal(deps.models, deps.leadKeys, leadId);
    if (entries.length === 0) throw new NotFoundError('Lead');
    res.json({ leadId, items: entries.map(entryItem) });
  });

  api.use(createAttemptRoutes(deps));
  api.use(createEvidenceRoutes(deps));
  app.use(api);
  app.use(notFound());
  app.use(errorHandler(deps.logger));
  return app;
}
