/**
 * A local Salesforce org: a login server (the My Domain login URL: the OAuth token endpoint) and an
 * instance server (the REST API at the `instance_url` the token answer names — a different origin,
 * so a client that ignores instance_url fails). No machine-readable spec is kept here; the shapes
 * follow Salesforce's public documentation:
 *  - OAuth 2.0 client-credentials flow (developer.salesforce.com … chatterapi quickstart_connecting:
 *    POST /services/oauth2/token, grant_type=client_credentials&client_id&client_secret →
 *    {access_token, signature, token_format?, instance_url, id, token_type:"Bearer", issued_at});
 *    refusals {error, error_description} (invalid_client "invalid client credentials",
 *    unsupported_grant_type "grant type not supported");
 *  - REST API "Insert or Update (Upsert) a Record Using an External ID" (dome_upsert.htm,
 *    resources_sobject_upsert_patch.htm): PATCH /services/data/vXX.X/sobjects/Lead/<field>/<value>
 *    → 201 {id, success, errors, created:true} or 200 {…, created:false}; 300 when several match;
 *    404 NOT_FOUND for a field that is not an external id;
 *  - "Get Records Using sObject Rows by External ID" (resources_sobject_upsert_get.htm, dome_get_field_values):
 *    GET /services/data/vXX.X/sobjects/Lead/<field>/<value>?fields=A,B → 200 {attributes:{type, url},
 *    <fields>} (all fields without `fields`), 404 [{errorCode:"NOT_FOUND", message:"The requested
 *    resource does not exist"}] when no record holds the value, 300 when several do, 400 INVALID_FIELD
 *    for an unknown field in `fields`;
 *  - "Status Codes and Error Responses" (errorcodes.htm): errors as [{message, errorCode, fields}];
 *    401 INVALID_SESSION_ID, 403 REQUEST_LIMIT_EXCEEDED, 400 REQUIRED_FIELD_MISSING / INVALID_FIELD /
 *    STRING_TOO_LONG / INVALID_EMAIL_ADDRESS, 503 SERVER_UNAVAILABLE; the Sforce-Limit-Info header.
 *
 * What it checks (a failure is answered in Salesforce's error shape and recorded in `violations`):
 *  - token requests: POST, form-encoded, only grant_type/client_id/client_secret (grant_type
 *    client_credentials), a known client;
 *  - API calls: `Authorization: Bearer` with a token this org issued and has not expired (else 401
 *    INVALID_SESSION_ID — not a violation: sessions expire); the path shape and API version; reads:
 *    GET with no body and only the `fields` query parameter (field API names);
 *    `Content-Type: application/json`; a body valid against the sObject schema written from the
 *    Lead object reference (an object of field API names → string, number, boolean or null), without
 *    `Id` or the external-id field itself (set from the URL).
 * Beyond that, the org's own rules, answered as Salesforce does (the buyer's data or configuration
 * is at fault, so not violations): unknown fields (INVALID_FIELD "No such column"), LastName and
 * Company required on create (REQUIRED_FIELD_MISSING), field lengths (STRING_TOO_LONG), e-mail format.
 * State: Leads by external id, so the same lead id never makes a second Lead.
 * Scriptable: API steps in order (an error answer, a slow answer — the upsert is applied at once,
 * the answer comes late — or a hang-up), read steps in order (`scriptReads`), token steps in order,
 * and `expireSessions()` (every token issued so far stops working, as when a session times out).
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Ajv from 'ajv';

export interface SalesforceClient {
  clientId: string;
  clientSecret: string;
}

export interface SalesforceLead {
  Id: string;
  /** The external id value (our lead id). */
  externalId: string;
  field: string;
  fields: Record<string, string | number | boolean | null>;
  writes: number;
}

export interface SalesforceError {
  message: string;
  errorCode: string;
  fields?: string[];
}

export type SalesforceStep =
  | { type: 'error'; status: number; errors: SalesforceError[]; headers?: Record<string, string> }
  | { type: 'slow'; delayMs: number }
  | { type: 'hangUp' };

export type SalesforceTokenStep = { type: 'error'; status: number; error: string; description: string } | { type: 'slow'; delayMs: number };

