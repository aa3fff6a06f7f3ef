/**
 * The log service's activity (task queue `delivery-log`): append entries to a lead's journal
 * in MongoDB. Idempotent: an entry's id is `<leadId>:<seq>`, written with $setOnInsert, so a
 * retried write never duplicates; when the store is down the activity fails and Temporal
 * retries it until the store is back, so nothing is lost. Each entry carries its hash and the
 * previous entry's hash (a chain per lead). Lead PII is sealed with the lead's own data key
 * before hashing (crypto-shredding at expiry leaves hashes, chain and receipts verifiable).
 */
import type { AnyBulkWriteOperation } from 'mongoose';
import type { AppendJournalInput, AppendJournalResult, JournalEntry } from '../../shared/delivery';
import { parseDuration } from '../../shared/durations';
import { entryHash } from '../../shared/journal-hash';
import type { LogEntryDoc, LeadDoc, Models, SourceDoc } from '../../shared/models';
import type { LeadKeys } from './lead-keys';
import { lookupHash, sealEntry } from './pii';

export interface LogActivityDeps {
  models: Models;
  leadKeys: LeadKeys;
  /** Secret of the email/phone lookup hashes. */
  lookupKey: string;
  /** PII retention when the source sets none. */
  defaultRetentionMs: number;
}

export function journalEntryId(leadId: string, seq: number): string {
  return `${leadId}:${String(seq).padStart(6, '0')}`;
}

export function entryData(entry: JournalEntry): Record<string, unknown> {
  const { type: _type, at: _at, ...data } = entry;
  return JSON.parse(JSON.stringify(data)) as Record<string, unknown>;
}

export function createLogActivities(deps: LogActivityDeps) {
  const { LogEntry, Lead, Source } = deps.models;
  const retentionCache = new Map<string, { at: number; ms: number }>();

  async function retentionOf(sourceId: string): Promise<number> {
    const hit = retentionCache.get(sourceId);
    if (hit && Date.now() - hit.at < 30_000) return hit.ms;
    const source = await Source.findById(sourceId, { retention: 1 }).lean<Pick<SourceDoc, 'retention'>>();
    const ms = source?.retention ? parseDuration(source.retention) : deps.defaultRetentionMs;
    retentionCache.set(sourceId, { at: Date.now(), ms });
    return ms;
  }

  async function appendJournal(input: AppendJournalInput): Promise<AppendJournalResult> {
    const intake = input.entries.find((e) => e.type === 'intake');
    const receivedAt = intake?.at ?? Date.now();
    const key = await deps.leadKeys.ensure(input.leadId, input.sourceId, new Date(receivedAt + (await retentionOf(input.sourceId))));
    let prevHash = input.prevHash;
    const docs: LogEntryDoc[] = input.entries.map((entry, index) => {
      const seq = input.firstSeq + index;
      const id = journalEntryId(input.leadId, seq);
      const data = entryData(entry);
      sealEntry(entry.type, data, id, key);
      const hash = entryHash({ leadId: input.leadId, seq, type: entry.type, at: entry.at, prevHash, data });
      const doc: LogEntryDoc = {
        _id: id,
        leadId: input.leadId,
        seq,
        type: entry.type,
        at: new Date(entry.at),
        sourceId: input.sourceId,
        data,
        prevHash,
        hash,
      };
      if ('buyerId' in entry && entry.buyerId) doc.buyerId = entry.buyerId;
      if ('endpointId' in entry && entry.endpointId) doc.endpointId = entry.endpointId;
      if (entry.type === 'attempt') doc.outcome = entry.outcome;
      prevHash = hash;
      return doc;
    });
    const ops: AnyBulkWriteOperation<LogEntryDoc>[] = docs.map((doc) => ({
      updateOne: { filter: { _id: doc._id }, update: { $setOnInsert: doc }, upsert: true },
    }));
    if (ops.length) await LogEntry.bulkWrite(ops, { ordered: true });
    await updateLeadSummary(input, docs, key !== undefined);
    return { head: prevHash, written: docs.length };
  }

  /** The `leads` collection: one row per lead with its latest status (for lists and filters). */
  /** `withLookup`: the lead's PII has not expired, so its lookup hashes may be stored. */
  async function updateLeadSummary(input: AppendJournalInput, docs: LogEntryDoc[], withLookup: boolean): Promise<void> {
    for (const doc of docs) {
      const entry = input.entries[doc.seq - input.firstSeq]!;
      if (entry.type === 'intake') {
        const summary: LeadDoc = {
          _id: input.leadId,
          sourceId: entry.sourceId,
          status: 'accepted',
          receivedAt: new Date(entry.at),
          updatedAt: new Date(entry.at),
          statusSeq: doc.seq,
          ...(entry.clientId ? { clientId: entry.clientId } : {}),
          ...(withLookup && entry.lead.email ? { emailHash: lookupHash(deps.lookupKey, 'email', entry.lead.email) } : {}),
          ...(withLookup && entry.lead.phone ? { phoneHash: lookupHash(deps.lookupKey, 'phone', entry.lead.phone) } : {}),
        };
        await Lead.updateOne({ _id: input.leadId }, { $setOnInsert: summary }, { upsert: true });
      } else if (entry.type === 'status') {
        const deadLettered = entry.status === 'dead_lettered';
        await Lead.updateOne(
          { _id: input.leadId, $or: [{ statusSeq: { $lt: doc.seq } }, { statusSeq: { $exists: false } }] },
          {
            $set: {
              status: entry.status,
              updatedAt: new Date(entry.at),
              statusSeq: doc.seq,
              ...(entry.buyerId ? { buyerId: entry.buyerId } : {}),
              ...(entry.reason ? { reason: entry.reason } : {}),
              ...(deadLettered ? { deadLetteredAt: new Date(entry.at), reasonCode: entry.reasonCode, buyersTried: entry.buyersTried ?? [] } : {}),
            },
            ...(deadLettered ? {} : { $unset: { deadLetteredAt: 1, ...(entry.reason ? {} : { reason: 1 }), ...(entry.status === 'delivering' ? { reasonCode: 1 } : {}) } }),
          },
        );
      }
    }
  }

  return { appendJournal };
}

export type LogActivities = ReturnType<typeof createLogActivities>;
