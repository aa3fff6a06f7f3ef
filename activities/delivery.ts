/**
 * Delivery activities (task queue `delivery`): load the routing plan, check a buyer before its
 * turn (paused? breakers open?), make one attempt at one endpoint. Buyer answers come back as
 * values (an answer is data, not an exception); only our own faults (store unreachable, a key
 * missing) throw, so Temporal retries them without charging the buyer's retry budget.
 * Around each attempt: the endpoint's breaker is read first (the state its workflow publishes
 * on every transition; the half-open probe is claimed from the workflow by Update) and told the
 * outcome after (signal-with-start). Reads never query the breaker workflow: a query needs a
 * workflow-task slot on a worker, and local activities holding those slots while waiting for
 * one could starve each other.
 */
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { parseDuration } from '../shared/durations';
import type { KeyRing } from '../shared/crypto';
import { openJson } from '../shared/crypto';
import type { Models, EndpointDoc, BuyerDoc, BreakerStateDoc } from '../shared/models';
import type { AttemptInput, AttemptResult, BuyerCheck, PlanBuyer, RoutingPlan } from '../shared/delivery';
import { attemptId } from '../shared/delivery';
import { BreakerMachine, breakerWorkflowId, healthOf, type BreakerSettings } from '../shared/breaker';
import type { Logger } from '../shared/logger';
import { claimProbeUpdate, outcomeSignal } from '../workflows/messages';
import type { breaker } from '../workflows/breaker';
import type { Registry } from './registry';
import { toRecord } from './registry';
import type { LoadedEndpoint } from './types';

export const DEFAULT_BACKOFF = ['5m', '15m', '1h'];
export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_FRESHNESS = '10m';
export const DEFAULT_BREAKER = { threshold: 5, coolDown: '5m' };
const ENDPOINT_CACHE_MS = 5_000;