export interface SalesforceRequest {
  server: 'login' | 'instance';
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  receivedAt: number;
  status: number;
}

export interface SalesforceFake {
  /** The My Domain login URL (token endpoint host). */
  loginUrl: string;
  /** The instance_url handed out with tokens. */
  instanceUrl: string;
  leads: Map<string, SalesforceLead>;
  requests: SalesforceRequest[];
  violations: Array<{ path: string; errors: string[] }>;
  /** Access tokens issued since the last reset. */
  tokensIssued: string[];
  /** Upserts applied since the last reset. */
  upserts: number;
  /** Record reads answered (found or not) since the last reset. */
  reads: number;
  addClient(client: SalesforceClient): void;
  script(steps: SalesforceStep[]): void;
  /** Steps for the next record reads (GET by external id), one each, in order. */
  scriptReads(steps: SalesforceStep[]): void;
  scriptToken(steps: SalesforceTokenStep[]): void;
  /** Every token issued so far becomes invalid (the next API call answers 401 INVALID_SESSION_ID). */
  expireSessions(): void;
  reset(): void;
  close(): Promise<void>;
}

/** Salesforce's documented errors, ready to script. */
export const salesforceErrors = {
  requestLimitExceeded: (): SalesforceStep => ({ type: 'error', status: 403, errors: [{ message: 'TotalRequests Limit exceeded.', errorCode: 'REQUEST_LIMIT_EXCEEDED' }] }),
  unableToLockRow: (): SalesforceStep => ({ type: 'error', status: 400, errors: [{ message: 'unable to obtain exclusive access to this record or 1 records', errorCode: 'UNABLE_TO_LOCK_ROW', fields: [] }] }),
  serverUnavailable: (): SalesforceStep => ({ type: 'error', status: 503, errors: [{ message: 'Server unavailable', errorCode: 'SERVER_UNAVAILABLE' }] }),
  customValidation: (message = 'Phone must be 10 digits'): SalesforceStep => ({ type: 'error', status: 400, errors: [{ message, errorCode: 'FIELD_CUSTOM_VALIDATION_EXCEPTION', fields: [] }] }),
  duplicatesDetected: (): SalesforceStep => ({ type: 'error', status: 400, errors: [{ message: 'Use one of these records?', errorCode: 'DUPLICATES_DETECTED', fields: [] }] }),
};

export const LEAD_ID_PREFIX = '00Q';

/** Lead fields of a standard org with their lengths (Lead object reference); null: not a text field. */
export const LEAD_FIELDS: Record<string, number | null> = {
  Salutation: 40, FirstName: 40, MiddleName: 40, LastName: 80, Suffix: 40, Company: 255, Title: 128, Email: 80, Phone: 40, MobilePhone: 40, Fax: 40,
  Website: 255, Street: 255, City: 40, State: 80, PostalCode: 20, Country: 80, LeadSource: 255, Status: 255, Industry: 255, Rating: 255,
  Description: 32000, AnnualRevenue: null, NumberOfEmployees: null, HasOptedOutOfEmail: null, DoNotCall: null,
};

const sObjectSchema = {
  type: 'object',
  propertyNames: { pattern: '^[A-Za-z][A-Za-z0-9_]{0,79}$' },
  additionalProperties: { type: ['string', 'number', 'boolean', 'null'] },
} as const;

function randomId(prefix: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return prefix + [...randomBytes(15)].map((b) => alphabet[b % alphabet.length]).join('');
}

