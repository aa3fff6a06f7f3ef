/**
 * Every signal, query and update of the project's workflows, in one place: the workflows,
 * the activities, the services and the tests import them from here.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { LeadView } from '../shared/delivery';
import type { BreakerSnapshot, OutcomeReport } from '../shared/breaker';
import type { Lead } from '../shared/lead';
import type { ReturnDecision, ReturnState, ReturnStatus } from '../shared/returns';

// ---- deliverLead ----------------------------------------------------------------------------

/** The lead's live delivery state (served by intake's GET /v1/leads/:leadId). */
export const leadStatusQuery = defineQuery<LeadView>('status');

export interface RedeliverRequest {
  /** Deliver to this buyer only; otherwise the source's waterfall again. */
  buyerId?: string;
  /** Corrected lead fields (validated by intake), merged over the lead; recorded in the journal. */
  fields?: Partial<Lead>;
  by: string;
}
export interface DiscardRequest {
  reason: string;
  by: string;
}
/** Dead-lettered leads only; rejected (validator) otherwise, before anything reaches history. */
export const redeliverUpdate = defineUpdate<{ status: string }, [RedeliverRequest]>('redeliver');
export const discardUpdate = defineUpdate<{ status: string }, [DiscardRequest]>('discard');

// ---- breaker --------------------------------------------------------------------------------

export const breakerStateQuery = defineQuery<BreakerSnapshot>('breakerState');
/** A delivery's outcome at the endpoint (signal-with-start from the delivery activity). */
export const outcomeSignal = defineSignal<[OutcomeReport]>('outcome');
/** Half-open: ask to be the one probe. The answer is recorded in the asking activity's result. */
export const claimProbeUpdate = defineUpdate<{ granted: boolean; state: BreakerSnapshot['state'] }, [{ leadId: string }]>('claimProbe');
export interface BreakerOperatorCommand {
  action: 'reset' | 'open';
  reason: string;
  by: string;
}
/** Operators' reset/open: acknowledged only once the breaker applied it. */
export const operatorUpdate = defineUpdate<BreakerSnapshot, [BreakerOperatorCommand]>('operator');

// ---- leadReturn -----------------------------------------------------------------------------

/** The return's state (the buyer's GET /v1/buyer/returns/:returnId before the lead summary has it). */
export const returnStateQuery = defineQuery<ReturnState>('returnState');
/**
 * An operator approves or denies a pending return (a denial needs a reason). Refused by the
 * validator unless the return is pending; answered once the decision is in the journal.
 */
export const decideReturnUpdate = defineUpdate<{ status: ReturnStatus }, [ReturnDecision]>('decideReturn');
