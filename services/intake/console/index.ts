/**
 * The operator console (`/console` on the intake service): buyers, endpoints, breakers, sources,
 * dead letters, alerts and live delivery health, as server-rendered HTML with no script. Sign-in is
 * the admin token's session, shared with the delivery log's dispute pages (shared/http/pages/). Every
 * action goes through the same use cases as the admin API (no second implementation), from a form
 * post that must come from these pages (same-origin), and asks for confirmation first.
 *
 *   GET  /console/login, POST /console/login, POST /console/logout
 *   GET  /console                      overview (overview.ts)
 *   …    /console/buyers…              buyers, endpoints, breakers (buyers.ts)
 *   …    /console/sources…             sources, waterfalls, keys (sources.ts)
 *   …    /console/dead-letters…        dead letters, redelivery, bulk (dead-letters.ts)
 *   GET  /console/alerts               alerts sent and channels (alerts.ts)
 */
import { Router } from 'express';
import type { Client } from '@temporalio/client';
import type { Logger } from '../../../shared/logger';
import type { Models } from '../../../shared/store';
import { createSignIn, type SignIn } from '../../../shared/http/pages/sign-in';
import type { AdminUseCases } from '../admin';
import type { OperatorUseCases } from '../operator';
import type { ReturnUseCases } from '../returns';
import { errorPage, loginPage, type ConsoleLinks } from './layout';
import { buyerRoutes } from './buyers';
import { overviewRoutes } from './overview';
import { sourcesRoutes } from './sources';
import { deadLetterRoutes } from './dead-letters';
import { alertRoutes } from './alerts';

export interface ConsoleDeps {
  adminToken: string;
  logger: Logger;
  models: Models;
  client: Client;
  /** The same use cases as the admin and operator APIs. */
  admin: AdminUseCases;
  operator: OperatorUseCases;
  returns: ReturnUseCases;
  links: ConsoleLinks;
}

/** What every page module gets: its dependencies and the sign-in's guards. */
export interface ConsoleContext extends ConsoleDeps {
  signIn: SignIn;
}

export function createConsoleRoutes(deps: ConsoleDeps): Router {
  const router = Router();
  const signIn = createSignIn({ adminToken: deps.adminToken, logger: deps.logger, base: '/console', name: 'console', views: { loginPage, errorPage } });
  const ctx: ConsoleContext = { ...deps, signIn };
  router.use(signIn.router);
  router.use(overviewRoutes(ctx));
  router.use(buyerRoutes(ctx));
  router.use(sourcesRoutes(ctx));
  router.use(deadLetterRoutes(ctx));
  router.use(alertRoutes(ctx));
  router.use(signIn.htmlHeaders, signIn.requireAccess, (_req, res) => {
    signIn.sendHtml(res, 404, errorPage('Not found', 'The console has no such page.'));
  });
  return router;
}
