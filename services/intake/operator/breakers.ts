/**
 * Endpoint breakers and buyer pauses (operator use cases): read a breaker (by query: its workflow
 * is the truth), reset or open it (acknowledged only once its workflow applied the command),
 * pause a buyer, resume it (which also resets its tripped breakers).
 */
import { WithStartWorkflowOperation, WorkflowNotFoundError } from '@temporalio/client';
import { z } from 'zod';
import { BreakerMachine, breakerWorkflowId, type BreakerSnapshot } from '../../../shared/breaker';
import { formatDuration } from '../../../shared/durations';
import { breakerSettingsOf } from '../../../shared/endpoint';
import { NotFoundError } from '../../../shared/errors';
import { parseBody } from '../../../shared/http/validate';
import type { BuyerDoc, EndpointDoc } from '../../../shared/store';
import type { breaker } from '../../../workflows/breaker';
import { breakerStateQuery, operatorUpdate } from '../../../workflows/messages';
import type { OperatorContext } from './context';

export const reasonBody = z.object({ reason: z.string().trim().min(1, 'must not be empty').max(500) }).strict();
export const optionalReason = z.object({ reason: z.string().trim().max(500).optional() }).strict();

export function breakerView(s: BreakerSnapshot | undefined, settings: { threshold: number; coolDownMs: number }) {
  return {
    state: s?.state ?? 'closed',
    consecutiveFailures: s?.consecutiveFailures ?? 0,
    threshold: s?.threshold ?? settings.threshold,
    coolDown: formatDuration(s?.coolDownMs ?? settings.coolDownMs),
    trips: s?.trips ?? 0,
    ...(s?.openedAt ? { openedAt: new Date(s.openedAt).toISOString() } : {}),
    ...(s?.halfOpenAt ? { halfOpenAt: new Date(s.halfOpenAt).toISOString() } : {}),
    ...(s?.forced ? { forced: true } : {}),
    ...(s?.lastError ? { lastError: { ...s.lastError, at: new Date(s.lastError.at).toISOString() } } : {}),
    counts: s?.counts ?? { successes: 0, failures: 0, opened: 0 },
  };
}

const buyerState = (doc: BuyerDoc) => ({ id: doc._id, paused: doc.paused, ...(doc.paused && doc.pause ? { pause: doc.pause } : {}) });

export function createBreakerUseCases(ctx: OperatorContext) {
  const { models, client, withDeadline } = ctx;

  const findEndpoint = async (endpointId: string) => {
    const doc = await models.Endpoint.findById(endpointId).lean<EndpointDoc>();
    if (!doc) throw new NotFoundError('Endpoint');
    return doc;
  };

  /** The breaker's state from its workflow; undefined when it never ran (closed). */
  async function queryBreaker(endpointId: string): Promise<BreakerSnapshot | undefined> {
    try {
      return await withDeadline(() => client.workflow.getHandle(breakerWorkflowId(endpointId)).query(breakerStateQuery));
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return undefined;
      throw error;
    }
  }

  /** Sends an operator command to an endpoint's breaker (starting it if it never ran); resolves once applied. */
  async function commandBreaker(endpoint: EndpointDoc, action: 'reset' | 'open', reason: string): Promise<BreakerSnapshot> {
    const settings = breakerSettingsOf(endpoint);
    const start = new WithStartWorkflowOperation<typeof breaker>('breaker', {
      workflowId: breakerWorkflowId(endpoint._id),
      taskQueue: ctx.deliveryTaskQueue,
      args: [BreakerMachine.initial(endpoint._id, endpoint.buyerId, settings)],
      workflowIdConflictPolicy: 'USE_EXISTING',
      staticSummary: `Breaker of endpoint ${endpoint._id} (buyer ${endpoint.buyerId})`,
    });
    return withDeadline(() => client.workflow.executeUpdateWithStart(operatorUpdate, { args: [{ action, reason, by: 'operator' }], startWorkflowOperation: start }));
  }

  return {
    async get(endpointId: string) {
      const endpoint = await findEndpoint(endpointId);
      return { endpointId: endpoint._id, buyerId: endpoint.buyerId, ...breakerView(await queryBreaker(endpoint._id), breakerSettingsOf(endpoint)) };
    },

    async command(endpointId: string, action: 'reset' | 'open', input: unknown) {
      const body = parseBody(optionalReason, input ?? {});
      const endpoint = await findEndpoint(endpointId);
      const snapshot = await commandBreaker(endpoint, action, body.reason ?? `${action} by an operator`);
      return { endpointId: endpoint._id, buyerId: endpoint.buyerId, ...breakerView(snapshot, breakerSettingsOf(endpoint)) };
    },

    async pauseBuyer(buyerId: string, input: unknown) {
      const body = parseBody(reasonBody, input);
      const doc = await models.Buyer.findByIdAndUpdate(buyerId, { $set: { paused: true, pause: { reason: body.reason, by: 'operator', at: new Date() } } }, { returnDocument: 'after' }).lean<BuyerDoc>();
      if (!doc) throw new NotFoundError('Buyer');
      return buyerState(doc);
    },

    async resumeBuyer(buyerId: string, input: unknown) {
      const body = parseBody(optionalReason, input ?? {});
      if (!(await models.Buyer.exists({ _id: buyerId }))) throw new NotFoundError('Buyer');
      // Resuming also resets the buyer's tripped breakers (each acknowledged by its workflow),
      // otherwise the next lead would skip the buyer again.
      const endpoints = await models.Endpoint.find({ buyerId }).lean<EndpointDoc[]>();
      const reset: string[] = [];
      for (const endpoint of endpoints) {
        const state = await queryBreaker(endpoint._id);
        if (state && state.state !== 'closed') {
          await commandBreaker(endpoint, 'reset', body.reason ?? 'buyer resumed by an operator');
          reset.push(endpoint._id);
        }
      }
      const doc = await models.Buyer.findByIdAndUpdate(buyerId, { $set: { paused: false }, $unset: { pause: 1 } }, { returnDocument: 'after' }).lean<BuyerDoc>();
      if (!doc) throw new NotFoundError('Buyer');
      return { ...buyerState(doc), breakersReset: reset };
    },
  };
}
export type BreakerUseCases = ReturnType<typeof createBreakerUseCases>;
