/**
 * deliverLead: one workflow per lead (id `lead-<leadId>`). Deterministic, no I/O: every side
 * effect is an activity. It loads the routing plan and walks the source's waterfall. Each buyer
 * is checked first (paused? breakers open?) and skipped with the reason on record; otherwise its
 * `accept` endpoints are delivered in parallel in a cancellation scope, each in its own attempt
 * loop with durable backoff timers. The buyer takes the lead (then its `notify` endpoints get
 * their copies) or the lead moves on — after a permanent failure, an open breaker, a spent
 * retry schedule or the source's freshness deadline — and everything still pending at that buyer
 * is cancelled, so no lead reaches two buyers. A lead no buyer took is dead-lettered and waits
 * for an operator (redeliver, discard) up to the retention. Every attempt and decision goes to
 * the delivery log through the journal.
 */
import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { DeliveryActivities } from '../activities/delivery';
import type { LogActivities } from '../services/log/journal';
import type {
  AttemptResult,
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
import type { Lead } from '../shared/lead';
import { formatDuration } from '../shared/durations';
import { SA } from '../shared/search-attributes';
import { discardUpdate, leadStatusQuery, redeliverUpdate, type DiscardRequest, type RedeliverRequest } from './messages';

export interface DeliverLeadOptions {
  /** Task queue of the log service's worker. */
  logTaskQueue: string;
  /** How long a dead-lettered lead waits for an operator before it is discarded (default 30 days). */
  deadLetterRetentionMs?: number;
}

export interface LeadOutcome {
  leadId: string;
  status: LeadStatus;
  buyerId?: string;
  reason?: string;
}

interface EndpointResult {
  delivered: boolean;
  cancelled?: boolean;
  code: string;
  reason: string;
}

const DEFAULT_RETENTION_MS = 30 * 86_400_000;

/**
 * A lead's journal: entries are buffered and written in order, one batch per log activity.
 * The workflow kicks a write before every long wait (a backoff, the notify copies after
 * acceptance, an operator) and flushes at the end. An attempt is at most ~10 s, so entries are
 * never held longer than that, and a lead delivered first time costs one journal write. Nothing
 * buffered can be lost: the buffer is workflow state, rebuilt by replay after a crash.
 */
class Journal {
  private seq = 0;
  private head = '';
  private pending: JournalEntry[] = [];
  private writing: Promise<void> | undefined;

  constructor(
    private readonly leadId: string,
    private readonly sourceId: string,
    private readonly log: LogActivities,
  ) {}

  add(entry: JournalEntry): void {
    this.pending.push(entry);
  }

  /** Starts writing what is buffered (no-op while a write is in flight: it drains the buffer too). */
  kick(): void {
    if (this.pending.length === 0) return;
    // Journal writes must outlive a cancelled buyer scope: they run in a non-cancellable one.
    this.writing ??= CancellationScope.nonCancellable(() => this.drain());
  }

  private async drain(): Promise<void> {
    while (this.pending.length) {
      const entries = this.pending.splice(0);
      const result = await this.log.appendJournal({ leadId: this.leadId, sourceId: this.sourceId, firstSeq: this.seq + 1, prevHash: this.head, entries });
      this.seq += entries.length;
      this.head = result.head;
    }
    this.writing = undefined;
  }

  async flush(): Promise<void> {
    this.kick();
    while (this.writing) await this.writing;
  }
}

type OperatorCommand = ({ type: 'redeliver' } & RedeliverRequest) | ({ type: 'discard' } & DiscardRequest);

class LeadRun {
  private status: LeadStatus = 'accepted';
  private lead: Lead;
  private buyerId: string | undefined;
  private reason: string | undefined;
  private reasonCode: DeadLetterReason | undefined;
  private deadLetteredAt: number | undefined;
  private updatedAt: number;
  private command: OperatorCommand | undefined;
  private readonly endpoints = new Map<string, EndpointView>();
  private readonly decisions: LeadView['decisions'] = [];
  private readonly decisionTags: string[] = [];
  private readonly buyersTried: string[] = [];
  private readonly journal: Journal;
  private readonly local: DeliveryActivities;

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
    const log = proxyActivities<LogActivities>({
      taskQueue: options.logTaskQueue,
      startToCloseTimeout: '30s',
      retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
    });
    this.journal = new Journal(input.leadId, input.sourceId, log);
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
      ...(notifyEndpoints.length
        ? {
            notify: {
              delivered: notifyEndpoints.filter((e) => e.status === 'delivered').length,
              failed: notifyEndpoints.filter((e) => e.status === 'failed' || e.status === 'skipped').length,
              pending: notifyEndpoints.filter((e) => !['delivered', 'failed', 'skipped', 'cancelled'].includes(e.status)).length,
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
      return { status: 'delivering' };
    }, { validator: (_request: RedeliverRequest) => mustBeDeadLettered() });
    setHandler(discardUpdate, (request) => {
      this.command = { type: 'discard', ...request };
      return { status: 'discarded' };
    }, { validator: (request: DiscardRequest) => {
      mustBeDeadLettered();
      if (!request.reason) throw ApplicationFailure.nonRetryable('a reason is required', 'InvalidRequest');
    } });
  }

  async execute(): Promise<LeadOutcome> {
    const { leadId, sourceId, receivedAt, clientId } = this.input;
    this.journal.add({ type: 'intake', at: receivedAt, sourceId, ...(clientId ? { clientId } : {}), lead: this.lead });
    this.setStatus('delivering');
    let plan = await this.local.loadRoutingPlan({ sourceId });
    for (;;) {
      const walked = await this.walk(plan);
      if (walked.buyerId) {
        await this.journal.flush();
        return { leadId, status: 'delivered', buyerId: walked.buyerId };
      }
      this.deadLetter(walked.reasonCode, walked.reason);
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
      this.decide('redeliver', `redelivery by ${command.by}${command.buyerId ? ` to ${command.buyerId}` : ' through the waterfall'}`, command.buyerId);
      this.reason = undefined;
      this.reasonCode = undefined;
      this.deadLetteredAt = undefined;
      this.setStatus('delivering');
      plan = await this.local.loadRoutingPlan({ sourceId, ...(command.buyerId ? { onlyBuyerId: command.buyerId } : {}) });
    }
    await this.journal.flush();
    return { leadId, status: this.status, ...(this.reason ? { reason: this.reason } : {}) };
  }

  /** The waterfall: the first buyer that takes the lead wins. */
  private async walk(plan: RoutingPlan): Promise<{ buyerId?: string; reasonCode: DeadLetterReason; reason: string }> {
    const outcomes: string[] = [];
    for (const { buyerId, reason } of plan.unroutable) {
      this.decide('skipped', `skipped ${buyerId}: ${reason}`, buyerId, `skipped:${buyerId}:unroutable`);
      outcomes.push(`${buyerId}: ${reason}`);
    }
    let tried = 0;
    for (const buyer of plan.buyers) {
      const accept = buyer.endpoints.filter((e) => e.role === 'accept');
      const check = await this.local.checkBuyer({ buyerId: buyer.buyerId, endpointIds: buyer.endpoints.map((e) => e.endpointId) });
      if (check.paused) {
        this.decide('skipped', `skipped ${buyer.buyerId}: paused (${check.paused.reason})`, buyer.buyerId, `skipped:${buyer.buyerId}:paused`);
        outcomes.push(`${buyer.buyerId}: paused`);
        continue;
      }
      const open = accept.filter((e) => check.breakers[e.endpointId] === 'open').map((e) => e.endpointId);
      if (open.length && (buyer.accept === 'all' || open.length === accept.length)) {
        this.decide('skipped', `skipped ${buyer.buyerId}: breaker open on ${open.join(', ')}`, buyer.buyerId, `skipped:${buyer.buyerId}:breaker_open`);
        outcomes.push(`${buyer.buyerId}: breaker open`);
        continue;
      }
      tried++;
      const result = await this.tryBuyer(buyer, plan.freshnessMs);
      if (result.accepted) return { buyerId: buyer.buyerId, reasonCode: 'all_failed', reason: '' };
      this.decide('failover', `failed over from ${buyer.buyerId} after ${result.reason}`, buyer.buyerId, `failover:${buyer.buyerId}:${result.code}`);
      outcomes.push(`${buyer.buyerId}: ${result.code}`);
    }
    const reasonCode: DeadLetterReason = plan.buyers.length + plan.unroutable.length === 0 ? 'no_buyers' : tried === 0 ? 'all_skipped' : 'all_failed';
    return { reasonCode, reason: outcomes.length ? outcomes.join('; ') : 'the waterfall has no buyers' };
  }

  /** One buyer's turn: accept endpoints in parallel; accepted or not, decided by its rule or the freshness deadline. */
  private async tryBuyer(buyer: PlanBuyer, freshnessMs: number): Promise<{ accepted: boolean; code: string; reason: string }> {
    if (!this.buyersTried.includes(buyer.buyerId)) this.buyersTried.push(buyer.buyerId);
    upsertSearchAttributes([{ key: SA.BuyersTried, value: [...this.buyersTried] }, { key: SA.BuyerId, value: buyer.buyerId }]);
    this.decide('trying', `delivering to ${buyer.buyerId}`, buyer.buyerId);
    const accept = buyer.endpoints.filter((e) => e.role === 'accept');
    const notify = buyer.endpoints.filter((e) => e.role === 'notify');
    const results = new Map<string, EndpointResult>();
    const scope = new CancellationScope();
    const tasks: Array<Promise<void>> = [];
    const start = (endpoint: PlanEndpoint) =>
      tasks.push(scope.run(() => this.deliverEndpoint(endpoint).then((r) => void results.set(endpoint.endpointId, r))));

    accept.forEach(start);
    const delivered = () => accept.filter((e) => results.get(e.endpointId)?.delivered).length;
    const failed = () => accept.filter((e) => results.has(e.endpointId) && !results.get(e.endpointId)!.delivered).length;
    const isAccepted = () => (buyer.accept === 'all' ? delivered() === accept.length : delivered() > 0);
    const decided = () => isAccepted() || (buyer.accept === 'all' ? failed() > 0 : failed() === accept.length);
    const inTime = await condition(decided, freshnessMs, { summary: `freshness ${formatDuration(freshnessMs)} for ${buyer.buyerId}` });

    if (!isAccepted()) {
      // Moving on: cancel every pending retry and timer of this buyer. A send already on the wire
      // finishes first; if it was the one that made the buyer accept, the buyer has the lead.
      if (!inTime) this.decide('freshness', `${buyer.buyerId} did not take the lead within ${formatDuration(freshnessMs)}`, buyer.buyerId, `freshness:${buyer.buyerId}`);
      scope.cancel();
      await Promise.all(tasks);
      if (!isAccepted()) {
        const failure = accept.map((e) => results.get(e.endpointId)).find((r) => r && !r.delivered && !r.cancelled);
        if (!inTime) return { accepted: false, code: 'freshness_deadline', reason: `the freshness deadline (${formatDuration(freshnessMs)})` };
        return { accepted: false, code: failure?.code ?? 'failed', reason: failure ? `${failure.code} (${failure.reason})` : 'no accept endpoint succeeded' };
      }
    }
    this.buyerId = buyer.buyerId;
    this.setStatus('delivered', undefined, buyer.buyerId);
    this.decide('accepted', `${buyer.buyerId} took the lead`, buyer.buyerId, `accepted:${buyer.buyerId}`);
    if (scope.consideredCancelled) return { accepted: true, code: 'ok', reason: 'accepted late' };
    notify.forEach(start);
    this.journal.kick();
    // Remaining endpoints of the accepting buyer (notify copies, other `any` endpoints) keep
    // their own retries; the workflow ends when they are done.
    await Promise.all(tasks);
    return { accepted: true, code: 'ok', reason: 'accepted' };
  }

  /** The attempt loop of one endpoint: attempt → classify → durable backoff → next attempt. */
  private async deliverEndpoint(endpoint: PlanEndpoint): Promise<EndpointResult> {
    const view: EndpointView = { endpointId: endpoint.endpointId, buyerId: endpoint.buyerId, kind: endpoint.kind, role: endpoint.role, status: 'pending', attempts: 0 };
    this.endpoints.set(endpoint.endpointId, view);
    const { deliverAttempt } = proxyActivities<DeliveryActivities>({
      startToCloseTimeout: endpoint.timeoutMs + 15_000,
      retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' },
      // A send already on the wire is allowed to finish, and its answer is recorded, before the lead moves on.
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    });
    let firstAttemptAt: number | undefined;
    for (let attempt = 1; ; attempt++) {
      view.status = 'delivering';
      delete view.nextAttemptAt;
      this.touch();
      let result: AttemptResult;
      try {
        result = await deliverAttempt({
          leadId: this.input.leadId,
          sourceId: this.input.sourceId,
          receivedAt: this.input.receivedAt,
          ...(this.input.clientId ? { clientId: this.input.clientId } : {}),
          lead: this.lead,
          buyerId: endpoint.buyerId,
          endpointId: endpoint.endpointId,
          version: endpoint.version,
          attempt,
        });
      } catch (error) {
        if (isCancellation(error)) return this.cancelled(view);
        throw error;
      }
      if (result.skipped) {
        view.status = 'skipped';
        view.lastCode = result.code;
        view.lastReason = result.reason;
        this.decide('skipped', `skipped ${endpoint.endpointId}: ${result.reason}`, endpoint.buyerId, `skipped:${endpoint.buyerId}:${result.code}`, endpoint.endpointId);
        return { delivered: false, code: result.code, reason: result.reason };
      }
      view.attempts = attempt;
      firstAttemptAt ??= result.record.startedAt;
      const final = result.outcome !== 'transient' || endpoint.backoffMs[attempt - 1] === undefined;
      this.journal.add({ type: 'attempt', at: result.record.finishedAt, firstAttemptAt, final, ...result.record });
      view.lastCode = result.code;
      view.lastReason = result.reason;
      if (result.status !== undefined) view.lastStatus = result.status;
      else delete view.lastStatus;
      if (result.outcome === 'success') {
        view.status = 'delivered';
        this.touch();
        return { delivered: true, code: result.code, reason: result.reason };
      }
      if (result.outcome === 'permanent') {
        view.status = 'failed';
        this.touch();
        return { delivered: false, code: result.code, reason: result.reason };
      }
      const step = endpoint.backoffMs[attempt - 1];
      if (step === undefined) {
        view.status = 'failed';
        this.touch();
        return { delivered: false, code: 'retries_exhausted', reason: `${attempt} attempts, last: ${result.code}` };
      }
      const delay = Math.max(step, result.retryAfterMs ?? 0);
      view.status = 'backoff';
      view.nextAttemptAt = Date.now() + delay;
      this.touch();
      this.journal.kick();
      try {
        await sleep(delay, { summary: `backoff ${formatDuration(delay)} after ${result.code} (${endpoint.endpointId}, attempt ${attempt})` });
      } catch (error) {
        if (isCancellation(error)) return this.cancelled(view);
        throw error;
      }
    }
  }

  private cancelled(view: EndpointView): EndpointResult {
    view.status = 'cancelled';
    delete view.nextAttemptAt;
    this.touch();
    return { delivered: false, cancelled: true, code: 'cancelled', reason: 'cancelled: the lead moved on' };
  }

  private deadLetter(reasonCode: DeadLetterReason, reason: string): void {
    this.reason = reason;
    this.reasonCode = reasonCode;
    this.deadLetteredAt = Date.now();
    this.decide('dead_lettered', `no buyer took the lead: ${reason}`, undefined, `dead_lettered:${reasonCode}`);
    this.setStatus('dead_lettered', reason, undefined, reasonCode);
    this.journal.kick();
  }

  private discard(reason: string, by: string): void {
    this.reason = reason;
    this.decide('discarded', `discarded by ${by}: ${reason}`, undefined, 'discarded');
    this.setStatus('discarded', reason);
  }

  private decide(decision: string, reason: string, buyerId?: string, tag?: string, endpointId?: string): void {
    const at = Date.now();
    this.decisions.push({ at, decision, ...(buyerId ? { buyerId } : {}), ...(endpointId ? { endpointId } : {}), reason });
    this.journal.add({ type: 'decision', at, decision, ...(buyerId ? { buyerId } : {}), ...(endpointId ? { endpointId } : {}), reason });
    if (tag) {
      this.decisionTags.push(tag);
      upsertSearchAttributes([{ key: SA.LeadDecisions, value: [...this.decisionTags] }]);
    }
    this.touch();
  }

  private setStatus(status: LeadStatus, reason?: string, buyerId?: string, reasonCode?: DeadLetterReason): void {
    this.status = status;
    upsertSearchAttributes([{ key: SA.LeadStatus, value: status }]);
    this.journal.add({
      type: 'status',
      at: Date.now(),
      status,
      ...(buyerId ? { buyerId } : {}),
      ...(reason ? { reason } : {}),
      ...(reasonCode ? { reasonCode, buyersTried: [...this.buyersTried] } : {}),
    });
    this.touch();
  }

  /** Keeps `updatedAt` and the UI's "current details" in step with the state. */
  private touch(): void {
    this.updatedAt = Date.now();
    const lines = [`**${this.status}**${this.buyerId && this.status === 'delivered' ? ` to ${this.buyerId}` : ''}${this.reason ? ` — ${this.reason}` : ''}`];
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
