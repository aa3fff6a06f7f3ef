/**
 * What the log service's /metrics reads from the store when scraped: dead letters open by reason,
 * paused buyers, breakers by state and each endpoint's breaker, the oldest lead not yet terminal. Each is one small indexed
 * query or count per value (FerretDB has few `$group` accumulators); a failing store answers
 * nothing rather than failing the scrape.
 */
import { DEAD_LETTER_REASONS } from '../../shared/delivery';
import { BREAKER_STATES, type StoreGauges } from '../../shared/metrics';
import type { LeadDoc, Models } from '../../shared/store';

const NON_TERMINAL = ['accepted', 'delivering'];

export function storeGauges(models: Models): StoreGauges {
  return {
    async deadLettersOpen() {
      const counts = await Promise.all(DEAD_LETTER_REASONS.map((reasonCode) => models.Lead.countDocuments({ status: 'dead_lettered', reasonCode })));
      return Object.fromEntries(DEAD_LETTER_REASONS.map((reason, i) => [reason, counts[i]!]));
    },
    pausedBuyers: () => models.Buyer.countDocuments({ paused: true, archivedAt: { $exists: false } }),
    async breakers() {
      const counts = await Promise.all(BREAKER_STATES.map((state) => models.BreakerState.countDocuments({ state })));
      return Object.fromEntries(BREAKER_STATES.map((state, i) => [state, counts[i]!]));
    },
    async breakerStates() {
      // One document per endpoint that has a breaker (bounded by the endpoints, not by leads).
      const docs = await models.BreakerState.find({}, { buyerId: 1, state: 1 }).limit(5_000).lean<Array<{ _id: string; buyerId: string; state: string }>>();
      return docs.map((d) => ({ buyerId: d.buyerId, endpointId: d._id, state: d.state }));
    },
    async oldestNonTerminalLeadAgeSeconds() {
      // The {status, updatedAt} index: the non-terminal lead that changed least recently, then its age.
      const oldest = await Promise.all(
        NON_TERMINAL.map((status) => models.Lead.findOne({ status }, { receivedAt: 1 }).sort({ updatedAt: 1 }).lean<Pick<LeadDoc, 'receivedAt'>>()),
      );
      const times = oldest.flatMap((d) => (d?.receivedAt ? [new Date(d.receivedAt).getTime()] : []));
      return times.length ? Math.max(0, (Date.now() - Math.min(...times)) / 1000) : 0;
    },
  };
}
