/**
 * Endpoints of a buyer (admin use cases): create (the kind's settings validated by the registry,
 * credentials sealed, generated secrets shown once), list, read (secrets masked), change (the kind
 * stays), archive, and the mapping preview (the exact request a lead would produce, nothing sent).
 * The settings every endpoint has are shared/endpoint.ts's; the kind's own are the kind's.
 */
import { z } from 'zod';
import type { KeyRing } from '../../../shared/crypto';
import {
  ENDPOINT_COMMON_KEYS,
  deliverySettingsOf,
  endpointCommonSchema,
  loadEndpointFromDoc,
  openEndpointSecrets,
  resolveDeliverySettings,
  sealEndpointSecrets,
  throttleOf,
} from '../../../shared/endpoint';
import { AppError, ValidationError } from '../../../shared/errors';
import { parseBody, parseWith } from '../../../shared/http/validate';
import { newId } from '../../../shared/ids';
import { leadSchema } from '../../../shared/lead';
import { MappingError } from '../../../shared/mapping';
import { maskSecret } from '../../../shared/redact';
import type { BuyerDoc, EndpointDoc, Models } from '../../../shared/store';
import type { Registry } from '../../../activities/registry';
import { archive, archivedError, archivedFilter, mustFind, updateLive } from './documents';

export interface EndpointDeps {
  models: Models;
  registry: Registry;
  credentials: KeyRing;
}

/** The lead a preview renders when none is given. */
export const SAMPLE_LEAD = {
  first_name: 'Ada', last_name: 'Lovelace', email: 'ada@example.com', phone: '+15550100000', address: '12 St James Sq',
  city: 'London', state: 'LDN', zip: 'SW1Y 4JU', country: 'GB', consent: { granted: true, at: '2026-01-01T12:00:00Z' }, custom: { loan_amount: 25000 },
};

const anyObject = z.record(z.string(), z.unknown());
const previewBody = z.object({ lead: anyObject.optional() }).strict();

/** Masks every string inside a secret value except structural fields (auth type, header name). */
function maskValue(value: unknown): unknown {
  if (typeof value === 'string') return maskSecret(value);
  if (Array.isArray(value)) return value.map(maskValue);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, ['type', 'header', 'username'].includes(k) ? v : maskValue(v)]));
  }
  return value;
}

/** An endpoint's body is its common settings plus the kind's own. */
function splitEndpointBody(body: Record<string, unknown>) {
  const common: Record<string, unknown> = {};
  const settings: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) (ENDPOINT_COMMON_KEYS.has(key) ? common : settings)[key] = value;
  return { common, settings };
}

