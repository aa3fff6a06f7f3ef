/**
 * Queries over the delivery log across leads: attempts by lead, buyer, endpoint, source, outcome
 * and time range, as JSON pages (`GET /v1/attempts`, keyset cursor on (at, _id)) and as a
 * streamed CSV export for billing (`GET /v1/attempts.csv`, same filters, same order).
 *
 * - Every query parameter is validated (unknown or repeated parameters and bad values → 400 with
 *   `query.<name>`); the filter is built here from validated strings and Dates only, never from
 *   the request, so no operator can be injected.
 * - Each query shape names the index it walks (a hint): the lead's `{leadId, seq}`, else the most
 *   selective of `{type, endpointId|buyerId|sourceId|outcome, at, _id}`, else `{type, at, _id}`.
 *   The sort (at, _id) is the index order, the period bounds `at`, and the cursor continues from
 *   the last (at, _id) seen: new entries never shift or duplicate a page already read.
 * - The CSV streams from a database cursor (batches of 1000) through a transform into the response
 *   with backpressure: memory stays flat whatever the row count. It carries no PII (ids, times,
 *   classification, status), so nothing is decrypted for it. Buyer returns come from the leads'
 *   summaries, joined per batch (one `$in` query per 1000 rows): `returned` is `true` on the accepted
 *   rows of a lead whose return was approved (credit it), `pending` while an operator has not decided,
 *   `false` otherwise (no return, denied, expired, or not an accepted row of the lead's buyer);
 *   `return_reason` is the return's reason on those accepted rows whenever one was requested.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { csvRow } from '../../shared/csv';
import { ValidationError, type FieldError } from '../../shared/errors';
import { parseWith } from '../../shared/http/validate';
import { SAFE_ID_RE } from '../../shared/ids';
import { OUTCOME_CLASSES } from '../../shared/delivery';
import type { LeadDoc, LogEntryDoc } from '../../shared/store';
import type { LogDeps } from './deps';
import { attemptItem, openDocs } from './read';

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;
/** Documents per getMore of the CSV export's cursor. */
export const EXPORT_BATCH_SIZE = 1000;
/** Bytes of CSV gathered before one write to the response. */
const CHUNK_BYTES = 64 * 1024;

const OUTCOMES = OUTCOME_CLASSES;

export interface AttemptFilters {
  leadId?: string;
  buyerId?: string;
  endpointId?: string;
  sourceId?: string;
  outcome?: (typeof OUTCOMES)[number];
  /** Inclusive lower bound on the entry's `at` (the attempt's finishedAt), ms. */
  from?: number;
  /** Exclusive upper bound, ms. */
  to?: number;
}

/** Where a page ended: the last item's `at` (ms) and entry id. */
export interface AttemptCursor {
  at: number;
  id: string;
}

export type IndexKey = Record<string, 1>;

// ---- the cursor -----------------------------------------------------------------------------

export function encodeCursor(cursor: AttemptCursor): string {
  return Buffer.from(JSON.stringify([cursor.at, cursor.id]), 'utf8').toString('base64url');
}

/** The cursor back, or undefined when the text is not one of ours. */
export function decodeCursor(text: string): AttemptCursor | undefined {
  if (!/^[A-Za-z0-9_-]{1,400}$/.test(text)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (!Array.isArray(value) || value.length !== 2) return undefined;
  const [at, id] = value as [unknown, unknown];
  if (typeof at !== 'number' || !Number.isSafeInteger(at) || at < 0 || typeof id !== 'string' || !SAFE_ID_RE.test(id)) return undefined;
  return { at, id };
}

// ---- validation -----------------------------------------------------------------------------

const id = (what: string) => z.string().regex(SAFE_ID_RE, `must be a ${what} id`);

/** An ISO 8601 instant with a zone (Z or ±hh:mm), a real calendar day. */
const instant = z
  .string()
  .max(40)
  .refine((v) => z.iso.datetime({ offset: true }).safeParse(v).success && validDay(v), 'must be an ISO 8601 instant with a zone, e.g. 2025-01-31T00:00:00Z');

function validDay(v: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})T/.exec(v);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return new Date(Date.UTC(y, mo - 1, d)).getUTCDate() === d && !Number.isNaN(Date.parse(v));
}

const filterShape = {
  leadId: id('lead').optional(),
  buyerId: id('buyer').optional(),
  endpointId: id('endpoint').optional(),
  sourceId: id('source').optional(),
  outcome: z.enum(OUTCOMES, { error: `must be one of ${OUTCOMES.join(', ')}` }).optional(),
  from: instant.optional(),
  to: instant.optional(),
};

