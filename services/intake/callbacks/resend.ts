/**
 * Resend webhooks (`POST /v1/callbacks/resend`): what happened to an email we sent. Resend signs
 * them with Svix, which is the Standard Webhooks scheme under `svix-*` header names:
 * HMAC-SHA256 over `<svix-id>.<svix-timestamp>.<raw body>` with the `whsec_` secret
 * (RESEND_WEBHOOK_SECRET). Verified on the raw body; stale or future timestamps (> 5 min) are
 * refused so a captured request cannot be replayed later.
 *
 * `email.bounced` (a hard, "Permanent" bounce) and `email.complained` put every recipient on the
 * suppression list: later sends to them fail fast. Every event is kept as a ProviderEvent
 * (`resend:<email_id>:<type>`, so Resend's retries never duplicate), linked to the lead, endpoint
 * and attempt that created the email.
 */
import express, { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { verifyWebhook } from '../../../shared/webhook-signature';
import type { LogEntryDoc } from '../../../shared/store';
import type { CallbackDeps } from './index';

export const TIMESTAMP_TOLERANCE_S = 5 * 60;

const tags = z.union([z.record(z.string(), z.string()), z.array(z.object({ name: z.string(), value: z.string() }).loose())]);
const eventSchema = z
  .object({
    type: z.string().regex(/^[a-z_]+\.[a-z_]+$/, 'must be an event type such as "email.bounced"'),
    created_at: z.string().max(64).optional(),
    data: z.record(z.string(), z.unknown()),
  })
  .loose();
const emailData = z
  .object({
    email_id: z.string().min(1).max(200),
    to: z.union([z.string(), z.array(z.string())]).optional(),
    tags: tags.optional(),
    bounce: z.object({ type: z.string(), subType: z.string().optional() }).loose().optional(),
  })
  .loose();

const emailAddress = z.email();

function tagOf(value: z.infer<typeof tags> | undefined, name: string): string | undefined {
  if (!value) return undefined;
  if (Array.isArray(value)) return value.find((t) => t.name === name)?.value;
  return value[name];
}

function refuse(res: Response, status: number, error: string, message: string): void {
  res.status(status).json({ error, message });
}

export function resendCallbacks(deps: CallbackDeps): Router {
  const { models, logger } = deps;
  const router = Router();

  router.post('/', express.raw({ type: () => true, limit: '256kb' }), async (req: Request, res: Response) => {
    const secret = deps.providers.resendWebhookSecret;
    if (!secret) {
      // Not configured: 503 so that Resend keeps the event and retries once the secret is set.
      logger.warn('resend webhook received but RESEND_WEBHOOK_SECRET is not set');
      return refuse(res, 503, 'not_configured', 'Resend webhooks are not configured on this deployment.');
    }
    const id = req.get('svix-id');
    const timestamp = req.get('svix-timestamp');
    const signature = req.get('svix-signature');
    if (!id || !timestamp || !signature) return refuse(res, 401, 'missing_signature', 'svix-id, svix-timestamp and svix-signature are required.');
    const seconds = /^\d{1,12}$/.test(timestamp) ? Number(timestamp) : NaN;
    if (!Number.isFinite(seconds) || Math.abs(Date.now() / 1000 - seconds) > TIMESTAMP_TOLERANCE_S) {
      return refuse(res, 401, 'stale_timestamp', 'svix-timestamp is more than 5 minutes from now.');
    }
    const raw = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
    if (!verifyWebhook(secret, id, seconds, raw, signature)) return refuse(res, 401, 'invalid_signature', 'The signature does not match.');

    let parsedJson: unknown;
    try {
      parsedJson = JSON.parse(raw);
    } catch {
      return refuse(res, 400, 'invalid_json', 'The body is not JSON.');
    }
    const event = eventSchema.safeParse(parsedJson);
    if (!event.success) return refuse(res, 400, 'invalid_event', event.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
    const { type } = event.data;
    const at = event.data.created_at && !Number.isNaN(Date.parse(event.data.created_at)) ? new Date(event.data.created_at) : new Date();

    if (!type.startsWith('email.')) {
      // contact.*, domain.*: kept for the record, keyed by the delivery id (they name no email).
      await models.ProviderEvent.updateOne(
        { _id: `resend:${id}:${type}` },
        { $setOnInsert: { provider: 'resend', messageId: id, type, at, data: event.data.data } },
        { upsert: true },
      );
      res.status(200).json({ received: true });
      return;
    }

    const data = emailData.safeParse(event.data.data);
    if (!data.success) return refuse(res, 400, 'invalid_event', data.error.issues.map((i) => `data.${i.path.join('.')}: ${i.message}`).join('; '));
    const emailId = data.data.email_id;
    const recipients = (Array.isArray(data.data.to) ? data.data.to : data.data.to ? [data.data.to] : [])
      .map((r) => r.trim().toLowerCase())
      .filter((r) => emailAddress.safeParse(r).success);

    const hardBounce = type === 'email.bounced' && data.data.bounce?.type === 'Permanent';
    const suppress = hardBounce || type === 'email.complained';
    if (suppress) {
      const reason = hardBounce ? `hard bounce${data.data.bounce?.subType ? ` (${data.data.bounce.subType})` : ''}` : 'spam complaint';
      await Promise.all(
        recipients.map((address) =>
          models.Suppression.updateOne(
            { _id: `email:${address}` },
            { $setOnInsert: { channel: 'email', address, reason, source: `resend:${type}`, at } },
            { upsert: true },
          ),
        ),
      );
    }

    // The attempt whose answer carried this email id; the email's own tags name lead and endpoint
    // even before the journal is written.
    const entry = await models.LogEntry.findOne({ 'data.response.messageId': emailId, type: 'attempt' }, { leadId: 1, endpointId: 1, 'data.attemptId': 1 }).lean<Pick<LogEntryDoc, 'leadId' | 'endpointId' | 'data'>>();
    const leadId = entry?.leadId ?? tagOf(data.data.tags, 'lead_id');
    const endpointId = entry?.endpointId ?? tagOf(data.data.tags, 'endpoint_id');
    const attemptId = typeof entry?.data?.attemptId === 'string' ? entry.data.attemptId : undefined;
    await models.ProviderEvent.updateOne(
      { _id: `resend:${emailId}:${type}` },
      {
        $setOnInsert: {
          provider: 'resend',
          messageId: emailId,
          type,
          at,
          ...(leadId ? { leadId } : {}),
          ...(endpointId ? { endpointId } : {}),
          ...(attemptId ? { attemptId } : {}),
          data: { ...data.data, svixId: id, ...(suppress ? { suppressed: recipients.length } : {}) },
        },
      },
      { upsert: true },
    );
    logger.info({ type, emailId, leadId, endpointId, suppressed: suppress ? recipients.length : 0 }, 'resend event recorded');
    res.status(200).json({ received: true });
  });

  return router;
}
