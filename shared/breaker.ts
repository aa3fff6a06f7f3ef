/**
 * The circuit breaker of one endpoint, as a pure state machine (the breaker workflow wraps it;
 * unit tests drive it directly). Closed → open after `threshold` consecutive failures; open →
 * half-open after a cool-down that doubles on each consecutive trip (capped); half-open lets one
 * real delivery through as a probe: success closes, failure reopens. Operators can force it open
 * (it then stays open until reset) or reset it. Pure: safe in workflow code.
 */
export type BreakerStateName = 'closed' | 'open' | 'half_open';

export interface BreakerSettings {
  threshold: number;
  coolDownMs: number;
}

export interface BreakerSnapshot extends BreakerSettings {
  endpointId: string;
  buyerId: string;
  state: BreakerStateName;
  consecutiveFailures: number;
  /** Trips since the breaker was last closed by a successful probe or a reset. */
  trips: number;
  openedAt?: number;
  /** When an open breaker goes half-open (absent when forced open by an operator). */
  halfOpenAt?: number;
  forced?: boolean;
  lastError?: { code: string; reason: string; at: number; leadId?: string };
  probe?: { leadId: string; grantedAt: number };
  counts: { successes: number; failures: number; opened: number };
  /** Finish time of the latest success known to the breaker: failures that ended before it are not "consecutive". */
  lastSuccessAt?: number;
  /** Finish times of the failures since `lastSuccessAt`: the newest `threshold` of them (enough to decide a trip). */
  streak?: number[];
  /** Continue as new after this long even when nothing else asks for it (so running breakers pick up new code). */
  runMaxMs?: number;
}

/** What a delivery attempt reports: `neutral` answers (a 400 about one lead) change nothing. */
export interface OutcomeReport {
  leadId: string;
  attemptId: string;
  health: 'success' | 'failure' | 'neutral';
  code: string;
  reason: string;
  at: number;
  /** The endpoint's settings at the time (changes apply from the next report). */
  settings: BreakerSettings;
  /**
   * The latest success the reporting worker saw at this endpoint (finish time, ms). Successes at a
   * healthy-looking breaker are not signalled one by one; riding on the next failure report, this
   * keeps a failure that follows a success from being counted as consecutive with older ones.
   */
  lastSuccessAt?: number;
}

export type BreakerEvent =
  | { type: 'opened'; reason: string; coolDownMs?: number }
  | { type: 'half_open' }
  | { type: 'closed'; reason: string };

export const MAX_COOL_DOWN_MS = 6 * 3_600_000;
/** A granted probe that never reports back is released after this long. */
export const PROBE_TIMEOUT_MS = 2 * 60_000;

/**
 * The breaker health of an attempt's outcome. Rules about every kind live here: a success is a
 * success; a cancelled attempt, an execution lost with our worker (`interrupted`) and a failed
 * read-back (`read_back_*`: nothing was sent) say nothing about the endpoint; a buyer that did not
 * answer, or asked to be tried later (transient, unknown), is unhealthy. For a permanent answer the
 * kind decided (`countsAgainstEndpoint` of its classification: the endpoint's credentials, address
 * or account, vs. one lead's data being refused).
 *
 * `countsAgainstEndpoint` is absent only in results recorded by older code (a workflow history
 * replayed with activity results from before the flag existed): then the code decides, as it did.
 */
export function healthOf(outcome: 'success' | 'transient' | 'permanent' | 'unknown', code: string, countsAgainstEndpoint: boolean | undefined): OutcomeReport['health'] {
  if (outcome === 'success') return 'success';
  // Cancelled by us, or an execution lost with our worker: says nothing about the endpoint.
  if (code === 'cancelled' || code === 'interrupted' || code.startsWith('read_back_')) return 'neutral';
  if (outcome === 'transient' || outcome === 'unknown') return 'failure';
  return (countsAgainstEndpoint ?? legacyCountsAgainstEndpoint(code)) ? 'failure' : 'neutral';
}

/**
 * FALLBACK ONLY, for outcomes recorded before kinds decided `countsAgainstEndpoint` (an attempt
 * result or breaker report in a workflow history written by older code): whether a permanent code
 * was the endpoint's fault, by the vocabulary of code names the breaker used to count. New
 * outcomes never come here: each kind's `classify` decides. Do not extend it.
 */
export function legacyCountsAgainstEndpoint(code: string): boolean {
  return LEGACY_ENDPOINT_FAULT.test(code);
}
const LEGACY_ENDPOINT_FAULT = /^(http_(401|403|404|405|410)|redirect_refused|blocked_address|invalid_url|.*(auth|unauthori[sz]ed|forbidden|api_key|invalid_token|invalid_client|invalid_grant|domain_not_verified|invalid_from|not_shared|insufficient_scope|session|twilio_(20003|21606|21608)).*)$/;

export class BreakerMachine {
  constructor(public s: BreakerSnapshot) {}

