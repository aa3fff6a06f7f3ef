/**
 * The Sheets batcher: rows for one spreadsheet are collected for a short window (or until
 * `maxRows` wait) and written by one flush: one `values.batchGet` (header row + lead-id column),
 * the header written or extended when needed, one `values.append` for every row not there yet.
 * Flushes of one spreadsheet never overlap (one lane each), and a quota limiter paces every read
 * and write per service account and per project, as Google counts its Sheets quotas. Also the
 * read-back of a lead (`lookup`: column A alone, one read within the quota).
 */
import { auth as googleAuth, sheets, type sheets_v4 } from '@googleapis/sheets';
import type { ReadBack } from '../../shared/delivery';
import type { Logger } from '../../shared/logger';
import { OutboundError } from '../../shared/http/outbound';
import type { Classification } from '../types';
import type { Throttle } from '../throttle';
import { randomUUID } from 'node:crypto';
import { classifySheets, type SheetsAnswer } from './classify';
import type { Account, Cell, SheetsPayload } from './index';

export const LEAD_ID_COLUMN = 'lead_id';
export const SCOPES = ['https://www.googleapis.com/auth/spreadsheets'];

/** A tab name in A1 notation: always quoted, quotes doubled. */
export function quoteSheet(name: string): string {
  return `'${name.replace(/'/g, "''")}'`;
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
 * Slots are reserved when granted, so concurrent flushes never share one. Per process; the batcher
 * also takes a slot of the same quota across workers (`SheetsBatcher.sharedSlot`, activities/throttle.ts).
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

interface GoogleErrorShape {
  error?: { code?: number; message?: string; status?: string };
}

/**
 * A failed SDK call as an answer (Google answered), or as an error when it did not: a failure of
 * the request itself (gaxios keeps the request's `config` on its errors; fetch's own failures) is
 * handed to the registry as `network_error` to name from its table (refused, reset, DNS, TLS, a
 * timeout: gaxios aborts at its `timeout`); anything else (a key that cannot sign) is thrown as is.
 */
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
  if (isRequestFailure(error)) return { error: new OutboundError('network_error', error.message, { cause: error }) };
  return { error };
}

