/**
 * A local Google Sheets API v4: enough of https://sheets.googleapis.com for the real `googleapis`
 * SDK (pointed here with `rootUrl`) to read and append rows, checked against Google's discovery
 * document (test/fakes/specs/google-sheets/sheets.v4.discovery.json, revision 20250616).
 *
 * Implemented methods (paths, parameters, request and response schemas from the discovery doc):
 * spreadsheets.values.get, .batchGet, .append, .update. Every request:
 *  - `Authorization: Bearer <JWT>` as Google accepts from a service account (the self-signed JWT
 *    flow): RS256, signature verified with the registered service account's public key, `iss` =
 *    `sub` = its client_email, `exp` in the future and at most 1 h after `iat`, and a `scope` that
 *    includes one of the method's scopes (else 401 UNAUTHENTICATED / 403 insufficient scopes);
 *  - path matched against the method's `flatPath`; query parameters against the method's and the
 *    API's global `parameters` (known names, enums, booleans, `repeated`), plus what the method's
 *    description requires in prose (append/update: "The caller must specify … a valueInputOption");
 *  - request body (append/update) against the `ValueRange` schema, converted from the discovery
 *    format to JSON Schema (unknown fields refused, as Google does), plus the prose rule that cells
 *    are bool, string, double or null; the body's `range` must be within the URL's range.
 *    A refused request gets Google's error shape `{error: {code, message, status}}` (400
 *    INVALID_ARGUMENT) and is recorded in `violations` (tests assert there are none);
 *  - per-minute quotas, as Google counts them: read and write requests apart, per service account
 *    (default 60 in any 60 s) and per project (300); over quota is 429 RESOURCE_EXHAUSTED and is
 *    recorded in `quotaViolations`;
 *  - the spreadsheet must exist (404 NOT_FOUND) and be shared with the caller (403
 *    PERMISSION_DENIED); a tab that does not exist is 400 "Unable to parse range".
 * Rows live in memory. valueInputOption RAW stores values as given (a string starting with `=`
 * stays text); USER_ENTERED turns such strings into formulas (kept as `formula: true`, not
 * computed). Every answer the fake builds is checked against the discovery doc's response schema.
 * Scriptable per operation: any error status, a slow answer (the write is applied at once, the
 * answer comes late: the ambiguous timeout), a hang-up.
 */
import { createPublicKey, generateKeyPairSync, randomBytes, verify as verifySignature } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import discovery from '../specs/google-sheets/sheets.v4.discovery.json';

export type Op = 'get' | 'batchGet' | 'append' | 'update';
type CellValue = string | number | boolean;
export interface Cell {
  value: CellValue;
  formula?: boolean;
}

export interface ServiceAccount {
  /** The key file's JSON, as Google issues it (client_email, private_key, project_id, …). */
  key: { type: 'service_account'; project_id: string; private_key_id: string; private_key: string; client_email: string; client_id: string; token_uri: string };
  publicKey: string;
}

