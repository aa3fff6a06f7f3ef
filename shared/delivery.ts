/**
 * The vocabulary shared by the workflow, the activities and the services: routing plan,
 * attempts, the journal (delivery log entries) and the lead's visible state.
 * Types and pure helpers only: the workflow bundle imports this file.
 */
import type { Caps, Schedule } from './buyer-controls';

export type { CapacityKey } from './buyer-controls';
import type { Lead } from './lead';
import type { ReturnDecidedStatus, ReturnRequestStatus } from './returns';

/**
 * success: the buyer took it. transient: it did not reach the buyer, or the buyer asked for a
 * retry (5xx, 408, 429, refused connection, DNS) — retried on the schedule. permanent: the buyer
 * refused it (400, 401, 403, 404, 422, hard bounce…) — never retried. unknown: it may have
 * reached the buyer (a timeout after the request was written, a reset after the buyer read it, a
 * worker lost mid-send) — the lead stays with that buyer and the same endpoint is retried with the
 * same idempotency key, reading back first where the kind can.
 */
export type OutcomeClass = 'success' | 'transient' | 'permanent' | 'unknown';
export const OUTCOME_CLASSES: readonly OutcomeClass[] = ['success', 'transient', 'permanent', 'unknown'];
export type EndpointRole = 'accept' | 'notify';
export type AcceptRule = 'all' | 'any';
/**
 * accepted → delivering → delivered | dead_lettered; dead_lettered → (redeliver) delivering | discarded.
 * Terminal: delivered, discarded (and rejected at intake, which never becomes a lead).
 */
export type LeadStatus = 'accepted' | 'delivering' | 'delivered' | 'dead_lettered' | 'discarded';
export const LEAD_STATUSES: readonly LeadStatus[] = ['accepted', 'delivering', 'delivered', 'dead_lettered', 'discarded'];
/**
 * Why a lead is dead-lettered. `partial_at_buyer` and `ambiguous_at_buyer` are *held*: a buyer has
 * (or may have) received the lead, so it is never offered to another buyer automatically; a
 * redeliver goes to that buyer unless the operator names another. `internal_error`: our own fault
 * (never a buyer's); the lead waits for an operator like any other dead letter.
 */
export type DeadLetterReason = 'no_buyers' | 'all_skipped' | 'all_failed' | 'partial_at_buyer' | 'ambiguous_at_buyer' | 'internal_error';
export const DEAD_LETTER_REASONS: readonly DeadLetterReason[] = ['no_buyers', 'all_skipped', 'all_failed', 'partial_at_buyer', 'ambiguous_at_buyer', 'internal_error'];

export interface DeliverLeadInput {
  leadId: string;
  sourceId: string;
  /** ms since epoch, stamped by intake when it accepted the lead. */
  receivedAt: number;
  clientId?: string;
  lead: Lead;
}

export interface PlanEndpoint {
  endpointId: string;
  buyerId: string;
  kind: string;
  role: EndpointRole;
  /** Config version: the activity loads exactly this version's settings (cached per version). */
  version: number;
  backoffMs: number[];
  timeoutMs: number;
}

export interface PlanBuyer {
  buyerId: string;
  name: string;
  accept: AcceptRule;
  endpoints: PlanEndpoint[];
  /** Buyer controls the walk decides on (only when the buyer has caps or a schedule). */
  controls?: BuyerPlanControls;
  /** This buyer already took a lead with the same email or phone within its duplicateWindow (read with the plan). */
  duplicateOf?: { leadId: string; field: 'email' | 'phone'; window: string };
}

export interface BuyerPlanControls {
  timeZone: string;
  caps?: Caps;
  schedule?: Schedule;
  /** The buyer's caps of leads from this lead's source (`sourceCaps[sourceId]`), when it has any. */
  sourceCaps?: { sourceId: string; caps: Caps };
  /** Percent of a cap at which the `cap_near` alert goes out. */
  capWarning?: number;
}

export type CapacityAnswer = { reserved: true } | { reserved: false; window: string; key: string; limit: number; used: number };

export interface RoutingPlan {
  sourceId: string;
  /** How long one buyer may hold the lead (from the start of its turn) before it moves on. */
  freshnessMs: number;
  buyers: PlanBuyer[];
  /** Buyers named in the waterfall that could not be planned (deleted, no endpoints). */
  unroutable: Array<{ buyerId: string; reason: string }>;
  /** The check of the first buyer, made with the plan when asked (`withFirstCheck`): one store trip less. */
  firstCheck?: BuyerCheck;
}

