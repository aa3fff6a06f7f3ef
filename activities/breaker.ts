/**
 * Activities of the breaker workflow: what happens when an endpoint's breaker opens (its buyer
 * is paused, operators are alerted at once) and when it closes again (the buyer is resumed if
 * the breaker paused it, operators are told it recovered).
 */
import type { EndpointDoc, Models } from '../shared/store';
import type { Logger } from '../shared/logger';
import type { SendAlert } from './alerts';

export interface BreakerChange {
  endpointId: string;
  buyerId: string;
  reason: string;
  at: number;
}

export function createBreakerActivities(deps: { models: Models; sendAlert: SendAlert; logger: Logger }) {
  const { Buyer } = deps.models;

  async function breakerOpened(change: BreakerChange & { coolDown: string; forced: boolean }): Promise<void> {
    // Only an accept endpoint's breaker takes its buyer out of routing. A notify endpoint's breaker
    // stops that endpoint's copies (its attempts are skipped while open) and alerts; the buyer keeps
    // taking leads.
    const endpoint = await deps.models.Endpoint.findById(change.endpointId, { role: 1 }).lean<Pick<EndpointDoc, 'role'>>();
    const notifyOnly = endpoint?.role === 'notify';
    if (!notifyOnly) {
      // Auto-pause, unless an operator already paused the buyer (their reason stays).
      await Buyer.updateOne(
        { _id: change.buyerId, $or: [{ paused: false }, { 'pause.by': 'breaker' }] },
        { $set: { paused: true, pause: { reason: `breaker of ${change.endpointId} open: ${change.reason}`, by: 'breaker', endpointId: change.endpointId, at: new Date(change.at) } } },
      );
    }
    const after = change.forced ? ' Opened by an operator: it stays open until reset.' : ` One probe delivery after ${change.coolDown}.`;
    await deps.sendAlert({
      type: 'breaker_opened',
      dedupeKey: `open_${change.endpointId}_${change.at}`,
      title: `Breaker open: ${notifyOnly ? 'notify ' : ''}endpoint ${change.endpointId} of buyer ${change.buyerId}`,
      message: notifyOnly
        ? `${change.reason}. This notify endpoint's copies are not sent while it is open; the buyer keeps taking leads.${after}`
        : `${change.reason}. The buyer is paused and new leads route around it.${after}`,
      endpointId: change.endpointId,
      buyerId: change.buyerId,
    });
  }

  async function breakerClosed(change: BreakerChange): Promise<void> {
    await Buyer.updateOne({ _id: change.buyerId, paused: true, 'pause.by': 'breaker', 'pause.endpointId': change.endpointId }, { $set: { paused: false }, $unset: { pause: 1 } });
    await deps.sendAlert({
      type: 'breaker_recovered',
      dedupeKey: `closed_${change.endpointId}_${change.at}`,
      title: `Recovered: endpoint ${change.endpointId} of buyer ${change.buyerId}`,
      message: `${change.reason}. The breaker is closed and the buyer takes leads again.`,
      endpointId: change.endpointId,
      buyerId: change.buyerId,
    });
  }

  /** Publishes the breaker's state for routing (a projection; the workflow stays the authority). */
  async function publishBreaker(input: { endpointId: string; buyerId: string; state: 'closed' | 'open' | 'half_open'; failing: boolean; at: number }): Promise<void> {
    await deps.models.BreakerState.updateOne(
      { _id: input.endpointId },
      { $set: { buyerId: input.buyerId, state: input.state, failing: input.failing, updatedAt: new Date(input.at) } },
      { upsert: true },
    );
  }

  return { breakerOpened, breakerClosed, publishBreaker };
}

export type BreakerActivities = ReturnType<typeof createBreakerActivities>;
