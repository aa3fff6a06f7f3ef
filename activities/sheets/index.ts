import { createHash, createPrivateKey } from 'node:crypto';
import { z } from 'zod';
// The googleapis package's Sheets module alone: importing the package root pulls the types of
// every Google API into the compiler (gigabytes of memory for one API we use).
import { auth as googleAuth, sheets, type sheets_v4 } from 'googleapis/build/src/apis/sheets';
import type { Classification, EndpointKind, KindAnswer, LoadedEndpoint } from '../types';
import type { ReadBack } from '../../shared/delivery';
import type { KindDeps } from '../providers';
import type { FieldError } from '../../shared/errors';
import type { Logger } from '../../shared/logger';
import { OutboundError, type OutboundErrorCode } from '../../shared/http/outbound';
import { applyMapping, MappingError, validateMapping, type Mapping } from '../../shared/mapping';
import { classifyHttpStatus, parseRetryAfter } from '../http-classify';

/**
 * Google Sheets (the `googleapis` SDK, Sheets API v4): one row per lead, appended to a tab of the
 * buyer's spreadsheet with a service account (the endpoint's own key, or the deployment's shared
 * one) that the buyer shared the spreadsheet with.
 *
 * - Columns: `lead_id` first, then the mapping's keys; the header row is written on first use
 *   (and extended when the mapping gains a key). Values are written RAW: a lead field such as
 *   `=HYPERLINK(…)` lands as text, never as a formula.
 * - No duplicate rows: before appending, the lead-id column is read; a lead already there is a
 *   success ("already_present") without a second row. Writes are serialised per spreadsheet.
 * - Read-back (after an ambiguous attempt): `lookup` reads column A alone (`values.get`, one read
 *   within the quota) and records the row holding the lead id (`found_on_read_back`); not found,
 *   the send goes ahead and its own check still runs.
 * - Batched: rows for one spreadsheet are collected for a short window (or until 100 rows) and
 *   written with one `values.append` after one `values.batchGet` (header + lead-id column).
 * - Within quota: a limiter paces reads and writes per service account (60/min) and per project
 *   (300/min), as Google's Sheets quotas are counted; a flush that could not start before its
 *   attempts' deadlines answers transient with the time to wait.
 * - The SDK's retries are off (gaxios would retry GETs, never POSTs): the workflow owns retries.
 */

export const LEAD_ID_COLUMN = 'lead_id';
export const SCOPES = ['https://www.googleapis.com/auth/spreadsheets'];
/** Columns when the endpoint has no mapping. */
export const DEFAULT_COLUMNS: Mapping = {
  received_at: 'received_at',
  first_name: 'first_name',
  last_name: 'last_name',
  email: 'email',
  phone: 'phone',
  city: 'city',
  state: 'state',
  zip: 'zip',
};

// ---- settings ---------------------------------------------------------------------------------

export const serviceAccountKey = z
  .object({
    type: z.literal('service_account').optional(),
    project_id: z.string().min(1).max(100).optional(),
    private_key_id: z.string().max(100).optional(),
    private_key: z
      .string()
      .max(10_000)
      .refine((pem) => {
        try {
          createPrivateKey(pem);
          return true;
        } catch {
          return false;
        }
      }, 'must be the PEM private key of the service account ("-----BEGIN PRIVATE KEY-----…")'),
    client_email: z.email({ message: 'must be the service account e-mail (…@….iam.gserviceaccount.com)' }),
  })
  .loose();
export type ServiceAccountKey = z.infer<typeof serviceAccountKey>;

/** The key file's JSON, as text or as an object. */
const serviceAccountInput = z.union([
  serviceAccountKey,
  z
    .string()
    .max(20_000)
    .transform((text, ctx) => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'must be the service account key file (JSON)' });
        return z.NEVER;
      }
    })
    .pipe(serviceAccountKey),
]);

export const sheetsConfig = z
  .object({
    spreadsheetId: z.string().regex(/^[A-Za-z0-9_-]{10,200}$/, 'must be a spreadsheet id (the part of its URL after /d/)'),
    sheet: z
      .string()
      .min(1, 'must not be empty')
      .max(100, 'must be at most 100 characters')
      .regex(/^[^\u0000-\u001f\u007f]+$/, 'must not contain control characters')
      .default('Sheet1'),
  })
  .strict();

