/**
 * Reconciliation: a buyer's CRM export (CSV) against what the delivery log says we delivered to
 * that buyer in a period. Rows are matched by lead id, or by email / phone through the same keyed
 * hashes as the lookup index. Answers what matched, which delivered leads are missing from the
 * export (each with its evidence: the accepted attempt and a receipt link), which rows appear
 * more than once, and which rows name leads we never delivered to that buyer in the period.
 */
import type { LeadDoc, LogEntryDoc, Models } from '../../shared/store';
import { parseCsv } from '../../shared/csv';
import { lookupHash } from './pii';

export interface ReconcileInput {
  buyerId: string;
  from: number;
  to: number;
  csv: string;
  column: { name: string; kind: 'leadId' | 'email' | 'phone' };
}

export interface ReconcileResult {
  buyerId: string;
  from: string;
  to: string;
  delivered: number;
  rows: number;
  matched: number;
  missing: Array<{ leadId: string; acceptedAt: string; attempt?: { attemptId: string; endpointId: string; finishedAt: number; status?: number; code: string }; receipt: string }>;
  duplicates: Array<{ value: string; rows: number[]; leadId?: string }>;
  unknown: Array<{ value: string; row: number }>;
}

export class ReconcileInputError extends Error {
  constructor(readonly path: string, message: string) {
    super(message);
  }
}

export async function reconcile(models: Models, lookupKey: string, input: ReconcileInput): Promise<ReconcileResult> {
  let table: string[][];
  try {
    table = parseCsv(input.csv);
  } catch (error) {
    throw new ReconcileInputError('(body)', `not CSV: ${(error as Error).message}`);
  }
  const [header, ...rows] = table;
  if (!header) throw new ReconcileInputError('(body)', 'the CSV is empty');
  const columnIndex = header.findIndex((h) => h.trim().toLowerCase() === input.column.name.toLowerCase());
  if (columnIndex < 0) throw new ReconcileInputError(`query.${input.column.kind === 'leadId' ? 'leadIdColumn' : `${input.column.kind}Column`}`, `no column "${input.column.name}" in the CSV header (${header.join(', ')})`);

  // What we delivered: the acceptance decisions for this buyer in the period.
  const accepted = await models.LogEntry.find({ type: 'decision', buyerId: input.buyerId, at: { $gte: new Date(input.from), $lt: new Date(input.to) }, 'data.decision': 'accepted' }).lean<LogEntryDoc[]>();
  const deliveredIds = [...new Set(accepted.map((d) => d.leadId))];
  const acceptedAt = new Map(accepted.map((d) => [d.leadId, d.at]));
  const summaries = await models.Lead.find({ _id: { $in: deliveredIds } }).lean<LeadDoc[]>();

  // Their rows, keyed like our leads.
  const keyOf = (value: string) => (input.column.kind === 'leadId' ? value.trim() : lookupHash(lookupKey, input.column.kind, value));
  const leadByKey = new Map<string, string>();
  for (const lead of summaries) {
    const key = input.column.kind === 'leadId' ? lead._id : input.column.kind === 'email' ? lead.emailHash : lead.phoneHash;
    if (key) leadByKey.set(key, lead._id);
  }
  const seen = new Map<string, { value: string; rows: number[] }>();
  rows.forEach((row, index) => {
    const value = (row[columnIndex] ?? '').trim();
    if (!value) return;
    const key = keyOf(value);
    const entry = seen.get(key) ?? { value, rows: [] };
    entry.rows.push(index + 2); // line number in the file (header is line 1)
    seen.set(key, entry);
  });

  const found = new Set<string>();
  const duplicates: ReconcileResult['duplicates'] = [];
  const unknown: ReconcileResult['unknown'] = [];
  for (const [key, { value, rows: lines }] of seen) {
    const leadId = leadByKey.get(key);
    if (leadId) found.add(leadId);
    else unknown.push({ value, row: lines[0]! });
    if (lines.length > 1) duplicates.push({ value, rows: lines, ...(leadId ? { leadId } : {}) });
  }

  const missingIds = deliveredIds.filter((id) => !found.has(id));
  const successes = await models.LogEntry.find({ leadId: { $in: missingIds }, type: 'attempt', buyerId: input.buyerId, outcome: 'success' }).sort({ at: 1 }).lean<LogEntryDoc[]>();
  const missing = missingIds.map((leadId) => {
    const attempt = successes.find((s) => s.leadId === leadId);
    const data = attempt?.data as { attemptId?: string; endpointId?: string; finishedAt?: number; code?: string; response?: { status?: number } } | undefined;
    return {
      leadId,
      acceptedAt: acceptedAt.get(leadId)!.toISOString(),
      ...(data?.attemptId ? { attempt: { attemptId: data.attemptId, endpointId: data.endpointId ?? '', finishedAt: data.finishedAt ?? 0, code: data.code ?? '', ...(data.response?.status !== undefined ? { status: data.response.status } : {}) } } : {}),
      receipt: `/v1/leads/${leadId}/receipt`,
    };
  });
  return {
    buyerId: input.buyerId,
    from: new Date(input.from).toISOString(),
    to: new Date(input.to).toISOString(),
    delivered: deliveredIds.length,
    rows: rows.length,
    matched: found.size,
    missing,
    duplicates,
    unknown,
  };
}