export function createEndpointUseCases(deps: EndpointDeps) {
  const { models, registry, credentials } = deps;

  function endpointView(doc: EndpointDoc) {
    const secrets = openEndpointSecrets(credentials, doc);
    return {
      id: doc._id,
      buyerId: doc.buyerId,
      kind: doc.kind,
      ...(doc.name ? { name: doc.name } : {}),
      role: doc.role,
      ...doc.config,
      ...Object.fromEntries(Object.entries(secrets).map(([k, v]) => [k, maskValue(v)])),
      ...(doc.mapping ? { mapping: doc.mapping } : {}),
      ...deliverySettingsOf(doc),
      ...(throttleOf(doc) ? { throttle: throttleOf(doc) } : {}),
      version: doc.version,
      createdAt: doc.createdAt,
      updatedAt: doc.updatedAt,
      ...(doc.archivedAt ? { archivedAt: doc.archivedAt } : {}),
    };
  }

  /** The kind's settings, validated by its schemas and its own semantic checks (400 per field). */
  function checkEndpoint(kind: string, settings: Record<string, unknown>, mapping: unknown, generate: boolean) {
    const parsed = registry.parseSettings(kind, settings, { generate });
    if ('errors' in parsed) throw new ValidationError(parsed.errors);
    const extra = registry.get(kind)?.validate?.(parsed.config, parsed.secrets, mapping) ?? [];
    if (extra.length) throw new ValidationError(extra);
    return parsed;
  }

  const findEndpoint = (buyerId: string, endpointId: string) => mustFind(models.Endpoint.findOne({ _id: endpointId, buyerId }).lean<EndpointDoc>(), 'Endpoint');

  return {
    /** A new endpoint; secrets we generated (e.g. a webhook signing secret) are in the answer this once. */
    async create(buyerId: string, input: unknown): Promise<ReturnType<typeof endpointView> & Record<string, unknown>> {
      const buyer = await mustFind(models.Buyer.findById(buyerId, { archivedAt: 1 }).lean<Pick<BuyerDoc, '_id' | 'archivedAt'>>(), 'Buyer');
      if (buyer.archivedAt) throw archivedError('buyer');
      const { common: commonIn, settings } = splitEndpointBody(parseBody(anyObject, input));
      const common = parseBody(endpointCommonSchema, commonIn);
      if (!registry.get(common.kind)) throw new ValidationError([{ path: 'kind', message: `must be one of ${registry.kinds().map((k) => k.kind).join(', ')}` }]);
      const parsed = checkEndpoint(common.kind, settings, common.mapping, true);
      const endpointId = newId('endpoint');
      const given = new Set(Object.keys(settings));
      const generated = Object.fromEntries(Object.entries(parsed.secrets).filter(([k]) => !given.has(k)));
      const doc = await models.Endpoint.create({
        _id: endpointId,
        buyerId,
        kind: common.kind,
        ...(common.name ? { name: common.name } : {}),
        role: common.role ?? 'accept',
        config: parsed.config,
        secrets: sealEndpointSecrets(credentials, endpointId, parsed.secrets),
        ...(common.mapping ? { mapping: common.mapping } : {}),
        ...resolveDeliverySettings(common),
        ...(common.throttle ? { throttle: common.throttle } : {}),
        version: 1,
      });
      // The buyer archived meanwhile (no transactions): its endpoints are archived, this one too.
      if ((await models.Buyer.findById(buyerId, { archivedAt: 1 }).lean<Pick<BuyerDoc, 'archivedAt'>>())?.archivedAt) {
        await models.Endpoint.updateOne({ _id: endpointId }, { $set: { archivedAt: new Date() } });
        throw archivedError('buyer');
      }
      // Secrets we generated are shown this once, in clear; afterwards only masked.
      return { ...endpointView(doc.toObject()), ...generated };
    },

    async list(buyerId: string, options: { archived?: unknown } = {}) {
      await mustFind(models.Buyer.findById(buyerId).lean(), 'Buyer');
      const docs = await models.Endpoint.find({ buyerId, ...archivedFilter(options.archived) }).sort({ createdAt: 1 }).lean<EndpointDoc[]>();
      return docs.map(endpointView);
    },

    async get(buyerId: string, endpointId: string) {
      return endpointView(await findEndpoint(buyerId, endpointId));
    },

    /** Changes settings; the kind cannot change. Every change bumps the version (caches reload). */
    async update(buyerId: string, endpointId: string, input: unknown) {
      const current = await findEndpoint(buyerId, endpointId);
      if (current.archivedAt) throw archivedError('endpoint');
      const { common: commonIn, settings } = splitEndpointBody(parseBody(anyObject, input));
      const common = parseBody(endpointCommonSchema.partial(), commonIn);
      if (common.kind !== undefined && common.kind !== current.kind) throw new ValidationError([{ path: 'kind', message: 'cannot change; create a new endpoint instead' }]);
      const secrets = openEndpointSecrets(credentials, current);
      const mapping = common.mapping ?? current.mapping;
      const parsed = checkEndpoint(current.kind, { ...current.config, ...secrets, ...settings }, mapping, false);
      const doc = await updateLive(
        models.Endpoint,
        { _id: current._id },
        {
          $set: {
            config: parsed.config,
            secrets: sealEndpointSecrets(credentials, current._id, parsed.secrets),
            ...(common.name !== undefined ? { name: common.name } : {}),
            ...(common.role !== undefined ? { role: common.role } : {}),
            ...(common.mapping !== undefined ? { mapping: common.mapping } : {}),
            ...(common.backoff !== undefined || common.timeoutMs !== undefined || common.breaker !== undefined ? resolveDeliverySettings(common, current) : {}),
            ...(common.throttle ? { throttle: common.throttle } : {}),
          },
          ...(common.throttle === null ? { $unset: { throttle: 1 } } : {}),
          $inc: { version: 1 },
        },
        'Endpoint',
      );
      return endpointView(doc);
    },

    async archive(buyerId: string, endpointId: string): Promise<void> {
      const current = await findEndpoint(buyerId, endpointId);
      await archive(models.Endpoint, { _id: current._id }, 'Endpoint', new Date());
    },

    /** The exact request a lead (the sample lead when none is given) would produce; secrets masked, nothing sent. */
    async preview(buyerId: string, endpointId: string, input: unknown) {
      const current = await findEndpoint(buyerId, endpointId);
      const body = parseBody(previewBody, input ?? {});
      const { id: clientId, ...lead } = parseWith(leadSchema, body.lead ?? SAMPLE_LEAD, 'lead.');
      const endpoint = loadEndpointFromDoc(current, credentials);
      try {
        const request = registry.preview(endpoint, {
          leadId: 'ld_preview', sourceId: 'src_preview', receivedAt: Date.now(), ...(clientId ? { clientId } : {}), lead,
          endpointId: current._id, buyerId: current.buyerId, attempt: 1, now: Date.now(),
        });
        return { endpointId: current._id, kind: current.kind, lead: body.lead ?? SAMPLE_LEAD, request };
      } catch (error) {
        if (error instanceof MappingError) throw new AppError(422, 'mapping_error', error.message, { key: error.key ?? null });
        throw error;
      }
    },

    kinds() {
      return registry.kinds().map((k) => ({ kind: k.kind, description: k.description, secrets: registry.secretKeys(k.kind) }));
    },
  };
}
export type EndpointUseCases = ReturnType<typeof createEndpointUseCases>;
