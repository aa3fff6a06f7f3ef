/**
 * Buyer returns (issue 15, item 5): a buyer that took a lead hands it back, within its
 * `returnWindow` after the delivery, with a reason from the configured list. One return per lead,
 * run by the `leadReturn` workflow (`return-<leadId>`), recorded in the lead's journal (the same
 * hash chain) and on the lead's summary. Types and pure helpers only: the workflow bundle imports
 * this file.
 *
 * Statuses: `approved` (the reason is on the auto-approve list, or an operator approved it),
 * `pending` (an operator decides), `denied` (an operator refused it, with a reason), `expired`
 * (pending and not decided within the decision window, 30 days by default: the return stands
 * refused, recorded as such).
 */
export type ReturnStatus = 'pending' | 'approved' | 'denied' | 'expired';
export const RETURN_STATUSES: readonly ReturnStatus[] = ['pending', 'approved', 'denied', 'expired'];
/** The status a return starts in: decided by the use case from the auto-approve list. */
export type ReturnRequestStatus = Extract<ReturnStatus, 'pending' | 'approved'>;
/** What a decision entry records. */
export type ReturnDecidedStatus = Exclude<ReturnStatus, 'pending'>;

export const RETURN_NOTE_MAX = 1000;
/** How long a pending return waits for an operator before it is recorded `expired` (unless configured). */
export const DEFAULT_RETURN_DECISION_WINDOW_MS = 30 * 86_400_000;

/**
 * The return's id. One return per lead, so it is derived from the lead id (`ld_X` → `ret_X`):
 * any holder of the id can reach the return's workflow at once (no lookup that may lag the
 * journal), and the lead's id can be read back from it.
 */
export function returnIdOf(leadId: string): string {
  return `ret_${leadId.startsWith('ld_') ? leadId.slice(3) : leadId}`;
}

/** The lead of a return id (undefined when it is not one). */
export function leadIdOfReturn(returnId: string): string | undefined {
  return /^ret_[A-Za-z0-9_.:-]{1,120}$/.test(returnId) ? `ld_${returnId.slice(4)}` : undefined;
}

export const returnWorkflowId = (leadId: string): string => `return-${leadId}`;

/** Why a note was not kept: the lead's data key is gone (its PII retention expired), so it could not be sealed. */
export const NOTE_DROPPED_EXPIRED = 'retention_expired';

export interface LeadReturnInput {
  returnId: string;
  leadId: string;
  sourceId: string;
  buyerId: string;
  reason: string;
  /** The buyer's free text: PII, sealed in the journal with the lead's data key. */
  note?: string;
  status: ReturnRequestStatus;
  /** ms, stamped by the use case when it accepted the request. */
  requestedAt: number;
  /** Task queue of the log service's worker. */
  logTaskQueue: string;
  /** How long a pending return waits for an operator (default 30 days). */
  decisionWindowMs?: number;
}

export interface ReturnDecision {
  decision: 'approve' | 'deny';
  by: string;
  reason?: string;
}

export interface ReturnState {
  returnId: string;
  leadId: string;
  sourceId: string;
  buyerId: string;
  reason: string;
  status: ReturnStatus;
  requestedAt: number;
  decidedAt?: number;
  decidedBy?: string;
  decisionReason?: string;
  /** Journal entries of this return written so far (the request, then the decision). */
  recorded: number;
  /** The note could not be kept (why), e.g. the lead's PII retention had expired. */
  noteDropped?: string;
}

/** The chain head of a lead's journal, read before a writer other than the lead's own workflow appends. */
export interface JournalHead {
  leadId: string;
  sourceId: string;
  /** The last entry's seq (0: no entry). */
  seq: number;
  /** The last entry's hash ('' when there is none). */
  hash: string;
  /** The lead's data key exists: PII (a return's note) can be sealed. */
  pii: boolean;
}