const pageQuery = z
  .object({
    ...filterShape,
    cursor: z.string().max(400).optional(),
    limit: z
      .string()
      .regex(/^\d{1,4}$/, `must be a whole number from 1 to ${MAX_LIMIT}`)
      .transform(Number)
      .refine((n) => n >= 1 && n <= MAX_LIMIT, `must be a whole number from 1 to ${MAX_LIMIT}`)
      .optional(),
  })
  .strict();

const exportQuery = z.object(filterShape).strict();

type RawFilters = { [K in keyof typeof filterShape]?: string };

function toFilters(raw: RawFilters, errors: FieldError[]): AttemptFilters {
  const filters: AttemptFilters = {};
  if (raw.leadId) filters.leadId = raw.leadId;
  if (raw.buyerId) filters.buyerId = raw.buyerId;
  if (raw.endpointId) filters.endpointId = raw.endpointId;
  if (raw.sourceId) filters.sourceId = raw.sourceId;
  if (raw.outcome) filters.outcome = raw.outcome as AttemptFilters['outcome'];
  if (raw.from) filters.from = Date.parse(raw.from);
  if (raw.to) filters.to = Date.parse(raw.to);
  if (filters.from !== undefined && filters.to !== undefined && !(filters.from < filters.to)) errors.push({ path: 'query.to', message: 'must be after from' });
  return filters;
}

export function parsePageQuery(query: unknown): { filters: AttemptFilters; cursor?: AttemptCursor; limit: number } {
  const parsed = parseWith(pageQuery, query ?? {}, 'query.');
  const errors: FieldError[] = [];
  const filters = toFilters(parsed, errors);
  let cursor: AttemptCursor | undefined;
  if (parsed.cursor !== undefined) {
    cursor = decodeCursor(parsed.cursor);
    if (!cursor) errors.push({ path: 'query.cursor', message: 'is not a cursor from this API (use the `next` of a previous page)' });
  }
  if (errors.length) throw new ValidationError(errors);
  return { filters, ...(cursor ? { cursor } : {}), limit: parsed.limit ?? DEFAULT_LIMIT };
}

export function parseExportQuery(query: unknown): AttemptFilters {
  const parsed = parseWith(exportQuery, query ?? {}, 'query.');
  const errors: FieldError[] = [];
  const filters = toFilters(parsed, errors);
  if (errors.length) throw new ValidationError(errors);
  return filters;
}

// ---- the query ------------------------------------------------------------------------------

/**
 * The index a query shape walks. A lead has a handful of entries: its `{leadId, seq}` index finds
 * them and they are sorted in memory. Otherwise the most selective equality (an endpoint belongs
 * to one buyer; a buyer's share of the traffic is usually smaller than a source's; an outcome
 * class is the least selective) leads an index whose tail (at, _id) is the sort and the range.
 */
export function chooseIndex(filters: AttemptFilters): IndexKey {
  if (filters.leadId) return { leadId: 1, seq: 1 };
  if (filters.endpointId) return { type: 1, endpointId: 1, at: 1, _id: 1 };
  if (filters.buyerId) return { type: 1, buyerId: 1, at: 1, _id: 1 };
  if (filters.sourceId) return { type: 1, sourceId: 1, at: 1, _id: 1 };
  if (filters.outcome) return { type: 1, outcome: 1, at: 1, _id: 1 };
  return { type: 1, at: 1, _id: 1 };
}

export interface AttemptQuery {
  filter: Record<string, unknown>;
  sort: { at: 1; _id: 1 };
  hint: IndexKey;
}

/** The MongoDB query of a filter set (and a cursor): only validated strings, numbers and Dates. */
export function buildAttemptQuery(filters: AttemptFilters, cursor?: AttemptCursor): AttemptQuery {
  const filter: Record<string, unknown> = { type: 'attempt' };
  if (filters.leadId) filter.leadId = filters.leadId;
  if (filters.endpointId) filter.endpointId = filters.endpointId;
  if (filters.buyerId) filter.buyerId = filters.buyerId;
  if (filters.sourceId) filter.sourceId = filters.sourceId;
  if (filters.outcome) filter.outcome = filters.outcome;
  const lower = Math.max(filters.from ?? -Infinity, cursor?.at ?? -Infinity);
  const at: { $gte?: Date; $lt?: Date } = {};
  if (Number.isFinite(lower)) at.$gte = new Date(lower);
  if (filters.to !== undefined) at.$lt = new Date(filters.to);
  if (at.$gte || at.$lt) filter.at = at;
  // After (at, id): a later instant, or the same instant and a greater id. The range above
  // bounds the walk at the cursor's instant; this only drops the few entries of that instant
  // already returned.
  if (cursor) filter.$or = [{ at: { $gt: new Date(cursor.at) } }, { _id: { $gt: cursor.id } }];
  return { filter, sort: { at: 1, _id: 1 }, hint: chooseIndex(filters) };
}

