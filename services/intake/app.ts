/**
 * The intake service: lead intake, lead status, and the admin API. `createApp(deps)` builds
 * the express app from its dependencies (tests pass real ones on throwaway servers).
 */
import express from 'express';
import type { Client } from '@temporalio/client';
import type { Connection } from 'mongoose';
import type { Registry } from '../../activities/registry';
import type { KeyRing } from '../../shared/crypto';
import { accessLog, errorHandler, isDraining, jsonBody, notFound, requestContext, securityHeaders } from '../../shared/http/express';
import { rateLimit } from '../../shared/http/rate-limit';
import type { Logger } from '../../shared/logger';
import type { Models } from '../../shared/store';
import { pingStore } from '../../shared/store';
import { pingTemporal } from '../../shared/temporal';
import { createStoreGate } from '../../shared/store-gate';
import { createAdminRoutes, createAdminUseCases } from './admin';
import { createOperatorRoutes, createOperatorUseCases } from './operator';
import { createCodecRoutes } from './codec';
import type { PayloadCodec } from '@temporalio/common';
import { authenticate, createBuyerAuth, createSourceAuth, requireAdmin, requireBuyer } from '../../shared/http/auth';
import { buyerReturnRoutes, createReturnUseCases, defaultReturnSettings, operatorReturnRoutes, type ReturnSettings } from './returns';
import { leadRoutes } from './leads';
import { createCallbackRoutes } from './callbacks';
import type { ProviderSettings } from '../../activities/providers';
import { countLeadPosts, createIntakeMetrics, metricsRoute, type IntakeMetrics } from '../../shared/metrics';
import { createConsoleRoutes } from './console';
import type { ConsoleLinks } from './console/layout';

export interface IntakeDeps {
  client: Client;
  store: Connection;
  models: Models;
  registry: Registry;
  credentials: KeyRing;
  logger: Logger;
  adminToken: string;
  deliveryTaskQueue: string;
  logTaskQueue: string;
  bodyLimit: string;
  ratePerMinute: number;
  temporalTimeoutMs: number;
  deadLetterRetentionMs: number;
  /** Margin over a lead's horizon before it is stuck (passed to each lead's workflow). */
  horizonSlackMs?: number;
  /** A lead that recorded no progress this long after its start is stuck. */
  stuckNotStartedAfterMs?: number;
  providers: ProviderSettings;
  /** The payload codec (the same keys as the Temporal clients) behind the UI's codec endpoint. */
  codec: PayloadCodec;
  codecToken: string;
  codecCorsOrigins: string[];
  /** Prometheus metrics of this process (a new registry when omitted). */
  metrics?: IntakeMetrics;
  /** Bearer token required by GET /metrics (open when empty). */
  metricsToken?: string;
  /** Buyer returns: reasons, auto-approved reasons, decision window (RETURN_* variables; their defaults when omitted). */
  returns?: ReturnSettings;
  /** Where the console links to: the dispute pages (log service) and the Temporal UI. */
  links?: ConsoleLinks;
}

