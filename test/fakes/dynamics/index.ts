/**
 * A local Microsoft Dynamics 365 environment: the Microsoft Entra ID token endpoint and the
 * Dataverse Web API on one loopback server (the kind reaches the first through DYNAMICS_AUTHORITY_URL
 * and the second through the endpoint's orgUrl). No machine-readable spec is kept here; the shapes
 * follow Microsoft's public documentation:
 *  - Entra ID client-credentials flow (learn.microsoft.com/entra/identity-platform/v2-oauth2-client-
 *    creds-grant-flow): POST /{tenant}/oauth2/v2.0/token, form client_id, scope (<resource>/.default),
 *    client_secret, grant_type=client_credentials → {token_type:"Bearer", expires_in, access_token};
 *    refusals {error, error_description "AADSTS…", error_codes, timestamp, trace_id, correlation_id};
 *  - Dataverse Web API (learn.microsoft.com/power-apps/developer/data-platform/webapi/):
 *    compose-http-requests-handle-errors (headers Accept, OData-MaxVersion/OData-Version 4.0,
 *    Content-Type; Prefer: return=representation → 200 for PATCH; errors {error:{code,message}};
 *    412 for DuplicateRecord / ConcurrencyVersionMismatch), update-delete-entities-using-web-api
 *    ("Upsert a table row": PATCH to a row URI creates it when missing, the client may choose its id),
 *    perform-conditional-operations-using-web-api (If-None-Match: * → 412 "A record with matching key
 *    values already exists."; If-Match: * → 404), use alternate keys (leads(<key>='<value>')),
 *    retrieve-entity-using-web-api (GET leads(<key>)?$select=a,b → 200 {@odata.context, @odata.etag,
 *    the selected columns and always the primary key leadid}; 404 0x80040217 "… Does Not Exist";
 *    an unknown column in $select → 400 0x80060888 "Could not find a property named …"),
 *    manage-duplicate-detection-create-update (MSCRM.SuppressDuplicateDetection: false → 500,
 *    0x80040333), data-platform/api-limits (429 with Retry-After, 0x80072322/0x80072321/0x80072326).
 *    Messages the pages do not quote (an unknown column, an unknown key) are worded as Dataverse
 *    words them in practice and marked below.
 *
 * What it checks (a failure is answered in the documented error shape and recorded in `violations`):
 *  - token requests: POST, form-encoded, the four documented fields, grant_type client_credentials,
 *    a known tenant and client, scope `<this environment>/.default` (a token is for one resource);
 *  - API calls: `Authorization: Bearer` with a token issued for this environment and not expired
 *    (else 401 — not a violation: tokens expire), Accept application/json, OData-MaxVersion and
 *    OData-Version 4.0, Content-Type application/json on writes; the row URI
 *    `/api/data/v9.x/leads(<guid>)` or `leads(<alternate key>='<value>')`; a body valid against the
 *    lead EntityType schema written from the entity reference (column logical names → string, number,
 *    boolean or null), without the row key (it is in the URI); reads: GET without a body, only the
 *    query options the kind may use ($select), `If-None-Match` absent or `null`.
 * Beyond that, Dataverse's own rules (the buyer's data or configuration is at fault, so not
 * violations): unknown columns (400 0x80060888), an alternate key the table does not have, types of
 * the known columns, duplicate detection.
 * State: lead rows by id (and by alternate key), so the same lead id never makes a second row.
 * Scriptable: API steps in order (an error answer with optional Retry-After, a slow answer — the write
 * is applied at once, the answer comes late — or a hang-up), read steps (`scriptReads`, for GETs),
 * token steps, and `expireTokens()`.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Ajv from 'ajv';

export interface DynamicsClient {
  clientId: string;
  clientSecret: string;
}

export interface DynamicsLead {
  leadid: string;
  columns: Record<string, unknown>;
  writes: number;
}

export type DynamicsStep =
  | { type: 'error'; status: number; code: string; message: string; headers?: Record<string, string> }
  | { type: 'slow'; delayMs: number }
  | { type: 'hangUp' };

export type DynamicsTokenStep = { type: 'error'; status: number; error: string; description: string; codes: number[] };

export interface DynamicsRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  receivedAt: number;
  status: number;
}

export interface DynamicsFake {
  /** The environment URL (orgUrl) and, on the same server, the authority. */
  baseUrl: string;
  authorityUrl: string;
  leads: Map<string, DynamicsLead>;
  requests: DynamicsRequest[];
  violations: Array<{ path: string; errors: string[] }>;
  tokensIssued: string[];
  /** Row writes applied since the last reset. */
  writes: number;
  /** Row reads answered (found or not) since the last reset. */
  reads: number;
  script(steps: DynamicsStep[]): void;
  /** Steps for the next row reads (GET), one each, in order. */
  scriptReads(steps: DynamicsStep[]): void;
  scriptToken(steps: DynamicsTokenStep[]): void;
  /** Every token issued so far stops working (the next API call answers 401). */
  expireTokens(): void;
  reset(): void;
  close(): Promise<void>;
}

