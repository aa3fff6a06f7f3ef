/**
 * Delivery activities (task queue `delivery`): load the routing plan, check a buyer before its
 * turn (paused? breakers open?), make one attempt at one endpoint. Buyer answers come back as
 * values (an answer is data, not an exception); our own faults before a send come back as
 * `deferred` (nothing sent, not charged to the buyer's retry budget), so an attempt activity
 * that Temporal runs a second time always means the first may have sent.
 * Around each attempt: the endpoint's breaker is read first (the state its workflow publishes
 * on every transition; the half-open probe is claimed from the workflow by Update) and told the
 * outcome after (signal-with-start). Reads never query the breaker workflow: a query needs a
 * workflow-task slot on a worker, and local activities holding those slots while waiting for
 * one could starve each other.
 */
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { formatDuration, parseDuration } from '../shared/durations';
import { BUYER_CONTROL_DEFAULTS } from '../shared/buyer-controls';
import { lookupHash } from '../shared/lookup-hash';
import type { KeyRing } from '../shared/crypto';
import type { Models, EndpointDoc, BuyerDoc, BreakerStateDoc, LeadDoc, SourceDoc } from '../shared/store';
import type { AttemptInput, AttemptRecord, AttemptResult, BuyerCheck, BuyerPlanControls, CapacityAnswer, CapacityKey, OutcomeReportInput, PlanBuyer, RoutingPlan } from '../shared/delivery';
import { attemptId } from '../shared/delivery';
import { DEFAULT_FRESHNESS } from '../shared/source';
import { breakerSettingsOf, deliverySettingsOf, loadEndpointFromDoc, throttleOf } from '../shared/endpoint';
import { BreakerMachine, breakerWorkflowId, healthOf, type BreakerSettings, type OutcomeReport } from '../shared/breaker';
import type { SendAlert } from './alerts';
import type { Logger } from '../shared/logger';
import { claimProbeUpdate, outcomeSignal } from '../workflows/messages';
import type { breaker } from '../workflows/breaker';
import type { Registry } from './registry';
import { toRecord } from './registry';
import type { LoadedEndpoint } from './types';
import { createThrottle, describeRate, type RateLimits, type Throttle, type ThrottleAnswer } from './throttle';

const ENDPOINT_CACHE_MS = 5_000;

export interface DeliveryDeps {
  models: Models;
  credentials: KeyRing;
  registry: Registry;
  logger: Logger;
  /** Temporal client for the breakers; without it (tools, some tests) breakers are not consulted. */
  client?: Client;
  /** Operator alerts (the worker passes its alerter); without it, lead alerts are only logged. */
  sendAlert?: SendAlert;
  /** The stuck-lead sweep: a lead with no progress this long after its start is stuck (default 2 min). */
  stuckNotStartedAfterMs?: number;
  /** Send slots of throttled endpoints (default: counted in the store, across every worker). */
  throttle?: Throttle;
  /** LOOKUP_KEY: the plan checks each buyer for a lead it already has (same keyed email/phone hash); without it, no check. */
  lookupKey?: string;
}

interface Cached {
  version: number;
  loadedAt: number;
  endpoint: LoadedEndpoint;
  breaker: BreakerSettings;
  /** Sends per second / minute across all workers (absent: none). */
  throttle?: RateLimits;
  archived: boolean;
  /** The credentials could not be opened (a key missing from CREDENTIALS_KEYS). */
  unreadable?: boolean;
}

/** How long the workflow waits before asking again when an attempt was deferred by our own fault. */
const DEFERRED_RETRY_MS = 5_000;
/** A send slot this close is waited for inside the attempt; a later one is a durable wait of the workflow. */
const THROTTLE_WAIT_IN_ACTIVITY_MS = 1_000;
/** Each step before the send (store reads, the probe claim) gets at most this long. */
const PRE_SEND_STEP_MS = 3_000;
/** The breaker report after a send gets at most this long (then the workflow sends it). */
const REPORT_DEADLINE_MS = 2_000;
/** Room kept after the send's own timeout within the activity's start-to-close timeout. */
const SEND_MARGIN_MS = REPORT_DEADLINE_MS + 2_000;