// ---- CSV ------------------------------------------------------------------------------------

export const ATTEMPT_CSV_COLUMNS = [
  'lead_id',
  'source_lead_id',
  'source_id',
  'buyer_id',
  'endpoint_id',
  'kind',
  'attempt',
  'first_attempt_at',
  'started_at',
  'finished_at',
  'accepted_at',
  'attempts',
  'final',
  'outcome',
  'final_outcome',
  'code',
  'reason',
  'buyer_status',
  'latency_ms',
  'returned',
  'return_reason',
] as const;

/** The fields of an attempt entry the CSV reads (nothing sealed: no PII). */
export const ATTEMPT_CSV_PROJECTION = {
  leadId: 1,
  sourceId: 1,
  buyerId: 1,
  endpointId: 1,
  outcome: 1,
  at: 1,
  'data.clientId': 1,
  'data.kind': 1,
  'data.attempt': 1,
  'data.firstAttemptAt': 1,
  'data.startedAt': 1,
  'data.finishedAt': 1,
  'data.final': 1,
  'data.outcome': 1,
  'data.code': 1,
  'data.reason': 1,
  'data.response.status': 1,
  'data.latencyMs': 1,
  'data.role': 1,
} as const;

/** A lead's return as the CSV joins it (from the lead's summary). */
export interface AttemptCsvReturn {
  buyerId?: string;
  status: string;
  reason?: string;
}

export type AttemptCsvSource = Pick<LogEntryDoc, 'leadId' | 'sourceId' | 'buyerId' | 'endpointId' | 'outcome' | 'at'> & { _id?: string; data: Record<string, unknown>; /** Joined per batch: the lead's return, if it has one. */ return?: AttemptCsvReturn };

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const iso = (v: unknown): string | undefined => {
  const ms = num(v);
  return ms === undefined ? undefined : new Date(ms).toISOString();
};

/** The CSV values of one attempt entry, in ATTEMPT_CSV_COLUMNS order. */
export function attemptCsvValues(doc: AttemptCsvSource): unknown[] {
  const d = doc.data ?? {};
  const outcome = doc.outcome ?? str(d.outcome);
  const final = typeof d.final === 'boolean' ? d.final : undefined;
  const response = d.response && typeof d.response === 'object' ? (d.response as Record<string, unknown>) : {};
  // An accepted row: the success of an accept endpoint of the buyer the lead was delivered to (and returned by).
  const buyerId = doc.buyerId ?? str(d.buyerId);
  const returned = doc.return && outcome === 'success' && d.role !== 'notify' && doc.return.buyerId === buyerId ? doc.return : undefined;
  return [
    doc.leadId,
    str(d.clientId),
    doc.sourceId,
    doc.buyerId ?? str(d.buyerId),
    doc.endpointId ?? str(d.endpointId),
    str(d.kind),
    num(d.attempt),
    iso(d.firstAttemptAt),
    iso(d.startedAt),
    iso(d.finishedAt),
    outcome === 'success' ? iso(d.finishedAt) : undefined,
    num(d.attempt),
    final,
    outcome,
    final ? outcome : undefined,
    str(d.code),
    str(d.reason),
    num(response.status),
    num(d.latencyMs),
    returned?.status === 'approved' ? 'true' : returned?.status === 'pending' ? 'pending' : 'false',
    returned?.reason,
  ];
}

/** One CSV line (RFC 4180, CRLF, formula-looking text neutralised by csvCell). */
export function attemptCsvRow(doc: AttemptCsvSource): string {
  return csvRow(attemptCsvValues(doc));
}

export const ATTEMPT_CSV_HEADER = csvRow(ATTEMPT_CSV_COLUMNS);

/** Documents in, CSV text out, gathered into chunks of ~64 KiB (one write each). */
export class AttemptCsvTransform extends Transform {
  private buffer = ATTEMPT_CSV_HEADER;
  rows = 0;