/** Documented Dataverse errors, ready to script. */
export const dynamicsErrors = {
  tooManyRequests: (retryAfterS = 1): DynamicsStep => ({ type: 'error', status: 429, code: '0x80072322', message: 'Number of requests exceeded the limit of 6000 over time window of 300 seconds.', headers: { 'retry-after': String(retryAfterS) } }),
  serviceUnavailable: (): DynamicsStep => ({ type: 'error', status: 503, code: '', message: 'Service Unavailable' }),
  privilegeDenied: (): DynamicsStep => ({ type: 'error', status: 403, code: '0x80040220', message: "Principal user (Id=…, type=8) is missing prvCreateLead privilege (Id=…)" }),
  badRequest: (message = 'An error occurred while validating input parameters'): DynamicsStep => ({ type: 'error', status: 400, code: '0x80048d19', message }),
};

/** Writable columns of the lead table (lead EntityType reference) and their OData types. */
export const LEAD_COLUMNS: Record<string, 'string' | 'number' | 'boolean'> = {
  subject: 'string', salutation: 'string', firstname: 'string', middlename: 'string', lastname: 'string', jobtitle: 'string', companyname: 'string',
  emailaddress1: 'string', emailaddress2: 'string', emailaddress3: 'string', telephone1: 'string', telephone2: 'string', telephone3: 'string',
  mobilephone: 'string', fax: 'string', websiteurl: 'string', description: 'string',
  address1_line1: 'string', address1_line2: 'string', address1_line3: 'string', address1_city: 'string', address1_stateorprovince: 'string',
  address1_postalcode: 'string', address1_country: 'string', leadsourcecode: 'number', industrycode: 'number', revenue: 'number',
  numberofemployees: 'number', donotemail: 'boolean', donotphone: 'boolean',
};