export const sheetsSecrets = z.object({ serviceAccount: serviceAccountInput.optional() }).strict();

type Config = z.infer<typeof sheetsConfig>;
type Secrets = z.infer<typeof sheetsSecrets>;

// ---- payload ----------------------------------------------------------------------------------

type Cell = string | number | boolean;

export interface Account {
  email: string;
  key: string;
  /** Google counts "per project" quotas against the service account's project. */
  projectId: string;
  /** email + key fingerprint: one SDK client (and token cache) per key. */
  id: string;
}

interface SheetsPayload {
  spreadsheetId: string;
  sheet: string;
  leadId: string;
  /** Column name → cell, lead_id first. */
  columns: string[];
  cells: Cell[];
  account: Account;
}

export function accountOf(key: ServiceAccountKey): Account {
  const projectFromEmail = /@([^.]+)\.iam\.gserviceaccount\.com$/.exec(key.client_email)?.[1];
  return {
    email: key.client_email,
    key: key.private_key,
    projectId: key.project_id ?? projectFromEmail ?? key.client_email,
    id: `${key.client_email}#${createHash('sha256').update(key.private_key).digest('hex').slice(0, 12)}`,
  };
}

function toCell(value: unknown): Cell {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  return JSON.stringify(value);
}

/** Path-segment encoding as the SDK's URL template does it (RFC 3986: !'()* escaped too). */
function encodeSegment(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** A tab name in A1 notation: always quoted, quotes doubled. */
export function quoteSheet(name: string): string {
  return `'${name.replace(/'/g, "''")}'`;
}

// ---- classification ---------------------------------------------------------------------------

export interface SheetsAnswer extends KindAnswer {
  /** Set when our own quota limiter, not Google, asks to come back later. */
  retryAfterMs?: number;
}

export function classifySheets(answer: SheetsAnswer): Classification {
  const status = answer.status ?? 0;
  const message = answer.providerMessage ?? '';
  if (answer.providerCode === 'already_present') return { outcome: 'success', code: 'already_present', reason: message || 'the lead is already in the sheet' };
  if (answer.providerCode === 'quota_wait') {
    return { outcome: 'transient', code: 'sheets_quota_wait', reason: message || 'the Sheets quota is used up for now', ...(answer.retryAfterMs !== undefined ? { retryAfterMs: answer.retryAfterMs } : {}) };
  }
  if (answer.providerCode === 'header_mismatch') return { outcome: 'permanent', code: 'sheets_header_mismatch', reason: message };
  if (status >= 200 && status < 300) return { outcome: 'success', code: 'ok', reason: message || `${status}` };
  const retryAfterMs = answer.retryAfterMs ?? parseRetryAfter(answer.headers?.['retry-after']);
  const after = retryAfterMs !== undefined ? { retryAfterMs } : {};
  const label = `${status}${answer.providerCode ? ` ${answer.providerCode}` : ''}${message ? `: ${message}` : ''}`;
  if (status === 429 || (status === 403 && (answer.providerCode === 'RESOURCE_EXHAUSTED' || /rate ?limit/i.test(message)))) {
    return { outcome: 'transient', code: 'http_429', reason: label, ...after };
  }
  if (status === 400 && /unable to parse range/i.test(message)) return { outcome: 'permanent', code: 'sheets_tab_not_found', reason: `${label} (the tab does not exist in the spreadsheet)` };
  if (status === 401 || status === 403 || status === 404) return { outcome: 'permanent', code: `http_${status}`, reason: label };
  if (status >= 500) return { outcome: 'transient', code: `http_${status}`, reason: label, ...after };
  return { ...classifyHttpStatus(answer), reason: label };
}

// ---- quota limiter ----------------------------------------------------------------------------

export interface QuotaLimits {
  /** Requests of one kind (read or write) per window per service account (Google: 60/min). */
  perAccount: number;
  /** … per project (Google: 300/min). */
  perProject: number;
  /** The quota window plus a safety margin for clock and network skew. */
  windowMs: number;
}
export const GOOGLE_SHEETS_QUOTA: QuotaLimits = { perAccount: 60, perProject: 300, windowMs: 61_000 };

export type Reservation = { ok: true; waitMs: number } | { ok: false; retryAfterMs: number };

/**
 * Paces requests so that no window of `windowMs` ever holds more than the limit, per service
 * account and per project, reads and writes counted apart (Google's Sheets quotas). Each bucket
 * spaces its requests by window/limit (a burst becomes one request per second per account: the
 * batcher fills each with everything that waited) and also keeps a sliding log as a second check.
 * Slots are reserved when granted, so concurrent flushes never share one. Per process.
 */
export class QuotaLimiter {
  private readonly log = new Map<string, number[]>();

  constructor(
    private readonly limits: QuotaLimits = GOOGLE_SHEETS_QUOTA,
    private readonly clock: () => number = Date.now,
  ) {}

  reserve(kind: 'read' | 'write', account: Pick<Account, 'email' | 'projectId'>, maxWaitMs: number): Reservation {
    const now = this.clock();
    const { windowMs } = this.limits;
    const buckets: Array<[string, number]> = [
      [`${kind}:account:${account.email}`, this.limits.perAccount],
      [`${kind}:project:${account.projectId}`, this.limits.perProject],
    ];
    const logs = buckets.map(([key]) => {
      const times = (this.log.get(key) ?? []).filter((t) => t > now - windowMs);
      this.log.set(key, times);
      return times;
    });
    let at = now;
    for (let round = 0; round < 8; round++) {
      let moved = false;
      buckets.forEach(([, limit], i) => {
        const times = logs[i]!;
        const spacing = windowMs / limit;
        const last = times[times.length - 1];
        if (last !== undefined && at < last + spacing) {
          at = last + spacing;
          moved = true;
        }
        const inWindow = times.filter((t) => t > at - windowMs).length;
        if (inWindow >= limit) {
          at = times[times.length - limit]! + windowMs;
          moved = true;
        }
      });
      if (!moved) break;
    }
    const waitMs = Math.ceil(at - now);
    if (waitMs > maxWaitMs) return { ok: false, retryAfterMs: waitMs };
    for (const times of logs) times.push(at);
    return { ok: true, waitMs };
  }
}

// ---- the batcher ------------------------------------------------------------------------------

export interface BatchOptions {
  /** How long rows for one spreadsheet are collected before a flush. */
  windowMs: number;
  /** A flush starts at once when this many rows wait (and writes at most this many). */
  maxRows: number;
}
export const DEFAULT_BATCH: BatchOptions = { windowMs: 300, maxRows: 100 };
/** Time a request needs at least; a row with less left is not started (its attempt times out). */
const MIN_REQUEST_MS = 250;

interface PendingRow {
  payload: SheetsPayload;
  enqueuedAt: number;
  deadline: number;
  settled: boolean;
  cleanup?: () => void;
  resolve(answer: SheetsAnswer): void;
  reject(error: unknown): void;
}

interface Lane {
  queue: PendingRow[];
  running: boolean;
  timer?: NodeJS.Timeout;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function settle(row: PendingRow, outcome: { answer: SheetsAnswer } | { error: unknown }): void {
  if (row.settled) return;
  row.settled = true;
  row.cleanup?.();
  if ('answer' in outcome) row.resolve(outcome.answer);
  else row.reject(outcome.error);
}

function headersOf(headers: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (headers && typeof (headers as Headers).forEach === 'function' && typeof (headers as Headers).get === 'function') {
    (headers as Headers).forEach((value, name) => {
      out[name.toLowerCase()] = value;
    });
  } else if (headers && typeof headers === 'object') {
    for (const [name, value] of Object.entries(headers as Record<string, unknown>)) if (typeof value === 'string') out[name.toLowerCase()] = value;
  }
  return out;
}

const NETWORK_CODES: Record<string, OutboundErrorCode> = {
  TimeoutError: 'timeout',
  ETIMEDOUT: 'timeout',
  // gaxios aborts a request at its `timeout` (we pass no signal of our own): a timeout.
  AbortError: 'timeout',
  ECONNREFUSED: 'connection_refused',
  ECONNRESET: 'connection_reset',
  EPIPE: 'connection_reset',
  UND_ERR_SOCKET: 'connection_reset',
  ENOTFOUND: 'dns_error',
  EAI_AGAIN: 'dns_error',
  CERT_HAS_EXPIRED: 'tls_error',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'tls_error',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'tls_error',
};

interface GoogleErrorShape {
  error?: { code?: number; message?: string; status?: string };
}

/** A failed SDK call as an answer (Google answered) or an OutboundError (it did not). */
function failure(error: unknown, context: { account: Account; spreadsheetId: string; sheet: string }): { answer: SheetsAnswer } | { error: unknown } {
  const response = (error as { response?: { status?: number; data?: unknown; headers?: unknown } } | undefined)?.response;
  if (response?.status) {
    const data = response.data;
    const google = (typeof data === 'object' && data !== null ? (data as GoogleErrorShape).error : undefined) ?? {};
    let message = google.message ?? (typeof data === 'string' ? data.slice(0, 200) : '');
    if (response.status === 403 && google.status !== 'RESOURCE_EXHAUSTED') message = `${message || 'permission denied'} — share the spreadsheet with ${context.account.email} (as an Editor)`;
    if (response.status === 404) message = `${message || 'not found'} — spreadsheet ${context.spreadsheetId} does not exist (check the id)`;
    return {
      answer: {
        status: response.status,
        headers: headersOf(response.headers),
        body: typeof data === 'string' ? data : JSON.stringify(data ?? ''),
        ...(google.status ? { providerCode: google.status } : {}),
        providerMessage: message,
      },
    };
  }
  const shape = error as { code?: unknown; name?: unknown; cause?: { code?: unknown; name?: unknown } } | undefined;
  const key = [shape?.code, shape?.cause?.code, shape?.name, shape?.cause?.name].find((k): k is string => typeof k === 'string' && k in NETWORK_CODES);
  if (key) {
    const mapped = NETWORK_CODES[key]!;
    return { error: new OutboundError(mapped, mapped === 'timeout' ? 'no answer from Google Sheets in time' : `${key}: ${error instanceof Error ? error.message : String(error)}`, { cause: error }) };
  }
  if (error instanceof Error && /fetch failed|network|socket/i.test(error.message)) return { error: new OutboundError('network_error', error.message, { cause: error }) };
  return { error };
}

/**
 * One lane per spreadsheet: rows queue up, and one flush at a time (reads and writes of a
 * spreadsheet never overlap, so the lead-id check and the append cannot race in this process).
 */
export class SheetsBatcher {
  private readonly lanes = new Map<string, Lane>();
  private readonly clients = new Map<string, sheets_v4.Sheets>();

  constructor(
    private readonly rootUrl: string,
    private readonly limiter: QuotaLimiter,
    private readonly batch: BatchOptions = DEFAULT_BATCH,
    private readonly logger?: Logger,
  ) {}

  submit(payload: SheetsPayload, io: { signal: AbortSignal; timeoutMs: number }): Promise<SheetsAnswer> {
    return new Promise<SheetsAnswer>((resolve, reject) => {
      const now = Date.now();
      const row: PendingRow = { payload, enqueuedAt: now, deadline: now + io.timeoutMs, settled: false, resolve, reject };
      let lane = this.lanes.get(payload.spreadsheetId);
      if (!lane) {
        lane = { queue: [], running: false };
        this.lanes.set(payload.spreadsheetId, lane);
      }
      lane.queue.push(row);
      const current = lane;
      const onAbort = () => {
        const index = current.queue.indexOf(row);
        if (index >= 0) current.queue.splice(index, 1);
        // Still queued: nothing was sent. Taken by a flush: its append may be on the way.
        settle(row, { error: new OutboundError('aborted', index >= 0 ? 'the attempt was cancelled before the row was sent' : 'the attempt was cancelled while the row was being written', index >= 0 ? { sent: false } : {}) });
      };
      io.signal.addEventListener('abort', onAbort, { once: true });
      row.cleanup = () => io.signal.removeEventListener('abort', onAbort);
      this.schedule(payload.spreadsheetId, lane);
    });
  }

  /**
   * The read-back: column A of the tab (header and lead ids), one `values.get` within the read
   * quota. Found: the row holding the lead id. A read Google refuses for good (not shared, no such
   * tab, …) does not block: the send's own check reads again before appending, and its answer decides.
   */
  async lookup(payload: SheetsPayload, io: { signal: AbortSignal; timeoutMs: number }): Promise<ReadBack> {
    const { account, spreadsheetId, sheet, leadId } = payload;
    const deadline = Date.now() + io.timeoutMs;
    const reservation = this.limiter.reserve('read', account, io.timeoutMs - MIN_REQUEST_MS);
    if (!reservation.ok) {
      throw new SheetsReadBackError({ outcome: 'transient', code: 'sheets_quota_wait', reason: `Sheets read quota of ${account.email} is used up for ${Math.ceil(reservation.retryAfterMs / 1000)}s`, retryAfterMs: reservation.retryAfterMs });
    }
    if (reservation.waitMs > 0) await sleep(reservation.waitMs);
    const range = `${quoteSheet(sheet)}!A:A`;
    let values: unknown[][];
    try {
      const read = await this.client(account).spreadsheets.values.get({ spreadsheetId, range, majorDimension: 'ROWS' }, { retry: false, timeout: Math.max(100, deadline - Date.now()), signal: io.signal });
      values = (read.data.values ?? []) as unknown[][];
    } catch (error) {
      const outcome = failure(error, { account, spreadsheetId, sheet });
      if ('error' in outcome) throw outcome.error;
      const classification = classifySheets(outcome.answer);
      if (classification.outcome !== 'permanent') throw new SheetsReadBackError(classification);
      return { found: false, detail: `could not read back (${classification.code}: ${classification.reason}); the send reads the lead-id column again before appending, and its answer decides` };
    }
    const cellText = (cells: unknown[] | undefined) => {
      const value = cells?.[0];
      return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? String(value) : '';
    };
    const header = cellText(values[0]);
    if (values.length === 0) return { found: false, detail: `${sheet} is empty (values.get ${range})` };
    if (header !== LEAD_ID_COLUMN) return { found: false, detail: `column A of ${sheet} is not headed ${LEAD_ID_COLUMN}: nothing to look up (the send reports the header)` };
    const index = values.findIndex((cells, i) => i > 0 && cellText(cells) === leadId);
    if (index > 0) return { found: true, messageId: `${sheet}!A${index + 1}`, detail: `the lead id is in row ${index + 1} of ${sheet} (values.get ${range})` };
    return { found: false, detail: `the lead id is not in column A of ${sheet} (${values.length - 1} row${values.length === 2 ? '' : 's'} read, values.get ${range})` };
  }

  private client(account: Account): sheets_v4.Sheets {
    let api = this.clients.get(account.id);
    if (!api) {
      // The self-signed JWT flow: no token endpoint, each request carries an RS256 JWT with the scope.
      const auth = new googleAuth.JWT({ email: account.email, key: account.key, scopes: SCOPES });
      auth.useJWTAccessWithScope = true;
      api = sheets({ version: 'v4', auth, rootUrl: this.rootUrl });
      this.clients.set(account.id, api);
    }
    return api;
  }

  private schedule(id: string, lane: Lane): void {
    if (lane.running || lane.queue.length === 0) return;
    const wait = lane.queue.length >= this.batch.maxRows ? 0 : Math.max(0, lane.queue[0]!.enqueuedAt + this.batch.windowMs - Date.now());
    if (lane.timer) {
      if (wait > 0) return;
      clearTimeout(lane.timer);
    }
    lane.timer = setTimeout(() => {
      lane.timer = undefined;
      void this.run(id, lane);
    }, wait);
  }

  private async run(id: string, lane: Lane): Promise<void> {
    lane.running = true;
    try {
      while (lane.queue.length > 0) {
        const first = lane.queue[0]!;
        const key = (r: PendingRow) => `${r.payload.sheet}\u0000${r.payload.account.id}`;
        const group: PendingRow[] = [];
        const rest: PendingRow[] = [];
        for (const row of lane.queue) (group.length < this.batch.maxRows && key(row) === key(first) ? group : rest).push(row);
        lane.queue = rest;
        try {
          await this.flush(id, group);
        } catch (error) {
          this.logger?.error({ err: error, spreadsheetId: id }, 'sheets flush failed');
          for (const row of group) settle(row, { error });
        }
        // Rows that arrived during the flush get their window (unless a full batch waits).
        const next = lane.queue[0];
        if (next && lane.queue.length < this.batch.maxRows && next.enqueuedAt + this.batch.windowMs > Date.now()) break;
      }
    } finally {
      lane.running = false;
      if (lane.queue.length > 0) this.schedule(id, lane);
      else if (this.lanes.get(id) === lane && !lane.timer) this.lanes.delete(id);
    }
  }

  private async flush(spreadsheetId: string, group: PendingRow[]): Promise<void> {
    const now = Date.now();
    const live: PendingRow[] = [];
    for (const row of group) {
      if (row.settled) continue;
      if (row.deadline - now < MIN_REQUEST_MS) settle(row, { error: new OutboundError('timeout', 'no time left in the attempt for the spreadsheet call', { sent: false }) });
      else live.push(row);
    }
    if (live.length === 0) return;
    const { account, sheet } = live[0]!.payload;
    const context = { account, spreadsheetId, sheet };
    const deadline = Math.max(...live.map((r) => r.deadline));
    const all = (outcome: { answer: SheetsAnswer } | { error: unknown }, rows: PendingRow[] = live) => rows.forEach((r) => settle(r, outcome));
    const api = this.client(account);
    const tab = quoteSheet(sheet);

    /** Waits for a quota slot; false (rows answered) when none comes before the deadline. */
    const slot = async (kind: 'read' | 'write', rows: PendingRow[]): Promise<boolean> => {
      const reservation = this.limiter.reserve(kind, account, deadline - Date.now() - MIN_REQUEST_MS);
      if (!reservation.ok) {
        const seconds = Math.ceil(reservation.retryAfterMs / 1000);
        all({ answer: { providerCode: 'quota_wait', providerMessage: `Sheets ${kind} quota of ${account.email} is used up for ${seconds}s (limits: ${GOOGLE_SHEETS_QUOTA.perAccount}/min per service account, ${GOOGLE_SHEETS_QUOTA.perProject}/min per project)`, retryAfterMs: reservation.retryAfterMs } }, rows);
        return false;
      }
      if (reservation.waitMs > 0) await sleep(reservation.waitMs);
      return true;
    };
    const callOptions = () => ({ retry: false, timeout: Math.max(100, deadline - Date.now()) });

    // 1. One read: the header row and the lead-id column.
    if (!(await slot('read', live))) return;
    let header: string[];
    const present = new Map<string, number>();
    try {
      const read = await api.spreadsheets.values.batchGet({ spreadsheetId, ranges: [`${tab}!1:1`, `${tab}!A2:A`], majorDimension: 'ROWS' }, callOptions());
      header = (read.data.valueRanges?.[0]?.values?.[0] ?? []).map((v) => String(v));
      (read.data.valueRanges?.[1]?.values ?? []).forEach((cells, index) => {
        const value = (cells as unknown[] | undefined)?.[0];
        const id = typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? String(value) : '';
        if (id !== '' && !present.has(id)) present.set(id, index + 2);
      });
    } catch (error) {
      return all(failure(error, context));
    }

    // 2. The header: written with the first rows, extended when the mapping gained columns.
    const wanted: string[] = [];
    for (const row of live) for (const column of row.payload.columns) if (!wanted.includes(column)) wanted.push(column);
    let columns = header;
    let headerInAppend = false;
    let headerUpdate: string[] | undefined;
    if (header.length === 0) {
      if (present.size > 0) return all({ answer: { providerCode: 'header_mismatch', providerMessage: `row 1 of ${sheet} is empty but the tab holds data: row 1 must be the header, starting with ${LEAD_ID_COLUMN}` } });
      columns = wanted;
      headerInAppend = true;
    } else if (header[0] !== LEAD_ID_COLUMN) {
      return all({ answer: { providerCode: 'header_mismatch', providerMessage: `column A of ${sheet} is "${header[0]}", not ${LEAD_ID_COLUMN}: use an empty tab, or insert a ${LEAD_ID_COLUMN} column A` } });
    } else {
      const missing = wanted.filter((c) => !header.includes(c));
      if (missing.length > 0) columns = headerUpdate = [...header, ...missing];
    }

    // 3. Rows not in the sheet yet (and each lead once, even if two attempts of it wait together).
    const fresh: PendingRow[] = [];
    const twins = new Map<PendingRow, PendingRow>();
    const firstOf = new Map<string, PendingRow>();
    for (const row of live) {
      const at = present.get(row.payload.leadId);
      if (at !== undefined) {
        settle(row, { answer: { status: 200, messageId: `${sheet}!A${at}`, providerCode: 'already_present', providerMessage: `lead ${row.payload.leadId} is already in row ${at} of ${sheet}; not appended again`, body: JSON.stringify({ spreadsheetId, range: `${tab}!A${at}`, leadId: row.payload.leadId, alreadyPresent: true }) } });
        continue;
      }
      const earlier = firstOf.get(row.payload.leadId);
      if (earlier) twins.set(row, earlier);
      else {
        firstOf.set(row.payload.leadId, row);
        fresh.push(row);
      }
    }
    const pending = [...fresh, ...twins.keys()];
    if (fresh.length === 0) return;

    if (headerUpdate) {
      if (!(await slot('write', pending))) return;
      try {
        await api.spreadsheets.values.update({ spreadsheetId, range: `${tab}!A1`, valueInputOption: 'RAW', requestBody: { majorDimension: 'ROWS', values: [headerUpdate] } }, callOptions());
      } catch (error) {
        return all(failure(error, context), pending);
      }
    }

    // 4. One append for every fresh row (RAW: values are never parsed as formulas).
    if (!(await slot('write', pending))) return;
    const values: Cell[][] = fresh.map((row) => {
      const byColumn = new Map(row.payload.columns.map((c, i) => [c, row.payload.cells[i]!]));
      return columns.map((c) => byColumn.get(c) ?? '');
    });
    if (headerInAppend) values.unshift(columns);
    try {
      const appended = await api.spreadsheets.values.append(
        { spreadsheetId, range: `${tab}!A1`, valueInputOption: 'RAW', insertDataOption: 'INSERT_ROWS', requestBody: { majorDimension: 'ROWS', values } },
        callOptions(),
      );
      const updatedRange = appended.data.updates?.updatedRange ?? '';
      const startRow = Number(/!\$?[A-Z]+\$?(\d+)/.exec(updatedRange)?.[1] ?? NaN);
      const body = JSON.stringify(appended.data);
      const headers = headersOf(appended.headers);
      fresh.forEach((row, i) => {
        const at = Number.isFinite(startRow) ? startRow + i + (headerInAppend ? 1 : 0) : undefined;
        const answer: SheetsAnswer = {
          status: appended.status,
          headers,
          body,
          ...(at !== undefined ? { messageId: `${sheet}!A${at}` } : {}),
          providerMessage: `appended${at !== undefined ? ` as row ${at}` : ''} (one append of ${values.length} row${values.length > 1 ? 's' : ''}${headerInAppend ? ', header included' : ''})`,
        };
        settle(row, { answer });
        for (const [twin, of] of twins) if (of === row) settle(twin, { answer: { ...answer, providerCode: 'already_present', providerMessage: `lead ${row.payload.leadId} was appended by a concurrent attempt${at !== undefined ? ` as row ${at}` : ''}` } });
      });
    } catch (error) {
      all(failure(error, context), pending);
    }
  }
}

/** A read-back Google could not answer now (429, 5xx, our quota): the attempt is transient, nothing is sent. */
export class SheetsReadBackError extends Error {
  constructor(readonly classification: Classification) {
    super(`Google Sheets could not be read back: ${classification.code} (${classification.reason})`);
    this.name = 'SheetsReadBackError';
  }
}

// ---- the kind ---------------------------------------------------------------------------------

export function createSheetsKind(deps: KindDeps, options: { batch?: BatchOptions; quota?: QuotaLimits } = {}) {
  const rootUrl = deps.providers.googleApiRootUrl.endsWith('/') ? deps.providers.googleApiRootUrl : `${deps.providers.googleApiRootUrl}/`;
  const batcher = new SheetsBatcher(rootUrl, new QuotaLimiter(options.quota ?? GOOGLE_SHEETS_QUOTA), options.batch ?? DEFAULT_BATCH, deps.logger);

  /** The deployment's shared key (GOOGLE_SERVICE_ACCOUNT), when set and valid. */
  const shared = (() => {
    if (!deps.providers.googleServiceAccount) return undefined;
    const parsed = serviceAccountInput.safeParse(deps.providers.googleServiceAccount);
    if (!parsed.success) deps.logger?.warn('GOOGLE_SERVICE_ACCOUNT is not a valid service account key: Sheets endpoints must bring their own');
    return parsed.success ? parsed.data : undefined;
  })();

  const columnsOf = (mapping: unknown): Mapping => (mapping as Mapping | undefined) ?? DEFAULT_COLUMNS;

  return {
    kind: 'sheets',
    description: "One row per lead in a Google Sheets tab (service account; header on first use; no duplicate rows; batched within quota)",
    configSchema: sheetsConfig,
    secretsSchema: sheetsSecrets,
    validate(_config, secrets, mapping): FieldError[] {
      const errors = validateMapping(mapping);
      if (mapping && typeof mapping === 'object' && !Array.isArray(mapping)) {
        if (LEAD_ID_COLUMN in mapping) errors.push({ path: `mapping.${LEAD_ID_COLUMN}`, message: `${LEAD_ID_COLUMN} is always column A (written by the kind); use another column name` });
        if (Object.keys(mapping).length === 0) errors.push({ path: 'mapping', message: 'must name at least one column' });
      }
      if (!secrets.serviceAccount && !shared) errors.push({ path: 'serviceAccount', message: 'is required: this deployment has no shared service account (GOOGLE_SERVICE_ACCOUNT)' });
      return errors;
    },
    map(endpoint, ctx) {
      const { config } = endpoint;
      const mapping = columnsOf(endpoint.mapping);
      const fields = applyMapping(mapping, ctx);
      const key = endpoint.secrets.serviceAccount ?? shared;
      if (!key) throw new MappingError('no service account: give the endpoint a serviceAccount key, or configure GOOGLE_SERVICE_ACCOUNT', 'serviceAccount');
      const columns = [LEAD_ID_COLUMN, ...Object.keys(mapping)];
      const cells = [ctx.leadId as Cell, ...Object.keys(mapping).map((k) => toCell(fields[k]))];
      const range = `${quoteSheet(config.sheet)}!A1`;
      return {
        payload: { spreadsheetId: config.spreadsheetId, sheet: config.sheet, leadId: ctx.leadId, columns, cells, account: accountOf(key) },
        describe: {
          method: 'POST',
          url: `${rootUrl}v4/spreadsheets/${encodeSegment(config.spreadsheetId)}/values/${encodeSegment(range)}:append?valueInputOption=RAW&insertDataOption=INSERT_ROWS`,
          headers: { authorization: 'Bearer <RS256 JWT signed with the service account key>', 'content-type': 'application/json' },
          // This lead's row (columns: lead_id + the mapping's keys); it may share one append with other leads' rows.
          body: JSON.stringify({ majorDimension: 'ROWS', values: [cells] }),
        },
      };
    },
    send(prepared, _endpoint: LoadedEndpoint<Config, Secrets>, io) {
      return batcher.submit(prepared.payload, io);
    },
    lookup(prepared, _endpoint: LoadedEndpoint<Config, Secrets>, io) {
      return batcher.lookup(prepared.payload, io);
    },
    classify: classifySheets,
  } satisfies EndpointKind<Config, Secrets, SheetsPayload>;
}
