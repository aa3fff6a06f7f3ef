/**
 * The log service's activity (task queue `delivery-log`): append entries to a lead's journal
 * in MongoDB. Idempotent: an entry's id is `<leadId>:<seq>`, written with $setOnInsert, so a
 * retried write never duplicates; an entry that already exists with *other* content (another run
 * under the same lead id, e.g. a lead re-posted after Temporal's retention) is a non-retryable
 * `JournalConflict`, never silently kept; when the store is down the activity fails and Temporal
 * retries it until the store is back, so nothing is lost. Each entry carries its hash and the
 * previous entry's hash (a chain per lead). Lead PII is sealed with the lead's own data key
 * before hashing (crypto-shredding at expiry leaves hashes, chain and receipts verifiable).
 */
import { ApplicationFailure } from '@temporalio/common';
import type { AppendJournalInput, AppendJournalResult, JournalEntry } from '../../shared/delivery';
import type { JournalHead } from '../../shared/returns';
import { parseDuration } from '../../shared/durations';
import { entryHash, leadBodyHash } from '../../shared/journal-hash';
import type { Logger } from '../../shared/logger';
import { isDuplicateKeyError, type LogEntryDoc, type LeadDoc, type Models, type SourceDoc } from '../../shared/store';
import type { LeadKeys } from './lead-keys';
import { lookupHash, sealEntry } from './pii';
import type { LogMetrics } from '../../shared/metrics';

export interface LogActivityDeps {
  models: Models;
  leadKeys: LeadKeys;
  /** Secret of the email/phone lookup hashes. */
  lookupKey: string;
  /** PII retention when the source sets none. */
  defaultRetentionMs: number;
  logger?: Logger;
  /** Counts what the journal takes in (attempts once each, write latency). */
  metrics?: LogMetrics;
}

