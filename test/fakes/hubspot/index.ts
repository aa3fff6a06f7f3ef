/**
 * A local HubSpot CRM (api.hubapi.com), enough of it for the hubspot kind: contacts batch upsert.
 * HubSpot publishes no machine-readable spec we keep here, so the request and answer shapes follow
 * its public documentation:
 *  - developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/batch/upsert-contacts
 *    (POST /crm/v3/objects/contacts/batch/upsert, body {inputs:[{id, idProperty, properties,
 *    objectWriteTraceId?}]}, answer {status, results:[{id, properties, createdAt, updatedAt,
 *    archived, new}], startedAt, completedAt});
 *  - developers.hubspot.com/docs/api/usage-details (429 {status, message, errorType:"RATE_LIMIT",
 *    correlationId, policyName: TEN_SECONDLY_ROLLING | DAILY}; the X-HubSpot-RateLimit-* headers);
 *  - developers.hubspot.com/docs/api-reference/latest/crm/objects/contacts/basic/get-crm-v3-objects-contacts-contactId
 *    (GET /crm/v3/objects/contacts/{contactId}?idProperty=email&properties=a,b&archived=false: the
 *    contact by a unique property; answer SimplePublicObjectWithAssociations {id, properties (the
 *    requested ones, null when empty, plus createdate/hs_object_id/lastmodifieddate), createdAt,
 *    updatedAt, archived}; 404 {status, message:"Object not found.  objectId are usually numeric.",
 *    correlationId, context:{id:[…]}, category:"OBJECT_NOT_FOUND"}; scope crm.objects.contacts.read);
 *  - developers.hubspot.com/docs/faq/api-error-responses ({status:"error", message, errors[],
 *    category, correlationId}); 401 INVALID_AUTHENTICATION, 403 MISSING_SCOPES with
 *    context.requiredGranularScopes (as HubSpot answers them, shown in its community threads).
 *
 * What it checks (a failure is answered in HubSpot's error shape and recorded in `violations`):
 *  - `Authorization: Bearer <private app token>` of a known token (else 401) whose scopes include
 *    crm.objects.contacts.write for the upsert, crm.objects.contacts.read for a read (else 403
 *    MISSING_SCOPES naming the scope — not a violation: the buyer's app is configured so);
 *  - reads: only the documented query parameters (idProperty, properties, propertiesWithHistory,
 *    associations, archived), `idProperty=email` (how the kind reads: by the upsert's key), no body;
 *    the fake's own answer checked against the SimplePublicObjectWithAssociations schema;
 *  - `Content-Type: application/json` and a body valid against the BatchInputSimplePublicObject-
 *    BatchInputUpsert schema written from the reference above (inputs 1-100, each `id` and
 *    `properties` of string values, `idProperty`, no unknown keys);
 *  - `idProperty` "email" with `id` equal to `properties.email` (what the kind must send).
 * Beyond the schema, HubSpot's own validation answers 400 VALIDATION_ERROR (not a violation: the
 * buyer's mapping is at fault): a property the account does not have (PROPERTY_DOESNT_EXIST), an
 * invalid email (INVALID_EMAIL).
 * State: contacts by (lower-cased) email, so an upsert of the same email updates, never duplicates.
 * Scriptable per upsert request, in order: an error answer (429 with policyName and Retry-After,
 * 5xx, 400, …), a slow answer (the upsert is applied at once, the answer comes late: the ambiguous
 * timeout), a hang-up (nothing applied). Reads have their own script (`scriptReads`): an error
 * answer, a slow answer, a hang-up.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Ajv from 'ajv';

export interface HubspotContact {
  id: string;
  properties: Record<string, string>;
  createdAt: string;
  updatedAt: string;
  /** Upserts that wrote this contact (1 = created only). */
  writes: number;
}

export type HubspotStep =
  | { type: 'error'; status: number; body: Record<string, unknown> | string; headers?: Record<string, string> }
  | { type: 'slow'; delayMs: number }
  | { type: 'hangUp' };

export interface HubspotRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  receivedAt: number;
  status: number;
}

export interface HubspotFake {
  baseUrl: string;
  contacts: Map<string, HubspotContact>;
  requests: HubspotRequest[];
  violations: Array<{ path: string; errors: string[] }>;
  /** Upsert calls applied since the last reset (a scripted error or hang-up applies nothing). */
  upserts: number;
  /** Contact reads answered (found or not) since the last reset. */
  reads: number;
  addToken(token: string, scopes?: string[]): void;
  /** Steps for the next upsert requests, one each, in order; then normal service. */
  script(steps: HubspotStep[]): void;
  /** Steps for the next contact reads, one each, in order; then normal service. */
  scriptReads(steps: HubspotStep[]): void;
  reset(): void;
  close(): Promise<void>;
}