function isRequestFailure(error: unknown): error is Error {
  if (!(error instanceof Error)) return false;
  return typeof (error as { config?: unknown }).config === 'object' || /fetch failed|network|socket/i.test(error.message);
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
    /** Google's per-minute quotas counted across every worker (activities/throttle.ts); without it, per process only. */
    private readonly shared?: { throttle: Throttle; limits: QuotaLimits },
  ) {}

  /**
   * The quota across workers: a send slot (now or within `maxWaitMs`) per service account and per
   * project, spaced window / limit apart like the process's own pacing, which comes first. A store that cannot be asked leaves the
   * process's pacing alone in charge (Google's 429 is a transient answer, retried on schedule).
   */
  private async sharedSlot(kind: 'read' | 'write', account: Pick<Account, 'email' | 'projectId'>, maxWaitMs: number): Promise<Reservation> {
    if (!this.shared) return { ok: true, waitMs: 0 };
    const { throttle, limits } = this.shared;
    const holder = randomUUID();
    const notAfter = Date.now() + maxWaitMs;
    // Spaced window / (limit - 1) apart: any window of that length touches at most `limit` slots.
    const keys: Array<[string, number]> = [[`sheets:${kind}:account:${account.email}`, limits.perAccount], [`sheets:${kind}:project:${account.projectId}`, limits.perProject]];
    const held: string[] = [];
    let waitMs = 0;
    try {
      for (const [key, limit] of keys) {
        const slot = await throttle.take(key, { everyMs: Math.ceil(limits.windowMs / Math.max(1, limit - 1)) }, holder, { notAfter });
        if (!slot.reserved) {
          for (const k of held) await throttle.release(k, holder);
          return { ok: false, retryAfterMs: slot.waitMs };
        }
        held.push(key);
        waitMs = Math.max(waitMs, slot.waitMs);
      }
    } catch (error) {
      this.logger?.warn({ err: error }, 'the shared Sheets quota could not be asked; pacing in this process only');
      return { ok: true, waitMs: 0 };
    }
    return { ok: true, waitMs };
  }

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
    const local = this.limiter.reserve('read', account, io.timeoutMs - MIN_REQUEST_MS);
    const reservation = local.ok ? await this.sharedSlot('read', account, deadline - Date.now() - MIN_REQUEST_MS) : local;
    if (!reservation.ok) {
      throw new SheetsReadBackError({ outcome: 'transient', code: 'sheets_quota_wait', reason: `Sheets read quota of ${account.email} is used up for ${Math.ceil(reservation.retryAfterMs / 1000)}s`, countsAgainstEndpoint: true, retryAfterMs: reservation.retryAfterMs });
    }
    const waitMs = Math.max(reservation.waitMs, local.ok ? local.waitMs : 0);
    if (waitMs > 0) await sleep(waitMs);
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

  /**
   * One flush: read the tab once, settle the header, append every row not there yet in one call.
   * Each step answers the rows it cannot take further (and the flush stops there).
   */
  private async flush(spreadsheetId: string, group: PendingRow[]): Promise<void> {
    const live = startable(group);
    if (live.length === 0) return;
    const { account, sheet } = live[0]!.payload;
    const f: Flush = {
      spreadsheetId,
      sheet,
      tab: quoteSheet(sheet),
      account,
      api: this.client(account),
      live,
      deadline: Math.max(...live.map((r) => r.deadline)),
    };
    const state = await this.readSheet(f);
    if (!state) return;
    const layout = planColumns(f, state);
    if (!layout) return;
    const { fresh, twins } = freshRows(f, state.present);
    if (fresh.length === 0) return;
    const pending = [...fresh, ...twins.keys()];
    if (layout.headerUpdate && !(await this.updateHeader(f, layout.headerUpdate, pending))) return;
    await this.append(f, layout, fresh, twins, pending);
  }

  /** Waits for a quota slot; false (rows answered) when none comes before the deadline. */
  private async slot(f: Flush, kind: 'read' | 'write', rows: PendingRow[]): Promise<boolean> {
    const local = this.limiter.reserve(kind, f.account, f.deadline - Date.now() - MIN_REQUEST_MS);
    const reservation = local.ok ? await this.sharedSlot(kind, f.account, f.deadline - Date.now() - MIN_REQUEST_MS) : local;
    if (!reservation.ok) {
      const seconds = Math.ceil(reservation.retryAfterMs / 1000);
      answerAll(rows, { answer: { providerCode: 'quota_wait', providerMessage: `Sheets ${kind} quota of ${f.account.email} is used up for ${seconds}s (limits: ${GOOGLE_SHEETS_QUOTA.perAccount}/min per service account, ${GOOGLE_SHEETS_QUOTA.perProject}/min per project)`, retryAfterMs: reservation.retryAfterMs } });
      return false;
    }
    const waitMs = Math.max(reservation.waitMs, local.ok ? local.waitMs : 0);
    if (waitMs > 0) await sleep(waitMs);
    return true;
  }

  /** Step 1. One read: the header row and the lead-id column. Undefined when the rows were answered. */
  private async readSheet(f: Flush): Promise<SheetState | undefined> {
    if (!(await this.slot(f, 'read', f.live))) return undefined;
    const present = new Map<string, number>();
    try {
      const read = await f.api.spreadsheets.values.batchGet({ spreadsheetId: f.spreadsheetId, ranges: [`${f.tab}!1:1`, `${f.tab}!A2:A`], majorDimension: 'ROWS' }, callOptions(f));
      const header = (read.data.valueRanges?.[0]?.values?.[0] ?? []).map((v) => String(v));
      (read.data.valueRanges?.[1]?.values ?? []).forEach((cells, index) => {
        const value = (cells as unknown[] | undefined)?.[0];
        const id = typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? String(value) : '';
        if (id !== '' && !present.has(id)) present.set(id, index + 2);
      });
      return { header, present };
    } catch (error) {
      answerAll(f.live, failure(error, f));
      return undefined;
    }
  }

  /** Step 3b. The header extended by the mapping's new columns, before the append. False when the rows were answered. */
  private async updateHeader(f: Flush, header: string[], pending: PendingRow[]): Promise<boolean> {
    if (!(await this.slot(f, 'write', pending))) return false;
    try {
      await f.api.spreadsheets.values.update({ spreadsheetId: f.spreadsheetId, range: `${f.tab}!A1`, valueInputOption: 'RAW', requestBody: { majorDimension: 'ROWS', values: [header] } }, callOptions(f));
      return true;
    } catch (error) {
      answerAll(pending, failure(error, f));
      return false;
    }
  }

  /** Step 4. One append for every fresh row (RAW: values are never parsed as formulas); each row answered with its own row number, twins as already present. */
  private async append(f: Flush, layout: Layout, fresh: PendingRow[], twins: Map<PendingRow, PendingRow>, pending: PendingRow[]): Promise<void> {
    if (!(await this.slot(f, 'write', pending))) return;
    const { columns, headerInAppend } = layout;
    const { sheet } = f;
    const values: Cell[][] = fresh.map((row) => {
      const byColumn = new Map(row.payload.columns.map((c, i) => [c, row.payload.cells[i]!]));
      return columns.map((c) => byColumn.get(c) ?? '');
    });
    if (headerInAppend) values.unshift(columns);
    try {
      const appended = await f.api.spreadsheets.values.append(
        { spreadsheetId: f.spreadsheetId, range: `${f.tab}!A1`, valueInputOption: 'RAW', insertDataOption: 'INSERT_ROWS', requestBody: { majorDimension: 'ROWS', values } },
        callOptions(f),
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
      answerAll(pending, failure(error, f));
    }
  }
}