class StepTimeout extends Error {}

/** A promise that rejects after `ms` (the work itself goes on, its result unused). */
function bounded<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StepTimeout(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

export function createDeliveryActivities(deps: DeliveryDeps) {
  const { models, registry, logger, client } = deps;
  const cache = new Map<string, Cached>();
  // This worker's knowledge of its own recent outcomes per endpoint (for honest breaker reports).
  const lastSuccess = new Map<string, number>();
  const failedHere = new Set<string>();
  const throttle: Throttle = deps.throttle ?? createThrottle(models);

  /**
   * Settings of an endpoint, from a 5-second cache that a newer version invalidates. A store
   * failure throws (the attempt is deferred); credentials that cannot be opened are `unreadable`.
   */
  async function loadEndpoint(endpointId: string, version: number): Promise<Cached | undefined> {
    const hit = cache.get(endpointId);
    if (hit && hit.version >= version && Date.now() - hit.loadedAt < ENDPOINT_CACHE_MS) return hit;
    const doc = await models.Endpoint.findById(endpointId).lean<EndpointDoc>();
    if (!doc) {
      cache.delete(endpointId);
      return undefined;
    }
    let endpoint: LoadedEndpoint;
    try {
      endpoint = loadEndpointFromDoc(doc, deps.credentials);
    } catch (error) {
      logger.error({ err: error, endpointId }, 'endpoint credentials cannot be opened (CREDENTIALS_KEYS?)');
      return { version: doc.version, loadedAt: 0, endpoint: loadEndpointFromDoc(doc, deps.credentials, true), breaker: breakerSettingsOf(doc), archived: !!doc.archivedAt, unreadable: true };
    }
    const entry: Cached = { version: doc.version, loadedAt: Date.now(), endpoint, breaker: breakerSettingsOf(doc), ...(throttleOf(doc) ? { throttle: throttleOf(doc) } : {}), archived: !!doc.archivedAt };
    cache.set(endpointId, entry);
    return entry;
  }

  /** The breaker's published state, or undefined when it never started (a fresh endpoint: closed). */
  async function readPublishedBreaker(endpointId: string): Promise<BreakerStateDoc | undefined> {
    if (!client) return undefined;
    return (await models.BreakerState.findById(endpointId).lean<BreakerStateDoc>()) ?? undefined;
  }

  async function loadRoutingPlan({ sourceId, onlyBuyerId, withFirstCheck, leadId, contact }: { sourceId: string; onlyBuyerId?: string; withFirstCheck?: boolean; leadId?: string; contact?: { email?: string; phone?: string } }): Promise<RoutingPlan> {
    const source = await models.Source.findById(sourceId).lean<SourceDoc>();
    // Sources are archived, never deleted, while leads reference them; a source missing anyway
    // (removed by hand) is a routing fact, not a failure: the lead is dead-lettered with the reason.
    if (!source) {
      return { sourceId, freshnessMs: parseDuration(DEFAULT_FRESHNESS), buyers: [], unroutable: onlyBuyerId ? [{ buyerId: onlyBuyerId, reason: `source ${sourceId} no longer exists` }] : [] };
    }
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
      if (buyer.archivedAt) {
        plan.unroutable.push({ buyerId, reason: 'buyer was archived' });
        continue;
      }
      const own = endpoints.filter((e) => e.buyerId === buyerId && !e.archivedAt);
      if (own.length === 0) {
        plan.unroutable.push({ buyerId, reason: 'buyer has no endpoints' });
        continue;
      }
      const capped = buyer.caps && Object.keys(buyer.caps).length > 0;
      const sourceCaps = buyer.sourceCaps?.[sourceId];
      const sourceCapped = sourceCaps && Object.keys(sourceCaps).length > 0;
      const controls: BuyerPlanControls | undefined = capped || sourceCapped || buyer.schedule
        ? {
            timeZone: buyer.timeZone ?? 'UTC',
            ...(capped ? { caps: buyer.caps } : {}),
            ...(sourceCapped ? { sourceCaps: { sourceId, caps: sourceCaps } } : {}),
            ...(buyer.schedule ? { schedule: buyer.schedule } : {}),
            ...(buyer.capWarning !== undefined && (capped || sourceCapped || buyer.schedule) ? { capWarning: buyer.capWarning } : {}),
          }
        : undefined;
      const planned: PlanBuyer = {
        buyerId,
        name: buyer.name,
        accept: buyer.accept,
        ...(controls ? { controls } : {}),
        endpoints: own.map((e) => {
          const settings = deliverySettingsOf(e);
          return { endpointId: e._id, buyerId, kind: e.kind, role: e.role, version: e.version, backoffMs: settings.backoff.map(parseDuration), timeoutMs: settings.timeoutMs };
        }),
      };
      plan.buyers.push(planned);
    }
    if (leadId && contact) await markDuplicates(plan, buyers, leadId, contact);
    const first = plan.buyers[0];
    if (withFirstCheck && first) {
      const endpointIds = first.endpoints.map((e) => e.endpointId);
      plan.firstCheck = checkOf(buyers.find((b) => b._id === first.buyerId), endpointIds, await readBreakers(endpointIds));
    }
    return plan;
  }

  async function readBreakers(endpointIds: string[]): Promise<BreakerStateDoc[]> {
    return client ? models.BreakerState.find({ _id: { $in: endpointIds } }).lean<BreakerStateDoc[]>() : [];
  }

  /**
   * Before a buyer's turn: is it paused, and which of its endpoints have an open breaker? A buyer
   * auto-paused by a breaker that has gone half-open is let through: its next delivery is the probe.
   */
  async function checkBuyer({ buyerId, endpointIds }: { buyerId: string; endpointIds: string[] }): Promise<BuyerCheck> {
    const [buyer, breakers] = await Promise.all([models.Buyer.findById(buyerId).lean<BuyerDoc>(), readBreakers(endpointIds)]);
    return checkOf(buyer ?? undefined, endpointIds, breakers);
  }

  function checkOf(buyer: BuyerDoc | undefined, endpointIds: string[], breakers: BreakerStateDoc[]): BuyerCheck {
    const states: BuyerCheck['breakers'] = Object.fromEntries(endpointIds.map((id) => [id, breakers.find((b) => b._id === id)?.state ?? 'closed']));
    const seen: NonNullable<BuyerCheck['seen']> = Object.fromEntries(breakers.map((b) => [b._id, { state: b.state, failing: b.failing }]));
    if (!buyer) return { paused: { reason: 'the buyer was deleted', by: 'operator' }, breakers: states, seen };
    if (buyer.archivedAt) return { paused: { reason: 'the buyer was archived', by: 'operator' }, breakers: states, seen };
    const pause = buyer.paused ? buyer.pause : undefined;
    const probing = pause?.by === 'breaker' && pause.endpointId !== undefined && states[pause.endpointId] === 'half_open';
    if (buyer.paused && !probing) return { paused: { reason: pause?.reason ?? 'paused', by: pause?.by ?? 'operator' }, breakers: states, seen };
    return { breakers: states, seen };
  }

  /**
   * One attempt at one endpoint. Everything fallible that is our own (settings, breaker state,
   * the probe claim) happens before the send and, when it fails, comes back as `deferred` (no
   * request made, not charged to the buyer). After the send nothing can throw: the outcome is
   * built from the answer, the breaker report is best effort (handed to the workflow when it
   * fails), so Temporal never re-runs an attempt that completed. If it re-runs one anyway (the
   * worker died, the activity timed out), this execution knows a send may have happened: it
   * records the lost execution as `unknown`, never skips for a breaker, and reads back first.
   */
  async function deliverAttempt(input: AttemptInput): Promise<AttemptResult> {
    const activityStartedAt = Date.now();
    const info = Context.current().info;
    const id = attemptId(input.leadId, input.endpointId, input.attempt);
    const execution = info.attempt;
    const base = {
      attemptId: id,
      leadId: input.leadId,
      sourceId: input.sourceId,
      ...(input.clientId ? { clientId: input.clientId } : {}),
      buyerId: input.buyerId,
      endpointId: input.endpointId,
      attempt: input.attempt,
    };
    // Executions of this attempt that never reported back (a lost worker, a timed-out activity).
    const interrupted: AttemptRecord[] = [];
    for (let previous = 1; previous < execution; previous++) {
      interrupted.push({
        ...base,
        attemptId: `${id}#${previous}`,
        kind: 'unknown',
        role: 'accept',
        execution: previous,
        startedAt: info.scheduledTimestampMs,
        finishedAt: info.currentAttemptScheduledTimestampMs,
        latencyMs: info.currentAttemptScheduledTimestampMs - info.scheduledTimestampMs,
        outcome: 'unknown',
        code: 'interrupted',
        reason: 'this execution of the attempt never reported back (worker lost or timed out); it may have sent the request',
      });
    }
    const retried = execution > 1;

    let loaded: Cached | undefined;
    let before: BreakerStateDoc | undefined;
    try {
      // Bounded: a frozen store must not hold the attempt until Temporal times it out (and then
      // send late, after a second execution was already started).
      loaded = await bounded(loadEndpoint(input.endpointId, input.version), PRE_SEND_STEP_MS, 'loading the endpoint');
      // The buyer check read the breaker moments ago (same workflow task): not read again.
      if (loaded) before = input.breaker && !retried ? { _id: input.endpointId, buyerId: input.buyerId, updatedAt: new Date(0), ...input.breaker } : await bounded(readPublishedBreaker(input.endpointId), PRE_SEND_STEP_MS, 'reading the breaker');
    } catch (error) {
      logger.warn({ err: error, leadId: input.leadId, endpointId: input.endpointId }, 'attempt deferred: the store is unreachable');
      return deferred('store_unavailable', 'the store could not be read before the send; nothing was sent', interrupted);
    }
    const kinded = { ...base, kind: loaded?.endpoint.kind ?? 'unknown', role: loaded?.endpoint.role ?? 'accept', execution };
    for (const record of interrupted) Object.assign(record, { kind: kinded.kind, role: kinded.role });
    const refuse = (code: string, reason: string, skipped: boolean): AttemptResult => {
      const now = Date.now();
      // Not an answer of the endpoint (nothing was sent): never reported to its breaker.
      const record = toRecord(kinded, { outcome: 'permanent', code, reason, countsAgainstEndpoint: false, startedAt: now, finishedAt: now });
      return { outcome: 'permanent', code, reason, countsAgainstEndpoint: false, record, ...(skipped ? { skipped: true } : {}), ...(interrupted.length ? { interrupted } : {}) };
    };
    if (!loaded) return refuse('endpoint_deleted', 'the endpoint was deleted; nothing was sent', false);
    if (loaded.archived) return refuse('endpoint_archived', 'the endpoint was archived; nothing was sent', false);
    if (loaded.unreadable) return refuse('credentials_unreadable', "the endpoint's credentials cannot be opened with CREDENTIALS_KEYS; nothing was sent", false);
    const { endpoint } = loaded;

    // The breaker first: an open breaker means no request at all; half-open lets one probe through.
    // Not when a send may already have happened (a re-run execution) or the buyer holds the lead:
    // then skipping would move the lead on from a buyer that may have it.
    if (!retried && !input.held && before?.state === 'open') return refuse('breaker_open', `the breaker of ${input.endpointId} is open`, true);

    // The throttle: a send slot of the endpoint's rate, across every worker (kept by a retried
    // execution or a send that waited for it). Beyond the rate the lead waits its turn, durably.
    if (loaded.throttle) {
      const rate = describeRate(loaded.throttle);
      let slot: ThrottleAnswer;
      try {
        slot = await bounded(throttle.take(`endpoint:${input.endpointId}`, loaded.throttle, id, { mayHoldOne: true, ...(input.turnEndsAt !== undefined ? { notAfter: input.turnEndsAt } : {}) }), PRE_SEND_STEP_MS, 'taking a send slot');
      } catch (error) {
        logger.warn({ err: error, leadId: input.leadId, endpointId: input.endpointId }, 'attempt deferred: no send slot could be taken');
        return deferred('store_unavailable', "the endpoint's throttle could not be asked for a send slot; nothing was sent", interrupted);
      }
      if (!slot.reserved || slot.waitMs > THROTTLE_WAIT_IN_ACTIVITY_MS) {
        const reason = slot.reserved
          ? `${input.endpointId} takes ${rate}: its next send slot is in ${formatDuration(slot.waitMs)}`
          : `${input.endpointId} takes ${rate}: no send slot before this buyer's freshness deadline`;
        return { ...deferred('throttled', reason, interrupted, slot.waitMs), throttled: { waitMs: slot.waitMs, rate, reserved: slot.reserved } };
      }
      if (slot.waitMs > 0) await new Promise((resolve) => setTimeout(resolve, slot.waitMs));
    }

    if (!retried && !input.held) {
      if (before?.state === 'half_open' && client) {
        let granted: boolean;
        try {
          granted = (await client.withDeadline(Date.now() + PRE_SEND_STEP_MS, () => client.workflow.getHandle(breakerWorkflowId(input.endpointId)).executeUpdate(claimProbeUpdate, { args: [{ leadId: input.leadId }] }))).granted;
        } catch (error) {
          logger.warn({ err: error, leadId: input.leadId, endpointId: input.endpointId }, 'attempt deferred: the probe could not be claimed');
          return deferred('breaker_unreachable', 'the half-open breaker could not be asked for the probe; nothing was sent', interrupted);
        }
        if (!granted) return refuse('breaker_open', `the breaker of ${input.endpointId} is half-open and another delivery is the probe`, true);
      }
    }

    // Only send if the answer can come back before Temporal gives up on this execution: a send
    // after that would be one no record covers (the next execution is already on its way).
    const elapsed = Date.now() - activityStartedAt;
    const readBack = input.readBack === true || retried;
    const sendBudget = (readBack ? 2 : 1) * (endpoint.timeoutMs + 250);
    if (elapsed + sendBudget + SEND_MARGIN_MS > info.startToCloseTimeoutMs) {
      return deferred('too_late', `preparing the attempt took ${elapsed} ms; not sent so late in the activity`, interrupted);
    }

    // ---- the send: from here on nothing may throw ----
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
      ...(readBack ? { readBack: true } : {}),
    });
    const record = toRecord(kinded, outcome);
    logger.info(
      { leadId: input.leadId, endpointId: input.endpointId, buyerId: input.buyerId, attempt: input.attempt, execution, outcome: record.outcome, code: record.code, status: record.response?.status, latencyMs: record.latencyMs },
      'attempt finished',
    );
    const unreported = await reportOutcome(input, loaded, record, outcome.countsAgainstEndpoint, before);
    return {
      outcome: record.outcome,
      code: record.code,
      reason: record.reason,
      countsAgainstEndpoint: outcome.countsAgainstEndpoint,
      ...(record.response?.status !== undefined ? { status: record.response.status } : {}),
      ...(record.retryAfterMs !== undefined ? { retryAfterMs: record.retryAfterMs } : {}),
      record,
      ...(interrupted.length ? { interrupted } : {}),
      ...(unreported ? { unreported } : {}),
    };
  }

  function deferred(code: string, reason: string, interrupted: AttemptRecord[], retryInMs = DEFERRED_RETRY_MS): AttemptResult {
    const now = Date.now();
    // The record is not journaled (no request was made); it only carries the shape of a result.
    const record: AttemptRecord = { attemptId: '', leadId: '', sourceId: '', buyerId: '', endpointId: '', kind: 'unknown', role: 'accept', attempt: 0, startedAt: now, finishedAt: now, latencyMs: 0, outcome: 'transient', code, reason };
    return { outcome: 'transient', code, reason, record, deferred: { code, reason, retryInMs }, ...(interrupted.length ? { interrupted } : {}) };
  }

  /**
   * Tells the breaker, decided after the send on what this worker knows: failures always (with
   * this worker's latest success at the endpoint riding along); a success when the breaker looked
   * unhealthy before the send or this worker reported a failure there since its last success.
   * Never throws: a report that cannot be sent is returned for the workflow to deliver.
   */
  async function reportOutcome(input: AttemptInput, loaded: Cached, record: AttemptRecord, countsAgainstEndpoint: boolean, before: BreakerStateDoc | undefined): Promise<OutcomeReportInput | undefined> {
    if (!client) return undefined;
    const health = healthOf(record.outcome, record.code, countsAgainstEndpoint);
    const endpointId = input.endpointId;
    if (health === 'success') {
      const suspect = failedHere.has(endpointId);
      lastSuccess.set(endpointId, Math.max(lastSuccess.get(endpointId) ?? 0, record.finishedAt));
      failedHere.delete(endpointId);
      if (!suspect && (!before || (before.state === 'closed' && !before.failing))) return undefined;
    } else if (health === 'neutral') {
      // A neutral answer (one lead refused) matters only to a half-open breaker waiting for its probe.
      if (before?.state !== 'half_open') return undefined;
    } else {
      failedHere.add(endpointId);
    }
    const report: OutcomeReportInput = { endpointId, buyerId: input.buyerId, leadId: input.leadId, attemptId: record.attemptId, outcome: record.outcome, code: record.code, reason: record.reason, countsAgainstEndpoint, at: record.finishedAt };
    try {
      await signalBreaker(report, loaded.breaker);
      return undefined;
    } catch (error) {
      logger.warn({ err: error, leadId: input.leadId, endpointId }, 'breaker not told the outcome; the workflow will tell it');
      return report;
    }
  }

  async function signalBreaker(input: OutcomeReportInput, settings: BreakerSettings): Promise<void> {
    if (!client) return;
    const last = lastSuccess.get(input.endpointId);
    const report: OutcomeReport = {
      // A report handed back by a workflow recorded with older code has no countsAgainstEndpoint: healthOf falls back to the code.
      leadId: input.leadId, attemptId: input.attemptId, health: healthOf(input.outcome, input.code, input.countsAgainstEndpoint), code: input.code, reason: input.reason, at: input.at, settings,
      ...(last !== undefined && input.outcome !== 'success' ? { lastSuccessAt: last } : {}),
    };
    // Bounded: the report comes after a send, and must never hold the attempt past its deadline.
    await client.withDeadline(Date.now() + REPORT_DEADLINE_MS, () => client.workflow.signalWithStart<typeof breaker, [OutcomeReport]>('breaker', {
      workflowId: breakerWorkflowId(input.endpointId),
      taskQueue: Context.current().info.taskQueue,
      args: [BreakerMachine.initial(input.endpointId, input.buyerId, settings)],
      signal: outcomeSignal,
      signalArgs: [report],
      staticSummary: `Breaker of endpoint ${input.endpointId} (buyer ${input.buyerId})`,
    }));
  }

  /** The workflow's fallback when an attempt could not tell its breaker (a local activity, retried). */
  async function reportToBreaker(input: OutcomeReportInput): Promise<void> {
    const doc = await models.Endpoint.findById(input.endpointId).lean<EndpointDoc>();
    await signalBreaker(input, breakerSettingsOf(doc ?? {}));
  }

  /** Alerts raised by a lead's workflow (an internal error, a journal conflict): idempotent per lead and event. */
  async function raiseLeadAlert(input: { leadId: string; type: 'lead_internal_error' | 'journal_conflict'; title: string; message: string; dedupeKey: string }): Promise<void> {
    if (!deps.sendAlert) {
      logger.error({ leadId: input.leadId, type: input.type }, input.title);
      return;
    }
    await deps.sendAlert({ type: input.type, title: input.title, message: input.message, dedupeKey: input.dedupeKey });
  }

  /**
   * duplicate_at_buyer: a buyer that already took a lead with this email or phone (the log's keyed
   * hashes) within its duplicateWindow (default 30d, "0s" off) is marked in the plan; the walk skips it.
   * One query for the whole waterfall. Read with the plan: two leads of one person racing to the same
   * buyer within the same seconds can both reach it (the first is not delivered yet when the second plans).
   */
  async function markDuplicates(plan: RoutingPlan, buyers: BuyerDoc[], leadId: string, contact: { email?: string; phone?: string }): Promise<void> {
    if (!deps.lookupKey) return;
    const hashes: Array<{ field: 'email' | 'phone'; hash: string }> = [];
    if (contact.email) hashes.push({ field: 'email', hash: lookupHash(deps.lookupKey, 'email', contact.email) });
    if (contact.phone) hashes.push({ field: 'phone', hash: lookupHash(deps.lookupKey, 'phone', contact.phone) });
    const windows = new Map(plan.buyers.map((b) => [b.buyerId, parseDuration(buyers.find((d) => d._id === b.buyerId)?.duplicateWindow ?? BUYER_CONTROL_DEFAULTS.duplicateWindow)]));
    const checked = plan.buyers.filter((b) => (windows.get(b.buyerId) ?? 0) > 0);
    if (hashes.length === 0 || checked.length === 0) return;
    const now = Date.now();
    const longest = Math.max(...checked.map((b) => windows.get(b.buyerId) ?? 0));
    // One equality filter per hash (FerretDB pushes a single equality down to its index; an $or with
    // ranges it would scan the collection for): a person's leads are few, the rest is filtered here.
    const wanted = new Set(checked.map((b) => b.buyerId));
    const found: Array<Pick<LeadDoc, '_id' | 'buyerId' | 'emailHash' | 'phoneHash' | 'updatedAt' | 'status'>> = [];
    for (const h of hashes) {
      const rows = await models.Lead.find(h.field === 'email' ? { emailHash: h.hash } : { phoneHash: h.hash }, { buyerId: 1, emailHash: 1, phoneHash: 1, updatedAt: 1, status: 1 })
        .limit(500)
        .lean<typeof found>();
      found.push(...rows.filter((l) => l.status === 'delivered' && l.buyerId !== undefined && wanted.has(l.buyerId) && l.updatedAt.getTime() >= now - longest));
    }
    found.sort((a, b) => b.updatedAt.getTime() - a.updatedAt.getTime());
    for (const buyer of checked) {
      const windowMs = windows.get(buyer.buyerId) ?? 0;
      const earlier = found.find((l) => l._id !== leadId && l.buyerId === buyer.buyerId && l.updatedAt.getTime() >= now - windowMs);
      if (!earlier) continue;
      const field = hashes.find((h) => (h.field === 'email' ? earlier.emailHash === h.hash : earlier.phoneHash === h.hash))?.field ?? 'email';
      buyer.duplicateOf = { leadId: earlier._id, field, window: formatDuration(windowMs) };
    }
  }

  /**
   * Counts the lead in each of the buyer's cap windows, or in none. Per window: the lead's own slot
   * if it has one (a retried activity, a replay or a redelivery to the same buyer counts once), else
   * the lowest free slot, taken by an insert that only one racer wins (50 leads racing for 3 slots:
   * 3 inserts succeed); when a window is full the slots taken in this call are given back.
   */
  async function reserveCapacity(input: { leadId: string; buyerId: string; keys: CapacityKey[] }): Promise<CapacityAnswer> {
    const taken: Array<{ id: string; slot: number; key: CapacityKey }> = [];
    for (const capacity of input.keys) {
      const { window, key, limit, endsAt } = capacity;
      const slot = await takeSlot(input.leadId, input.buyerId, key, limit, endsAt);
      if (slot.taken) {
        if (slot.id) taken.push({ id: slot.id, slot: slot.slot, key: capacity });
        continue;
      }
      for (const { id } of taken) await models.BuyerUsage.deleteOne({ _id: id, leadId: input.leadId });
      await capReachedOnce(input.buyerId, window, key, limit, endsAt);
      return { reserved: false, window, key, limit, used: slot.used };
    }
    for (const { slot, key } of taken) {
      // The first lead of a window: rows of windows that ended more than a day ago go (no TTL index on FerretDB).
      if (slot === 1) await models.BuyerUsage.deleteMany({ buyerId: input.buyerId, endsAt: { $lt: new Date(Date.now() - 86_400_000) } });
      if (key.warnAt !== undefined && slot >= key.warnAt) await capNearOnce(input.buyerId, key);
    }
    return { reserved: true };
  }

  async function takeSlot(leadId: string, buyerId: string, key: string, limit: number, endsAt: number | undefined): Promise<{ taken: true; id?: string; slot: number } | { taken: false; used: number }> {
    for (let round = 0; round < limit + 20; round++) {
      const rows = await models.BuyerUsage.find({ buyerId, key }, { slot: 1, leadId: 1 }).lean();
      const counted = rows.filter((r) => r.slot > 0);
      if (counted.some((r) => r.leadId === leadId)) return { taken: true, slot: 0 }; // an earlier execution counted it
      const used = new Set(counted.map((r) => r.slot));
      let free = 0;
      for (let n = 1; n <= limit; n++) {
        if (!used.has(n)) {
          free = n;
          break;
        }
      }
      if (free === 0) return { taken: false, used: counted.length };
      const id = `${buyerId}|${key}|${free}`;
      try {
        await models.BuyerUsage.create({ _id: id, buyerId, key, slot: free, leadId, at: new Date(), ...(endsAt ? { endsAt: new Date(endsAt) } : {}) });
        return { taken: true, id, slot: free };
      } catch (error) {
        if ((error as { code?: unknown }).code !== 11000) throw error;
        // Another lead took that slot first: look again.
      }
    }
    throw new Error(`could not take a slot of ${key} for buyer ${buyerId}: too much contention`);
  }

  /** Gives back this lead's slot in those windows (it did not take the lead); idempotent. */
  async function releaseCapacity(input: { leadId: string; buyerId: string; keys: CapacityKey[] }): Promise<void> {
    for (const { key } of input.keys) await models.BuyerUsage.deleteMany({ buyerId: input.buyerId, key, leadId: input.leadId, slot: { $gt: 0 } });
  }

  /** The first time a window holds `warnAt` leads (the buyer's capWarning percent): one `cap_near` alert. */
  async function capNearOnce(buyerId: string, capacity: CapacityKey): Promise<void> {
    const { window, key, limit, endsAt, warnAt } = capacity;
    try {
      await models.BuyerUsage.create({ _id: `${buyerId}|${key}|near`, buyerId, key, slot: -1, leadId: '-', at: new Date(), ...(endsAt ? { endsAt: new Date(endsAt) } : {}) });
    } catch (error) {
      if ((error as { code?: unknown }).code === 11000) return; // said already for this window
      throw error;
    }
    const scope = capacity.sourceId ? ` for source ${capacity.sourceId}` : '';
    const title = `Buyer ${buyerId} is near its ${window} cap${scope} (${warnAt} of ${limit})`;
    const message = `${title}: at ${limit} leads go to the next buyer of the waterfall until ${key} is over.`;
    if (!deps.sendAlert) logger.warn({ buyerId, window, key, limit }, title);
    else await deps.sendAlert({ type: 'cap_near', title, message, buyerId, dedupeKey: `cap_near:${buyerId}:${key}` });
  }

  /** The first time a window is found full: one alert for that buyer and window. */
  async function capReachedOnce(buyerId: string, window: string, key: string, limit: number, endsAt: number | undefined): Promise<void> {
    try {
      await models.BuyerUsage.create({ _id: `${buyerId}|${key}|0`, buyerId, key, slot: 0, leadId: '-', at: new Date(), ...(endsAt ? { endsAt: new Date(endsAt) } : {}) });
    } catch (error) {
      if ((error as { code?: unknown }).code === 11000) return; // said already for this window
      throw error;
    }
    const scope = key.includes('@src_') ? ` for source ${key.slice(key.indexOf('@') + 1)}` : '';
    const title = `Buyer ${buyerId} reached its ${window} cap${scope} (${limit})`;
    const message = `${title}: leads go to the next buyer of the waterfall until ${key} is over.`;
    if (!deps.sendAlert) logger.warn({ buyerId, window, key, limit }, title);
    else await deps.sendAlert({ type: 'cap_reached', title, message, buyerId, dedupeKey: `cap_reached:${buyerId}:${key}` });
  }

    /** Gives back a send slot reserved for an attempt that will not be made (its buyer's turn ended); idempotent. */
  async function releaseSendSlot(input: { endpointId: string; attemptId: string }): Promise<void> {
    await throttle.release(`endpoint:${input.endpointId}`, input.attemptId);
  }

  return { loadRoutingPlan, checkBuyer, deliverAttempt, reportToBreaker, raiseLeadAlert, reserveCapacity, releaseCapacity, releaseSendSlot };
}

export type DeliveryActivities = ReturnType<typeof createDeliveryActivities>;
