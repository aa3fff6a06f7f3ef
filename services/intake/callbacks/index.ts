/**
 * Provider callbacks (`/v1/callbacks/<provider>…`): a provider tells us what happened to
 * something we sent (a bounce, a carrier's delivery report). Each provider's router verifies the
 * provider's signature on the raw request and records what it says; mounted before the JSON body
 * parser so the raw body is intact. One line per provider below.
 */
import { Router } from 'express';
import type { Client } from '@temporalio/client';
import type { ProviderSettings } from '../../../activities/providers';
import type { Logger } from '../../../shared/logger';
import type { Models } from '../../../shared/store';
import type { KeyRing } from '../../../shared/crypto';
import { resendCallbacks } from './resend';
import { twilioCallbacks } from './twilio';

export interface CallbackDeps {
  models: Models;
  providers: ProviderSettings;
  credentials: KeyRing;
  client: Client;
  logger: Logger;
}

export function createCallbackRoutes(deps: CallbackDeps): Router {
  const router = Router();
  void deps; // each provider's router takes it: router.use('/resend', resendCallbacks(deps)), …
  router.use('/resend', resendCallbacks(deps));
  router.use('/twilio', twilioCallbacks(deps));
  return router;
}