  constructor() {
    super({ writableObjectMode: true, readableObjectMode: false, writableHighWaterMark: 64 });
  }

  override _transform(doc: AttemptCsvSource, _encoding: BufferEncoding, done: TransformCallback): void {
    try {
      this.buffer += attemptCsvRow(doc);
      this.rows++;
      if (this.buffer.length >= CHUNK_BYTES) {
        const chunk = this.buffer;
        this.buffer = '';
        this.push(chunk, 'utf8');
      }
      done();
    } catch (error) {
      done(error as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    if (this.buffer) this.push(this.buffer, 'utf8');
    this.buffer = '';
    done();
  }
}

// ---- routes ---------------------------------------------------------------------------------

export function createAttemptRoutes(deps: LogDeps): Router {
  const { LogEntry, Lead } = deps.models;
  const router = Router();

  /** The returns of a batch's leads, from their summaries (one `$in` query; leads without a return are not read). */
  async function returnsOf(batch: AttemptCsvSource[]): Promise<Map<string, AttemptCsvReturn>> {
    const ids = [...new Set(batch.map((d) => d.leadId))];
    const rows = await Lead.find({ _id: { $in: ids }, returnStatus: { $exists: true } }, { buyerId: 1, returnStatus: 1, returnReason: 1 }).lean<Array<Pick<LeadDoc, '_id' | 'buyerId' | 'returnStatus' | 'returnReason'>>>();
    return new Map(rows.map((r) => [r._id, { status: r.returnStatus!, ...(r.buyerId ? { buyerId: r.buyerId } : {}), ...(r.returnReason ? { reason: r.returnReason } : {}) }]));
  }

  router.get('/v1/attempts', async (req, res) => {
    const { filters, cursor, limit } = parsePageQuery(req.query);
    const q = buildAttemptQuery(filters, cursor);
    const docs = await LogEntry.find(q.filter).sort(q.sort).hint(q.hint).limit(limit + 1).lean<LogEntryDoc[]>();
    const page = docs.slice(0, limit);
    const last = page[page.length - 1];
    const next = docs.length > limit && last ? encodeCursor({ at: last.at.getTime(), id: last._id }) : null;
    const entries = await openDocs(page, deps.leadKeys);
    res.json({ items: entries.map(attemptItem), next });
  });

  router.get('/v1/attempts.csv', async (req: Request, res: Response) => {
    const filters = parseExportQuery(req.query);
    const q = buildAttemptQuery(filters);
    const cursor = LogEntry.find(q.filter, ATTEMPT_CSV_PROJECTION).sort(q.sort).hint(q.hint).lean<AttemptCsvSource>().cursor({ batchSize: EXPORT_BATCH_SIZE });
    let first: AttemptCsvSource | null;
    try {
      // The query runs here, before anything is sent: a failing store still gets a clean error answer.
      first = await cursor.next();
    } catch (error) {
      await cursor.close().catch(() => undefined);
      throw error;
    }
    /** The cursor's documents a batch at a time, each batch joined with its leads' returns (one query). */
    async function* docs(): AsyncGenerator<AttemptCsvSource> {
      try {
        for (let next = first; next; ) {
          const batch: AttemptCsvSource[] = [next];
          for (let doc: AttemptCsvSource | null; batch.length < EXPORT_BATCH_SIZE && (doc = await cursor.next()); ) batch.push(doc);
          const returns = await returnsOf(batch);
          for (const row of batch) {
            const returned = returns.get(row.leadId);
            yield returned ? { ...row, return: returned } : row;
          }
          // A short batch means the cursor is spent.
          next = batch.length === EXPORT_BATCH_SIZE ? await cursor.next() : null;
        }
      } finally {
        await cursor.close();
      }
    }
    const csv = new AttemptCsvTransform();
    res.status(200);
    res.setHeader('Content-Type', 'text/csv; charset=utf-8');
    res.setHeader('Content-Disposition', `attachment; filename="attempts-${new Date().toISOString().replace(/[:.]/g, '-')}.csv"`);
    try {
      // Pulled one document at a time: the cursor reads the next batch only when the client has
      // taken what was sent (backpressure all the way to the database).
      await pipeline(docs(), csv, res);
    } catch (error) {
      // Rows may already be on the wire: the response is cut short (no terminating chunk), so the
      // client sees that the export failed; nothing else can be said on this response.
      deps.logger.warn({ err: error, rows: csv.rows, clientGone: req.destroyed || res.destroyed }, 'attempts CSV export ended early');
      res.destroy();
    }
  });

  return router;
}