  static initial(endpointId: string, buyerId: string, settings: BreakerSettings): BreakerSnapshot {
    return { endpointId, buyerId, state: 'closed', consecutiveFailures: 0, trips: 0, ...settings, counts: { successes: 0, failures: 0, opened: 0 } };
  }

  coolDownFor(trips: number): number {
    return Math.min(this.s.coolDownMs * 2 ** Math.max(0, trips - 1), MAX_COOL_DOWN_MS);
  }

  /**
   * Applies one report. Consecutive failures are counted in the order the attempts finished, not
   * the order reports arrive: a success (reported, or carried by a failure report as
   * `lastSuccessAt`) clears every failure that finished before it, so concurrent attempts cannot
   * make a few scattered errors look like a streak.
   */
  report(report: OutcomeReport, now: number): BreakerEvent[] {
    this.s.threshold = report.settings.threshold;
    this.s.coolDownMs = report.settings.coolDownMs;
    if (report.lastSuccessAt !== undefined) this.seeSuccess(report.lastSuccessAt);
    if (report.health === 'neutral') {
      if (this.s.probe?.leadId === report.leadId) delete this.s.probe; // the probe got an answer about its lead: let another try
      return [];
    }
    const isProbe = this.s.state === 'half_open' && this.s.probe?.leadId === report.leadId;
    if (report.health === 'success') {
      this.s.counts.successes++;
      this.seeSuccess(report.at);
      // While open, a late success of an attempt started before the trip proves little: wait for the probe.
      if (this.s.state === 'half_open') return [this.close(`delivery ${report.attemptId} succeeded${isProbe ? ' (probe)' : ''}`)];
      return [];
    }
    this.s.counts.failures++;
    this.s.lastError = { code: report.code, reason: report.reason, at: report.at, leadId: report.leadId };
    if (this.s.state === 'half_open') {
      this.s.consecutiveFailures++;
      return [this.open(now, `probe ${report.attemptId} failed: ${report.code}`)];
    }
    if (this.s.lastSuccessAt !== undefined && report.at < this.s.lastSuccessAt) return []; // finished before a known success
    this.s.streak = [...(this.s.streak ?? []), report.at].sort((a, b) => a - b).slice(-Math.max(1, this.s.threshold));
    this.s.consecutiveFailures++;
    if (this.s.state === 'closed' && this.s.consecutiveFailures >= this.s.threshold) {
      return [this.open(now, `${this.s.consecutiveFailures} consecutive failures, last ${report.code}`)];
    }
    return [];
  }

  private seeSuccess(at: number): void {
    if (this.s.lastSuccessAt !== undefined && at <= this.s.lastSuccessAt) return;
    this.s.lastSuccessAt = at;
    // Failures that finished after this success stay consecutive; older ones (and counts from
    // snapshots that kept no times) are cleared by it.
    this.s.streak = (this.s.streak ?? []).filter((t) => t > at);
    this.s.consecutiveFailures = this.s.streak.length;
  }

  /** Half-open lets exactly one delivery through; closed lets all; open none. */
  claimProbe(leadId: string, now: number): boolean {
    if (this.s.state === 'closed') return true;
    if (this.s.state !== 'half_open') return false;
    if (this.s.probe && this.s.probe.leadId !== leadId && now - this.s.probe.grantedAt < PROBE_TIMEOUT_MS) return false;
    this.s.probe = { leadId, grantedAt: now };
    return true;
  }

  /** Called when the cool-down timer fires. */
  tick(now: number): BreakerEvent[] {
    if (this.s.state === 'open' && !this.s.forced && this.s.halfOpenAt !== undefined && now >= this.s.halfOpenAt) {
      this.s.state = 'half_open';
      delete this.s.probe;
      return [{ type: 'half_open' }];
    }
    return [];
  }

  operatorOpen(now: number, reason: string): BreakerEvent[] {
    const events = this.s.state === 'open' ? [] : [this.open(now, reason)];
    this.s.forced = true;
    delete this.s.halfOpenAt;
    return events;
  }

  operatorReset(reason: string): BreakerEvent[] {
    const wasOpen = this.s.state !== 'closed';
    this.s.trips = 0;
    this.s.consecutiveFailures = 0;
    this.s.streak = [];
    const closed = this.close(reason);
    return wasOpen ? [closed] : [];
  }

  private open(now: number, reason: string): BreakerEvent {
    this.s.state = 'open';
    this.s.trips++;
    this.s.counts.opened++;
    this.s.openedAt = now;
    const coolDownMs = this.coolDownFor(this.s.trips);
    this.s.halfOpenAt = now + coolDownMs;
    delete this.s.probe;
    return { type: 'opened', reason, coolDownMs };
  }

  private close(reason: string): BreakerEvent {
    this.s.state = 'closed';
    this.s.consecutiveFailures = 0;
    this.s.streak = [];
    this.s.trips = 0;
    delete this.s.openedAt;
    delete this.s.halfOpenAt;
    delete this.s.forced;
    delete this.s.probe;
    return { type: 'closed', reason };
  }
}

export const breakerWorkflowId = (endpointId: string): string => `breaker-${endpointId}`;
