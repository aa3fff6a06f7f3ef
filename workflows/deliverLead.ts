/**
 * deliverLead: one workflow per lead (id `lead-<leadId>`). Deterministic, no I/O: every side
 * effect is an activity. It loads the routing plan and walks the source's waterfall. Each buyer
 * is checked first (paused? breakers open?) and skipped with the reason on record; otherwise its
 * `accept` endpoints are delivered in parallel in a cancellation scope, each in its own attempt
 * loop with durable backoff timers. The buyer takes the lead (then its `notify` endpoints get
 * their copies) or the lead moves on — after a permanent failure, an open breaker, a spent
 * retry schedule or the source's freshness deadline — and everything still pending at that buyer
 * is cancelled, so no lead reaches two buyers.
 *
 * A buyer any of whose endpoints has *received* the lead (a success, or an `unknown` outcome: it
 * may have arrived) **holds** it: the lead never moves on from there automatically. Its endpoints
 * keep their schedules past the freshness deadline; if the buyer's rule still cannot be met, the
 * lead is dead-lettered `partial_at_buyer` / `ambiguous_at_buyer`, and a redeliver goes to that
 * buyer unless an operator names another.
 *
 * A lead no buyer took is dead-lettered and waits for an operator (redeliver, discard) up to the
 * retention. No lead workflow ever fails: an unexpected error anywhere dead-letters the lead with
 * `internal_error` (journal flushed, operators alerted). Every attempt and decision goes to the
 * delivery log through the journal.
 *
 * Versioning: running leads outlive this code (dead letters wait 30 days). A change to the
 * commands a running lead would issue goes behind `patched()`; test/workflows/histories/ keeps
 * the recorded histories of every released shape and `npm test` replays them all (ARCHITECTURE.md).
 */
import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { DeliveryActivities } from '../activities/delivery';
import type { LogActivities } from '../services/log/journal';
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import type {
  AttemptRecord,
  AttemptResult,
  BreakerSeen,
  BuyerCheck,
  BuyerPlanControls,
  DeadLetterReason,
  DeliverLeadInput,
  EndpointView,
  JournalEntry,
  LeadStatus,
  LeadView,
  PlanBuyer,
  PlanEndpoint,
  RoutingPlan,
} from '../shared/delivery';
import { attemptId } from '../shared/delivery';
import type { Lead } from '../shared/lead';
import { formatDuration } from '../shared/durations';
import { capacityKeys, formatOpening, scheduleState, type CapacityKey } from '../shared/buyer-controls';
import { boundedKeywords, SA } from '../shared/search-attributes';
import { discardUpdate, leadStatusQuery, redeliverUpdate, type DiscardRequest, type RedeliverRequest } from './messages';

export interface DeliverLeadOptions {
  /** Task queue of the log service's worker. */
  logTaskQueue: string;
  /** How long a dead-lettered lead waits for an operator before it is discarded (default 30 days). */
  deadLetterRetentionMs?: number;
  /** Margin over the lead's expected horizon before it counts as stuck (default 1 min). */
  horizonSlackMs?: number;
}

export interface LeadOutcome {
  leadId: string;
  status: LeadStatus;
  buyerId?: string;
  reason?: string;
}

interface EndpointResult {
  delivered: boolean;
  /** Some attempt succeeded or may have arrived (unknown): the buyer holds the lead. */
  received: boolean;
  cancelled?: boolean;
  code: string;
  reason: string;
}

interface TurnResult {
  accepted: boolean;
  /** The buyer did not take the lead but has (or may have) received it. */
  held?: boolean;
  code: string;
  reason: string;
}

interface Walked {
  buyerId?: string;
  heldBy?: string;
  reasonCode: DeadLetterReason;
  reason: string;
}

const DEFAULT_RETENTION_MS = 30 * 86_400_000;
/** Deferred attempts (our own fault before the send) ask again after 5 s, doubling to 1 min. */
const DEFERRED_MAX_MS = 60_000;
/** Margin added to a lead's horizon before it counts as stuck. */
const HORIZON_SLACK_MS = 60_000;
/** Patch ids (see the versioning note above and ARCHITECTURE.md). */
const PATCH_EXPECTED_BY = 'lead-expected-by';
/**
 * The lean shape (implies lead-expected-by): the first buyer's check comes with the routing plan,
 * the attempt gets the breaker state that check read, search attributes changed together go out
 * as one upsert, and breaker reports by local activity are handed back in scheduling order.
 */
const PATCH_LEAN = 'lead-lean';
/**
 * No local activity beside other work (implies the lean shape): the first routing plan stays a
 * local activity (nothing else of the lead is in flight yet), but every later store read (buyer
 * checks, a redelivery's plan), the fallback breaker report and the alerts are activities. A local
 * activity that finishes while its workflow task is being completed reaches the workflow in the
 * next activation, after that activation's other jobs (a journal write's result, an attempt's);
 * on replay its marker resolves it before them. When both continuations issue commands (the
 * journal its next write, the walk an upsert and a send) the replay meets them in the other order
 * and fails: seen in server mode, a 40-buyer walk with redeliveries. Activity results replay in
 * history order.
 */
const PATCH_LOCAL_ALONE = 'lead-local-activities-alone';

/** One line for an error and its causes (an activity failure says little; its cause says what). */
const errorMessage = (error: unknown): string => {
  const parts: string[] = [];
  for (let e: unknown = error, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    parts.push(e instanceof Error ? `${e.name}: ${e.message}` : typeof e === 'string' ? e : JSON.stringify(e));
  }
  return parts.join(' ← ').slice(0, 500);
};

/**
 * A lead's journal: entries are buffered and written in order, one batch per log activity.
 * The workflow kicks a write before every long wait (a backoff, the notify copies after
 * acceptance, an operator) and flushes at the end. An attempt is at most ~10 s, so entries are
 * never held longer than that, and a lead delivered first time costs one journal write. Nothing
 * buffered can be lost: the buffer is workflow state, rebuilt by replay after a crash. The log
 * activity retries until the store answers; only a refusal (a different entry already stored at
 * a seq: a lead id reused after Temporal's retention) comes back, and then the journal stops
 * writing, keeps its entries in the workflow state and says why (`refused`).
 */