/** A fresh service account key pair (RSA 2048), as the Cloud console would give one. */
export function newServiceAccount(options: { name?: string; projectId?: string } = {}): ServiceAccount {
  const projectId = options.projectId ?? `proj-${randomBytes(3).toString('hex')}`;
  const name = options.name ?? `leads-${randomBytes(3).toString('hex')}`;
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    key: {
      type: 'service_account',
      project_id: projectId,
      private_key_id: randomBytes(20).toString('hex'),
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      client_email: `${name}@${projectId}.iam.gserviceaccount.com`,
      client_id: String(BigInt(`0x${randomBytes(8).toString('hex')}`)),
      token_uri: 'https://oauth2.googleapis.com/token',
    },
    publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

export type SheetsStep =
  | { op?: Op | 'any'; type: 'error'; status: number; message?: string; googleStatus?: string; headers?: Record<string, string> }
  /** Apply the request at once, answer after `delayMs` (our attempt times out after the fact). */
  | { op?: Op | 'any'; type: 'slow'; delayMs: number }
  | { op?: Op | 'any'; type: 'hangUp' };

export interface SheetsRequest {
  method: string;
  op?: Op;
  path: string;
  query: Record<string, string[]>;
  body?: unknown;
  email?: string;
  /** read / write, as Google counts quota. */
  kind?: 'read' | 'write';
  receivedAt: number;
  status: number;
  /** Counted against the quota (passed auth and validation, not refused for quota). */
  counted: boolean;
}

export interface SheetsViolation {
  op: string;
  errors: string[];
  raw: string;
}

export interface QuotaViolation {
  at: number;
  email: string;
  kind: 'read' | 'write';
  limit: 'per service account' | 'per project';
  count: number;
}

export interface SheetsFake {
  /** Give this to googleapis as `rootUrl`. */
  rootUrl: string;
  requests: SheetsRequest[];
  violations: SheetsViolation[];
  quotaViolations: QuotaViolation[];
  quota: { perAccount: number; perProject: number; windowMs: number };
  registerServiceAccount(account: ServiceAccount | { clientEmail: string; publicKey: string; projectId: string }): void;
  createSpreadsheet(id: string, options?: { tabs?: string[]; sharedWith?: string[]; rows?: Record<string, CellValue[][]> }): void;
  share(id: string, email: string): void;
  /** The cells of a tab as values (empty cells ''), rows trimmed. */
  rows(id: string, tab: string): CellValue[][];
  /** The cells of a tab with their formula flag. */
  cells(id: string, tab: string): Array<Array<Cell | undefined>>;
  /** The most requests of a kind one service account made in any window of `quota.windowMs`. */
  peak(email: string, kind: 'read' | 'write'): number;
  script(steps: SheetsStep[]): void;
  close(): Promise<void>;
}

// ---- the discovery document as JSON Schema -----------------------------------------------------

interface DiscoverySchema {
  $ref?: string;
  type?: string;
  format?: string;
  enum?: string[];
  items?: DiscoverySchema;
  properties?: Record<string, DiscoverySchema>;
  additionalProperties?: DiscoverySchema;
}
interface DiscoveryParameter {
  location: 'path' | 'query';
  type: string;
  required?: boolean;
  repeated?: boolean;
  enum?: string[];
}
interface DiscoveryMethod {
  httpMethod: string;
  flatPath: string;
  path: string;
  parameters: Record<string, DiscoveryParameter>;
  request?: { $ref: string };
  response?: { $ref: string };
  scopes: string[];
  description: string;
}

/** Discovery format → JSON Schema: `$ref: "X"` → definitions, `type: any` → {}, objects closed. */
function toJsonSchema(schema: DiscoverySchema): Record<string, unknown> {
  if (schema.$ref) return { $ref: `#/definitions/${schema.$ref}` };
  const out: Record<string, unknown> = {};
  if (schema.type && schema.type !== 'any') out.type = schema.type;
  if (schema.format === 'int32') Object.assign(out, { minimum: -2147483648, maximum: 2147483647 });
  if (schema.format === 'int64' && schema.type === 'string') out.pattern = '^-?\\d+$';
  if (schema.enum) out.enum = schema.enum;
  if (schema.items) out.items = toJsonSchema(schema.items);
  if (schema.properties) {
    out.properties = Object.fromEntries(Object.entries(schema.properties).map(([k, v]) => [k, toJsonSchema(v)]));
    out.additionalProperties = schema.additionalProperties ? toJsonSchema(schema.additionalProperties) : false;
  } else if (schema.additionalProperties) {
    out.additionalProperties = toJsonSchema(schema.additionalProperties);
  }
  return out;
}

const METHODS: Record<Op, DiscoveryMethod> = (() => {
  const values = (discovery.resources.spreadsheets.resources.values.methods as unknown as Record<string, DiscoveryMethod>);
  return { get: values.get!, batchGet: values.batchGet!, append: values.append!, update: values.update! };
})();
const GLOBAL_PARAMETERS = discovery.parameters as unknown as Record<string, DiscoveryParameter>;
const WRITES: ReadonlySet<Op> = new Set(['append', 'update']);

let compiled: { validate(name: string): ValidateFunction } | undefined;
function schemas() {
  if (compiled) return compiled;
  const definitions = Object.fromEntries(Object.entries(discovery.schemas as unknown as Record<string, DiscoverySchema>).map(([k, v]) => [k, toJsonSchema(v)]));
  const ajv = new Ajv({ strict: false, allErrors: true });
  ajv.addSchema({ $id: 'sheets', definitions });
  const cache = new Map<string, ValidateFunction>();
  compiled = {
    validate(name: string) {
      let fn = cache.get(name);
      if (!fn) {
        fn = ajv.compile({ $ref: `sheets#/definitions/${name}` });
        cache.set(name, fn);
      }
      return fn;
    },
  };
  return compiled;
}

function explain(errors: ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map((e) => `${e.instancePath || '(body)'} ${e.message ?? 'invalid'}${e.params && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''}`);
}

/** `v4/spreadsheets/{spreadsheetId}/values/{range}:append` → a regex over the raw (encoded) path. */
function pathPattern(flatPath: string): { re: RegExp; names: string[] } {
  const names: string[] = [];
  const source = flatPath.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{([A-Za-z]+)\}/g, (_m, name: string) => {
    names.push(name);
    return '([^/:]+)';
  });
  return { re: new RegExp(`^/${source}$`), names };
}
const ROUTES = (Object.entries(METHODS) as Array<[Op, DiscoveryMethod]>).map(([op, method]) => ({ op, method, ...pathPattern(method.flatPath) }));

