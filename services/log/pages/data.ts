/**
 * What the dispute pages read: lead search through the keyed hashes (never clear text), and
 * everything one lead's page shows — the journal with its PII opened, the chain check, the
 * provider events, and names of the source, buyers and endpoints it mentions.
 */
import type { BuyerDoc, EndpointDoc, LeadDoc, LeadKeyDoc, LogEntryDoc, ProviderEventDoc, SourceDoc } from '../../../shared/store';
import { verifyChain, type ChainCheck } from '../chain';
import type { LogDeps } from '../deps';
import { lookupHash } from '../pii';
import { readJournal, type ReadEntry } from '../read';

export const LEAD_ID_RE = /^[A-Za-z0-9_.:-]{1,128}$/;

export type SearchKind = 'leadId' | 'email' | 'phone';

/** What one search box holds: an email has an @, a phone is 7 to 15 digits with + ( ) . - or spaces, anything else id-like is a lead id. */
export function classifyQuery(q: string): { kind: SearchKind; value: string } | undefined {
  const value = q.trim();
  if (!value || value.length > 254) return undefined;
  if (value.includes('@')) return { kind: 'email', value };
  const digits = value.replace(/\D/g, '').length;
  if (/^\+?[\d\s().-]+$/.test(value) && digits >= 7 && digits <= 15) return { kind: 'phone', value };
  if (LEAD_ID_RE.test(value)) return { kind: 'leadId', value };
  return undefined;
}

export async function searchLeads(deps: LogDeps, kind: SearchKind, value: string): Promise<LeadDoc[]> {
  const { Lead, LogEntry } = deps.models;
  if (kind === 'leadId') {
    const lead = await Lead.findById(value).lean<LeadDoc>();
    if (lead) return [lead];
    // A journal without its summary row (should not happen, but the journal is the evidence).
    const first = await LogEntry.findOne({ leadId: value }).sort({ seq: 1 }).lean<LogEntryDoc>();
    return first ? [{ _id: value, sourceId: first.sourceId, status: 'unknown', receivedAt: first.at, updatedAt: first.at, statusSeq: 0 }] : [];
  }
  const filter = kind === 'email' ? { emailHash: lookupHash(deps.lookupKey, 'email', value) } : { phoneHash: lookupHash(deps.lookupKey, 'phone', value) };
  return Lead.find(filter).sort({ receivedAt: -1 }).limit(100).lean<LeadDoc[]>();
}

export interface EndpointInfo {
  name?: string;
  kind: string;
  role: string;
}

export interface LeadRecord {
  leadId: string;
  summary: LeadDoc | null;
  docs: LogEntryDoc[];
  entries: ReadEntry[];
  chain: ChainCheck;
  events: ProviderEventDoc[];
  key: Pick<LeadKeyDoc, 'expiresAt' | 'shreddedAt'> | null;
  sourceName?: string;
  buyers: Map<string, string>;
  endpoints: Map<string, EndpointInfo>;
}

export async function loadLead(deps: LogDeps, leadId: string): Promise<LeadRecord | undefined> {
  const { models } = deps;
  const { docs, entries } = await readJournal(models, deps.leadKeys, leadId);
  if (docs.length === 0) return undefined;
  const buyerIds = new Set<string>();
  const endpointIds = new Set<string>();
  for (const entry of entries) {
    if (typeof entry.data.buyerId === 'string') buyerIds.add(entry.data.buyerId);
    if (typeof entry.data.endpointId === 'string') endpointIds.add(entry.data.endpointId);
    if (Array.isArray(entry.data.buyersTried)) for (const b of entry.data.buyersTried) if (typeof b === 'string') buyerIds.add(b);
  }
  const [summary, events, key, source, buyers, endpoints] = await Promise.all([
    models.Lead.findById(leadId).lean<LeadDoc>(),
    models.ProviderEvent.find({ leadId }).sort({ at: 1 }).limit(500).lean<ProviderEventDoc[]>(),
    models.LeadKey.findById(leadId, { expiresAt: 1, shreddedAt: 1 }).lean<Pick<LeadKeyDoc, 'expiresAt' | 'shreddedAt'>>(),
    models.Source.findById(docs[0]!.sourceId, { name: 1 }).lean<Pick<SourceDoc, '_id' | 'name'>>(),
    models.Buyer.find({ _id: { $in: [...buyerIds] } }, { name: 1 }).lean<Array<Pick<BuyerDoc, '_id' | 'name'>>>(),
    models.Endpoint.find({ _id: { $in: [...endpointIds] } }, { name: 1, kind: 1, role: 1 }).lean<Array<Pick<EndpointDoc, '_id' | 'name' | 'kind' | 'role'>>>(),
  ]);
  return {
    leadId,
    summary,
    docs,
    entries,
    chain: verifyChain(docs),
    events,
    key,
    ...(source?.name ? { sourceName: source.name } : {}),
    buyers: new Map(buyers.map((b) => [b._id, b.name])),
    endpoints: new Map(endpoints.map((e) => [e._id, { ...(e.name ? { name: e.name } : {}), kind: e.kind, role: e.role }])),
  };
}
