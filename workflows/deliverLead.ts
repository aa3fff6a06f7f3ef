/**
 * deliverLead: one workflow per lead (id `lead-<leadId>`). Deterministic, no I/O: every
 * side effect is an activity. It loads the routing plan, then walks the waterfall: each buyer's
 * `accept` endpoints are delivered in parallel, each in its own attempt loop with durable backoff
 * timers; the buyer either takes the lead (then its `notify` endpoints get their copies) or the
 * lead moves on to the next buyer, and everything still pending at the previous buyer is
 * cancelled. Every attempt and decision goes to the delivery log through the journal.
 */
import {
  ActivityCancellationType,
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
  DeliverLeadInput,
  EndpointView,
  JournalEntry,
  LeadStatus,
  LeadView,
  PlanBuyer,
  PlanEndpoint,
} from '../shared/delivery';
import { formatDuration } from '../shared/durations';
import { SA } from '../shared/search-attributes';
import { leadStatusQuery } from './messages';

export interface DeliverLeadOptions {
  /** Task queue of the log service's worker. */
  logTaskQueue: string;
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

class LeadRun {
  private status: LeadStatus = 'accepted';
  private buyerId: string | undefined;
  private updatedAt: number;
  private readonly endpoints = new Map<string, EndpointView>();
  private readonly decisions: LeadView['decisions'] = [];
  private readonly buyersTried: string[] = [];
  private readonly journal: Journal;
  private readonly delivery: DeliveryActivities;

  constructor(
    private readonly input: DeliverLeadInput,
    options: DeliverLeadOptions,
  ) {
    this.updatedAt = Date.now();
    // A local activity: one store read, no task-queue round trip.
    this.delivery = proxyLocalActivities<DeliveryActivities>({
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
    return {
      leadId: this.input.leadId,
      sourceId: this.input.sourceId,
      status: this.status,
      ...(this.buyerId ? { buyerId: this.buyerId } : {}),
      receivedAt: this.input.receivedAt,
      updatedAt: this.updatedAt,
      endpoints: [...this.endpoints.values()].map((e) => ({ ...e })),
      decisions: [...this.decisions],
    };
  }

  async execute(): Promise<LeadOutcome> {
    const { leadId, sourceId, receivedAt, clientId, lead } = this.input;
    this.journal.add({ type: 'intake', at: receivedAt, sourceId, ...(clientId ? { clientId } : {}), lead });
    this.setStatus('delivering');
    const plan = await this.delivery.loadRoutingPlan({ sourceId });
    for (const { buyerId, reason } of plan.unroutable) this.decide('skipped', reason, buyerId);

    let outcome: LeadOutcome | undefined;
    for (const buyer of plan.buyers) {
      const result = await this.tryBuyer(buyer);
      if (result.accepted) {
        outcome = { leadId, status: 'delivered', buyerId: buyer.buyerId };
        break;
      }
      this.decide('failover', `${buyer.buyerId} did not take the lead: ${result.reason}`, buyer.buyerId);
    }
    if (!outcome) {
      const reason = plan.buyers.length ? 'no buyer took the lead' : 'the waterfall has no buyer that can be delivered to';
      this.setStatus('failed', reason);
      outcome = { leadId, status: 'failed', reason };
    }
    await this.journal.flush();
    return outcome;
  }

  /** One buyer's turn: accept endpoints in parallel; accepted or not, decided by its rule. */
  private async tryBuyer(buyer: PlanBuyer): Promise<{ accepted: boolean; reason: string }> {
    this.buyersTried.push(buyer.buyerId);
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
    const decided = () =>
      buyer.accept === 'all' ? failed() > 0 || delivered() === accept.length : delivered() > 0 || failed() === accept.length;
    await condition(decided);

    const accepted = buyer.accept === 'all' ? delivered() === accept.length : delivered() > 0;
    if (!accepted) {
      scope.cancel();
      await Promise.all(tasks);
      const failure = accept.map((e) => results.get(e.endpointId)).find((r) => r && !r.delivered && !r.cancelled);
      return { accepted: false, reason: failure ? `${failure.code} (${failure.reason})` : 'no accept endpoint succeeded' };
    }
    this.buyerId = buyer.buyerId;
    this.setStatus('delivered', undefined, buyer.buyerId);
    this.decide('accepted', `${buyer.buyerId} took the lead`, buyer.buyerId);
    notify.forEach(start);
    this.journal.kick();
    // Remaining endpoints of the accepting buyer (notify copies, other `any` endpoints) keep
    // their own retries; the workflow ends when they are done.
    await Promise.all(tasks);
    return { accepted: true, reason: 'accepted' };
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
    for (let attempt = 1; ; attempt++) {
      view.status = 'delivering';
      view.attempts = attempt;
      delete view.nextAttemptAt;
      this.touch();
      let result: AttemptResult;
      try {
        result = await deliverAttempt({
          leadId: this.input.leadId,
          sourceId: this.input.sourceId,
          receivedAt: this.input.receivedAt,
          ...(this.input.clientId ? { clientId: this.input.clientId } : {}),
          lead: this.input.lead,
          buyerId: endpoint.buyerId,
          endpointId: endpoint.endpointId,
          version: endpoint.version,
          attempt,
        });
      } catch (error) {
        if (isCancellation(error)) return this.cancelled(view);
        throw error;
      }
      this.journal.add({ type: 'attempt', at: result.record.finishedAt, ...result.record });
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

  private decide(decision: string, reason: string, buyerId?: string): void {
    const at = Date.now();
    this.decisions.push({ at, decision, ...(buyerId ? { buyerId } : {}), reason });
    this.journal.add({ type: 'decision', at, decision, ...(buyerId ? { buyerId } : {}), reason });
    this.touch();
  }

  private setStatus(status: LeadStatus, reason?: string, buyerId?: string): void {
    this.status = status;
    upsertSearchAttributes([{ key: SA.LeadStatus, value: status }]);
    this.journal.add({ type: 'status', at: Date.now(), status, ...(buyerId ? { buyerId } : {}), ...(reason ? { reason } : {}) });
    this.touch();
  }

  /** Keeps `updatedAt` and the UI's "current details" in step with the state. */
  private touch(): void {
    this.updatedAt = Date.now();
    const lines = [`**${this.status}**${this.buyerId ? ` to ${this.buyerId}` : ''}`];
    for (const e of this.endpoints.values()) {
      const next = e.nextAttemptAt ? `, next attempt ${new Date(e.nextAttemptAt).toISOString()}` : '';
      lines.push(`- ${e.endpointId} (${e.kind}, ${e.role}): ${e.status}, ${e.attempts} attempt(s)${e.lastCode ? `, last ${e.lastCode}` : ''}${next}`);
    }
    setCurrentDetails(lines.join('\n'));
  }
}

export async function deliverLead(input: DeliverLeadInput, options: DeliverLeadOptions): Promise<LeadOutcome> {
  const run = new LeadRun(input, options);
  setHandler(leadStatusQuery, () => run.view());
  return run.execute();
}
