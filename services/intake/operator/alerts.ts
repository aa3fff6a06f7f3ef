/**
 * Alert channels and alerts (operator use cases): add a channel (an endpoint kind that can carry
 * alerts, with the settings the alert does not supply itself), list and remove channels, list the
 * alerts sent. Channel credentials are sealed like an endpoint's and shown masked.
 */
import { z } from 'zod';
import { ALERT_CHANNEL_KINDS, alertChannelAad } from '../../../activities/alerts';
import { openJson, sealJson } from '../../../shared/crypto';
import { NotFoundError, ValidationError } from '../../../shared/errors';
import { parseBody, parseWith } from '../../../shared/http/validate';
import { newId } from '../../../shared/ids';
import { maskSecret } from '../../../shared/redact';
import type { AlertChannelDoc } from '../../../shared/store';
import { ALERT_TYPES } from '../../../shared/store/alerts';
import type { OperatorContext } from './context';

const alertsQuery = z.object({ limit: z.coerce.number().int().min(1).max(500).optional(), type: z.enum(ALERT_TYPES).optional() }).strict();

export function createAlertUseCases(ctx: OperatorContext) {
  const { models, registry, credentials } = ctx;

  const channelView = (doc: AlertChannelDoc) => {
    const secrets = openJson<Record<string, unknown>>(credentials, doc.secrets, alertChannelAad(doc._id));
    return { id: doc._id, kind: doc.kind, ...(doc.name ? { name: doc.name } : {}), ...doc.config, ...Object.fromEntries(Object.keys(secrets).map((k) => [k, maskSecret(secrets[k])])), createdAt: doc.createdAt };
  };

  return {
    /** A new channel; secrets we generated are in the answer this once. */
    async addChannel(input: unknown) {
      const { kind, name, ...settings } = parseBody(z.record(z.string(), z.unknown()), input);
      const content = typeof kind === 'string' && Object.hasOwn(ALERT_CHANNEL_KINDS, kind) && registry.get(kind) ? ALERT_CHANNEL_KINDS[kind] : undefined;
      if (typeof kind !== 'string' || !content) {
        throw new ValidationError([{ path: 'kind', message: `must be one of ${Object.keys(ALERT_CHANNEL_KINDS).filter((k) => registry.get(k)).join(', ')}` }]);
      }
      if (name !== undefined && (typeof name !== 'string' || name.length > 200)) throw new ValidationError([{ path: 'name', message: 'must be a string of at most 200 characters' }]);
      const parsed = registry.parseSettings(kind, { ...content, ...settings }, { generate: true });
      if ('errors' in parsed) throw new ValidationError(parsed.errors);
      const channelId = newId('endpoint').replace(/^ep_/, 'ach_');
      const config = Object.fromEntries(Object.entries(parsed.config).filter(([k]) => !(k in content)));
      const doc = await models.AlertChannel.create({ _id: channelId, kind, ...(typeof name === 'string' ? { name } : {}), config, secrets: sealJson(credentials, parsed.secrets, alertChannelAad(channelId)) });
      const given = new Set(Object.keys(settings));
      return { ...channelView(doc.toObject()), ...Object.fromEntries(Object.entries(parsed.secrets).filter(([k]) => !given.has(k))) };
    },

    async listChannels() {
      return (await models.AlertChannel.find().sort({ createdAt: 1 }).lean<AlertChannelDoc[]>()).map(channelView);
    },

    async removeChannel(channelId: string): Promise<void> {
      const result = await models.AlertChannel.deleteOne({ _id: channelId });
      if (result.deletedCount === 0) throw new NotFoundError('Alert channel');
    },

    /** `query` as a request's query string. */
    async listAlerts(query: unknown) {
      const { limit, type } = parseWith(alertsQuery, query, 'query.');
      const docs = await models.Alert.find(type ? { type } : {}).sort({ at: -1 }).limit(limit ?? 100).lean();
      return docs.map((d) => ({ id: d._id, type: d.type, title: d.title, message: d.message, ...(d.endpointId ? { endpointId: d.endpointId } : {}), ...(d.buyerId ? { buyerId: d.buyerId } : {}), at: d.at, deliveries: d.deliveries }));
    },
  };
}
export type AlertUseCases = ReturnType<typeof createAlertUseCases>;