class Journal {
  private seq = 0;
  private head = '';
  private pending: JournalEntry[] = [];
  private writing: Promise<void> | undefined;
  refused: string | undefined;

  constructor(
    private readonly leadId: string,
    private readonly sourceId: string,
    private readonly log: LogActivities,
  ) {}

  add(entry: JournalEntry): void {
    this.pending.push(entry);
  }

  get unwritten(): number {
    return this.pending.length;
  }

  /** Starts writing what is buffered (no-op while a write is in flight: it drains the buffer too). */
  kick(): void {
    if (this.pending.length === 0 || this.refused) return;
    // Journal writes must outlive a cancelled buyer scope: they run in a non-cancellable one.
    this.writing ??= CancellationScope.nonCancellable(() => this.drain());
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending.length && !this.refused) {
        const entries = this.pending.slice();
        const result = await this.log.appendJournal({ leadId: this.leadId, sourceId: this.sourceId, firstSeq: this.seq + 1, prevHash: this.head, entries });
        this.pending.splice(0, entries.length);
        this.seq += entries.length;
        this.head = result.head;
      }
    } catch (error) {
      this.refused = errorMessage(error);
    } finally {
      this.writing = undefined;
    }
  }

  async flush(): Promise<void> {
    this.kick();
    while (this.writing) await this.writing;
  }
}

type LeadOperatorCommand = ({ type: 'redeliver' } & RedeliverRequest) | ({ type: 'discard' } & DiscardRequest);

class LeadRun {
  private status: LeadStatus = 'accepted';
  private lead: Lead;
  private buyerId: string | undefined;
  private heldBy: string | undefined;
  private reason: string | undefined;
  private reasonCode: DeadLetterReason | undefined;
  private deadLetteredAt: number | undefined;
  private updatedAt: number;
  private expectedBy: number | undefined;
  /** Whether this run keeps LeadExpectedBy (runs started before that change do not: `patched`, asked once at the start). */
  private withExpectedBy = false;
  /** Whether this run has the lean shape (PATCH_LEAN, asked once at the start). */
  private lean = false;
  /** Settles after every breaker report scheduled so far has been handed back (lean shape). */
  private localTurn: Promise<void> = Promise.resolve();
  /** Search attributes held for the next upsert (lean shape). */
  private readonly pendingAttributes = new Map<string, SearchAttributeUpdatePair>();
  private command: LeadOperatorCommand | undefined;
  private readonly endpoints = new Map<string, EndpointView>();
  /** Endpoints that have this lead (success): never sent it again, on any redelivery. */
  private readonly deliveredEndpoints = new Set<string>();
  private readonly decisions: LeadView['decisions'] = [];
  private readonly decisionTags: string[] = [];
  private readonly buyersTried: string[] = [];
  private readonly journal: Journal;
  /** Store reads (routing plan, buyer check) as local activities. */
  private readonly local: DeliveryActivities;
  /** Local activities whose failure must not hold the lead (breaker fallback report, alerts). */
  private readonly bestEffort: DeliveryActivities;
  /** PATCH_LOCAL_ALONE (asked once at the start): the same calls as activities wherever other work may be in flight. */
  private beside: { reads: DeliveryActivities; bestEffort: DeliveryActivities } | undefined;
  /** Cap reservations (buyer controls). */
  private readonly capacity: DeliveryActivities;
  /** Walks started so far (only the first one's plan may be a local activity under PATCH_LOCAL_ALONE). */
  private walks = 0;

  constructor(
    private readonly input: DeliverLeadInput,
    private readonly options: DeliverLeadOptions,
  ) {
    this.lead = input.lead;
    this.updatedAt = Date.now();
    // Local activities: store reads and breaker queries, no task-queue round trip.
    this.local = proxyLocalActivities<DeliveryActivities>({
      startToCloseTimeout: '10s',
      retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' },
    });
    this.bestEffort = proxyLocalActivities<DeliveryActivities>({
      startToCloseTimeout: '10s',
      retry: { initialInterval: '1s', backoffCoefficient: 2, maximumAttempts: 3 },
    });
    // Cap counters: activities (never local), so their results replay in history order.
    this.capacity = proxyActivities<DeliveryActivities>({
      startToCloseTimeout: '10s',
      retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' },
    });
    const log = proxyActivities<LogActivities>({
      taskQueue: options.logTaskQueue,
      startToCloseTimeout: '30s',
      retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
    });
    this.journal = new Journal(input.leadId, input.sourceId, log);
  }

  private get slack(): number {
    return this.options.horizonSlackMs ?? HORIZON_SLACK_MS;
  }

  view(): LeadView {
    const notifyEndpoints = [...this.endpoints.values()].filter((e) => e.role === 'notify' && e.buyerId === this.buyerId);
    return {
      leadId: this.input.leadId,
      sourceId: this.input.sourceId,
      status: this.status,
      ...(this.buyerId && this.status === 'delivered' ? { buyerId: this.buyerId } : {}),
      receivedAt: this.input.receivedAt,
      updatedAt: this.updatedAt,
      ...(this.reason ? { reason: this.reason } : {}),
      ...(this.reasonCode ? { reasonCode: this.reasonCode } : {}),
      ...(this.deadLetteredAt ? { deadLetteredAt: this.deadLetteredAt } : {}),
      ...(this.heldBy && this.status !== 'delivered' ? { heldBy: this.heldBy } : {}),
      journal: { pending: this.journal.unwritten, ...(this.journal.refused ? { conflict: this.journal.refused } : {}) },
      ...(notifyEndpoints.length
        ? {
            notify: {
              delivered: notifyEndpoints.filter((e) => e.status === 'delivered').length,
              failed: notifyEndpoints.filter((e) => e.status === 'failed' || e.status === 'skipped' || e.status === 'ambiguous').length,
              pending: notifyEndpoints.filter((e) => !['delivered', 'failed', 'skipped', 'cancelled', 'ambiguous'].includes(e.status)).length,
            },
          }
        : {}),
      buyersTried: [...this.buyersTried],
      endpoints: [...this.endpoints.values()].map((e) => ({ ...e })),
      decisions: [...this.decisions],
    };
  }