export function createApp(deps: IntakeDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use(requestContext(), accessLog(deps.logger), securityHeaders());

  const metrics = deps.metrics ?? createIntakeMetrics();
  app.get('/metrics', metricsRoute(metrics.registry, deps.metricsToken));
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  // Readiness = this replica can serve. An outage of Temporal or the store is answered by every
  // route itself (503 + Retry-After, nothing lost): dropping every replica from the load balancer
  // would hide that answer behind a connection error. Only a replica that is shutting down says 503.
  app.get('/readyz', async (_req, res) => {
    const [temporal, store] = await Promise.all([pingTemporal(deps.client.connection), pingStore(deps.store)]);
    if (isDraining(app)) return res.status(503).json({ status: 'draining', temporal, store });
    res.json({ status: 'ready', temporal, store });
  });

  // One gate for intake's store reads on the request path (key checks, duplicate checks): bounded,
  // and one warning per store outage.
  const storeGate = createStoreGate({ connection: deps.store, name: 'intake', logger: deps.logger });
  const sources = createSourceAuth(deps.models, { gate: storeGate });
  const buyers = createBuyerAuth(deps.models, { gate: storeGate });
  const body = jsonBody(deps.bodyLimit);
  const returns = createReturnUseCases({
    models: deps.models, client: deps.client, logger: deps.logger, deliveryTaskQueue: deps.deliveryTaskQueue, logTaskQueue: deps.logTaskQueue,
    temporalTimeoutMs: deps.temporalTimeoutMs, settings: deps.returns ?? defaultReturnSettings(),
  });

  // The Temporal UI's codec endpoint (its own CORS and body parser).
  app.use('/v1/codec', createCodecRoutes({ codec: deps.codec, adminToken: deps.adminToken, codecToken: deps.codecToken, corsOrigins: deps.codecCorsOrigins }));

  // Provider callbacks verify signatures on the raw body: mounted before any body parser.
  app.use('/v1/callbacks', createCallbackRoutes({ models: deps.models, providers: deps.providers, credentials: deps.credentials, client: deps.client, logger: deps.logger }));

  // One set of use cases behind the admin API and the console.
  const adminUseCases = createAdminUseCases({ models: deps.models, registry: deps.registry, credentials: deps.credentials, sources, buyerKeys: buyers });
  const operatorUseCases = createOperatorUseCases({
    models: deps.models, client: deps.client, registry: deps.registry, credentials: deps.credentials,
    deliveryTaskQueue: deps.deliveryTaskQueue, temporalTimeoutMs: deps.temporalTimeoutMs,
    stuckNotStartedAfterMs: deps.stuckNotStartedAfterMs ?? 120_000,
  });
  const admin = createAdminRoutes(adminUseCases);
  const adminOnly = [authenticate({ adminToken: deps.adminToken, sources, buyers, allowSources: false }), requireAdmin(), ...body];
  app.use('/v1/admin', ...adminOnly, admin, createOperatorRoutes(operatorUseCases), operatorReturnRoutes(returns));

  // The operator console (HTML; the admin token's session, shared with the dispute pages).
  app.use('/console', createConsoleRoutes({
    adminToken: deps.adminToken, logger: deps.logger, models: deps.models, client: deps.client,
    admin: adminUseCases, operator: operatorUseCases, returns,
    links: deps.links ?? { logUrl: 'http://127.0.0.1:8081', temporalUiUrl: 'http://127.0.0.1:8233', namespace: 'default' },
  }));
  // The mapping preview is also reachable without the /admin prefix (same admin token).
  app.post('/v1/buyers/:buyerId/endpoints/:endpointId/preview', ...adminOnly, (req, res, next) => {
    req.url = `/buyers/${encodeURIComponent(String(req.params.buyerId))}/endpoints/${encodeURIComponent(String(req.params.endpointId))}/preview`;
    admin(req, res, next);
  });

  app.use(
    '/v1/leads',
    countLeadPosts(metrics),
    authenticate({ adminToken: deps.adminToken, sources, buyers, allowSources: true }),
    rateLimit({ perMinute: deps.ratePerMinute, key: (req) => (req.caller?.type === 'source' ? req.caller.keyId : undefined) }),
    ...body,
  );
  // The buyer API (a buyer key only): returns.
  app.use(
    '/v1/buyer',
    authenticate({ adminToken: deps.adminToken, sources, buyers, allowSources: false, allowBuyers: true }),
    requireBuyer(),
    rateLimit({ perMinute: deps.ratePerMinute, key: (req) => (req.caller?.type === 'buyer' ? req.caller.keyId : undefined) }),
    ...body,
    buyerReturnRoutes(returns),
  );
  app.use(leadRoutes({
    client: deps.client,
    models: deps.models,
    logger: deps.logger,
    deliveryTaskQueue: deps.deliveryTaskQueue,
    logTaskQueue: deps.logTaskQueue,
    temporalTimeoutMs: deps.temporalTimeoutMs,
    deadLetterRetentionMs: deps.deadLetterRetentionMs,
    ...(deps.horizonSlackMs !== undefined ? { horizonSlackMs: deps.horizonSlackMs } : {}),
    storeGate,
  }));

  app.use(notFound());
  app.use(errorHandler(deps.logger));
  return app;
}
