/**
 * Admin API (admin token): lead sources and their keys, buyers, their endpoints, and each
 * source's waterfall. The routes only read the request and answer; what happens is the use cases'
 * (sources.ts, buyers.ts, endpoints.ts), which the operator console calls too. Secrets are sealed
 * at rest, shown once at creation, masked afterwards. DELETE archives (sets `archivedAt`) instead
 * of removing: in-flight leads loaded their routing plan from these documents, dead letters wait
 * for redelivery and the delivery log names them forever. Archived documents are hidden from lists
 * (`?archived=true` shows them), readable by id, and cannot be changed (409 `archived`).
 */
import { Router, type Request } from 'express';
import type { KeyRing } from '../../../shared/crypto';
import type { BuyerAuth, SourceAuth } from '../../../shared/http/auth';
import { idParam } from '../../../shared/http/validate';
import type { Models } from '../../../shared/store';
import type { Registry } from '../../../activities/registry';
import { createBuyerUseCases } from './buyers';
import { createEndpointUseCases } from './endpoints';
import { createSourceUseCases } from './sources';

export interface AdminDeps {
  models: Models;
  registry: Registry;
  credentials: KeyRing;
  sources: SourceAuth;
  /** The buyer keys' cache (revocations and archives apply at once in this process). */
  buyerKeys?: BuyerAuth;
}

export function createAdminUseCases(deps: AdminDeps) {
  return { sources: createSourceUseCases(deps), buyers: createBuyerUseCases(deps), endpoints: createEndpointUseCases(deps) };
}
export type AdminUseCases = ReturnType<typeof createAdminUseCases>;

export function createAdminRoutes(useCases: AdminUseCases): Router {
  const { sources, buyers, endpoints } = useCases;
  const router = Router();
  const sourceId = (req: Request) => idParam(req, 'sourceId', 'Source');
  const buyerId = (req: Request) => idParam(req, 'buyerId', 'Buyer');
  const endpointId = (req: Request) => idParam(req, 'endpointId', 'Endpoint');

  // ---- sources -------------------------------------------------------------------------------
  router.post('/sources', async (req, res) => void res.status(201).json(await sources.create(req.body)));
  router.get('/sources', async (req, res) => void res.json({ items: await sources.list({ archived: req.query.archived }) }));
  router.get('/sources/:sourceId', async (req, res) => void res.json(await sources.get(sourceId(req))));
  router.patch('/sources/:sourceId', async (req, res) => void res.json(await sources.update(sourceId(req), req.body)));
  router.delete('/sources/:sourceId', async (req, res) => {
    await sources.archive(sourceId(req));
    res.status(204).end();
  });
  router.put('/sources/:sourceId/waterfall', async (req, res) => void res.json(await sources.setWaterfall(sourceId(req), req.body)));
  router.get('/sources/:sourceId/waterfall', async (req, res) => void res.json(await sources.getWaterfall(sourceId(req))));
  // Keys: rotate (add a new one, the old stays valid until revoked) and revoke.
  router.post('/sources/:sourceId/keys', async (req, res) => void res.status(201).json(await sources.addKey(sourceId(req))));
  router.delete('/sources/:sourceId/keys/:keyId', async (req, res) => {
    await sources.revokeKey(sourceId(req), idParam(req, 'keyId', 'Key'));
    res.status(204).end();
  });

  // ---- buyers --------------------------------------------------------------------------------
  router.post('/buyers', async (req, res) => void res.status(201).json(await buyers.create(req.body)));
  router.get('/buyers', async (req, res) => void res.json({ items: await buyers.list({ archived: req.query.archived }) }));
  router.get('/buyers/:buyerId', async (req, res) => void res.json(await buyers.get(buyerId(req))));
  router.patch('/buyers/:buyerId', async (req, res) => void res.json(await buyers.update(buyerId(req), req.body)));
  router.delete('/buyers/:buyerId', async (req, res) => {
    await buyers.archive(buyerId(req));
    res.status(204).end();
  });
  // Keys of the buyer API (returns): issue (shown once) and revoke.
  router.post('/buyers/:buyerId/keys', async (req, res) => void res.status(201).json(await buyers.addKey(buyerId(req))));
  router.delete('/buyers/:buyerId/keys/:keyId', async (req, res) => {
    await buyers.revokeKey(buyerId(req), idParam(req, 'keyId', 'Key'));
    res.status(204).end();
  });

  // ---- endpoints -----------------------------------------------------------------------------
  router.post('/buyers/:buyerId/endpoints', async (req, res) => void res.status(201).json(await endpoints.create(buyerId(req), req.body)));
  router.get('/buyers/:buyerId/endpoints', async (req, res) => void res.json({ items: await endpoints.list(buyerId(req), { archived: req.query.archived }) }));
  router.get('/buyers/:buyerId/endpoints/:endpointId', async (req, res) => void res.json(await endpoints.get(buyerId(req), endpointId(req))));
  router.patch('/buyers/:buyerId/endpoints/:endpointId', async (req, res) => void res.json(await endpoints.update(buyerId(req), endpointId(req), req.body)));
  router.delete('/buyers/:buyerId/endpoints/:endpointId', async (req, res) => {
    await endpoints.archive(buyerId(req), endpointId(req));
    res.status(204).end();
  });
  // Mapping preview: the exact request a sample lead would produce, secrets masked, nothing sent.
  router.post('/buyers/:buyerId/endpoints/:endpointId/preview', async (req, res) => void res.json(await endpoints.preview(buyerId(req), endpointId(req), req.body)));
  router.get('/kinds', (_req, res) => void res.json({ items: endpoints.kinds() }));

  return router;
}