/** What one flush works on: its rows, the spreadsheet and tab, the SDK client, the latest of its rows' deadlines. */
interface Flush {
  spreadsheetId: string;
  sheet: string;
  /** The tab's name quoted for A1 ranges. */
  tab: string;
  account: Account;
  api: sheets_v4.Sheets;
  live: PendingRow[];
  deadline: number;
}

/** The tab as read: its header row, and the row number of each lead id in column A. */
interface SheetState {
  header: string[];
  present: Map<string, number>;
}

/** The columns of the rows to append; the header goes with them (empty tab) or is extended first. */
interface Layout {
  columns: string[];
  headerInAppend: boolean;
  headerUpdate?: string[];
}

const answerAll = (rows: PendingRow[], outcome: { answer: SheetsAnswer } | { error: unknown }): void => rows.forEach((r) => settle(r, outcome));
const callOptions = (f: Flush) => ({ retry: false, timeout: Math.max(100, f.deadline - Date.now()) });

/** Rows still waiting with time left for a request; the others are answered (no time left: not sent). */
function startable(group: PendingRow[]): PendingRow[] {
  const now = Date.now();
  const live: PendingRow[] = [];
  for (const row of group) {
    if (row.settled) continue;
    if (row.deadline - now < MIN_REQUEST_MS) settle(row, { error: new OutboundError('timeout', 'no time left in the attempt for the spreadsheet call', { sent: false }) });
    else live.push(row);
  }
  return live;
}

/**
 * Step 2. The header: written with the first rows, extended when the mapping gained columns.
 * Undefined (rows answered) when the tab's row 1 is not a header starting with the lead id.
 */
function planColumns(f: Flush, { header, present }: SheetState): Layout | undefined {
  const { sheet } = f;
  const wanted: string[] = [];
  for (const row of f.live) for (const column of row.payload.columns) if (!wanted.includes(column)) wanted.push(column);
  if (header.length === 0) {
    if (present.size > 0) {
      answerAll(f.live, { answer: { providerCode: 'header_mismatch', providerMessage: `row 1 of ${sheet} is empty but the tab holds data: row 1 must be the header, starting with ${LEAD_ID_COLUMN}` } });
      return undefined;
    }
    return { columns: wanted, headerInAppend: true };
  }
  if (header[0] !== LEAD_ID_COLUMN) {
    answerAll(f.live, { answer: { providerCode: 'header_mismatch', providerMessage: `column A of ${sheet} is "${header[0]}", not ${LEAD_ID_COLUMN}: use an empty tab, or insert a ${LEAD_ID_COLUMN} column A` } });
    return undefined;
  }
  const missing = wanted.filter((c) => !header.includes(c));
  if (missing.length === 0) return { columns: header, headerInAppend: false };
  const extended = [...header, ...missing];
  return { columns: extended, headerInAppend: false, headerUpdate: extended };
}

/**
 * Step 3. Rows not in the sheet yet, each lead once even if two attempts of it wait together (the
 * later one is its twin). Rows already there are answered `already_present` with their row.
 */
function freshRows(f: Flush, present: Map<string, number>): { fresh: PendingRow[]; twins: Map<PendingRow, PendingRow> } {
  const { sheet, tab, spreadsheetId } = f;
  const fresh: PendingRow[] = [];
  const twins = new Map<PendingRow, PendingRow>();
  const firstOf = new Map<string, PendingRow>();
  for (const row of f.live) {
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
  return { fresh, twins };
}

/** A read-back Google could not answer now (429, 5xx, our quota): the attempt is transient, nothing is sent. */
export class SheetsReadBackError extends Error {
  constructor(readonly classification: Classification) {
    super(`Google Sheets could not be read back: ${classification.code} (${classification.reason})`);
    this.name = 'SheetsReadBackError';
  }
}
