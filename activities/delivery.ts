/**
 * Delivery activities (task queue `delivery`): load the routing plan, make one attempt at one
 * endpoint. Buyer answers come back as values (an answer is data, not an exception); only our
 * own faults (store unreachable, a key missing) throw, so Temporal retries them without
 * charging the buyer's retry budget.
 */
import { ApplicationFailure } from '@temporalio/common';
import { parseDuration } from '../shared/durations';
import type { KeyRing } from '../shared/crypto';
import { openJson } from '../shared/crypto';
import type { Models, EndpointDoc } from '../shared/models';
import type { AttemptInput, AttemptResult, PlanBuyer, RoutingPlan } from '../shared/delivery';
import { attemptId } from '../shared/delivery';
import type { Logger } from '../shared/logger';
import type { Registry } from './registry';
import { toRecord } from './registry';
import type { LoadedEndpoint } from './types';

export const DEFAULT_BACKOFF = ['5m', '15m', '1h'];
export const DEFAULT_TIMEOUT_MS = 10_000;
const ENDPOINT_CACHE_MS = 5_000;

export interface DeliveryDeps {
  models: Models;
  credentials: KeyRing;
  registry: Registry;
  logger: Logger;
}

export function endpointSecretsAad(endpointId: string): string {
  return `endpoint:${endpointId}`;
}

export function loadEndpointFromDoc(doc: EndpointDoc, credentials: KeyRing): LoadedEndpoint {
  return {
    endpointId: doc._id,
    buyerId: doc.buyerId,
    kind: doc.kind,
    role: doc.role,
    config: doc.config,
    secrets: openJson<Record<string, unknown>>(credentials, doc.secrets, endpointSecretsAad(doc._id)),
    ...(doc.mapping ? { mapping: doc.mapping } : {}),
    timeoutMs: doc.timeoutMs,
  };
}

export function createDeliveryActivities(deps: DeliveryDeps) {
  const { models, registry, logger } = deps;
  const cache = new Map<string, { version: number; loadedAt: number; endpoint: LoadedEndpoint }>();

  /** Settings of an endpoint, from a 5-second cache that a newer version invalidates. */
  async function loadEndpoint(endpointId: string, version: number): Promise<LoadedEndpoint | undefined> {
    const hit = cache.get(endpointId);
    if (hit && hit.version >= version && Date.now() - hit.loadedAt < ENDPOINT_CACHE_MS) return hit.endpoint;
    const doc = await models.Endpoint.findById(endpointId).lean<EndpointDoc>();
    if (!doc) {
      cache.delete(endpointId);
      return undefined;
    }
    const endpoint = loadEndpointFromDoc(doc, deps.credentials);
    cache.set(endpointId, { version: doc.version, loadedAt: Date.now(), endpoint });
    return endpoint;
  }

  async function loadRoutingPlan({ sourceId }: { sourceId: string }): Promise<RoutingPlan> {
    const source = await models.Source.findById(sourceId).lean();
    if (!source) throw ApplicationFailure.nonRetryable(`source ${sourceId} does not exist`, 'SourceGone');
    const buyerIds = source.waterfall;
    const [buyers, endpoints] = await Promise.all([
      models.Buyer.find({ _id: { $in: buyerIds } }).lean(),
      models.Endpoint.find({ buyerId: { $in: buyerIds } }).sort({ createdAt: 1, _id: 1 }).lean<EndpointDoc[]>(),
    ]);
    const plan: RoutingPlan = { sourceId, buyers: [], unroutable: [] };
    for (const buyerId of buyerIds) {
      const buyer = buyers.find((b) => b._id === buyerId);
      if (!buyer) {
        plan.unroutable.push({ buyerId, reason: 'buyer was deleted' });
        continue;
      }
      const own = endpoints.filter((e) => e.buyerId === buyerId);
      if (own.length === 0) {
        plan.unroutable.push({ buyerId, reason: 'buyer has no endpoints' });
        continue;
      }
      const planned: PlanBuyer = {
        buyerId,
        name: buyer.name,
        accept: buyer.accept,
        endpoints: own.map((e) => ({
          endpointId: e._id,
          buyerId,
          kind: e.kind,
          role: e.role,
          version: e.version,
          backoffMs: (e.backoff ?? DEFAULT_BACKOFF).map(parseDuration),
          timeoutMs: e.timeoutMs,
        })),
      };
      plan.buyers.push(planned);
    }
    return plan;
  }

  async function deliverAttempt(input: AttemptInput): Promise<AttemptResult> {
    const endpoint = await loadEndpoint(input.endpointId, input.version);
    const base = {
      attemptId: attemptId(input.leadId, input.endpointId, input.attempt),
      leadId: input.leadId,
      sourceId: input.sourceId,
      buyerId: input.buyerId,
      endpointId: input.endpointId,
      kind: endpoint?.kind ?? 'unknown',
      role: endpoint?.role ?? 'accept',
      attempt: input.attempt,
    };
    if (!endpoint) {
      const now = Date.now();
      const record = toRecord(base, { outcome: 'permanent', code: 'endpoint_deleted', reason: 'the endpoint was deleted', startedAt: now, finishedAt: now });
      return { outcome: 'permanent', code: record.code, reason: record.reason, record };
    }
    const outcome = await registry.attempt(endpoint, {
      leadId: input.leadId,
      sourceId: input.sourceId,
      receivedAt: input.receivedAt,
      ...(input.clientId ? { clientId: input.clientId } : {}),
      lead: input.lead,
      endpointId: input.endpointId,
      buyerId: input.buyerId,
      attempt: input.attempt,
      now: Date.now(),
    });
    const record = toRecord(base, outcome);
    logger.info(
      { leadId: input.leadId, endpointId: input.endpointId, buyerId: input.buyerId, attempt: input.attempt, outcome: record.outcome, code: record.code, status: record.response?.status, latencyMs: record.latencyMs },
      'attempt finished',
    );
    return {
      outcome: record.outcome,
      code: record.code,
      reason: record.reason,
      ...(record.response?.status !== undefined ? { status: record.response.status } : {}),
      ...(record.retryAfterMs !== undefined ? { retryAfterMs: record.retryAfterMs } : {}),
      record,
    };
  }

  return { loadRoutingPlan, deliverAttempt };
}

export type DeliveryActivities = ReturnType<typeof createDeliveryActivities>;
