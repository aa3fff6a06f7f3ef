/**
 * Reading the delivery log: journal entries with the lead's PII opened by its data key (or shown
 * as removed once the key was shredded). Used by the APIs, the CSV export and the dispute page.
 */
import type { LogEntryDoc, Models } from '../../shared/store';
import type { LeadKeys } from './lead-keys';
import { openEntry } from './pii';

export interface ReadEntry {
  seq: number;
  entryId: string;
  leadId: string;
  type: string;
  at: number;
  sourceId: string;
  data: Record<string, unknown>;
  hash: string;
  prevHash: string;
}

export function openDoc(doc: LogEntryDoc, key: Buffer | undefined): ReadEntry {
  return { seq: doc.seq, entryId: doc._id, leadId: doc.leadId, type: doc.type, at: doc.at.getTime(), sourceId: doc.sourceId, data: openEntry(doc.type, doc.data, doc._id, key), hash: doc.hash, prevHash: doc.prevHash };
}

/** Opens entries of any number of leads with one key lookup. */
export async function openDocs(docs: LogEntryDoc[], leadKeys: LeadKeys): Promise<ReadEntry[]> {
  const keys = await leadKeys.getMany(docs.map((d) => d.leadId));
  return docs.map((doc) => openDoc(doc, keys.get(doc.leadId)));
}

export async function readJournal(models: Models, leadKeys: LeadKeys, leadId: string): Promise<{ docs: LogEntryDoc[]; entries: ReadEntry[] }> {
  const docs = await models.LogEntry.find({ leadId }).sort({ seq: 1 }).lean<LogEntryDoc[]>();
  const key = docs.length ? await leadKeys.get(leadId) : undefined;
  return { docs, entries: docs.map((doc) => openDoc(doc, key)) };
}

/** The flat attempt view of the API and the CSV: the record plus its place in the journal. */
export function attemptItem(entry: ReadEntry): Record<string, unknown> {
  return { seq: entry.seq, ...entry.data, at: entry.at, hash: entry.hash, prevHash: entry.prevHash };
}

export function entryItem(entry: ReadEntry): Record<string, unknown> {
  return { seq: entry.seq, type: entry.type, at: entry.at, ...entry.data, hash: entry.hash, prevHash: entry.prevHash };
}