export interface DeliveryDeps {
  models: Models;
  credentials: KeyRing;
  registry: Registry;
  logger: Logger;
  /** Temporal client for the breakers; without it (tools, some tests) breakers are not consulted. */
  client?: Client;
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

export function breakerSettingsOf(doc: Pick<EndpointDoc, 'breaker'>): BreakerSettings {
  return { threshold: doc.breaker?.threshold ?? DEFAULT_BREAKER.threshold, coolDownMs: parseDuration(doc.breaker?.coolDown ?? DEFAULT_BREAKER.coolDown) };
}

interface Cached {
  version: number;
  loadedAt: number;
  endpoint: LoadedEndpoint;
  breaker: BreakerSettings;
}

export function createDeliveryActivities(deps: DeliveryDeps) {
  const { models, registry, logger, client } = deps;
  const cache = new Map<string, Cached>();

  /** Settings of an endpoint, from a 5-second cache that a newer version invalidates. */
  async function loadEndpoint(endpointId: string, version: number): Promise<Cached | undefined> {
    const hit = cache.get(endpointId);
    if (hit && hit.version >= version && Date.now() - hit.loadedAt < ENDPOINT_CACHE_MS) return hit;
    const doc = await models.Endpoint.findById(endpointId).lean<EndpointDoc>();
    if (!doc) {
      cache.delete(endpointId);
      return undefined;
    }
    const entry = { version: doc.version, loadedAt: Date.now(), endpoint: loadEndpointFromDoc(doc, deps.credentials), breaker: breakerSettingsOf(doc) };
    cache.set(endpointId, entry);
    return entry;
  }

  /** The breaker's published state, or undefined when it never started (a fresh endpoint: closed). */
  async function readBreaker(endpointId: string): Promise<BreakerStateDoc | undefined> {
    if (!client) return undefined;
    return (await models.BreakerState.findById(endpointId).lean<BreakerStateDoc>()) ?? undefined;
  }

  async function loadRoutingPlan({ sourceId, onlyBuyerId }: { sourceId: string; onlyBuyerId?: string }): Promise<RoutingPlan> {
    const source = await models.Source.findById(sourceId).lean();
    if (!source) throw ApplicationFailure.nonRetryable(`source ${sourceId} does not exist`, 'SourceGone');
    const buyerIds = onlyBuyerId ? [onlyBuyerId] : source.waterfall;
    const [buyers, endpoints] = await Promise.all([
      models.Buyer.find({ _id: { $in: buyerIds } }).lean<BuyerDoc[]>(),
      models.Endpoint.find({ buyerId: { $in: buyerIds } }).sort({ createdAt: 1, _id: 1 }).lean<EndpointDoc[]>(),
    ]);
    const plan: RoutingPlan = { sourceId, freshnessMs: parseDuration(source.freshness ?? DEFAULT_FRESHNESS), buyers: [], unroutable: [] };
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

  /**
   * Before a buyer's turn: is it paused, and which of its endpoints have an open breaker? A buyer
   * auto-paused by a breaker that has gone half-open is let through: its next delivery is the probe.
   */
  async function checkBuyer({ buyerId, endpointIds }: { buyerId: string; endpointIds: string[] }): Promise<BuyerCheck> {
    const [buyer, breakers] = await Promise.all([
      models.Buyer.findById(buyerId).lean<BuyerDoc>(),
      client ? models.BreakerState.find({ _id: { $in: endpointIds } }).lean<BreakerStateDoc[]>() : Promise.resolve([]),
    ]);
    const states: BuyerCheck['breakers'] = Object.fromEntries(endpointIds.map((id) => [id, breakers.find((b) => b._id === id)?.state ?? 'closed']));
    if (!buyer) return { paused: { reason: 'the buyer was deleted', by: 'operator' }, breakers: states };
    const pause = buyer.paused ? buyer.pause : undefined;
    const probing = pause?.by === 'breaker' && pause.endpointId !== undefined && states[pause.endpointId] === 'half_open';
    if (buyer.paused && !probing) return { paused: { reason: pause?.reason ?? 'paused', by: pause?.by ?? 'operator' }, breakers: states };
    return { breakers: states };
  }

  async function deliverAttempt(input: AttemptInput): Promise<AttemptResult> {
    const loaded = await loadEndpoint(input.endpointId, input.version);
    const base = {
      attemptId: attemptId(input.leadId, input.endpointId, input.attempt),
      leadId: input.leadId,
      sourceId: input.sourceId,
      ...(input.clientId ? { clientId: input.clientId } : {}),
      buyerId: input.buyerId,
      endpointId: input.endpointId,
      kind: loaded?.endpoint.kind ?? 'unknown',
      role: loaded?.endpoint.role ?? 'accept',
      attempt: input.attempt,
    };
    const refuse = (code: string, reason: string, skipped: boolean): AttemptResult => {
      const now = Date.now();
      const record = toRecord(base, { outcome: 'permanent', code, reason, startedAt: now, finishedAt: now });
      return { outcome: 'permanent', code, reason, record, ...(skipped ? { skipped: true } : {}) };
    };
    if (!loaded) return refuse('endpoint_deleted', 'the endpoint was deleted', false);
    const { endpoint } = loaded;

    // The breaker first: an open breaker means no request at all; half-open lets one probe through.
    const before = await readBreaker(input.endpointId);
    if (before?.state === 'open') return refuse('breaker_open', `the breaker of ${input.endpointId} is open`, true);
    if (before?.state === 'half_open' && client) {
      const claim = await client.workflow.getHandle(breakerWorkflowId(input.endpointId)).executeUpdate(claimProbeUpdate, { args: [{ leadId: input.leadId }] });
      if (!claim.granted) return refuse('breaker_open', `the breaker of ${input.endpointId} is half-open and another delivery is the probe`, true);
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
    await reportOutcome(input, loaded, record, before);
    return {
      outcome: record.outcome,
      code: record.code,
      reason: record.reason,
      ...(record.response?.status !== undefined ? { status: record.response.status } : {}),
      ...(record.retryAfterMs !== undefined ? { retryAfterMs: record.retryAfterMs } : {}),
      record,
    };
  }

  /** Tells the breaker; a success at a healthy breaker changes nothing, so it is not sent. */
  async function reportOutcome(input: AttemptInput, loaded: Cached, record: AttemptResult['record'], before: BreakerStateDoc | undefined): Promise<void> {
    if (!client) return;
    const health = healthOf(record.outcome, record.code);
    // A neutral answer (one lead refused) matters only to a half-open breaker waiting for its probe.
    if (health === 'neutral' && before?.state !== 'half_open') return;
    if (health === 'success' && (!before || (before.state === 'closed' && !before.failing))) return;
    const report = { leadId: input.leadId, attemptId: record.attemptId, health, code: record.code, reason: record.reason, at: record.finishedAt, settings: loaded.breaker };
    await client.workflow.signalWithStart<typeof breaker, [typeof report]>('breaker', {
      workflowId: breakerWorkflowId(input.endpointId),
      taskQueue: Context.current().info.taskQueue,
      args: [BreakerMachine.initial(input.endpointId, input.buyerId, loaded.breaker)],
      signal: outcomeSignal,
      signalArgs: [report],
      staticSummary: `Breaker of endpoint ${input.endpointId} (buyer ${input.buyerId})`,
    });
  }

  return { loadRoutingPlan, checkBuyer, deliverAttempt };
}

export type DeliveryActivities = ReturnType<typeof createDeliveryActivities>;