  /** Operators' commands are accepted only for a dead-lettered lead (validators run before history). */
  installHandlers(): void {
    setHandler(leadStatusQuery, () => this.view());
    const mustBeDeadLettered = () => {
      if (this.status !== 'dead_lettered' || this.command) throw ApplicationFailure.nonRetryable(`the lead is ${this.status}, not dead-lettered`, 'NotDeadLettered');
    };
    setHandler(redeliverUpdate, (request) => {
      this.command = { type: 'redeliver', ...request };
      return { status: 'delivering', ...(request.buyerId ?? this.heldBy ? { buyerId: request.buyerId ?? this.heldBy } : {}) };
    }, { validator: (_request: RedeliverRequest) => {
      mustBeDeadLettered();
      if (this.journal.refused) {
        throw ApplicationFailure.nonRetryable(`the delivery log refused this lead's entries (${this.journal.refused}); it cannot be delivered on record: discard it`, 'JournalRefused');
      }
    } });
    setHandler(discardUpdate, (request) => {
      this.command = { type: 'discard', ...request };
      return { status: 'discarded' };
    }, { validator: (request: DiscardRequest) => {
      mustBeDeadLettered();
      if (!request.reason) throw ApplicationFailure.nonRetryable('a reason is required', 'InvalidRequest');
    } });
  }

  async execute(): Promise<LeadOutcome> {
    try {
      return await this.run();
    } catch (error) {
      if (!isCancellation(error)) throw error; // cannot happen: run() turns every other error into a dead letter
      // Cancelled in Temporal (an operator's cancel in the UI): the lead still ends in one recorded state.
      return CancellationScope.nonCancellable(async () => {
        this.discard('the workflow was cancelled in Temporal', 'temporal');
        await this.journal.flush();
        return { leadId: this.input.leadId, status: this.status, ...(this.reason ? { reason: this.reason } : {}) };
      });
    }
  }

