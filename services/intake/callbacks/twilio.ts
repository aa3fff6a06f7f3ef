/**
 * Twilio status callbacks (`POST /v1/callbacks/twilio/:endpointId`): the carrier's outcome of an
 * SMS we sent (sent, delivered, undelivered with 30003 … 30008, 30034). The sms kind sets the
 * message's StatusCallback to this URL (with `?lead=&attempt=`) when PUBLIC_URL is configured and
 * the endpoint has an auth token.
 *
 * Verified as Twilio documents: `X-Twilio-Signature` is the HMAC of the full URL Twilio posted to
 * (PUBLIC_URL + path + query) followed by the sorted form fields, keyed with the account's auth
 * token: the endpoint's own token, decrypted from its sealed secrets (`twilio.validateRequest`).
 * 404 for an unknown endpoint, 403 for a bad signature (or an endpoint without an auth token).
 *
 * Each callback is kept as a ProviderEvent `twilio:<MessageSid>:<MessageStatus>` (Twilio's retries
 * never duplicate), linked to the lead and attempt that created the message: the delivery-log
 * entry whose answer carried the SID, or else the signed `lead` / `attempt` query. 30004 (blocked),
 * 30005 (unknown handset) and 30006 (landline) put the number on the suppression list: later
 * sends to it fail fast. Answers 204.
 */
import express, { Router, type Request, type Response } from 'express';
import twilio from 'twilio';
import { z } from 'zod';
import { loadEndpointFromDoc } from '../../../shared/endpoint';
import { CARRIER_CODES, E164, SUPPRESSING_CARRIER_CODES } from '../../../activities/sms';
import { attemptId as attemptIdOf } from '../../../shared/delivery';
import type { EndpointDoc, LogEntryDoc } from '../../../shared/store';
import type { CallbackDeps } from './index';

const callbackSchema = z
  .object({
    MessageSid: z.string().regex(/^(SM|MM)[0-9a-fA-F]{32}$/, 'must be a message SID'),
    MessageStatus: z.string().regex(/^[a-z_]{2,32}$/, 'must be a message status'),
    AccountSid: z.string().regex(/^AC[0-9a-fA-F]{32}$/).optional(),
    To: z.string().max(64).optional(),
    From: z.string().max(64).optional(),
    ErrorCode: z.string().regex(/^\d{1,6}$/).optional(),
  })
  .loose();

function refuse(res: Response, status: number, error: string, message: string): void {
  res.status(status).json({ error, message });
}

export function twilioCallbacks(deps: CallbackDeps): Router {
  const { models, logger } = deps;
  const router = Router();

  router.post('/:endpointId', express.urlencoded({ extended: false, limit: '64kb', type: () => true }), async (req: Request, res: Response) => {
    const endpointId = String(req.params.endpointId);
    const publicUrl = deps.providers.publicUrl.replace(/\/+$/, '');
    if (!publicUrl) return refuse(res, 503, 'not_configured', 'PUBLIC_URL is not set: Twilio callbacks cannot be verified.');
    const doc = /^[A-Za-z0-9_-]{1,64}$/.test(endpointId) ? await models.Endpoint.findById(endpointId).lean<EndpointDoc>() : null;
    if (!doc || doc.kind !== 'sms') return refuse(res, 404, 'not_found', 'No SMS endpoint with this id.');
    const secrets = loadEndpointFromDoc(doc, deps.credentials).secrets as { authToken?: unknown };
    const authToken = typeof secrets.authToken === 'string' ? secrets.authToken : undefined;
    if (!authToken) return refuse(res, 403, 'cannot_verify', 'The endpoint has no auth token to verify Twilio signatures with.');

    const params: Record<string, string> = {};
    for (const [key, value] of Object.entries((req.body ?? {}) as Record<string, unknown>)) {
      if (typeof value === 'string') params[key] = value;
    }
    const signature = req.get('x-twilio-signature') ?? '';
    const url = `${publicUrl}${req.originalUrl}`;
    if (!signature || !twilio.validateRequest(authToken, signature, url, params)) {
      logger.warn({ endpointId }, 'twilio callback with a bad signature');
      return refuse(res, 403, 'invalid_signature', 'X-Twilio-Signature does not match.');
    }

    const parsed = callbackSchema.safeParse(params);
    if (!parsed.success) return refuse(res, 400, 'invalid_callback', parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
    const { MessageSid: sid, MessageStatus: status, ErrorCode: errorCodeText, To: to } = parsed.data;
    const errorCode = errorCodeText !== undefined ? Number(errorCodeText) : undefined;

    // The attempt whose answer carried this SID; the signed query names lead and attempt otherwise
    // (the journal may not be written yet when the first callback arrives).
    const entry = await models.LogEntry.findOne({ 'data.response.messageId': sid, type: 'attempt' }, { leadId: 1, endpointId: 1, 'data.attemptId': 1 }).lean<Pick<LogEntryDoc, 'leadId' | 'endpointId' | 'data'>>();
    const leadQuery = typeof req.query.lead === 'string' && /^[A-Za-z0-9_.:-]{1,128}$/.test(req.query.lead) ? req.query.lead : undefined;
    const attemptQuery = typeof req.query.attempt === 'string' && /^\d{1,6}$/.test(req.query.attempt) ? Number(req.query.attempt) : undefined;
    const leadId = entry?.leadId ?? leadQuery;
    const attemptId = typeof entry?.data?.attemptId === 'string' ? entry.data.attemptId : leadQuery && attemptQuery ? attemptIdOf(leadQuery, endpointId, attemptQuery) : undefined;

    const suppress = errorCode !== undefined && SUPPRESSING_CARRIER_CODES.has(errorCode) && to !== undefined && E164.test(to);
    if (suppress) {
      await models.Suppression.updateOne(
        { _id: `sms:${to}` },
        { $setOnInsert: { channel: 'sms', address: to, reason: `carrier: ${errorCode} ${CARRIER_CODES[errorCode] ?? ''}`.trim(), source: `twilio:${errorCode}`, at: new Date() } },
        { upsert: true },
      );
    }
    await models.ProviderEvent.updateOne(
      { _id: `twilio:${sid}:${status}` },
      {
        $setOnInsert: {
          provider: 'twilio',
          messageId: sid,
          type: status,
          at: new Date(),
          endpointId,
          ...(leadId ? { leadId } : {}),
          ...(attemptId ? { attemptId } : {}),
          data: {
            ...params,
            ...(errorCode !== undefined ? { errorCode, carrierOutcome: CARRIER_CODES[errorCode] ?? 'unknown error code' } : {}),
            ...(suppress ? { suppressed: to } : {}),
          },
        },
      },
      { upsert: true },
    );
    logger.info({ endpointId, leadId, messageSid: sid, status, errorCode, suppressed: suppress }, 'twilio status recorded');
    res.status(204).end();
  });

  return router;
}