/** The request as sent, secrets masked: evidence for the delivery log. */
export interface SentRequest {
  method?: string;
  url?: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface BuyerAnswer {
  status?: number;
  headers?: Record<string, string>;
  /** At most 4 KiB of the body; a larger body is replaced whole by a placeholder. */
  body?: string;
  bodyBytes?: number;
  /** The provider's id of what was created (Resend email id, Twilio message SID, CRM record id). */
  messageId?: string;
}

export interface AttemptRecord {
  attemptId: string;
  leadId: string;
  sourceId: string;
  /** The source's own id of the lead (`id` in the intake body), when it sent one. */
  clientId?: string;
  buyerId: string;
  endpointId: string;
  kind: string;
  role: EndpointRole;
  attempt: number;
  /**
   * Which execution of the attempt activity made this record (1 unless a worker was lost or the
   * activity timed out and Temporal ran it again). A record for an execution that never reported
   * back is written by the next one: outcome `unknown`, code `interrupted`.
   */
  execution?: number;
  startedAt: number;
  finishedAt: number;
  latencyMs: number;
  request?: SentRequest;
  response?: BuyerAnswer;
  outcome: OutcomeClass;
  /** Machine code: ok, http_503, timeout, connection_refused, dns_error, mapping_error, … */
  code: string;
  /** One line for people: "503 Service Unavailable", "no answer within 10s". */
  reason: string;
  retryAfterMs?: number;
  error?: string;
  /** Looked up at the provider before (re-)sending, after an ambiguous outcome: what was found. */
  readBack?: ReadBack;
}

/** The result of reading back at the provider whether an earlier, ambiguous send arrived. */
export interface ReadBack {
  found: boolean;
  /** The provider's id of what was found (CRM record, Twilio message SID, sheet row). */
  messageId?: string;
  detail: string;
}

export interface AttemptInput {
  leadId: string;
  sourceId: string;
  receivedAt: number;
  clientId?: string;
  lead: Lead;
  buyerId: string;
  endpointId: string;
  version: number;
  attempt: number;
  /** The previous attempt at this endpoint was ambiguous: read back before re-sending where the kind can. */
  readBack?: boolean;
  /** The buyer already holds the lead: a breaker open is a reason to wait, never to skip. */
  held?: boolean;
  /**
   * The endpoint's breaker as the buyer check read it moments ago (same workflow task): the
   * attempt does not read it again. Absent on later attempts (after a backoff): read then.
   */
  breaker?: BreakerSeen;
  /** When this buyer's turn ends (its freshness deadline): a throttled endpoint reserves no send slot after it. */
  turnEndsAt?: number;
}

/** A breaker's published state, as read from the store. */
export interface BreakerSeen {
  state: 'closed' | 'open' | 'half_open';
  failing: boolean;
}

/** A buyer's fitness before its turn. */
export interface BuyerCheck {
  paused?: { reason: string; by: 'operator' | 'breaker' };
  breakers: Record<string, 'closed' | 'open' | 'half_open'>;
  /** The published breakers read (endpoints whose breaker never started are absent: closed, healthy). */
  seen?: Record<string, BreakerSeen>;
}

export interface AttemptResult {
  /** No request was made (the breaker is open): a decision, not an attempt at the buyer. */
  skipped?: boolean;
  /**
   * No request was made because of our own fault before the send (the store or Temporal
   * unreachable while loading settings or claiming the probe): not an attempt, not charged to the
   * buyer's schedule; the workflow waits `retryInMs` and asks again.
   */
  deferred?: { code: string; reason: string; retryInMs: number };
  /**
   * The endpoint's throttle has no send slot now (also `deferred`, code `throttled`, for code that
   * predates throttles): the slot `waitMs` away is held for this attempt (`reserved`), or none comes
   * before the buyer's freshness deadline. A wait, never a failure.
   */
  throttled?: { waitMs: number; rate: string; reserved: boolean };
  /** Records of earlier executions of this attempt that never reported back (they may have sent). */
  interrupted?: AttemptRecord[];
  /** The breaker could not be told this outcome from inside the attempt: the workflow tells it. */
  unreported?: OutcomeReportInput;
  outcome: OutcomeClass;
  code: string;
  reason: string;
  /**
   * The kind's word on whether this outcome counts toward the endpoint's breaker (see
   * `Classification` in activities/types.ts). Absent in results recorded by older code (replayed
   * histories): readers fall back to the code (`healthOf` in shared/breaker.ts).
   */
  countsAgainstEndpoint?: boolean;
  status?: number;
  retryAfterMs?: number;
  record: AttemptRecord;
}

/** What the workflow passes to `reportToBreaker` when the attempt could not report itself. */
export interface OutcomeReportInput {
  endpointId: string;
  buyerId: string;
  leadId: string;
  attemptId: string;
  outcome: OutcomeClass;
  code: string;
  reason: string;
  /** As on `AttemptResult`: absent in reports recorded by older code, then the code decides. */
  countsAgainstEndpoint?: boolean;
  at: number;
}

export type JournalEntry =
  | { type: 'intake'; at: number; sourceId: string; clientId?: string; lead: Lead }
  | ({ type: 'attempt'; at: number; /** First attempt at this endpoint (ms). */ firstAttemptAt?: number; /** The endpoint's last attempt for this lead. */ final?: boolean } & AttemptRecord)
  | { type: 'decision'; at: number; decision: string; buyerId?: string; endpointId?: string; reason: string }
  | { type: 'correction'; at: number; by: string; fields: Partial<Lead> }
  | { type: 'status'; at: number; status: LeadStatus; buyerId?: string; reason?: string; reasonCode?: DeadLetterReason; buyersTried?: string[]; heldBy?: string }
  /** A buyer returned the lead (shared/returns.ts; written by the `leadReturn` workflow). `note` is PII (sealed); `noteDropped` says why a note was not kept. */
  | { type: 'return'; at: number; returnId: string; buyerId: string; reason: string; status: ReturnRequestStatus; by: 'buyer'; note?: string; noteDropped?: string }
  /** An operator's decision on a pending return, or its expiry (`by: 'system'`). */
  | { type: 'return_decision'; at: number; returnId: string; buyerId: string; status: ReturnDecidedStatus; by: string; reason?: string };

export interface AppendJournalInput {
  leadId: string;
  sourceId: string;
  /** Sequence number of the first entry (1-based, gap-free per lead). */
  firstSeq: number;
  /** Hash of entry firstSeq-1 ('' for the first). */
  prevHash: string;
  entries: JournalEntry[];
}

export interface AppendJournalResult {
  /** Hash of the last entry written: the chain head. */
  head: string;
  written: number;
}

export type EndpointStatus = 'pending' | 'delivering' | 'throttled' | 'backoff' | 'delivered' | 'failed' | 'skipped' | 'cancelled' | 'ambiguous';

export interface EndpointView {
  endpointId: string;
  buyerId: string;
  kind: string;
  role: EndpointRole;
  status: EndpointStatus;
  attempts: number;
  nextAttemptAt?: number;
  lastCode?: string;
  lastStatus?: number;
  lastReason?: string;
  /** An attempt succeeded or may have arrived (unknown): the buyer holds the lead. */
  received?: boolean;
}

export interface LeadView {
  leadId: string;
  sourceId: string;
  status: LeadStatus;
  buyerId?: string;
  receivedAt: number;
  updatedAt: number;
  /** Why the lead is dead-lettered or discarded. */
  reason?: string;
  reasonCode?: DeadLetterReason;
  deadLetteredAt?: number;
  /** The buyer that has (or may have) received the lead: it is never offered to another automatically. */
  heldBy?: string;
  /** Journal entries not yet written to the delivery log, and whether the log refused them (conflict). */
  journal?: { pending: number; conflict?: string };
  /** The accepting buyer's notify copies: delivered with partial-notify detail. */
  notify?: { delivered: number; failed: number; pending: number };
  buyersTried: string[];
  endpoints: EndpointView[];
  decisions: Array<{ at: number; decision: string; buyerId?: string; endpointId?: string; reason: string }>;
}

export const leadWorkflowId = (leadId: string): string => `lead-${leadId}`;
export const attemptId = (leadId: string, endpointId: string, attempt: number): string => `${leadId}.${endpointId}.${attempt}`;

/** The longest Retry-After we honour: a buyer cannot park a lead for a week. */
export const MAX_RETRY_AFTER_MS = 6 * 3_600_000;