  private async run(): Promise<LeadOutcome> {
    const { leadId, sourceId, receivedAt, clientId } = this.input;
    if (patched(PATCH_LOCAL_ALONE)) {
      this.lean = true;
      this.beside = {
        reads: proxyActivities<DeliveryActivities>({ startToCloseTimeout: '10s', retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' } }),
        bestEffort: proxyActivities<DeliveryActivities>({ startToCloseTimeout: '10s', retry: { initialInterval: '1s', backoffCoefficient: 2, maximumAttempts: 3 } }),
      };
    } else {
      this.lean = patched(PATCH_LEAN);
    }
    this.withExpectedBy = this.lean || patched(PATCH_EXPECTED_BY);
    this.journal.add({ type: 'intake', at: receivedAt, sourceId, ...(clientId ? { clientId } : {}), lead: this.lead });
    // Held (lean): upserted with the plan's horizon and the first buyer once the plan is read (until
    // then the lead shows `accepted`, as one whose workflow never ran would).
    this.setStatus('delivering', undefined, undefined, undefined, true);
    let onlyBuyerId: string | undefined;
    for (;;) {
      const walked = await this.walkSafely(onlyBuyerId);
      if (walked.buyerId) {
        await this.journal.flush();
        if (!this.journal.refused) return { leadId, status: 'delivered', buyerId: walked.buyerId };
        // The lead is delivered, but the log refused its entries: say so loudly; it stays delivered.
        await this.alertRefusedJournal();
        return { leadId, status: 'delivered', buyerId: walked.buyerId };
      }
      this.deadLetter(walked.reasonCode, walked.reason, walked.heldBy);
      if (walked.reasonCode === 'internal_error') await this.alertInternalError(walked.reason);
      if (this.journal.refused) await this.alertRefusedJournal();
      const commanded = await condition(() => this.command !== undefined, this.options.deadLetterRetentionMs ?? DEFAULT_RETENTION_MS);
      const command = this.command;
      this.command = undefined;
      if (!commanded || !command) {
        this.discard('dead-letter retention expired', 'retention');
        break;
      }
      if (command.type === 'discard') {
        this.discard(command.reason, command.by);
        break;
      }
      if (command.fields && Object.keys(command.fields).length) {
        this.lead = { ...this.lead, ...command.fields };
        this.journal.add({ type: 'correction', at: Date.now(), by: command.by, fields: command.fields });
      }
      onlyBuyerId = command.buyerId ?? this.heldBy;
      if (command.buyerId && this.heldBy && command.buyerId !== this.heldBy) {
        this.decide('override', `${command.by} redelivers the lead held by ${this.heldBy} to ${command.buyerId} (explicit operator decision)`, command.buyerId, `override:${this.heldBy}:${command.buyerId}`);
      }
      this.decide(
        'redeliver',
        `redelivery by ${command.by}${command.buyerId ? ` to ${command.buyerId}` : this.heldBy ? ` to ${this.heldBy}, which holds the lead` : ' through the waterfall'}`,
        onlyBuyerId,
      );
      this.reason = undefined;
      this.reasonCode = undefined;
      this.deadLetteredAt = undefined;
      this.setStatus('delivering');
    }
    await this.journal.flush();
    return { leadId, status: this.status, ...(this.reason ? { reason: this.reason } : {}) };
  }

  /** One pass over the waterfall (or one buyer); any error of ours becomes an `internal_error` dead letter. */
  private async walkSafely(onlyBuyerId: string | undefined): Promise<Walked> {
    try {
      // The first plan is read before anything else of the lead is in flight: a local activity is safe there.
      const reads = this.beside && this.walks > 0 ? this.beside.reads : this.local;
      this.walks++;
      const contact = { ...(this.lead.email ? { email: this.lead.email } : {}), ...(this.lead.phone ? { phone: this.lead.phone } : {}) };
      const plan = await reads.loadRoutingPlan({ sourceId: this.input.sourceId, ...(onlyBuyerId ? { onlyBuyerId } : {}), ...(this.lean ? { withFirstCheck: true } : {}), leadId: this.input.leadId, contact });
      // Held (lean): walk() upserts or flushes before its first wait.
      this.expectBy(Date.now() + plan.buyers.length * (plan.freshnessMs + this.slack) + this.slack, true);
      const walked = await this.walk(plan);
      if (this.journal.refused && !walked.buyerId) return { reasonCode: 'internal_error', reason: `the delivery log refused this lead's entries: ${this.journal.refused}`, ...(this.heldBy ? { heldBy: this.heldBy } : {}) };
      return walked;
    } catch (error) {
      if (isCancellation(error)) throw error;
      return { reasonCode: 'internal_error', reason: `internal error: ${errorMessage(error)}`, ...(this.heldBy ? { heldBy: this.heldBy } : {}) };
    }
  }

  /** The waterfall: the first buyer that takes the lead wins; a buyer that holds it ends the walk. */
  private async walk(plan: RoutingPlan): Promise<Walked> {
    const outcomes: string[] = [];
    for (const { buyerId, reason } of plan.unroutable) {
      this.decide('skipped', `skipped ${buyerId}: ${reason}`, buyerId, `skipped:${buyerId}:unroutable`);
      outcomes.push(`${buyerId}: ${reason}`);
    }
    let tried = 0;
    for (const [index, buyer] of plan.buyers.entries()) {
      if (this.journal.refused) break;
      const accept = buyer.endpoints.filter((e) => e.role === 'accept');
      let check = index === 0 ? plan.firstCheck : undefined;
      if (!check) {
        this.flushAttributes();
        check = await (this.beside?.reads ?? this.local).checkBuyer({ buyerId: buyer.buyerId, endpointIds: buyer.endpoints.map((e) => e.endpointId) });
      }
      const holds = this.heldBy === buyer.buyerId;
      if (check.paused && !holds) {
        this.decide('skipped', `skipped ${buyer.buyerId}: paused (${check.paused.reason})`, buyer.buyerId, `skipped:${buyer.buyerId}:paused`);
        outcomes.push(`${buyer.buyerId}: paused`);
        continue;
      }
      const open = accept.filter((e) => check.breakers[e.endpointId] === 'open').map((e) => e.endpointId);
      if (!holds && open.length && (buyer.accept === 'all' || open.length === accept.length)) {
        this.decide('skipped', `skipped ${buyer.buyerId}: breaker open on ${open.join(', ')}`, buyer.buyerId, `skipped:${buyer.buyerId}:breaker_open`);
        outcomes.push(`${buyer.buyerId}: breaker open`);
        continue;
      }
      if (buyer.duplicateOf && !holds) {
        const dup = buyer.duplicateOf;
        this.decide('skipped', `skipped ${buyer.buyerId}: duplicate_at_buyer (it took ${dup.leadId} with the same ${dup.field} within ${dup.window})`, buyer.buyerId, `skipped:${buyer.buyerId}:duplicate_at_buyer`);
        outcomes.push(`${buyer.buyerId}: duplicate_at_buyer`);
        continue;
      }
      // Buyer controls (a buyer that holds the lead already has it: neither its hours nor its caps apply).
      const controls = holds ? undefined : buyer.controls;
      if (controls?.schedule) {
        const open = await this.awaitHours(buyer.buyerId, controls, plan, plan.buyers.length - index);
        if (!open.open) {
          outcomes.push(`${buyer.buyerId}: closed`);
          continue;
        }
      }
      let reserved: CapacityKey[] | undefined;
      if (controls) {
        const keys = capacityKeys(controls, Date.now());
        if (keys.length) {
          const answer = await this.capacity.reserveCapacity({ leadId: this.input.leadId, buyerId: buyer.buyerId, keys });
          if (!answer.reserved) {
            this.decide('skipped', `skipped ${buyer.buyerId}: cap_reached:${answer.window} (${answer.used} of ${answer.limit} leads in ${answer.key})`, buyer.buyerId, `skipped:${buyer.buyerId}:cap_reached:${answer.window}`);
            outcomes.push(`${buyer.buyerId}: cap_reached:${answer.window}`);
            continue;
          }
          reserved = keys;
        }
      }
      tried++;
      const result = await this.tryBuyer(buyer, plan.freshnessMs, check);
      if (result.accepted) return { buyerId: buyer.buyerId, reasonCode: 'all_failed', reason: '' };
      if (result.held) {
        const anyDelivered = accept.some((e) => this.deliveredEndpoints.has(e.endpointId));
        return { heldBy: buyer.buyerId, reasonCode: anyDelivered ? 'partial_at_buyer' : 'ambiguous_at_buyer', reason: `${buyer.buyerId} holds the lead but did not take it: ${result.reason}` };
      }
      // Moved on: this lead does not count against the buyer's caps.
      if (reserved) await this.capacity.releaseCapacity({ leadId: this.input.leadId, buyerId: buyer.buyerId, keys: reserved });
      this.decide('failover', `failed over from ${buyer.buyerId} after ${result.reason}`, buyer.buyerId, `failover:${buyer.buyerId}:${result.code}`);
      outcomes.push(`${buyer.buyerId}: ${result.code}`);
    }
    const reasonCode: DeadLetterReason = plan.buyers.length + plan.unroutable.length === 0 ? 'no_buyers' : tried === 0 ? 'all_skipped' : 'all_failed';
    this.flushAttributes();
    return { reasonCode, reason: outcomes.length ? outcomes.join('; ') : 'the waterfall has no buyers' };
  }

  /**
   * A buyer with delivery hours: open now, or closed. Closed with `outside: "hold"` and the next
   * opening within the source's freshness, the lead waits for it on a durable timer (a decision on
   * record, the timer's summary in the Temporal UI); otherwise the buyer is skipped as `closed`.
   */
  private async awaitHours(buyerId: string, controls: BuyerPlanControls, plan: RoutingPlan, buyersLeft: number): Promise<{ open: boolean }> {
    const schedule = controls.schedule;
    if (!schedule) return { open: true };
    const now = Date.now();
    const state = scheduleState(schedule, controls.timeZone, now);
    if (state.open) return { open: true };
    const opening = state.nextOpenAt === undefined ? 'no opening within 14 days' : `opens ${formatOpening(state.nextOpenAt, controls.timeZone, now)}`;
    const waitMs = state.nextOpenAt === undefined ? undefined : state.nextOpenAt - now;
    if (schedule.outside === 'hold' && waitMs !== undefined && waitMs <= plan.freshnessMs) {
      this.decide('waiting', `waiting for ${buyerId}'s delivery hours: ${opening}`, buyerId, `waiting:${buyerId}:closed`);
      this.expectBy(now + waitMs + buyersLeft * (plan.freshnessMs + this.slack) + this.slack);
      this.flushAttributes();
      this.journal.kick();
      await sleep(waitMs, { summary: `waiting for buyer hours ${formatOpening(state.nextOpenAt!, controls.timeZone, now)} (${buyerId})` });
      return { open: true };
    }
    this.decide('skipped', `skipped ${buyerId}: closed (${opening})`, buyerId, `skipped:${buyerId}:closed`);
    return { open: false };
  }

  /** One buyer's turn: accept endpoints in parallel; accepted, held, or moved on — decided by its rule, the freshness deadline and the hold. */
  private async tryBuyer(buyer: PlanBuyer, freshnessMs: number, check: BuyerCheck): Promise<TurnResult> {
    if (!this.buyersTried.includes(buyer.buyerId)) this.buyersTried.push(buyer.buyerId);
    this.upsert([{ key: SA.BuyersTried, value: boundedKeywords(this.buyersTried) }, { key: SA.BuyerId, value: buyer.buyerId }]);
    this.decide('trying', `delivering to ${buyer.buyerId}`, buyer.buyerId);
    const accept = buyer.endpoints.filter((e) => e.role === 'accept');
    const notify = buyer.endpoints.filter((e) => e.role === 'notify');
    const results = new Map<string, EndpointResult>();
    const scope = new CancellationScope();
    const tasks: Array<Promise<void>> = [];
    const delivered = () => accept.filter((e) => results.get(e.endpointId)?.delivered).length;
    const failed = () => accept.filter((e) => results.has(e.endpointId) && !results.get(e.endpointId)!.delivered).length;
    const isAccepted = () => (buyer.accept === 'all' ? delivered() === accept.length : delivered() > 0);
    const allDone = () => accept.every((e) => results.has(e.endpointId));
    const holds = () => this.heldBy === buyer.buyerId;
    const turnEndsAt = Date.now() + freshnessMs;
    const onReceived = () => {
      if (!isAccepted() && !holds()) this.hold(buyer);
    };
    const start = (endpoint: PlanEndpoint, checked?: BuyerCheck) => {
      if (this.deliveredEndpoints.has(endpoint.endpointId)) {
        // Delivered on an earlier pass (a redelivery to the buyer that holds the lead): not sent again.
        this.decide('already_delivered', `${endpoint.endpointId} already has the lead: not sent again`, buyer.buyerId, undefined, endpoint.endpointId);
        results.set(endpoint.endpointId, { delivered: true, received: true, code: 'already_delivered', reason: 'delivered on an earlier pass' });
        return;
      }
      // The breaker as the check read it, moments ago (lean shape; an older check result has no `seen`).
      const breaker = this.lean && checked?.seen ? (checked.seen[endpoint.endpointId] ?? { state: 'closed', failing: false }) : undefined;
      tasks.push(scope.run(() => this.deliverEndpoint(endpoint, holds, onReceived, breaker, endpoint.role === 'accept' ? turnEndsAt : undefined).then((r) => {
        results.set(endpoint.endpointId, r);
        if (r.received && endpoint.role === 'accept') onReceived();
      })));
    };

    try {
      accept.forEach((endpoint) => start(endpoint, check));
      // Decided: accepted, or the rule can no longer be met. While the buyer holds the lead, its
      // accept endpoints all run their course (no failover, so nothing to hurry for).
      const decided = () => isAccepted() || (holds() ? allDone() : buyer.accept === 'all' ? failed() > 0 : failed() === accept.length) || !!this.journal.refused;
      const inTime = await condition(decided, freshnessMs, { summary: `freshness ${formatDuration(freshnessMs)} for ${buyer.buyerId}` });

      if (!isAccepted() && holds()) {
        // The buyer has (or may have) the lead: it keeps its schedules past the freshness deadline.
        if (!inTime) this.decide('freshness_held', `${buyer.buyerId} holds the lead: its endpoints keep their schedules past the freshness deadline (${formatDuration(freshnessMs)})`, buyer.buyerId);
        this.journal.kick();
        await condition(() => isAccepted() || allDone() || !!this.journal.refused);
      }
      if (!isAccepted() && !holds()) {
        // Moving on: cancel every pending retry timer of this buyer. An attempt already scheduled runs
        // to its result first; if it made the buyer accept (or hold the lead), the lead stays there.
        if (!inTime) this.decide('freshness', `${buyer.buyerId} did not take the lead within ${formatDuration(freshnessMs)}`, buyer.buyerId, `freshness:${buyer.buyerId}`);
        scope.cancel();
        await Promise.all(tasks);
        if (!isAccepted() && !holds()) {
          const failure = accept.map((e) => results.get(e.endpointId)).find((r) => r && !r.delivered && !r.cancelled);
          if (!inTime) return { accepted: false, code: 'freshness_deadline', reason: `the freshness deadline (${formatDuration(freshnessMs)})` };
          return { accepted: false, code: failure?.code ?? 'failed', reason: failure ? `${failure.code} (${failure.reason})` : 'no accept endpoint succeeded' };
        }
      }
      if (!isAccepted()) {
        // Held, not taken: whatever is still pending at this buyer stops; an operator decides.
        scope.cancel();
        await Promise.all(tasks);
        if (!isAccepted()) {
          const parts = accept.map((e) => {
            const r = results.get(e.endpointId);
            return `${e.endpointId} ${r?.delivered ? 'delivered' : r?.received ? `may have it (${r.code})` : `failed (${r?.code ?? 'cancelled'})`}`;
          });
          return { accepted: false, held: true, code: 'held', reason: parts.join(', ') };
        }
      }
    } finally {
      // Whatever happens above, nothing of this buyer's keeps running unseen.
      if (!isAccepted() && tasks.length && !scope.consideredCancelled) {
        scope.cancel();
        await Promise.all(tasks);
      }
    }
    this.buyerId = buyer.buyerId;
    this.heldBy = undefined;
    this.setStatus('delivered', undefined, buyer.buyerId, undefined, true);
    this.decide('accepted', `${buyer.buyerId} took the lead`, buyer.buyerId, `accepted:${buyer.buyerId}`);
    if (scope.consideredCancelled) return { accepted: true, code: 'ok', reason: 'accepted late' };
    notify.forEach((endpoint) => start(endpoint));
    this.journal.kick();
    // Remaining endpoints of the accepting buyer (notify copies, other `any` endpoints) keep
    // their own retries; the workflow ends when they are done.
    await Promise.all(tasks);
    return { accepted: true, code: 'ok', reason: 'accepted' };
  }

  /** The buyer has (or may have) received the lead: it is never offered to another buyer automatically. */
  private hold(buyer: PlanBuyer): void {
    this.heldBy = buyer.buyerId;
    this.decide('held', `${buyer.buyerId} has or may have received the lead: it will not be offered to another buyer`, buyer.buyerId, `held:${buyer.buyerId}`);
    const rest = buyer.endpoints.reduce((max, e) => Math.max(max, e.backoffMs.reduce((a, b) => a + b, 0) + (e.backoffMs.length + 1) * (e.timeoutMs + 15_000)), 0);
    this.expectBy(Date.now() + rest + this.slack);
  }

  /** The attempt loop of one endpoint: attempt → classify → durable backoff → next attempt. */
  private async deliverEndpoint(endpoint: PlanEndpoint, holds: () => boolean, onReceived: () => void, breaker?: BreakerSeen, turnEndsAt?: number): Promise<EndpointResult> {
    const view: EndpointView = { endpointId: endpoint.endpointId, buyerId: endpoint.buyerId, kind: endpoint.kind, role: endpoint.role, status: 'pending', attempts: 0 };
    this.endpoints.set(endpoint.endpointId, view);
    // An activity task, not a local activity: measured and refuted (ARCHITECTURE.md, "Cost per
    // lead"): a local attempt runs inside an uncommitted workflow task, so a lost worker would have
    // its decisions made again, possibly towards another buyer after a send.
    const { deliverAttempt } = proxyActivities<DeliveryActivities>({
      // Room for a read-back and the send (each within the endpoint's timeout) and the report after it.
      startToCloseTimeout: 2 * endpoint.timeoutMs + 15_000,
      retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' },
      // Never cancelled (see below); kept so an attempt scheduled by older code waits for its answer too.
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    });
    // The check's breaker state serves the first send only (later ones come after a wait).
    let seen = breaker;
    let firstAttemptAt: number | undefined;
    let received = false;
    // Read back before the next send: set by an ambiguous outcome, cleared once a lookup ran or a send succeeded.
    let readBackDue = false;
    let deferrals = 0;
    let throttleNoted = false;
    const receive = () => {
      if (received) return;
      received = true;
      view.received = true;
      if (endpoint.role === 'accept') onReceived();
    };
    const result = (delivered: boolean, code: string, reason: string): EndpointResult => ({ delivered, received, code, reason });
    for (let attempt = 1; ; ) {
      if (this.journal.refused) {
        view.status = received ? 'ambiguous' : 'failed';
        this.touch();
        return result(false, 'journal_refused', 'the delivery log refused this lead');
      }
      view.status = 'delivering';
      delete view.nextAttemptAt;
      this.touch();
      let answer: AttemptResult;
      try {
        // An attempt once scheduled always runs to its result, even when the buyer's turn is
        // cancelled: a worker lost mid-send shows up as an `interrupted` record in that result
        // (the next execution writes it), whereas a cancelled activity would hide it.
        answer = await CancellationScope.nonCancellable(() => deliverAttempt({
          leadId: this.input.leadId,
          sourceId: this.input.sourceId,
          receivedAt: this.input.receivedAt,
          ...(this.input.clientId ? { clientId: this.input.clientId } : {}),
          lead: this.lead,
          buyerId: endpoint.buyerId,
          endpointId: endpoint.endpointId,
          version: endpoint.version,
          attempt,
          ...(readBackDue ? { readBack: true } : {}),
          ...(holds() ? { held: true } : {}),
          ...(seen ? { breaker: seen } : {}),
          ...(turnEndsAt !== undefined && !holds() ? { turnEndsAt } : {}),
        }));
        seen = undefined;
      } catch (error) {
        if (isCancellation(error)) return this.cancelled(view, received);
        // The activity only fails for a fault of ours it could not turn into a value: an attempt
        // that did not happen. It waits like a transient answer, on the endpoint's schedule.
        answer = this.internalFailure(endpoint, attempt, error);
      }
      for (const lost of answer.interrupted ?? []) {
        // An execution of this attempt never reported back: it may have sent the request.
        this.journal.add({ type: 'attempt', at: lost.finishedAt, ...lost });
        receive();
      }
      if (answer.throttled) {
        // Beyond the endpoint's rate: not an attempt, not charged; the lead waits for its send slot
        // (held for it in the store), durably. Beyond the freshness deadline the turn ends meanwhile.
        const { waitMs, rate } = answer.throttled;
        view.status = 'throttled';
        view.lastCode = 'throttled';
        view.lastReason = answer.reason;
        view.nextAttemptAt = Date.now() + waitMs;
        if (!throttleNoted) {
          throttleNoted = true;
          this.decide('throttled', `${answer.reason}: the lead waits for it`, endpoint.buyerId, `throttled:${endpoint.buyerId}`, endpoint.endpointId);
        }
        if (holds()) this.expectBy(Date.now() + waitMs + endpoint.timeoutMs + this.slack);
        this.touch();
        this.journal.kick();
        try {
          await sleep(waitMs, { summary: `throttled: waiting ${formatDuration(waitMs)} for a send slot of ${endpoint.endpointId} (${rate})` });
        } catch (error) {
          if (!isCancellation(error)) throw error;
          if (answer.throttled.reserved) {
            // The turn ended: the slot goes back to the leads behind this one (best effort).
            const id = attemptId(this.input.leadId, endpoint.endpointId, attempt);
            await CancellationScope.nonCancellable(() => (this.beside?.bestEffort ?? this.bestEffort).releaseSendSlot({ endpointId: endpoint.endpointId, attemptId: id })).catch(() => undefined);
          }
          return this.cancelled(view, received);
        }
        continue;
      }
      if (answer.deferred) {
        // Our own fault before the send (store or Temporal unreachable): not an attempt, not charged.
        deferrals++;
        const delay = Math.min(answer.deferred.retryInMs * 2 ** Math.min(deferrals - 1, 4), DEFERRED_MAX_MS);
        view.status = 'backoff';
        view.lastCode = answer.deferred.code;
        view.lastReason = answer.deferred.reason;
        view.nextAttemptAt = Date.now() + delay;
        this.touch();
        try {
          await sleep(delay, { summary: `waiting ${formatDuration(delay)}: ${answer.deferred.code} (${endpoint.endpointId}, attempt ${attempt} not made)` });
        } catch (error) {
          if (isCancellation(error)) return this.cancelled(view, received);
          throw error;
        }
        continue;
      }
      deferrals = 0;
      if (answer.unreported) {
        // Passed on as the attempt built it, `countsAgainstEndpoint` included (absent in results
        // recorded by older code: reportToBreaker then decides by the code, see healthOf).
        const report = answer.unreported;
        // Best effort: the breaker misses one report rather than the lead waiting on it.
        await this.inTurn((this.beside?.bestEffort ?? this.bestEffort).reportToBreaker(report)).catch(() => undefined);
      }
      if (answer.skipped) {
        view.status = 'skipped';
        view.lastCode = answer.code;
        view.lastReason = answer.reason;
        this.decide('skipped', `skipped ${endpoint.endpointId}: ${answer.reason}`, endpoint.buyerId, `skipped:${endpoint.buyerId}:${answer.code}`, endpoint.endpointId);
        return result(false, answer.code, answer.reason);
      }
      view.attempts = attempt;
      firstAttemptAt ??= answer.record.startedAt;
      const retryable = answer.outcome === 'transient' || answer.outcome === 'unknown';
      const final = !retryable || endpoint.backoffMs[attempt - 1] === undefined;
      if (answer.record.attemptId) this.journal.add({ type: 'attempt', at: answer.record.finishedAt, firstAttemptAt, final, ...answer.record });
      else this.decide('attempt_failed', `attempt ${attempt} at ${endpoint.endpointId} did not happen: ${answer.reason}`, endpoint.buyerId, undefined, endpoint.endpointId);
      view.lastCode = answer.code;
      view.lastReason = answer.reason;
      if (answer.status !== undefined) view.lastStatus = answer.status;
      else delete view.lastStatus;
      if (answer.outcome === 'unknown' || (answer.interrupted?.length ?? 0) > 0) readBackDue = true;
      else if (answer.record.readBack || answer.outcome === 'success') readBackDue = false;
      if (answer.outcome === 'success') {
        this.deliveredEndpoints.add(endpoint.endpointId);
        received = true;
        view.received = true;
        view.status = 'delivered';
        this.touch();
        return result(true, answer.code, answer.reason);
      }
      if (answer.outcome === 'unknown') receive();
      if (answer.outcome === 'permanent') {
        view.status = received ? 'ambiguous' : 'failed';
        this.touch();
        return result(false, answer.code, answer.reason);
      }
      const step = endpoint.backoffMs[attempt - 1];
      if (step === undefined) {
        view.status = answer.outcome === 'unknown' || received ? 'ambiguous' : 'failed';
        this.touch();
        return result(false, answer.outcome === 'unknown' ? 'ambiguous' : 'retries_exhausted', `${attempt} attempts, last: ${answer.code}`);
      }
      const delay = Math.max(step, answer.retryAfterMs ?? 0);
      view.status = 'backoff';
      view.nextAttemptAt = Date.now() + delay;
      if (holds()) this.expectBy(Date.now() + delay + endpoint.backoffMs.slice(attempt).reduce((a, b) => a + b, 0) + (endpoint.backoffMs.length - attempt + 1) * (endpoint.timeoutMs + 15_000) + this.slack);
      this.touch();
      this.journal.kick();
      try {
        await sleep(delay, { summary: `backoff ${formatDuration(delay)} after ${answer.code} (${endpoint.endpointId}, attempt ${attempt})` });
      } catch (error) {
        if (isCancellation(error)) return this.cancelled(view, received);
        throw error;
      }
      attempt++;
    }
  }

  /**
   * Local activities running side by side (breaker reports of several endpoints) are handed back
   * in the order they were scheduled. On a first execution their results arrive in the order they
   * finish; on replay, in the order they were scheduled: code acting on them as they arrive would
   * issue its commands in another order on replay (nondeterminism). Each waits for the ones
   * scheduled before it. Runs before the lean shape keep their order as recorded.
   */
  private inTurn<T>(work: Promise<T>): Promise<T> {
    if (!this.lean) return work;
    const before = this.localTurn;
    const handed = work.then(
      async (value) => {
        await before;
        return value;
      },
      async (error: unknown) => {
        await before;
        throw error;
      },
    );
    this.localTurn = handed.then(() => undefined, () => undefined);
    return handed;
  }

  /** An attempt activity that failed (not a buyer's answer): recorded as a decision, retried on the schedule. */
  private internalFailure(endpoint: PlanEndpoint, attempt: number, error: unknown): AttemptResult {
    const now = Date.now();
    const reason = `the attempt failed inside our system: ${errorMessage(error)}`;
    const record: AttemptRecord = { attemptId: '', leadId: this.input.leadId, sourceId: this.input.sourceId, buyerId: endpoint.buyerId, endpointId: endpoint.endpointId, kind: endpoint.kind, role: endpoint.role, attempt, startedAt: now, finishedAt: now, latencyMs: 0, outcome: 'transient', code: 'internal_error', reason };
    return { outcome: 'transient', code: 'internal_error', reason, record };
  }

  private cancelled(view: EndpointView, received: boolean): EndpointResult {
    view.status = received ? 'ambiguous' : 'cancelled';
    delete view.nextAttemptAt;
    this.touch();
    return { delivered: false, received, cancelled: true, code: 'cancelled', reason: 'cancelled: the lead moved on' };
  }

  private deadLetter(reasonCode: DeadLetterReason, reason: string, heldBy?: string): void {
    this.reason = reason;
    this.reasonCode = reasonCode;
    this.deadLetteredAt = Date.now();
    if (heldBy) this.heldBy = heldBy;
    this.decide('dead_lettered', `no buyer took the lead: ${reason}`, heldBy, `dead_lettered:${reasonCode}`, undefined, true);
    this.setStatus('dead_lettered', reason, undefined, reasonCode);
    this.journal.kick();
  }

  private discard(reason: string, by: string): void {
    this.reason = reason;
    this.decide('discarded', `discarded by ${by}: ${reason}`, undefined, 'discarded');
    this.setStatus('discarded', reason);
  }

  private async alertInternalError(reason: string): Promise<void> {
    await (this.beside?.bestEffort ?? this.bestEffort)
      .raiseLeadAlert({
        leadId: this.input.leadId,
        type: 'lead_internal_error',
        title: `Lead ${this.input.leadId} dead-lettered by an internal error`,
        message: `${reason}. The lead waits as a dead letter (reason internal_error): redeliver it once the cause is fixed (POST /v1/admin/leads/${this.input.leadId}/redeliver).`,
        dedupeKey: `internal_${this.input.leadId}_${this.decisions.length}`,
      })
      .catch(() => undefined);
  }

  private async alertRefusedJournal(): Promise<void> {
    await (this.beside?.bestEffort ?? this.bestEffort)
      .raiseLeadAlert({
        leadId: this.input.leadId,
        type: 'journal_conflict',
        title: `Delivery log refused the entries of lead ${this.input.leadId}`,
        message: `${this.journal.refused ?? 'journal conflict'}. The log already holds different entries for this lead id (most likely a lead re-posted after Temporal's retention). Deliveries of this run are in its workflow history only; nothing further is sent.`,
        dedupeKey: `journal_${this.input.leadId}`,
      })
      .catch(() => undefined);
  }

  private decide(decision: string, reason: string, buyerId?: string, tag?: string, endpointId?: string, hold = false): void {
    const at = Date.now();
    this.decisions.push({ at, decision, ...(buyerId ? { buyerId } : {}), ...(endpointId ? { endpointId } : {}), reason });
    this.journal.add({ type: 'decision', at, decision, ...(buyerId ? { buyerId } : {}), ...(endpointId ? { endpointId } : {}), reason });
    if (tag) {
      this.decisionTags.push(tag);
      this.upsert([{ key: SA.LeadDecisions, value: boundedKeywords(this.decisionTags) }], hold);
    }
    this.touch();
  }

  private setStatus(status: LeadStatus, reason?: string, buyerId?: string, reasonCode?: DeadLetterReason, hold = false): void {
    this.status = status;
    this.upsert([{ key: SA.LeadStatus, value: status }], hold);
    this.journal.add({
      type: 'status',
      at: Date.now(),
      status,
      ...(buyerId ? { buyerId } : {}),
      ...(reason ? { reason } : {}),
      ...(reasonCode ? { reasonCode, buyersTried: [...this.buyersTried], ...(this.heldBy ? { heldBy: this.heldBy } : {}) } : {}),
    });
    this.touch();
  }

  /**
   * The lead's horizon: when it should be terminal by (LeadExpectedBy). Moved only later, and only
   * by more than a minute; operators list and are alerted about leads past it (stuck).
   */
  private expectBy(at: number, hold = false): void {
    if (!this.withExpectedBy || (this.expectedBy !== undefined && at < this.expectedBy + this.slack)) return;
    this.expectedBy = at;
    this.upsert([{ key: SA.LeadExpectedBy, value: new Date(at) }], hold);
  }

  /**
   * Search attributes. Runs before the lean shape upsert each change at once. Lean runs may
   * `hold` a change for the next upsert, at points where the code itself upserts again in the
   * same synchronous step (or, for the first status, right after the plan): fewer upsert events,
   * same values. Explicit on purpose: a flush timed by microtasks would depend on how the
   * activation's jobs are batched, which differs on replay.
   */
  private upsert(pairs: SearchAttributeUpdatePair[], hold = false): void {
    if (!this.lean) {
      upsertSearchAttributes(pairs);
      return;
    }
    for (const pair of pairs) this.pendingAttributes.set(pair.key.name, pair);
    if (!hold) this.flushAttributes();
  }

  private flushAttributes(): void {
    if (this.pendingAttributes.size === 0) return;
    const pairs = [...this.pendingAttributes.values()];
    this.pendingAttributes.clear();
    upsertSearchAttributes(pairs);
  }

  /** Keeps `updatedAt` and the UI's "current details" in step with the state. */
  private touch(): void {
    this.updatedAt = Date.now();
    const lines = [`**${this.status}**${this.buyerId && this.status === 'delivered' ? ` to ${this.buyerId}` : ''}${this.heldBy && this.status !== 'delivered' ? ` (held by ${this.heldBy})` : ''}${this.reason ? ` — ${this.reason}` : ''}`];
    for (const e of this.endpoints.values()) {
      const next = e.nextAttemptAt ? `, next attempt ${new Date(e.nextAttemptAt).toISOString()}` : '';
      lines.push(`- ${e.endpointId} (${e.kind}, ${e.role}, buyer ${e.buyerId}): ${e.status}, ${e.attempts} attempt(s)${e.lastCode ? `, last ${e.lastCode}` : ''}${next}`);
    }
    setCurrentDetails(lines.join('\n'));
  }
}

export async function deliverLead(input: DeliverLeadInput, options: DeliverLeadOptions): Promise<LeadOutcome> {
  const run = new LeadRun(input, options);
  run.installHandlers();
  return run.execute();
}