/** The ApplicationFailure type of a journal write that met different entries at the same seqs. */
export const JOURNAL_CONFLICT = 'JournalConflict';

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
    const stop = deps.metrics?.journalWrite.startTimer();
    try {
      const fresh = docs.length ? await insertEntries(input.leadId, docs) : false;
      await updateLeadSummary(input, docs, key !== undefined);
      stop?.({ result: 'ok' });
      if (fresh) countAttempts(input.entries);
    } catch (error) {
      stop?.({ result: 'error' });
      throw error;
    }
    return { head: prevHash, written: docs.length };
  }

  /**
   * One insert for the batch (no read before the write). When some entries already exist, they
   * are read back: the same hash is a retried write (a no-op), another hash is a different history
   * at the same seq (a lead id reused after Temporal's retention): refused loudly, nothing rewritten.
   */
  /** Attempts of a batch written for the first time (a retried write counts nothing again). */
  function countAttempts(entries: AppendJournalInput['entries']): void {
    if (!deps.metrics) return;
    for (const entry of entries) {
      if (entry.type !== 'attempt') continue;
      deps.metrics.attempts.inc({ kind: entry.kind, outcome: entry.outcome, code: entry.code });
      deps.metrics.attemptDuration.observe({ kind: entry.kind }, entry.latencyMs / 1000);
    }
  }

  /** True when every entry was new (the batch's first write); false for a retried write. */
  async function insertEntries(leadId: string, docs: LogEntryDoc[]): Promise<boolean> {
    try {
      await LogEntry.insertMany(docs, { ordered: false, lean: true });
      return true;
    } catch (error) {
      if (!isDuplicateKeyError(error)) throw error;
    }
    const stored = await LogEntry.find({ _id: { $in: docs.map((d) => d._id) } }, { hash: 1, seq: 1 }).lean<Array<Pick<LogEntryDoc, '_id' | 'hash' | 'seq'>>>();
    const hashes = new Map(stored.map((d) => [d._id, d.hash]));
    // Unordered: every entry that did not clash was inserted, so each is in the store now.
    if (docs.some((d) => !hashes.has(d._id))) throw new Error(`journal write of lead ${leadId}: entries missing after a partial insert; retrying`);
    const clashing = docs.filter((d) => hashes.get(d._id) !== d.hash).map((d) => d.seq);
    if (clashing.length === 0) return false;
    // Entries of this (refused) write stored after a clash would extend the other history with a
    // chain it does not have: take them back out (no transactions on FerretDB). A stored entry
    // after the clash with this write's hash can only be this write's: its hash covers the chain.
    const orphans = docs.filter((d) => d.seq > clashing[0]! && hashes.get(d._id) === d.hash).map((d) => d._id);
    if (orphans.length) await LogEntry.deleteMany({ _id: { $in: orphans } });
    const message = `journal conflict: lead ${leadId} already has different entries at seq ${clashing.join(', ')}; nothing was overwritten`;
    deps.logger?.error({ leadId, seqs: clashing }, message);
    throw ApplicationFailure.nonRetryable(message, JOURNAL_CONFLICT);
  }

  /**
   * The `leads` collection: one row per lead with its latest status (for lists and filters). One
   * write per batch: the batch's status entries are folded in order into one update (the same
   * result as applying them one by one), and a batch that starts the lead inserts the row with
   * them already applied. `withLookup`: the lead's PII has not expired, so its lookup hashes may
   * be stored.
   */
  async function updateLeadSummary(input: AppendJournalInput, docs: LogEntryDoc[], withLookup: boolean): Promise<void> {
    const set: Record<string, unknown> = {};
    const unset = new Set<string>();
    const assign = (field: string, value: unknown) => {
      set[field] = value;
      unset.delete(field);
    };
    const remove = (field: string) => {
      delete set[field];
      unset.add(field);
    };
    let intake: LeadDoc | undefined;
    let lastStatusSeq: number | undefined;
    for (const doc of docs) {
      const entry = input.entries[doc.seq - input.firstSeq]!;
      if (entry.type === 'intake') {
        intake = {
          _id: input.leadId,
          sourceId: entry.sourceId,
          status: 'accepted',
          receivedAt: new Date(entry.at),
          updatedAt: new Date(entry.at),
          statusSeq: doc.seq,
          ...(entry.clientId ? { clientId: entry.clientId } : {}),
          // The same function as intake's memo: a re-post after retention is compared with it.
          bodyHash: leadBodyHash(entry.lead),
          ...(withLookup && entry.lead.email ? { emailHash: lookupHash(deps.lookupKey, 'email', entry.lead.email) } : {}),
          ...(withLookup && entry.lead.phone ? { phoneHash: lookupHash(deps.lookupKey, 'phone', entry.lead.phone) } : {}),
        };
      } else if (entry.type === 'status') {
        const deadLettered = entry.status === 'dead_lettered';
        lastStatusSeq = doc.seq;
        assign('status', entry.status);
        assign('updatedAt', new Date(entry.at));
        assign('statusSeq', doc.seq);
        if (entry.buyerId) assign('buyerId', entry.buyerId);
        if (entry.reason) assign('reason', entry.reason);
        if (entry.status === 'delivered') assign('deliveredAt', new Date(entry.at));
        if (deadLettered) {
          assign('deadLetteredAt', new Date(entry.at));
          assign('reasonCode', entry.reasonCode);
          assign('buyersTried', entry.buyersTried ?? []);
        } else {
          remove('deadLetteredAt');
          if (!entry.reason) remove('reason');
          if (entry.status === 'delivering') remove('reasonCode');
        }
      }
    }
    const applyStatuses = async () => {
      if (intake) {
        const row: Record<string, unknown> = { ...intake, ...set };
        for (const field of unset) delete row[field];
        const result = await Lead.updateOne({ _id: input.leadId }, { $setOnInsert: row }, { upsert: true });
        // Inserted with the statuses applied; a row that already existed (a retried write) takes them below.
        if (result.upsertedCount > 0 || lastStatusSeq === undefined) return;
      }
      if (lastStatusSeq === undefined) return;
      await Lead.updateOne(
        { _id: input.leadId, $or: [{ statusSeq: { $lt: lastStatusSeq } }, { statusSeq: { $exists: false } }] },
        { $set: set, ...(unset.size ? { $unset: Object.fromEntries([...unset].map((f) => [f, 1])) } : {}) },
      );
    };
    await applyStatuses();
    await applyReturn(input, docs);
  }

  /**
   * A buyer's return on the lead's summary (the `leadReturn` workflow's entries): id, status,
   * reason, when requested and decided. Its own guard (`returnSeq`): a late retry of the request
   * never undoes the decision written after it. A batch without return entries writes nothing.
   */
  async function applyReturn(input: AppendJournalInput, docs: LogEntryDoc[]): Promise<void> {
    const set: Record<string, unknown> = {};
    let seq: number | undefined;
    for (const doc of docs) {
      const entry = input.entries[doc.seq - input.firstSeq]!;
      if (entry.type === 'return') {
        Object.assign(set, { returnId: entry.returnId, returnStatus: entry.status, returnReason: entry.reason, returnRequestedAt: new Date(entry.at) });
        // Approved at once (an auto-approved reason): decided when requested.
        if (entry.status === 'approved') set.returnDecidedAt = new Date(entry.at);
        seq = doc.seq;
      } else if (entry.type === 'return_decision') {
        Object.assign(set, { returnId: entry.returnId, returnStatus: entry.status, returnDecidedAt: new Date(entry.at), ...(entry.reason ? { returnDecisionReason: entry.reason } : {}) });
        seq = doc.seq;
      }
    }
    if (seq === undefined) return;
    await Lead.updateOne({ _id: input.leadId, $or: [{ returnSeq: { $lt: seq } }, { returnSeq: { $exists: false } }] }, { $set: { ...set, returnSeq: seq } });
  }

  /**
   * The head of a lead's journal (last seq and hash), for a writer other than the lead's own
   * workflow (a buyer's return, appended once that workflow has closed): it continues the chain
   * from here. Also whether the lead's data key still exists (a return's note can be sealed).
   */
  async function journalHead({ leadId }: { leadId: string }): Promise<JournalHead> {
    const last = await LogEntry.findOne({ leadId }, { seq: 1, hash: 1, sourceId: 1 }).sort({ seq: -1 }).lean<Pick<LogEntryDoc, 'seq' | 'hash' | 'sourceId'>>();
    if (!last) throw ApplicationFailure.nonRetryable(`lead ${leadId} has no journal`, 'JournalMissing');
    const key = await deps.leadKeys.get(leadId);
    return { leadId, sourceId: last.sourceId, seq: last.seq, hash: last.hash, pii: key !== undefined };
  }

  return { appendJournal, journalHead };
}

export type LogActivities = ReturnType<typeof createLogActivities>;