export async function startSalesforceFake(options: { clients?: SalesforceClient[]; externalIdFields?: string[]; customFields?: string[] } = {}): Promise<SalesforceFake> {
  const validate = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true }).compile(sObjectSchema);
  const clients = new Map((options.clients ?? []).map((c) => [c.clientId, c]));
  const externalIdFields = new Set(options.externalIdFields ?? ['Lead_Id__c']);
  const known = new Map<string, number | null>([...Object.entries(LEAD_FIELDS), ...(options.customFields ?? []).map((f): [string, number] => [f, 255]), ...[...externalIdFields].map((f): [string, number] => [f, 255])]);
  const orgId = randomId('00D');
  const leads = new Map<string, SalesforceLead>();
  const requests: SalesforceRequest[] = [];
  const violations: SalesforceFake['violations'] = [];
  const valid = new Set<string>();
  const tokensIssued: string[] = [];
  let steps: SalesforceStep[] = [];
  let readSteps: SalesforceStep[] = [];
  let tokenSteps: SalesforceTokenStep[] = [];
  const state = { upserts: 0, reads: 0, apiUsage: 0 };
  const urls = { login: '', instance: '' };

  function record(server: 'login' | 'instance', req: http.IncomingMessage, body: string): SalesforceRequest {
    const entry: SalesforceRequest = { server, method: req.method ?? '', path: req.url ?? '', headers: req.headers, body, receivedAt: Date.now(), status: 0 };
    requests.push(entry);
    return entry;
  }

  function reply(res: http.ServerResponse, entry: SalesforceRequest, status: number, body: unknown, headers: Record<string, string> = {}) {
    entry.status = status;
    res.writeHead(status, { 'content-type': 'application/json;charset=UTF-8', ...headers });
    res.end(body === undefined ? '' : JSON.stringify(body));
  }

  function onToken(req: http.IncomingMessage, res: http.ServerResponse, raw: string) {
    const entry = record('login', req, raw);
    const refuse = (status: number, error: string, description: string) => reply(res, entry, status, { error, error_description: description });
    if (req.method !== 'POST' || entry.path !== '/services/oauth2/token') {
      violations.push({ path: entry.path, errors: [`unexpected ${entry.method} on the login server`] });
      return reply(res, entry, 404, [{ errorCode: 'NOT_FOUND', message: 'The requested resource does not exist' }]);
    }
    if (!/^application\/x-www-form-urlencoded\b/.test(String(req.headers['content-type']))) {
      violations.push({ path: entry.path, errors: [`content-type ${String(req.headers['content-type'])}`] });
      return refuse(400, 'invalid_request', 'grant type not supported');
    }
    const form = new URLSearchParams(raw);
    const unknown = [...form.keys()].filter((k) => !['grant_type', 'client_id', 'client_secret', 'scope', 'format'].includes(k));
    if (unknown.length) violations.push({ path: entry.path, errors: [`unknown form fields ${unknown.join(', ')}`] });
    const step = tokenSteps.shift();
    if (step?.type === 'error') return refuse(step.status, step.error, step.description);
    if (form.get('grant_type') !== 'client_credentials') {
      violations.push({ path: entry.path, errors: [`grant_type ${String(form.get('grant_type'))}`] });
      return refuse(400, 'unsupported_grant_type', 'grant type not supported');
    }
    const client = clients.get(form.get('client_id') ?? '');
    if (!client || client.clientSecret !== form.get('client_secret')) return refuse(400, 'invalid_client', 'invalid client credentials');
    const token = `${orgId}!${randomBytes(48).toString('base64url')}`;
    valid.add(token);
    tokensIssued.push(token);
    const answer = {
      access_token: token,
      signature: randomBytes(32).toString('base64'),
      scope: 'api',
      instance_url: urls.instance,
      id: `${urls.login}/id/${orgId}/${randomId('005')}`,
      token_type: 'Bearer',
      issued_at: String(Date.now()),
      api_instance_url: urls.instance,
    };
    if (step?.type === 'slow') setTimeout(() => reply(res, entry, 200, answer), step.delayMs).unref();
    else reply(res, entry, 200, answer);
  }

  function onApi(req: http.IncomingMessage, res: http.ServerResponse, raw: string) {
    const entry = record('instance', req, raw);
    const limitInfo = () => ({ 'sforce-limit-info': `api-usage=${state.apiUsage}/15000` });
    const fail = (status: number, errors: SalesforceError[], headers: Record<string, string> = {}) => reply(res, entry, status, errors, { ...limitInfo(), ...headers });
    const violation = (errors: string[]) => violations.push({ path: entry.path, errors });

    const auth = /^Bearer (\S+)$/.exec(String(req.headers.authorization ?? ''));
    if (!auth) violation(['no Bearer authorization header']);
    if (!auth || !valid.has(auth[1]!)) return fail(401, [{ message: 'Session expired or invalid', errorCode: 'INVALID_SESSION_ID' }]);
    state.apiUsage++;

    const [pathOnly, query] = entry.path.split('?') as [string, string | undefined];
    const match = /^\/services\/data\/v(\d{2,3}\.0)\/sobjects\/([A-Za-z0-9_]+)\/([A-Za-z0-9_]+)\/([^/?]+)$/.exec(req.method === 'GET' ? pathOnly : entry.path);
    if (match && req.method === 'GET') return onRead(match[2]!, match[3]!, decodeURIComponent(match[4]!), new URLSearchParams(query ?? ''), raw, { entry, fail, violation, limitInfo, res, req });
    if (!match || req.method !== 'PATCH') {
      violation([`unexpected ${entry.method} ${entry.path}`]);
      return fail(404, [{ errorCode: 'NOT_FOUND', message: 'The requested resource does not exist' }]);
    }
    const [, , sobject, field, encodedValue] = match;
    if (sobject !== 'Lead') {
      violation([`sObject ${sobject}`]);
      return fail(404, [{ errorCode: 'NOT_FOUND', message: 'The requested resource does not exist' }]);
    }
    if (!externalIdFields.has(field!)) return fail(404, [{ errorCode: 'NOT_FOUND', message: `Provided external ID field does not exist or is not accessible: ${field}` }]);
    if (!/^application\/json\b/.test(String(req.headers['content-type']))) {
      violation([`content-type ${String(req.headers['content-type'])}`]);
      return fail(415, [{ errorCode: 'UNSUPPORTED_MEDIA_TYPE', message: `Content type '${String(req.headers['content-type'])}' not supported` }]);
    }
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      violation(['the body is not JSON']);
      return fail(400, [{ errorCode: 'JSON_PARSER_ERROR', message: 'Unexpected character at [line:1, column:1]' }]);
    }
    if (!validate(body)) {
      const errors = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`);
      violation(errors);
      return fail(400, [{ errorCode: 'JSON_PARSER_ERROR', message: errors.join('; ') }]);
    }
    const fields = body as Record<string, string | number | boolean | null>;
    if ('Id' in fields || field! in fields) violation([`the body sets ${'Id' in fields ? 'Id' : field} (the URL does)`]);

    const step = steps.shift();
    if (step?.type === 'hangUp') {
      entry.status = 0;
      return req.socket.destroy();
    }
    if (step?.type === 'error') return fail(step.status, step.errors, step.headers);

    for (const [name, value] of Object.entries(fields)) {
      if (!known.has(name)) return fail(400, [{ message: `No such column '${name}' on sobject of type Lead`, errorCode: 'INVALID_FIELD', fields: [] }]);
      const max = known.get(name);
      if (typeof value === 'string' && max && value.length > max) return fail(400, [{ message: `${name}: data value too large: ${value.slice(0, 40)} (max length=${max})`, errorCode: 'STRING_TOO_LONG', fields: [name] }]);
      if (name === 'Email' && typeof value === 'string' && value && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value)) return fail(400, [{ message: `Email: invalid email address: ${value}`, errorCode: 'INVALID_EMAIL_ADDRESS', fields: ['Email'] }]);
    }
    const externalId = decodeURIComponent(encodedValue!);
    const existing = leads.get(`${field}:${externalId}`);
    if (!existing) {
      const missing = ['LastName', 'Company'].filter((f) => fields[f] === undefined || fields[f] === null || fields[f] === '');
      if (missing.length) return fail(400, [{ message: `Required fields are missing: [${missing.join(', ')}]`, errorCode: 'REQUIRED_FIELD_MISSING', fields: missing }]);
    }
    state.upserts++;
    let answer: { id: string; success: true; errors: []; created: boolean };
    let status: number;
    if (existing) {
      Object.assign(existing.fields, fields);
      existing.writes++;
      answer = { id: existing.Id, success: true, errors: [], created: false };
      status = 200;
    } else {
      const lead: SalesforceLead = { Id: randomId(LEAD_ID_PREFIX), externalId, field: field!, fields: { ...fields, [field!]: externalId }, writes: 1 };
      leads.set(`${field}:${externalId}`, lead);
      answer = { id: lead.Id, success: true, errors: [], created: true };
      status = 201;
    }
    if (step?.type === 'slow') setTimeout(() => reply(res, entry, status, answer, limitInfo()), step.delayMs).unref();
    else reply(res, entry, status, answer, limitInfo());
  }

  /** GET a record by external id (sObject Rows by External ID). */
  function onRead(
    sobject: string,
    field: string,
    externalId: string,
    query: URLSearchParams,
    raw: string,
    io: { entry: SalesforceRequest; fail: (status: number, errors: SalesforceError[], headers?: Record<string, string>) => void; violation: (errors: string[]) => void; limitInfo: () => Record<string, string>; res: http.ServerResponse; req: http.IncomingMessage },
  ) {
    const { entry, fail, violation, limitInfo, res, req } = io;
    const errors = [...query.keys()].filter((k) => k !== 'fields').map((k) => `unknown query parameter ${k}`);
    if (raw.length) errors.push('a GET with a body');
    if (errors.length) violation(errors);
    if (sobject !== 'Lead') {
      violation([`sObject ${sobject}`]);
      return fail(404, [{ errorCode: 'NOT_FOUND', message: 'The requested resource does not exist' }]);
    }
    if (!externalIdFields.has(field)) return fail(404, [{ errorCode: 'NOT_FOUND', message: `Provided external ID field does not exist or is not accessible: ${field}` }]);
    const fields = (query.get('fields') ?? '').split(',').filter(Boolean);
    const unknown = fields.filter((f) => f !== 'Id' && !known.has(f));
    if (unknown.length) return fail(400, [{ message: `No such column '${unknown[0]}' on entity 'Lead'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name.`, errorCode: 'INVALID_FIELD' }]);
    const step = readSteps.shift();
    if (step?.type === 'hangUp') {
      entry.status = 0;
      return req.socket.destroy();
    }
    if (step?.type === 'error') return fail(step.status, step.errors, step.headers);
    state.reads++;
    const lead = leads.get(`${field}:${externalId}`);
    if (!lead) return fail(404, [{ errorCode: 'NOT_FOUND', message: 'The requested resource does not exist' }]);
    const values = fields.length ? Object.fromEntries(fields.map((f) => [f, f === 'Id' ? lead.Id : (lead.fields[f] ?? null)])) : { Id: lead.Id, ...lead.fields };
    const version = /\/v(\d{2,3}\.0)\//.exec(entry.path)?.[1] ?? '62.0';
    const body = { attributes: { type: 'Lead', url: `/services/data/v${version}/sobjects/Lead/${lead.Id}` }, ...values };
    const answer = () => reply(res, entry, 200, body, limitInfo());
    if (step?.type === 'slow') setTimeout(answer, step.delayMs).unref();
    else answer();
  }

  const serve = (handler: (req: http.IncomingMessage, res: http.ServerResponse, raw: string) => void) =>
    http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => handler(req, res, Buffer.concat(chunks).toString('utf8')));
    });
  const login = serve(onToken);
  const instance = serve(onApi);
  await Promise.all([login, instance].map((s) => new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))));
  urls.login = `http://127.0.0.1:${(login.address() as AddressInfo).port}`;
  urls.instance = `http://127.0.0.1:${(instance.address() as AddressInfo).port}`;

  const closeServer = (server: http.Server) =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });

  return {
    loginUrl: urls.login,
    instanceUrl: urls.instance,
    leads,
    requests,
    violations,
    tokensIssued,
    get upserts() {
      return state.upserts;
    },
    get reads() {
      return state.reads;
    },
    addClient(client) {
      clients.set(client.clientId, client);
    },
    script(next) {
      steps = [...next];
    },
    scriptReads(next) {
      readSteps = [...next];
    },
    scriptToken(next) {
      tokenSteps = [...next];
    },
    expireSessions() {
      valid.clear();
    },
    reset() {
      steps = [];
      readSteps = [];
      tokenSteps = [];
      requests.length = 0;
      violations.length = 0;
      tokensIssued.length = 0;
      state.upserts = 0;
      state.reads = 0;
    },
    close: async () => {
      await Promise.all([closeServer(login), closeServer(instance)]);
    },
  };
}
