/**
 * Delivery receipts: a JSON statement of what the delivery log holds for a lead — the chain head
 * and every entry's hash, with each attempt's outcome and ms timestamps — signed with Ed25519.
 * Anyone with the published keys can check it offline (scripts/verify-receipt.mjs); the log
 * service checks a receipt against what it holds now (POST /v1/receipts/verify).
 */
import type { LogEntryDoc } from '../../shared/store';
import { recomputeHash, verifyChain } from './chain';
import type { Signer } from './receipt-signing';

export interface ReceiptEntry {
  seq: number;
  type: string;
  at: number;
  hash: string;
  prevHash: string;
  attempt?: { buyerId?: string; endpointId?: string; attempt?: number; outcome?: string; code?: string; status?: number; startedAt?: number; finishedAt?: number };
  decision?: { decision?: string; buyerId?: string };
  status?: { status?: string; buyerId?: string };
  /** A buyer's return and each decision on it (reason codes only: the note is PII and stays out). */
  return?: { returnId?: string; buyerId?: string; status?: string; reason?: string; by?: string };
}

export interface ReceiptBody {
  version: 1;
  type: 'delivery-receipt';
  leadId: string;
  sourceId: string;
  issuedAt: number;
  status?: string;
  buyerId?: string;
  /** The lead was returned by its buyer: the return's status as of the last return entry. */
  return?: { returnId: string; status: string; reason?: string };
  chain: { records: number; head: string };
  entries: ReceiptEntry[];
}

export interface Receipt extends ReceiptBody {
  keyId: string;
  signature: string;
}

/** Outcome-level facts only: no PII ever goes into a receipt. */
function receiptEntry(doc: LogEntryDoc): ReceiptEntry {
  const d = doc.data;
  const base: ReceiptEntry = { seq: doc.seq, type: doc.type, at: doc.at.getTime(), hash: doc.hash, prevHash: doc.prevHash };
  const num = (v: unknown) => (typeof v === 'number' ? v : undefined);
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const clean = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
  if (doc.type === 'attempt') {
    const response = d.response as { status?: unknown } | undefined;
    base.attempt = clean({ buyerId: str(d.buyerId), endpointId: str(d.endpointId), attempt: num(d.attempt), outcome: str(d.outcome), code: str(d.code), status: num(response?.status), startedAt: num(d.startedAt), finishedAt: num(d.finishedAt) });
  } else if (doc.type === 'decision') base.decision = clean({ decision: str(d.decision), buyerId: str(d.buyerId) });
  else if (doc.type === 'status') base.status = clean({ status: str(d.status), buyerId: str(d.buyerId) });
  else if (doc.type === 'return') base.return = clean({ returnId: str(d.returnId), buyerId: str(d.buyerId), status: str(d.status), reason: str(d.reason), by: str(d.by) });
  else if (doc.type === 'return_decision') base.return = clean({ returnId: str(d.returnId), buyerId: str(d.buyerId), status: str(d.status), by: str(d.by) });
  return base;
}

export class BrokenChainError extends Error {}

export function issueReceipt(docs: LogEntryDoc[], signer: Signer, now = Date.now()): Receipt {
  const check = verifyChain(docs);
  if (!check.ok) throw new BrokenChainError(`the journal fails verification at entry ${check.brokenAt?.seq}: ${check.brokenAt?.reason}`);
  const lastStatus = [...docs].reverse().find((d) => d.type === 'status')?.data as { status?: string; buyerId?: string } | undefined;
  const returned = docs.find((d) => d.type === 'return')?.data as { returnId?: string; reason?: string; status?: string } | undefined;
  const returnStatus = ([...docs].reverse().find((d) => d.type === 'return' || d.type === 'return_decision')?.data as { status?: string } | undefined)?.status;
  const body: ReceiptBody = {
    version: 1,
    type: 'delivery-receipt',
    leadId: docs[0]!.leadId,
    sourceId: docs[0]!.sourceId,
    issuedAt: now,
    ...(lastStatus?.status ? { status: lastStatus.status } : {}),
    ...(lastStatus?.buyerId ? { buyerId: lastStatus.buyerId } : {}),
    ...(returned?.returnId && returnStatus ? { return: { returnId: returned.returnId, status: returnStatus, ...(returned.reason ? { reason: returned.reason } : {}) } } : {}),
    chain: { records: docs.length, head: check.head ?? '' },
    entries: docs.map(receiptEntry),
  };
  return { ...body, ...signer.sign(body) };
}

export interface ReceiptCheck {
  signatureValid: boolean;
  /** Every entry of the receipt is in the log, unchanged. */
  matchesLog: boolean;
  mismatches: Array<{ seq: number; reason: string }>;
}

/** A receipt against the log as it is now: signature, then each entry's hash recomputed from the stored data. */
export function checkReceipt(receipt: Receipt, docs: LogEntryDoc[], signer: Signer): ReceiptCheck {
  const { keyId, signature, ...body } = receipt;
  const signatureValid = signer.verify(body, keyId, signature);
  const bySeq = new Map(docs.map((d) => [d.seq, d]));
  const mismatches: ReceiptCheck['mismatches'] = [];
  for (const entry of receipt.entries ?? []) {
    const doc = bySeq.get(entry.seq);
    if (!doc) mismatches.push({ seq: entry.seq, reason: 'not in the log' });
    else if (recomputeHash(doc) !== entry.hash) mismatches.push({ seq: entry.seq, reason: 'the stored entry no longer hashes to the receipt’s hash' });
    else if (doc.hash !== entry.hash) mismatches.push({ seq: entry.seq, reason: 'the stored hash differs from the receipt’s' });
  }
  return { signatureValid, matchesLog: mismatches.length === 0, mismatches };
}