// ---- A1 notation ------------------------------------------------------------------------------

interface Rect {
  tab: string;
  c1: number;
  r1: number;
  /** Inclusive; Infinity when open. */
  c2: number;
  r2: number;
}

function colIndex(letters: string): number {
  let n = 0;
  for (const ch of letters.toUpperCase()) n = n * 26 + (ch.charCodeAt(0) - 64);
  return n - 1;
}
function colLetters(index: number): string {
  let n = index + 1;
  let out = '';
  while (n > 0) {
    const r = (n - 1) % 26;
    out = String.fromCharCode(65 + r) + out;
    n = Math.floor((n - 1) / 26);
  }
  return out;
}
function tabA1(tab: string): string {
  return /^[A-Za-z0-9_]+$/.test(tab) ? tab : `'${tab.replace(/'/g, "''")}'`;
}

function parseA1(range: string, tabs: string[]): Rect | undefined {
  let tab: string | undefined;
  let rest = '';
  if (range.startsWith("'")) {
    let i = 1;
    let name = '';
    for (; i < range.length; i++) {
      if (range[i] === "'" && range[i + 1] === "'") {
        name += "'";
        i++;
      } else if (range[i] === "'") break;
      else name += range[i];
    }
    if (i >= range.length) return undefined;
    tab = name;
    rest = range.slice(i + 1);
    if (rest !== '' && !rest.startsWith('!')) return undefined;
    rest = rest.slice(1);
  } else {
    const bang = range.lastIndexOf('!');
    if (bang >= 0) {
      tab = range.slice(0, bang);
      rest = range.slice(bang + 1);
    } else if (tabs.includes(range)) tab = range;
    else {
      tab = tabs[0];
      rest = range;
    }
  }
  if (tab === undefined || !tabs.includes(tab)) return undefined;
  if (rest === '') return { tab, c1: 0, r1: 0, c2: Infinity, r2: Infinity };
  const m = /^([A-Za-z]*)(\d*)(?::([A-Za-z]*)(\d*))?$/.exec(rest);
  if (!m || (!m[1] && !m[2])) return undefined;
  const [, a, b, c, d] = m;
  const c1 = a ? colIndex(a) : 0;
  const r1 = b ? Number(b) - 1 : 0;
  const single = m[3] === undefined && m[4] === undefined;
  const c2 = single ? (a ? c1 : Infinity) : c ? colIndex(c) : Infinity;
  const r2 = single ? (b ? r1 : Infinity) : d ? Number(d) - 1 : Infinity;
  if (r1 < 0 || (Number.isFinite(r2) && r2 < r1) || (Number.isFinite(c2) && c2 < c1)) return undefined;
  return { tab, c1, r1, c2, r2 };
}

// ---- the fake ---------------------------------------------------------------------------------

interface Spreadsheet {
  tabs: Map<string, Array<Array<Cell | undefined>>>;
  sharedWith: Set<string>;
}

