/**
 * Operator controls (admin token): pause and resume buyers, read / reset / open endpoint
 * breakers (acknowledged only once the breaker workflow applied the command), the dead-letter
 * list, redeliver and discard (one lead, or in bulk by filter with progress), stuck leads, alert
 * channels and the alerts sent. The routes only read the request and answer; what happens is the
 * use cases' (breakers.ts, dead-letters.ts, alerts.ts), which the operator console calls too.
 */
import { Router, type Request } from 'express';
import { z } from 'zod';
import { findStuckLeads } from '../../../activities/stuck-leads';
import { idParam, parseWith } from '../../../shared/http/validate';
import { createAlertUseCases } from './alerts';
import { createBreakerUseCases } from './breakers';
import { operatorContext, type OperatorDeps } from './context';
import { createDeadLetterUseCases } from './dead-letters';

export type { OperatorDeps } from './context';

const stuckQuery = z
  .object({
    state: z.literal('stuck', { error: 'must be "stuck" (the only listing of running leads; dead letters: GET /v1/admin/dead-letters)' }),
    limit: z.coerce.number().int().min(1).max(500).optional(),
  })
  .strict();

export function createOperatorUseCases(deps: OperatorDeps) {
  const ctx = operatorContext(deps);
  return {
    breakers: createBreakerUseCases(ctx),
    deadLetters: createDeadLetterUseCases(ctx),
    alerts: createAlertUseCases(ctx),
    /** Leads past their horizon (LeadExpectedBy) or that never got going, with what Temporal knows. */
    async stuckLeads(query: unknown) {
      const q = parseWith(stuckQuery, query, 'query.');
      // Each call inside has its own deadline (a listing of many leads takes more than one call's worth).
      return { state: 'stuck' as const, items: await findStuckLeads(deps.client, { notStartedAfterMs: deps.stuckNotStartedAfterMs, limit: q.limit ?? 100 }) };
    },
  };
}
export type OperatorUseCases = ReturnType<typeof createOperatorUseCases>;

export function createOperatorRoutes(useCases: OperatorUseCases): Router {
  const { breakers, deadLetters, alerts } = useCases;
  const router = Router();
  const endpointId = (req: Request) => idParam(req, 'endpointId', 'Endpoint');
  const buyerId = (req: Request) => idParam(req, 'buyerId', 'Buyer');
  const leadId = (req: Request) => idParam(req, 'leadId', 'Lead');

  // ---- breakers, pause / resume --------------------------------------------------------------
  router.get('/endpoints/:endpointId/breaker', async (req, res) => void res.json(await breakers.get(endpointId(req))));
  for (const action of ['reset', 'open'] as const) {
    router.post(`/endpoints/:endpointId/breaker/${action}`, async (req, res) => void res.json(await breakers.command(endpointId(req), action, req.body)));
  }
  router.post('/buyers/:buyerId/pause', async (req, res) => void res.json(await breakers.pauseBuyer(buyerId(req), req.body)));
  router.post('/buyers/:buyerId/resume', async (req, res) => void res.json(await breakers.resumeBuyer(buyerId(req), req.body)));

  // ---- dead letters --------------------------------------------------------------------------
  router.get('/dead-letters', async (req, res) => void res.json(await deadLetters.list(req.query)));
  router.post('/leads/:leadId/redeliver', async (req, res) => void res.status(202).json(await deadLetters.redeliver(leadId(req), req.body)));
  router.post('/leads/:leadId/discard', async (req, res) => void res.json(await deadLetters.discard(leadId(req), req.body)));
  router.post('/dead-letters/redeliver', async (req, res) => void res.status(202).json(await deadLetters.startBulkRedelivery(req.body)));
  router.get('/bulk/:bulkId', async (req, res) => void res.json(await deadLetters.bulkProgress(idParam(req, 'bulkId', 'Bulk redelivery'))));

  // ---- stuck leads ---------------------------------------------------------------------------
  router.get('/leads', async (req, res) => void res.json(await useCases.stuckLeads(req.query)));

  // ---- alerts --------------------------------------------------------------------------------
  router.post('/alert-channels', async (req, res) => void res.status(201).json(await alerts.addChannel(req.body)));
  router.get('/alert-channels', async (_req, res) => void res.json({ items: await alerts.listChannels() }));
  router.delete('/alert-channels/:channelId', async (req, res) => {
    await alerts.removeChannel(idParam(req, 'channelId', 'Alert channel'));
    res.status(204).end();
  });
  router.get('/alerts', async (req, res) => void res.json({ items: await alerts.listAlerts(req.query) }));

  return router;
}
