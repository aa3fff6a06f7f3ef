/**
 * The log service's activity (task queue `delivery-log`): append entries to a lead's journal
 * in MongoDB. Idempotent: an entry's id is `<leadId>:<seq>`, written with $setOnInsert, so a
 * retried write never duplicates; when the store is down the activity fails and Temporal
 * retries it until the store is back, so nothing is lost. Each entry carries its hash and the
 * previous entry's hash (a chain per lead).
 */
import type { AnyBulkWriteOperation } from 'mongoose';
import type { AppendJournalInput, AppendJournalResult, JournalEntry } from '../../shared/delivery';
import { entryHash } from '../../shared/journal-hash';
import type { LogEntryDoc, LeadDoc, Models } from '../../shared/models';

export function journalEntryId(leadId: string, seq: number): string {
  return `${leadId}:${String(seq).padStart(6, '0')}`;
}

export function entryData(entry: JournalEntry): Record<string, unknown> {
  const { type: _type, at: _at, ...data } = entry;
  return JSON.parse(JSON.stringify(data)) as Record<string, unknown>;
}

export function createLogActivities(deps: { models: Models }) {
  const { LogEntry, Lead } = deps.models;

  async function appendJournal(input: AppendJournalInput): Promise<AppendJournalResult> {
    let prevHash = input.prevHash;
    const docs: LogEntryDoc[] = input.entries.map((entry, index) => {
      const seq = input.firstSeq + index;
      const data = entryData(entry);
      const hash = entryHash({ leadId: input.leadId, seq, type: entry.type, at: entry.at, prevHash, data });
      const doc: LogEntryDoc = {
        _id: journalEntryId(input.leadId, seq),
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
    await updateLeadSummary(input, docs);
    return { head: prevHash, written: docs.length };
  }

  /** The `leads` collection: one row per lead with its latest status (for lists and filters). */
  async function updateLeadSummary(input: AppendJournalInput, docs: LogEntryDoc[]): Promise<void> {
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
