/**
 * leadReturn: a buyer's return of a lead it took, one workflow per lead (id `return-<leadId>`,
 * started by intake's return use case only once the lead's own `deliverLead` workflow has closed,
 * so nothing else writes the lead's journal meanwhile). Deterministic and free of I/O:
 *
 *  1. read the journal's head through the log service (`journalHead`: last seq and hash, and
 *     whether the lead's data key still exists) and append the return entry after it with
 *     `appendJournal` (the same hash chain, so /verify and the receipt cover it). The note is PII,
 *     sealed by the log service with the lead's key; when that key is gone (retention expired) the
 *     note is dropped and the entry says so (`noteDropped`), it is never stored in clear;
 *  2. approved at once (the use case decided it from the auto-approve list): done. Pending: wait
 *     for an operator's `decideReturn` Update (approve, or deny with a reason) up to the decision
 *     window (default 30 days); past it the return is recorded `expired` (`by: system`);
 *  3. the decision entry is appended; the Update answers once it is on record.
 *
 * Another entry at the seq this workflow writes (a `JournalConflict`; cannot happen while the lead's
 * workflow is closed) makes it read the head again and append after it, a few times; then it fails.
 */
import { allHandlersFinished, ApplicationFailure, condition, proxyActivities, setCurrentDetails, setHandler } from '@temporalio/workflow';
import type { LogActivities } from '../services/log/journal';
import type { JournalEntry } from '../shared/delivery';
import { formatDuration } from '../shared/durations';
import { DEFAULT_RETURN_DECISION_WINDOW_MS, NOTE_DROPPED_EXPIRED, type LeadReturnInput, type ReturnDecidedStatus, type ReturnDecision, type ReturnState } from '../shared/returns';
import { decideReturnUpdate, returnStateQuery } from './messages';

/** The ApplicationFailure type of `appendJournal` meeting other entries at its seqs (services/log/journal.ts, JOURNAL_CONFLICT). */
const JOURNAL_CONFLICT = 'JournalConflict';
const APPEND_TRIES = 5;

function isJournalConflict(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof ApplicationFailure && e.type === JOURNAL_CONFLICT) return true;
  }
  return false;
}

class ReturnRun {
  private readonly state: ReturnState;
  private decision: ReturnDecision | undefined;
  private seq = 0;
  private head = '';
  private sourceId: string;
  private readonly log: Pick<LogActivities, 'appendJournal' | 'journalHead'>;

  constructor(private readonly input: LeadReturnInput) {
    this.sourceId = input.sourceId;
    this.state = {
      returnId: input.returnId,
      leadId: input.leadId,
      sourceId: input.sourceId,
      buyerId: input.buyerId,
      reason: input.reason,
      status: input.status,
      requestedAt: input.requestedAt,
      ...(input.status === 'approved' ? { decidedAt: input.requestedAt, decidedBy: 'auto' } : {}),
      recorded: 0,
    };
    this.log = proxyActivities<LogActivities>({
      taskQueue: input.logTaskQueue,
      startToCloseTimeout: '30s',
      retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
    });
  }

  installHandlers(): void {
    setHandler(returnStateQuery, () => ({ ...this.state }));
    setHandler(
      decideReturnUpdate,
      async (decision) => {
        this.decision = decision;
        // Answered once the decision is in the journal.
        await condition(() => this.state.status !== 'pending');
        return { status: this.state.status };
      },
      {
        validator: (decision: ReturnDecision) => {
          if (this.state.status !== 'pending' || this.decision) {
            throw ApplicationFailure.nonRetryable(`the return is already ${this.decision && this.state.status === 'pending' ? (this.decision.decision === 'approve' ? 'being approved' : 'being denied') : this.state.status}`, 'ReturnAlreadyDecided');
          }
          if (decision.decision !== 'approve' && decision.decision !== 'deny') throw ApplicationFailure.nonRetryable('the decision is approve or deny', 'InvalidRequest');
          if (decision.decision === 'deny' && !decision.reason?.trim()) throw ApplicationFailure.nonRetryable('a denial needs a reason', 'InvalidRequest');
        },
      },
    );
  }

  async run(): Promise<ReturnState> {
    const { input, state } = this;
    this.show();
    const head = await this.readHead();
    const note = input.note && head.pii ? { note: input.note } : input.note ? { noteDropped: NOTE_DROPPED_EXPIRED } : {};
    if ('noteDropped' in note) state.noteDropped = note.noteDropped;
    await this.append({ type: 'return', at: input.requestedAt, returnId: input.returnId, buyerId: input.buyerId, reason: input.reason, status: input.status, by: 'buyer', ...note });
    if (input.status === 'pending') {
      const windowMs = input.decisionWindowMs ?? DEFAULT_RETURN_DECISION_WINDOW_MS;
      this.show();
      await condition(() => this.decision !== undefined, windowMs, { summary: `waiting for an operator's decision (expires after ${formatDuration(windowMs)})` });
      const decision = this.decision;
      const status: ReturnDecidedStatus = decision ? (decision.decision === 'approve' ? 'approved' : 'denied') : 'expired';
      const by = decision?.by ?? 'system';
      const reason = decision ? decision.reason?.trim() || undefined : `not decided within ${formatDuration(windowMs)}`;
      const at = Date.now();
      await this.append({ type: 'return_decision', at, returnId: input.returnId, buyerId: input.buyerId, status, by, ...(reason ? { reason } : {}) });
      Object.assign(state, { status, decidedAt: at, decidedBy: by, ...(reason ? { decisionReason: reason } : {}) });
    }
    this.show();
    await condition(allHandlersFinished);
    return { ...state };
  }

  private async readHead() {
    const head = await this.log.journalHead({ leadId: this.input.leadId });
    this.seq = head.seq;
    this.head = head.hash;
    this.sourceId = head.sourceId;
    return head;
  }

  /** Appends one entry after the chain head; on a conflict, after the head read again. */
  private async append(entry: JournalEntry): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await this.log.appendJournal({ leadId: this.input.leadId, sourceId: this.sourceId, firstSeq: this.seq + 1, prevHash: this.head, entries: [entry] });
        this.seq += 1;
        this.head = result.head;
        this.state.recorded += 1;
        return;
      } catch (error) {
        if (!isJournalConflict(error) || attempt >= APPEND_TRIES) throw error;
        await this.readHead();
      }
    }
  }

  private show(): void {
    const s = this.state;
    const lines = [`**${s.status}**: return ${s.returnId} of lead ${s.leadId} by buyer ${s.buyerId} (${s.reason})`];
    if (s.decidedBy) lines.push(`decided by ${s.decidedBy}${s.decidedAt ? ` at ${new Date(s.decidedAt).toISOString()}` : ''}${s.decisionReason ? `: ${s.decisionReason}` : ''}`);
    else if (s.status === 'pending') lines.push('waiting for an operator: POST /v1/admin/returns/:returnId/approve or /deny');
    if (s.noteDropped) lines.push(`note not kept (${s.noteDropped})`);
    setCurrentDetails(lines.join('\n'));
  }
}

export async function leadReturn(input: LeadReturnInput): Promise<ReturnState> {
  const run = new ReturnRun(input);
  run.installHandlers();
  return run.run();
}