export const WRITE_SCOPE = 'crm.objects.contacts.write';
export const READ_SCOPE = 'crm.objects.contacts.read';
/** A token's scopes unless told otherwise: a private app that reads and writes contacts. */
export const DEFAULT_SCOPES = [READ_SCOPE, WRITE_SCOPE];

/** Default contact properties of a HubSpot account (the ones a lead maps to). */
export const CONTACT_PROPERTIES = [
  'email', 'firstname', 'lastname', 'phone', 'mobilephone', 'company', 'jobtitle', 'website', 'address', 'city', 'state', 'zip', 'country',
  'lifecyclestage', 'hs_lead_status', 'message', 'fax', 'industry', 'numemployees', 'annualrevenue',
];

const correlationId = () => randomUUID();

/** HubSpot's documented error answers, ready to script. */
export const hubspotErrors = {
  secondly: (retryAfterS?: number): HubspotStep => ({
    type: 'error',
    status: 429,
    body: { status: 'error', message: 'You have reached your ten_secondly_rolling limit.', errorType: 'RATE_LIMIT', correlationId: correlationId(), policyName: 'TEN_SECONDLY_ROLLING' },
    ...(retryAfterS !== undefined ? { headers: { 'retry-after': String(retryAfterS) } } : {}),
  }),
  daily: (): HubspotStep => ({
    type: 'error',
    status: 429,
    body: { status: 'error', message: 'You have reached your daily limit.', errorType: 'RATE_LIMIT', correlationId: correlationId(), policyName: 'DAILY' },
  }),
  serverError: (status = 502): HubspotStep => ({ type: 'error', status, body: { status: 'error', message: 'internal error', correlationId: correlationId() } }),
  validation: (message = 'Property values were not valid'): HubspotStep => ({ type: 'error', status: 400, body: { status: 'error', message, correlationId: correlationId(), category: 'VALIDATION_ERROR' } }),
};

interface UpsertBody {
  inputs: Array<{ id: string; idProperty?: string; objectWriteTraceId?: string; properties: Record<string, string> }>;
}

const upsertSchema = {
  type: 'object',
  required: ['inputs'],
  additionalProperties: false,
  properties: {
    inputs: {
      type: 'array',
      minItems: 1,
      maxItems: 100,
      items: {
        type: 'object',
        required: ['id', 'properties'],
        additionalProperties: false,
        properties: {
          id: { type: 'string', minLength: 1 },
          idProperty: { type: 'string', minLength: 1 },
          objectWriteTraceId: { type: 'string' },
          properties: { type: 'object', additionalProperties: { type: 'string' } },
        },
      },
    },
  },
} as const;

/** SimplePublicObjectWithAssociations, the answer of a contact read (written from the reference above). */
const contactSchema = {
  type: 'object',
  required: ['id', 'properties', 'createdAt', 'updatedAt', 'archived'],
  additionalProperties: false,
  properties: {
    id: { type: 'string', pattern: '^[0-9]+$' },
    properties: { type: 'object', additionalProperties: { type: ['string', 'null'] } },
    propertiesWithHistory: { type: 'object' },
    associations: { type: 'object' },
    createdAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
    archived: { type: 'boolean' },
    archivedAt: { type: 'string', format: 'date-time' },
  },
} as const;

const READ_PARAMS = new Set(['idProperty', 'properties', 'propertiesWithHistory', 'associations', 'archived']);
const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

