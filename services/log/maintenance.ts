/**
 * Journal maintenance (activities on the log task queue, run by Temporal schedules): the daily
 * Merkle root over all journal entries of a UTC day, signed; and retention, which deletes the
 * data keys of leads whose PII expired (crypto-shredding) and their lookup hashes.
 */
import type { DailyRootDoc, LogEntryDoc, Models } from '../../shared/store';
import { merkleRoot } from './chain';
import type { LeadKeys } from './lead-keys';
import type { Signer } from './receipt-signing';

export interface MaintenanceDeps {
  models: Models;
  leadKeys: LeadKeys;
  signer: Signer;
}

export const dayOf = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

export function createMaintenanceActivities(deps: MaintenanceDeps) {
  const { models } = deps;

  /** Root over the day's entries in id order; stored with its signature (recomputed if asked again). */
  async function computeDailyRoot({ day }: { day: string }): Promise<DailyRootDoc> {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(day) || Number.isNaN(Date.parse(`${day}T00:00:00Z`))) throw new Error(`not a day: ${day}`);
    const from = new Date(`${day}T00:00:00Z`);
    const to = new Date(from.getTime() + 86_400_000);
    const hashes: string[] = [];
    const cursor = models.LogEntry.find({ at: { $gte: from, $lt: to } }, { hash: 1 }).sort({ _id: 1 }).lean<Array<Pick<LogEntryDoc, '_id' | 'hash'>>>().cursor({ batchSize: 1000 });
    for await (const doc of cursor) hashes.push(doc.hash);
    const root = merkleRoot(hashes);
    const { keyId, signature } = deps.signer.sign({ day, root, count: hashes.length });
    const doc: DailyRootDoc = { _id: day, root, count: hashes.length, keyId, signature, computedAt: new Date() };
    await models.DailyRoot.replaceOne({ _id: day }, doc, { upsert: true });
    return doc;
  }

  /** Shreds the PII of every lead whose retention has passed. */
  async function shredExpiredLeads({ now }: { now: number }): Promise<{ shredded: number }> {
    const expired = await models.LeadKey.find({ expiresAt: { $lte: new Date(now) }, key: { $exists: true } }, { _id: 1 }).limit(10_000).lean();
    const ids = expired.map((d) => d._id);
    if (ids.length === 0) return { shredded: 0 };
    await models.LeadKey.updateMany({ _id: { $in: ids } }, { $unset: { key: 1 }, $set: { shreddedAt: new Date(now) } });
    await models.Lead.updateMany({ _id: { $in: ids } }, { $unset: { emailHash: 1, phoneHash: 1 } });
    // Providers' reports about these leads (a bounce names the address, a carrier report the number).
    await models.ProviderEvent.updateMany({ leadId: { $in: ids } }, { $set: { data: { removed: 'retention expired' } } });
    ids.forEach((id) => deps.leadKeys.forget(id));
    return { shredded: ids.length };
  }

  return { computeDailyRoot, shredExpiredLeads };
}

export type MaintenanceActivities = ReturnType<typeof createMaintenanceActivities>;
