/**
 * Operator alerts (a breaker opened, a breaker recovered, the dead-letter digest). Every alert is
 * stored (GET /v1/admin/alerts) and sent at once through every configured alert channel. A
 * channel is an endpoint kind with its settings: the alert is adapted into what that kind sends
 * (a signed JSON webhook; an email's subject and text; an SMS body), so the registry applies the
 * same timeout, classification and redaction as for leads.
 */
import { openJson, type KeyRing } from '../shared/crypto';
import { DEFAULT_TIMEOUT_MS } from '../shared/endpoint';
import type { Logger } from '../shared/logger';
import type { AlertChannelDoc, AlertDoc, Models } from '../shared/store';
import type { Registry } from './registry';
import type { LoadedEndpoint } from './types';

export interface AlertInput {
  type: AlertDoc['type'];
  title: string;
  message: string;
  endpointId?: string;
  buyerId?: string;
  /** Makes the alert idempotent: an activity retried after a crash does not alert twice. */
  dedupeKey: string;
}

export const alertChannelAad = (channelId: string): string => `alert-channel:${channelId}`;

/**
 * The kinds an alert channel can be, each with the settings an alert supplies itself (its content,
 * filled in by `alertEndpoint`), so operators give only where to send it.
 */
export const ALERT_CHANNEL_KINDS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  webhook: {},
  email: { subject: 'alert', html: 'alert', text: 'alert' },
  sms: { body: 'alert' },
};

/** Template text must not be read as variables: braces are doubled. */
const literal = (text: string) => text.replace(/[{}]/g, (c) => c + c);

/** The settings a channel's kind needs to carry this alert. */
export function alertEndpoint(channel: AlertChannelDoc, alert: AlertDoc, credentials: KeyRing): LoadedEndpoint {
  const secrets = openJson<Record<string, unknown>>(credentials, channel.secrets, alertChannelAad(channel._id));
  const text = `${alert.title}\n\n${alert.message}`;
  const config: Record<string, unknown> = { ...channel.config };
  let mapping: Record<string, unknown> | undefined;
  if (channel.kind === 'email') Object.assign(config, { subject: literal(`[lead delivery] ${alert.title}`), text: literal(text), html: `<p><b>${literal(alert.title)}</b></p><p>${literal(alert.message)}</p>` });
  else if (channel.kind === 'sms') Object.assign(config, { body: literal(`${alert.title}: ${alert.message}`.slice(0, 600)) });
  else {
    mapping = {
      alert_id: { const: alert._id },
      type: { const: alert.type },
      title: { const: alert.title },
      message: { const: alert.message },
      at: { const: alert.at.toISOString() },
      ...(alert.endpointId ? { endpoint_id: { const: alert.endpointId } } : {}),
      ...(alert.buyerId ? { buyer_id: { const: alert.buyerId } } : {}),
    };
  }
  return { endpointId: channel._id, buyerId: 'operators', kind: channel.kind, role: 'notify', config, secrets, ...(mapping ? { mapping } : {}), timeoutMs: DEFAULT_TIMEOUT_MS };
}

export function createAlerter(deps: { models: Models; registry: Registry; credentials: KeyRing; logger: Logger }) {
  return async function sendAlert(input: AlertInput): Promise<AlertDoc> {
    const existing = await deps.models.Alert.findById(`alr_${input.dedupeKey}`).lean<AlertDoc>();
    if (existing && existing.deliveries.length > 0) return existing;
    const alert: AlertDoc = existing ?? {
      _id: `alr_${input.dedupeKey}`,
      type: input.type,
      title: input.title,
      message: input.message,
      ...(input.endpointId ? { endpointId: input.endpointId } : {}),
      ...(input.buyerId ? { buyerId: input.buyerId } : {}),
      at: new Date(),
      deliveries: [],
    };
    if (!existing) await deps.models.Alert.updateOne({ _id: alert._id }, { $setOnInsert: alert }, { upsert: true });
    const channels = await deps.models.AlertChannel.find().lean<AlertChannelDoc[]>();
    const deliveries: AlertDoc['deliveries'] = [];
    for (const channel of channels) {
      const outcome = await deps.registry.attempt(alertEndpoint(channel, alert, deps.credentials), {
        leadId: alert._id, sourceId: 'alerts', receivedAt: alert.at.getTime(), lead: { email: 'operators@localhost.invalid' },
        endpointId: channel._id, buyerId: 'operators', attempt: 1, now: Date.now(),
      });
      deliveries.push({ channelId: channel._id, kind: channel.kind, outcome: outcome.outcome, code: outcome.code, at: new Date() });
      if (outcome.outcome !== 'success') deps.logger.warn({ channelId: channel._id, code: outcome.code }, 'alert channel failed');
    }
    if (channels.length === 0) deps.logger.warn({ alertId: alert._id, type: alert.type }, 'alert with no alert channel configured');
    await deps.models.Alert.updateOne({ _id: alert._id }, { $set: { deliveries } });
    deps.logger.warn({ alertId: alert._id, type: alert.type, endpointId: alert.endpointId, buyerId: alert.buyerId }, alert.title);
    return { ...alert, deliveries };
  };
}

export type SendAlert = ReturnType<typeof createAlerter>;