export async function startHubspotFake(options: { tokens?: Array<{ token: string; scopes?: string[] }>; properties?: string[] } = {}): Promise<HubspotFake> {
  const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
  ajv.addFormat('date-time', ISO_DATE_TIME);
  const validate = ajv.compile<UpsertBody>(upsertSchema);
  const validateContact = ajv.compile(contactSchema);
  const tokens = new Map<string, string[]>((options.tokens ?? []).map((t) => [t.token, t.scopes ?? DEFAULT_SCOPES]));
  const known = new Set([...CONTACT_PROPERTIES, ...(options.properties ?? [])]);
  const contacts = new Map<string, HubspotContact>();
  const requests: HubspotRequest[] = [];
  const violations: HubspotFake['violations'] = [];
  let steps: HubspotStep[] = [];
  let readSteps: HubspotStep[] = [];
  let nextId = 1001;
  let dailyUsed = 0;
  const state = { upserts: 0, reads: 0 };

  const rateHeaders = () => ({
    'x-hubspot-ratelimit-daily': '250000',
    'x-hubspot-ratelimit-daily-remaining': String(250000 - dailyUsed),
    'x-hubspot-ratelimit-interval-milliseconds': '10000',
    'x-hubspot-ratelimit-max': '100',
  });

  function apply(inputs: Array<{ id: string; properties: Record<string, string> }>) {
    state.upserts++;
    const now = new Date().toISOString();
    return inputs.map((input) => {
      const email = input.id.toLowerCase();
      const existing = contacts.get(email);
      if (existing) {
        Object.assign(existing.properties, input.properties, { lastmodifieddate: now });
        existing.updatedAt = now;
        existing.writes++;
        return { contact: existing, created: false };
      }
      const id = String(nextId++);
      const contact: HubspotContact = { id, properties: { ...input.properties, email, hs_object_id: id, createdate: now, lastmodifieddate: now }, createdAt: now, updatedAt: now, writes: 1 };
      contacts.set(email, contact);
      return { contact, created: true };
    });
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const record: HubspotRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: raw, receivedAt: Date.now(), status: 0 };
      requests.push(record);
      const answer = (status: number, body: unknown, headers: Record<string, string> = {}) => {
        record.status = status;
        res.writeHead(status, { 'content-type': 'application/json;charset=utf-8', ...rateHeaders(), ...headers });
        res.end(typeof body === 'string' ? body : JSON.stringify(body));
      };
      const violation = (errors: string[]) => violations.push({ path: record.path, errors });

      const url = new URL(record.path, 'http://fake');
      const read = /^\/crm\/v3\/objects\/contacts\/([^/]+)$/.exec(url.pathname);
      const isRead = record.method === 'GET' && read !== null && read[1] !== 'batch';
      if (!isRead && (url.pathname !== '/crm/v3/objects/contacts/batch/upsert' || record.method !== 'POST')) {
        violation([`unexpected ${record.method} ${record.path}`]);
        return answer(404, { status: 'error', message: 'Resource not found', correlationId: correlationId(), category: 'OBJECT_NOT_FOUND' });
      }
      const auth = /^Bearer (\S+)$/.exec(String(req.headers.authorization ?? ''));
      const scopes = auth ? tokens.get(auth[1]!) : undefined;
      if (!scopes) {
        if (!auth) violation(['no Bearer authorization header']);
        return answer(401, {
          status: 'error',
          message: 'Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview',
          correlationId: correlationId(),
          category: 'INVALID_AUTHENTICATION',
        });
      }
      const needed = isRead ? READ_SCOPE : WRITE_SCOPE;
      if (!scopes.includes(needed)) {
        return answer(403, {
          status: 'error',
          message: "This app hasn't been granted all required scopes to make this call. Read more about required scopes here: https://developers.hubspot.com/scopes.",
          correlationId: correlationId(),
          errors: [{ message: 'One or more of the following scopes are required.', context: { requiredGranularScopes: [needed] } }],
          links: { scopes: 'https://developers.hubspot.com/scopes' },
          category: 'MISSING_SCOPES',
        });
      }
      if (isRead) return onRead(decodeURIComponent(read[1]!), url, raw, answer, violation, () => req.socket.destroy(), record);
      if (!/^application\/json\b/.test(String(req.headers['content-type']))) {
        violation([`content-type ${String(req.headers['content-type'])}`]);
        return answer(415, { status: 'error', message: 'Unsupported Media Type', correlationId: correlationId() });
      }
      let body: unknown;
      try {
        body = JSON.parse(raw);
      } catch {
        violation(['the body is not JSON']);
        return answer(400, { status: 'error', message: 'Invalid input JSON on line 1', correlationId: correlationId(), category: 'VALIDATION_ERROR' });
      }
      if (!validate(body)) {
        const errors = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`);
        violation(errors);
        return answer(400, { status: 'error', message: `Invalid input JSON: ${errors.join('; ')}`, correlationId: correlationId(), category: 'VALIDATION_ERROR' });
      }
      const inputs = body.inputs;
      for (const input of inputs) {
        if (input.idProperty !== 'email') violation([`idProperty ${String(input.idProperty)} (the kind upserts by email)`]);
        if (input.properties.email !== input.id) violation(['id differs from properties.email']);
      }

      const step = steps.shift();
      if (step?.type === 'hangUp') {
        record.status = 0;
        return req.socket.destroy();
      }
      if (step?.type === 'error') return answer(step.status, step.body, step.headers);
      dailyUsed++;

      // HubSpot's own property validation (the buyer's configuration, not the kind, is at fault).
      const invalid: Array<Record<string, unknown>> = [];
      for (const input of inputs) {
        for (const [name, value] of Object.entries(input.properties)) {
          if (!known.has(name)) invalid.push({ isValid: false, message: `Property "${name}" does not exist`, error: 'PROPERTY_DOESNT_EXIST', name, localizedErrorMessage: `Property "${name}" does not exist` });
          else if (name === 'email' && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value)) invalid.push({ isValid: false, message: `Email address ${value} is invalid`, error: 'INVALID_EMAIL', name });
        }
        if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(input.id)) invalid.push({ isValid: false, message: `Email address ${input.id} is invalid`, error: 'INVALID_EMAIL', name: 'email' });
      }
      if (invalid.length) return answer(400, { status: 'error', message: `Property values were not valid: ${JSON.stringify(invalid)}`, correlationId: correlationId(), category: 'VALIDATION_ERROR' });

      const startedAt = new Date().toISOString();
      const written = apply(inputs);
      const result = {
        status: 'COMPLETE',
        results: written.map(({ contact, created }) => ({ id: contact.id, properties: { ...contact.properties }, createdAt: contact.createdAt, updatedAt: contact.updatedAt, archived: false, new: created })),
        startedAt,
        completedAt: new Date().toISOString(),
      };
      if (step?.type === 'slow') setTimeout(() => answer(200, result), step.delayMs).unref();
      else answer(200, result);
    });
  });
  /** GET /crm/v3/objects/contacts/{contactId}: the contact by id, or by a unique property (idProperty). */
  function onRead(
    contactId: string,
    url: URL,
    raw: string,
    answer: (status: number, body: unknown, headers?: Record<string, string>) => void,
    violation: (errors: string[]) => void,
    hangUp: () => void,
    record: HubspotRequest,
  ) {
    const unknown = [...url.searchParams.keys()].filter((k) => !READ_PARAMS.has(k));
    const errors = unknown.map((k) => `unknown query parameter ${k}`);
    const idProperty = url.searchParams.get('idProperty');
    if (idProperty !== 'email') errors.push(`idProperty ${String(idProperty)} (the kind reads the contact by the upsert's key, email)`);
    if (raw.length) errors.push('a GET with a body');
    const archived = url.searchParams.get('archived');
    if (archived !== null && archived !== 'true' && archived !== 'false') errors.push(`archived ${archived} is not a boolean`);
    const requested = (url.searchParams.getAll('properties').join(',') || '').split(',').filter(Boolean);
    const badNames = requested.filter((p) => !/^[a-z0-9_]{1,100}$/.test(p));
    if (badNames.length) errors.push(`properties ${badNames.join(', ')} are not internal names`);
    if (errors.length) {
      violation(errors);
      return answer(400, { status: 'error', message: `Invalid input: ${errors.join('; ')}`, correlationId: correlationId(), category: 'VALIDATION_ERROR' });
    }
    const step = readSteps.shift();
    if (step?.type === 'hangUp') {
      record.status = 0;
      return hangUp();
    }
    if (step?.type === 'error') return answer(step.status, step.body, step.headers);
    dailyUsed++;
    state.reads++;
    const contact = contacts.get(contactId.toLowerCase());
    if (!contact) {
      return answer(404, { status: 'error', message: 'Object not found.  objectId are usually numeric.', correlationId: correlationId(), context: { id: [contactId] }, category: 'OBJECT_NOT_FOUND' });
    }
    // The requested properties (null when the contact has no value), and the three HubSpot always returns.
    const properties: Record<string, string | null> = { createdate: contact.properties.createdate ?? null, hs_object_id: contact.id, lastmodifieddate: contact.properties.lastmodifieddate ?? null };
    for (const name of requested) properties[name] = contact.properties[name] ?? null;
    const body = { id: contact.id, properties, createdAt: contact.createdAt, updatedAt: contact.updatedAt, archived: false };
    if (!validateContact(body)) violations.push({ path: `${url.pathname} (the fake's answer)`, errors: (validateContact.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`) });
    if (step?.type === 'slow') setTimeout(() => answer(200, body), step.delayMs).unref();
    else answer(200, body);
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    baseUrl: `http://127.0.0.1:${port}`,
    contacts,
    requests,
    violations,
    get upserts() {
      return state.upserts;
    },
    get reads() {
      return state.reads;
    },
    addToken(token, scopes = DEFAULT_SCOPES) {
      tokens.set(token, scopes);
    },
    script(next) {
      steps = [...next];
    },
    scriptReads(next) {
      readSteps = [...next];
    },
    reset() {
      steps = [];
      readSteps = [];
      state.upserts = 0;
      state.reads = 0;
      requests.length = 0;
      violations.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