const rowSchema = {
  type: 'object',
  propertyNames: { pattern: '^[a-z][a-z0-9_]{0,99}(@odata\\.bind)?$' },
  additionalProperties: { type: ['string', 'number', 'boolean', 'null'] },
} as const;

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export async function startDynamicsFake(options: { tenantId: string; clients: DynamicsClient[]; alternateKeys?: string[]; customColumns?: string[] }): Promise<DynamicsFake> {
  const validate = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true }).compile(rowSchema);
  const clients = new Map(options.clients.map((c) => [c.clientId, c]));
  const alternateKeys = new Set(options.alternateKeys ?? []);
  const columns = new Map<string, 'string' | 'number' | 'boolean'>([...Object.entries(LEAD_COLUMNS), ...[...alternateKeys, ...(options.customColumns ?? [])].map((c): [string, 'string'] => [c, 'string'])]);
  const leads = new Map<string, DynamicsLead>();
  const requests: DynamicsRequest[] = [];
  const violations: DynamicsFake['violations'] = [];
  const tokens = new Map<string, { audience: string; expiresAt: number }>();
  const tokensIssued: string[] = [];
  let steps: DynamicsStep[] = [];
  let readSteps: DynamicsStep[] = [];
  let tokenSteps: DynamicsTokenStep[] = [];
  const state = { writes: 0, reads: 0, base: '' };

  const odataError = (code: string, message: string) => ({ error: { code, message } });

  function onToken(req: http.IncomingMessage, entry: DynamicsRequest, raw: string, reply: (status: number, body: unknown, headers?: Record<string, string>) => void) {
    const tenant = decodeURIComponent(entry.path.split('/')[1] ?? '');
    const refuse = (status: number, error: string, description: string, codes: number[]) =>
      reply(status, { error, error_description: `${description}\r\nTrace ID: ${randomUUID()}\r\nCorrelation ID: ${randomUUID()}\r\nTimestamp: ${new Date().toISOString()}`, error_codes: codes, timestamp: new Date().toISOString(), trace_id: randomUUID(), correlation_id: randomUUID() });
    if (entry.method !== 'POST' || !/^application\/x-www-form-urlencoded\b/.test(String(req.headers['content-type']))) {
      violations.push({ path: entry.path, errors: [`${entry.method} with content-type ${String(req.headers['content-type'])}`] });
      return refuse(400, 'invalid_request', "AADSTS900144: The request body must contain the following parameter: 'grant_type'.", [900144]);
    }
    const form = new URLSearchParams(raw);
    const unknown = [...form.keys()].filter((k) => !['client_id', 'scope', 'client_secret', 'grant_type'].includes(k));
    if (unknown.length) violations.push({ path: entry.path, errors: [`unknown form fields ${unknown.join(', ')}`] });
    const step = tokenSteps.shift();
    if (step) return refuse(step.status, step.error, step.description, step.codes);
    if (form.get('grant_type') !== 'client_credentials') {
      violations.push({ path: entry.path, errors: [`grant_type ${String(form.get('grant_type'))}`] });
      return refuse(400, 'unsupported_grant_type', 'AADSTS70003: The app requested an unsupported grant type.', [70003]);
    }
    if (tenant !== options.tenantId) return refuse(400, 'invalid_request', `AADSTS90002: Tenant '${tenant}' not found.`, [90002]);
    const client = clients.get(form.get('client_id') ?? '');
    if (!client) return refuse(400, 'unauthorized_client', `AADSTS700016: Application with identifier '${form.get('client_id') ?? ''}' was not found in the directory.`, [700016]);
    if (client.clientSecret !== form.get('client_secret')) return refuse(401, 'invalid_client', `AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${client.clientId}'.`, [7000215]);
    const scope = form.get('scope') ?? '';
    if (!scope.endsWith('/.default')) return refuse(400, 'invalid_scope', `AADSTS70011: The provided value for the input parameter 'scope' is not valid. The scope ${scope} is not valid.`, [70011]);
    if (scope !== `${state.base}/.default`) {
      violations.push({ path: entry.path, errors: [`scope ${scope} is not this environment's`] });
      return refuse(400, 'invalid_resource', `AADSTS500011: The resource principal named ${scope.slice(0, -'/.default'.length)} was not found in the tenant named ${tenant}.`, [500011]);
    }
    const token = `eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.${randomBytes(48).toString('base64url')}.${randomBytes(32).toString('base64url')}`;
    tokens.set(token, { audience: state.base, expiresAt: Date.now() + 3_599_000 });
    tokensIssued.push(token);
    reply(200, { token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: token });
  }

  function onApi(req: http.IncomingMessage, entry: DynamicsRequest, raw: string, reply: (status: number, body: unknown, headers?: Record<string, string>) => void) {
    const violation = (errors: string[]) => violations.push({ path: entry.path, errors });
    const fail = (status: number, code: string, message: string, headers: Record<string, string> = {}) => reply(status, odataError(code, message), headers);

    const auth = /^Bearer (\S+)$/.exec(String(req.headers.authorization ?? ''));
    if (!auth) violation(['no Bearer authorization header']);
    const token = auth ? tokens.get(auth[1]!) : undefined;
    if (!token || token.expiresAt < Date.now() || token.audience !== state.base) {
      return reply(401, undefined, { 'www-authenticate': `Bearer authorization_uri=${state.base}/${options.tenantId}/oauth2/authorize, resource_id=${state.base}/` });
    }
    const headerErrors: string[] = [];
    if (!/\bapplication\/json\b/.test(String(req.headers.accept))) headerErrors.push(`accept ${String(req.headers.accept)}`);
    if (req.headers['odata-version'] !== '4.0') headerErrors.push(`OData-Version ${String(req.headers['odata-version'])}`);
    if (req.headers['odata-maxversion'] !== '4.0') headerErrors.push(`OData-MaxVersion ${String(req.headers['odata-maxversion'])}`);
    if (headerErrors.length) violation(headerErrors);

    const [pathPart, query = ''] = entry.path.split('?');
    const match = /^\/api\/data\/v9\.[0-2]\/leads\((.+)\)$/.exec(pathPart!);
    if (!match) {
      violation([`unexpected ${entry.method} ${entry.path}`]);
      return fail(404, '0x80060888', `Resource not found for the segment '${pathPart!.split('/').pop() ?? ''}'.`);
    }
    const keyText = decodeURIComponent(match[1]!);
    let lookup: { kind: 'id'; id: string } | { kind: 'alt'; attribute: string; value: string };
    if (GUID.test(keyText)) lookup = { kind: 'id', id: keyText.toLowerCase() };
    else {
      const alt = /^([a-z][a-z0-9_]*)='((?:[^']|'')*)'$/.exec(keyText);
      if (!alt) {
        violation([`key segment ${keyText}`]);
        return fail(400, '0x80060888', `Bad Request - Error in query syntax.`);
      }
      // Wording approximated (not quoted in the pages above): Dataverse refuses a key that is not an alternate key of the table.
      if (!alternateKeys.has(alt[1]!)) return fail(400, '0x80060888', `The key attribute '${alt[1]}' is not defined as an alternate key for the lead table.`);
      lookup = { kind: 'alt', attribute: alt[1]!, value: alt[2]!.replace(/''/g, "'") };
    }
    const find = () => (lookup.kind === 'id' ? leads.get(lookup.id) : [...leads.values()].find((l) => l.columns[lookup.attribute] === lookup.value));
    const select = new URLSearchParams(query).get('$select')?.split(',').filter(Boolean) ?? [];
    const representation = (lead: DynamicsLead) => ({
      '@odata.context': `${state.base}/api/data/v9.2/$metadata#leads(${select.join(',')})/$entity`,
      '@odata.etag': `W/"${1000 + lead.writes}"`,
      // The primary key comes with every row, selected or not.
      ...(select.length ? { ...Object.fromEntries(select.map((c) => [c, c === 'leadid' ? lead.leadid : (lead.columns[c] ?? null)])), leadid: lead.leadid } : { leadid: lead.leadid, ...lead.columns }),
    });

    if (entry.method === 'GET') {
      const readErrors = [...new URLSearchParams(query).keys()].filter((k) => k !== '$select').map((k) => `query option ${k} (the kind only selects)`);
      if (raw.length) readErrors.push('a GET with a body');
      const ifNoneMatch = req.headers['if-none-match'];
      if (ifNoneMatch !== undefined && ifNoneMatch !== 'null') readErrors.push(`If-None-Match ${ifNoneMatch} on a read`);
      if (readErrors.length) violation(readErrors);
      const unknownColumn = select.find((c) => c !== 'leadid' && !columns.has(c));
      if (unknownColumn) return fail(400, '0x80060888', `Could not find a property named '${unknownColumn}' on type 'Microsoft.Dynamics.CRM.lead'.`);
      const step = readSteps.shift();
      if (step?.type === 'hangUp') {
        entry.status = 0;
        return req.socket.destroy();
      }
      if (step?.type === 'error') return fail(step.status, step.code, step.message, step.headers);
      state.reads++;
      const lead = find();
      if (!lead) return fail(404, '0x80040217', lookup.kind === 'id' ? `lead With Id = ${lookup.id} Does Not Exist` : 'A record with the specified key values does not exist in lead entity');
      const body = representation(lead);
      if (step?.type === 'slow') setTimeout(() => reply(200, body), step.delayMs).unref();
      else reply(200, body);
      return;
    }
    if (entry.method !== 'PATCH') {
      violation([`method ${entry.method}`]);
      return fail(405, '0x80060888', 'The requested resource does not support http method.');
    }
    if (!/^application\/json\b/.test(String(req.headers['content-type']))) {
      violation([`content-type ${String(req.headers['content-type'])}`]);
      return fail(415, '0x80060888', 'The content type of the request is not supported.');
    }
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      violation(['the body is not JSON']);
      return fail(400, '0x80060888', 'The request body is not valid JSON.');
    }
    if (!validate(body)) {
      const errors = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`);
      violation(errors);
      return fail(400, '0x80060888', errors.join('; '));
    }
    const row = body as Record<string, string | number | boolean | null>;
    if ('leadid' in row || (lookup.kind === 'alt' && lookup.attribute in row)) violation(['the body sets the row key (the URI does)']);

    const step = steps.shift();
    if (step?.type === 'hangUp') {
      entry.status = 0;
      return req.socket.destroy();
    }
    if (step?.type === 'error') return fail(step.status, step.code, step.message, step.headers);

    for (const [name, value] of Object.entries(row)) {
      if (name.endsWith('@odata.bind')) continue;
      const type = columns.get(name);
      // Wording as Dataverse answers an unknown property (0x80060888), not quoted in the pages above.
      if (!type) return fail(400, '0x80060888', `Invalid property '${name}' was found in entity 'Microsoft.Dynamics.CRM.lead'.`);
      if (value !== null && typeof value !== type) return fail(400, '0x80060888', `Cannot convert the literal '${String(value)}' to the expected type 'Edm.${type === 'string' ? 'String' : type === 'number' ? 'Int32' : 'Boolean'}'.`);
    }

    const existing = find();
    const ifNoneMatch = req.headers['if-none-match'];
    const ifMatch = req.headers['if-match'];
    if (existing && ifNoneMatch === '*') return fail(412, '', 'A record with matching key values already exists.');
    if (!existing && ifMatch === '*') return fail(404, '0x80040217', `lead With Id = ${keyText} Does Not Exist`);
    if (!existing && req.headers['mscrm.suppressduplicatedetection'] === 'false' && typeof row.emailaddress1 === 'string') {
      const duplicate = [...leads.values()].some((l) => typeof l.columns.emailaddress1 === 'string' && l.columns.emailaddress1.toLowerCase() === String(row.emailaddress1).toLowerCase());
      if (duplicate) return fail(500, '0x80040333', 'A record was not created or updated because a duplicate of the current record already exists.');
    }

    state.writes++;
    let lead: DynamicsLead;
    if (existing) {
      Object.assign(existing.columns, row);
      existing.writes++;
      lead = existing;
    } else {
      const leadid = lookup.kind === 'id' ? lookup.id : randomUUID();
      lead = { leadid, columns: { ...row, ...(lookup.kind === 'alt' ? { [lookup.attribute]: lookup.value } : {}) }, writes: 1 };
      leads.set(leadid, lead);
    }
    const entityId = { 'odata-entityid': `${state.base}/api/data/v9.2/leads(${lead.leadid})` };
    const answer = () => {
      if (/return=representation/.test(String(req.headers.prefer))) reply(200, representation(lead), { 'preference-applied': 'return=representation', ...entityId });
      else reply(204, undefined, entityId);
    };
    if (step?.type === 'slow') setTimeout(answer, step.delayMs).unref();
    else answer();
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const entry: DynamicsRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: raw, receivedAt: Date.now(), status: 0 };
      requests.push(entry);
      const reply = (status: number, body: unknown, headers: Record<string, string> = {}) => {
        entry.status = status;
        res.writeHead(status, { ...(body === undefined ? {} : { 'content-type': 'application/json; odata.metadata=minimal' }), 'odata-version': '4.0', 'x-ms-service-request-id': randomUUID(), ...headers });
        res.end(body === undefined ? '' : JSON.stringify(body));
      };
      if (/^\/[^/]+\/oauth2\/v2\.0\/token$/.test(entry.path)) onToken(req, entry, raw, reply);
      else onApi(req, entry, raw, reply);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    baseUrl: state.base,
    authorityUrl: state.base,
    leads,
    requests,
    violations,
    tokensIssued,
    get writes() {
      return state.writes;
    },
    get reads() {
      return state.reads;
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
    expireTokens() {
      for (const token of tokens.values()) token.expiresAt = 0;
    },
    reset() {
      steps = [];
      readSteps = [];
      tokenSteps = [];
      requests.length = 0;
      violations.length = 0;
      tokensIssued.length = 0;
      state.writes = 0;
      state.reads = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