const STATUS_NAMES: Record<number, string> = { 400: 'INVALID_ARGUMENT', 401: 'UNAUTHENTICATED', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND', 409: 'ABORTED', 429: 'RESOURCE_EXHAUSTED', 500: 'INTERNAL', 503: 'UNAVAILABLE', 504: 'DEADLINE_EXCEEDED' };

export async function startGoogleSheetsFake(options: { quota?: Partial<SheetsFake['quota']> } = {}): Promise<SheetsFake> {
  const v = schemas();
  const accounts = new Map<string, { publicKey: string; projectId: string }>();
  const spreadsheets = new Map<string, Spreadsheet>();
  const requests: SheetsRequest[] = [];
  const violations: SheetsViolation[] = [];
  const quotaViolations: QuotaViolation[] = [];
  const quota = { perAccount: 60, perProject: 300, windowMs: 60_000, ...options.quota };
  let steps: SheetsStep[] = [];

  const errorBody = (status: number, message: string, googleStatus?: string) => ({ error: { code: status, message, status: googleStatus ?? STATUS_NAMES[status] ?? 'UNKNOWN' } });

  function authenticate(header: string | undefined, scopes: string[]): { email: string; projectId: string } | { status: number; message: string; googleStatus?: string } {
    const unauthenticated = { status: 401, message: 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.' };
    const match = /^Bearer ([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(header ?? '');
    if (!match) return unauthenticated;
    const [, h, p, s] = match;
    let jwtHeader: { alg?: string };
    let claims: { iss?: string; sub?: string; scope?: string; iat?: number; exp?: number; aud?: string };
    try {
      jwtHeader = JSON.parse(Buffer.from(h!, 'base64url').toString('utf8')) as typeof jwtHeader;
      claims = JSON.parse(Buffer.from(p!, 'base64url').toString('utf8')) as typeof claims;
    } catch {
      return unauthenticated;
    }
    if (jwtHeader.alg !== 'RS256' || !claims.iss) return unauthenticated;
    const account = accounts.get(claims.iss);
    if (!account) return unauthenticated;
    if (!verifySignature('RSA-SHA256', Buffer.from(`${h}.${p}`), createPublicKey(account.publicKey), Buffer.from(s!, 'base64url'))) return unauthenticated;
    const now = Math.floor(Date.now() / 1000);
    if (claims.sub !== claims.iss || typeof claims.iat !== 'number' || typeof claims.exp !== 'number') return unauthenticated;
    if (claims.exp <= now - 30 || claims.iat > now + 300 || claims.exp - claims.iat > 3600) return unauthenticated;
    const granted = (claims.scope ?? '').split(/\s+/);
    if (!scopes.some((scope) => granted.includes(scope))) return { status: 403, message: 'Request had insufficient authentication scopes.', googleStatus: 'PERMISSION_DENIED' };
    return { email: claims.iss, projectId: account.projectId };
  }

  /** Counts a request against the quotas; the limit it would break, if any. */
  function charge(email: string, projectId: string, kind: 'read' | 'write', now: number): QuotaViolation | undefined {
    const inWindow = (r: SheetsRequest) => r.counted && r.kind === kind && r.receivedAt > now - quota.windowMs;
    const byAccount = requests.filter((r) => inWindow(r) && r.email === email).length;
    if (byAccount >= quota.perAccount) return { at: now, email, kind, limit: 'per service account', count: byAccount + 1 };
    const byProject = requests.filter((r) => inWindow(r) && r.email !== undefined && accounts.get(r.email)?.projectId === projectId).length;
    if (byProject >= quota.perProject) return { at: now, email, kind, limit: 'per project', count: byProject + 1 };
    return undefined;
  }

  function checkQuery(op: Op, method: DiscoveryMethod, query: URLSearchParams): string[] {
    const errors: string[] = [];
    const seen = new Map<string, number>();
    for (const [name, value] of query) {
      seen.set(name, (seen.get(name) ?? 0) + 1);
      const param = method.parameters[name] ?? GLOBAL_PARAMETERS[name];
      if (!param || param.location !== 'query') {
        errors.push(`unknown query parameter ${name}`);
        continue;
      }
      if (param.enum && !param.enum.includes(value)) errors.push(`${name}: "${value}" is not one of ${param.enum.join(', ')}`);
      if (param.type === 'boolean' && value !== 'true' && value !== 'false') errors.push(`${name}: "${value}" is not a boolean`);
      if (param.type === 'integer' && !/^-?\d+$/.test(value)) errors.push(`${name}: "${value}" is not an integer`);
    }
    for (const [name, count] of seen) if (count > 1 && !(method.parameters[name] ?? GLOBAL_PARAMETERS[name])?.repeated) errors.push(`${name} given ${count} times but is not repeated`);
    for (const [name, param] of Object.entries(method.parameters)) if (param.location === 'query' && param.required && !query.has(name)) errors.push(`${name} is required`);
    // The method descriptions: "The caller must specify the spreadsheet ID, range, and a valueInputOption."
    if (WRITES.has(op)) {
      const option = query.get('valueInputOption');
      if (!option) errors.push("'valueInputOption' is required but not specified");
      else if (option === 'INPUT_VALUE_OPTION_UNSPECIFIED') errors.push('Invalid valueInputOption: INPUT_VALUE_OPTION_UNSPECIFIED');
    }
    if (op === 'batchGet' && !query.has('ranges')) errors.push('ranges is required (at least one range)');
    return errors;
  }

  function grid(rows: Array<Array<Cell | undefined>>) {
    const height = Math.max(1000, rows.length);
    const width = Math.max(26, ...rows.map((r) => r.length));
    return { height, width };
  }

  function render(cell: Cell | undefined, option: string): CellValue {
    if (!cell) return '';
    if (option === 'UNFORMATTED_VALUE' || option === 'FORMULA' || typeof cell.value === 'string') return cell.value;
    if (typeof cell.value === 'boolean') return cell.value ? 'TRUE' : 'FALSE';
    return String(cell.value);
  }

  /** values.get semantics: the rectangle, trailing empty rows and columns left out. */
  function read(rows: Array<Array<Cell | undefined>>, rect: Rect, option: string) {
    const { height, width } = grid(rows);
    const r2 = Math.min(rect.r2, height - 1);
    const c2 = Math.min(rect.c2, width - 1);
    const out: Array<Array<CellValue>> = [];
    for (let r = rect.r1; r <= Math.min(r2, rows.length - 1); r++) {
      const line: Array<CellValue> = [];
      for (let c = rect.c1; c <= Math.min(c2, (rows[r]?.length ?? 0) - 1); c++) line.push(render(rows[r]?.[c], option));
      while (line.length && line[line.length - 1] === '') line.pop();
      out.push(line);
    }
    while (out.length && out[out.length - 1]!.length === 0) out.pop();
    return { range: `${tabA1(rect.tab)}!${colLetters(rect.c1)}${rect.r1 + 1}:${colLetters(c2)}${r2 + 1}`, values: out };
  }

  function write(rows: Array<Array<Cell | undefined>>, startRow: number, startCol: number, values: unknown[][], option: string) {
    let cells = 0;
    let maxWidth = 0;
    values.forEach((line, i) => {
      const r = startRow + i;
      while (rows.length <= r) rows.push([]);
      const target = rows[r]!;
      line.forEach((value, j) => {
        if (value === null || value === undefined) return; // "Null values will be skipped."
        const c = startCol + j;
        while (target.length <= c) target.push(undefined);
        let cell: Cell = { value: value as CellValue };
        if (option === 'USER_ENTERED' && typeof value === 'string') {
          if (value.startsWith('=')) cell = { value, formula: true };
          else if (/^-?\d+(\.\d+)?$/.test(value)) cell = { value: Number(value) };
          else if (/^(true|false)$/i.test(value)) cell = { value: value.toLowerCase() === 'true' };
        }
        target[c] = cell;
        cells++;
      });
      maxWidth = Math.max(maxWidth, line.length);
    });
    return { cells, width: maxWidth };
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const url = new URL(req.url ?? '/', 'http://fake');
      const query: Record<string, string[]> = {};
      for (const [k, val] of url.searchParams) (query[k] ??= []).push(val);
      const record: SheetsRequest = { method: req.method ?? '', path: url.pathname, query, receivedAt: Date.now(), status: 0, counted: false };
      requests.push(record);
      const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
        record.status = status;
        res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', ...headers });
        res.end(JSON.stringify(body));
      };
      const fail = (status: number, message: string, googleStatus?: string, headers?: Record<string, string>) => send(status, errorBody(status, message, googleStatus), headers);
      const violation = (op: string, errors: string[]) => {
        violations.push({ op, errors, raw: `${req.method} ${req.url}\n${raw}` });
        return fail(400, errors.join('; '));
      };

      const route = ROUTES.map((r) => ({ ...r, match: r.re.exec(url.pathname) })).find((r) => r.match && r.method.httpMethod === req.method);
      if (!route) return violation('(route)', [`${req.method} ${url.pathname} is not a Sheets v4 method this fake implements (values.get, batchGet, append, update)`]);
      const { op, method } = route;
      record.op = op;
      const kind: 'read' | 'write' = WRITES.has(op) ? 'write' : 'read';
      record.kind = kind;
      const params: Record<string, string> = {};
      route.names.forEach((name, i) => (params[name] = decodeURIComponent(route.match![i + 1]!)));

      const who = authenticate(req.headers.authorization, method.scopes);
      if ('status' in who) {
        if (who.status === 403) violations.push({ op, errors: [who.message], raw: String(req.headers.authorization).slice(0, 20) });
        return fail(who.status, who.message, who.googleStatus);
      }
      record.email = who.email;

      const queryErrors = checkQuery(op, method, url.searchParams);
      if (queryErrors.length) return violation(op, queryErrors);
      let body: unknown;
      if (method.request) {
        if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) return violation(op, [`content-type must be application/json, got ${String(req.headers['content-type'])}`]);
        try {
          body = JSON.parse(raw) as unknown;
        } catch {
          return violation(op, ['Invalid JSON payload received.']);
        }
        record.body = body;
        const validate = v.validate(method.request.$ref);
        if (!validate(body)) return violation(op, explain(validate.errors).map((e) => `${method.request!.$ref}${e}`));
        const cells = ((body as { values?: unknown[][] }).values ?? []).flat();
        const bad = cells.filter((c) => c !== null && !['string', 'number', 'boolean'].includes(typeof c));
        if (bad.length) return violation(op, [`values: supported value types are bool, string and double (got ${JSON.stringify(bad[0])})`]);
        const bodyRange = (body as { range?: string }).range;
        if (bodyRange !== undefined && bodyRange !== params.range) return violation(op, [`body range "${bodyRange}" does not match the URL range "${params.range}"`]);
        const dimension = (body as { majorDimension?: string }).majorDimension;
        if (dimension === 'COLUMNS') return violation(op, ['majorDimension COLUMNS is valid but not implemented by this fake']);
      }

      const now = Date.now();
      const over = charge(who.email, who.projectId, kind, now);
      if (over) {
        quotaViolations.push(over);
        const metric = kind === 'read' ? 'Read requests' : 'Write requests';
        const limit = over.limit === 'per service account' ? `${metric} per minute per user` : `${metric} per minute`;
        return fail(429, `Quota exceeded for quota metric '${metric}' and limit '${limit}' of service 'sheets.googleapis.com' for consumer 'project_number:${who.projectId}'.`, 'RESOURCE_EXHAUSTED');
      }
      record.counted = true;

      const stepIndex = steps.findIndex((s) => (s.op ?? 'any') === 'any' || s.op === op);
      const step = stepIndex >= 0 ? steps.splice(stepIndex, 1)[0] : undefined;
      if (step?.type === 'hangUp') return req.socket.destroy();
      if (step?.type === 'error') return fail(step.status, step.message ?? `scripted ${step.status}`, step.googleStatus, step.headers);

      const sheet = spreadsheets.get(params.spreadsheetId!);
      if (!sheet) return fail(404, 'Requested entity was not found.');
      if (!sheet.sharedWith.has(who.email)) return fail(403, 'The caller does not have permission');
      const tabs = [...sheet.tabs.keys()];

      let answer: unknown;
      let responseSchema = method.response!.$ref;
      if (op === 'get' || op === 'batchGet') {
        const ranges = op === 'get' ? [params.range!] : (query.ranges ?? []);
        const option = url.searchParams.get('valueRenderOption') ?? 'FORMATTED_VALUE';
        const valueRanges = [];
        for (const range of ranges) {
          const rect = parseA1(range, tabs);
          if (!rect) return fail(400, `Unable to parse range: ${range}`);
          const { range: normalised, values } = read(sheet.tabs.get(rect.tab)!, rect, option);
          valueRanges.push({ range: normalised, majorDimension: 'ROWS', ...(values.length ? { values } : {}) });
        }
        answer = op === 'get' ? valueRanges[0] : { spreadsheetId: params.spreadsheetId, valueRanges };
      } else {
        const rect = parseA1(params.range!, tabs);
        if (!rect) return fail(400, `Unable to parse range: ${params.range}`);
        const rows = sheet.tabs.get(rect.tab)!;
        const values = (body as { values?: unknown[][] }).values ?? [];
        const option = url.searchParams.get('valueInputOption')!;
        if (op === 'append') {
          // The table is the tab's data; values go to the next row after it, from the range's first column.
          let last = -1;
          rows.forEach((row, i) => {
            if (row.some((c) => c !== undefined && c.value !== '')) last = i;
          });
          const start = Math.max(last + 1, rect.r1);
          const { cells, width } = write(rows, start, rect.c1, values, option);
          const updatedRange = `${tabA1(rect.tab)}!${colLetters(rect.c1)}${start + 1}:${colLetters(rect.c1 + Math.max(width, 1) - 1)}${start + values.length}`;
          answer = {
            spreadsheetId: params.spreadsheetId,
            ...(last >= 0 ? { tableRange: `${tabA1(rect.tab)}!A1:${colLetters(Math.max(0, ...rows.slice(0, last + 1).map((r) => r.length - 1)))}${last + 1}` } : {}),
            updates: { spreadsheetId: params.spreadsheetId, updatedRange, updatedRows: values.length, updatedColumns: width, updatedCells: cells },
          };
        } else {
          const { cells, width } = write(rows, rect.r1, rect.c1, values, option);
          answer = { spreadsheetId: params.spreadsheetId, updatedRange: `${tabA1(rect.tab)}!${colLetters(rect.c1)}${rect.r1 + 1}:${colLetters(rect.c1 + Math.max(width, 1) - 1)}${rect.r1 + values.length}`, updatedRows: values.length, updatedColumns: width, updatedCells: cells };
          responseSchema = 'UpdateValuesResponse';
        }
      }
      const check = v.validate(responseSchema);
      if (!check(answer)) violations.push({ op: `${op} (the fake's answer)`, errors: explain(check.errors), raw: JSON.stringify(answer) });
      if (step?.type === 'slow') {
        setTimeout(() => {
          if (!res.destroyed) send(200, answer);
        }, step.delayMs).unref();
        return;
      }
      send(200, answer);
    });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    rootUrl: `http://127.0.0.1:${port}/`,
    requests,
    violations,
    quotaViolations,
    quota,
    registerServiceAccount(account) {
      if ('key' in account) accounts.set(account.key.client_email, { publicKey: account.publicKey, projectId: account.key.project_id });
      else accounts.set(account.clientEmail, { publicKey: account.publicKey, projectId: account.projectId });
    },
    createSpreadsheet(id, opts = {}) {
      const tabs = new Map<string, Array<Array<Cell | undefined>>>();
      for (const tab of opts.tabs ?? ['Sheet1']) tabs.set(tab, (opts.rows?.[tab] ?? []).map((row) => row.map((value) => ({ value }))));
      spreadsheets.set(id, { tabs, sharedWith: new Set(opts.sharedWith ?? []) });
    },
    share(id, email) {
      spreadsheets.get(id)?.sharedWith.add(email);
    },
    rows(id, tab) {
      const rows = spreadsheets.get(id)?.tabs.get(tab) ?? [];
      return rows.map((row) => row.map((c) => c?.value ?? '')).filter((row) => row.some((c) => c !== ''));
    },
    cells(id, tab) {
      return (spreadsheets.get(id)?.tabs.get(tab) ?? []).map((row) => row.map((c) => (c ? { ...c } : undefined)));
    },
    peak(email, kind) {
      const times = requests.filter((r) => r.counted && r.email === email && r.kind === kind).map((r) => r.receivedAt);
      let best = 0;
      for (let i = 0, j = 0; i < times.length; i++) {
        while (times[i]! - times[j]! >= quota.windowMs) j++;
        best = Math.max(best, i - j + 1);
      }
      return best;
    },
    script(next) {
      steps = [...next];
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
