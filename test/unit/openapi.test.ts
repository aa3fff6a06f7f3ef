/**
 * docs/openapi.yaml against the code. The two express apps are built as the services build them
 * (createApp, createLogApp) with stand-in dependencies: no database, no Temporal. Then:
 *  - every method + path either app registers (read from the express 5 router stacks, mount paths
 *    included) is an operation of the document, and every operation of the document is registered;
 *  - every operation says which service serves it (`x-service: intake | log`, a list when both do),
 *    and that is exactly the app(s) that register it;
 *  - every `$ref` resolves and every `{param}` of a path is declared as a path parameter;
 *  - every JSON request body has an example; every example (`example` and `examples`) validates
 *    against the operation's schema (ajv, JSON Schema 2020-12 as OpenAPI 3.1 uses);
 *  - the code accepts every JSON example: the example is sent to the app, whose stand-in store,
 *    Temporal client and codec record any use, and it must get past validation (reach them) while
 *    a broken variant of it is refused with 400 before reaching them — or, where the route reads
 *    the store first or needs a source key, the route's exported zod schemas parse it directly;
 *  - the documented Lead and EndpointInput schemas say what the zod schemas say (z.toJSONSchema):
 *    the same fields, types, lengths, patterns, enums, bounds and required fields.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import type express from 'express';
import { Webhook } from 'standardwebhooks';
import YAML from 'yaml';
import { z } from 'zod';
import { createRegistry } from '../../activities/registry';
import { defaultProviderSettings } from '../../activities/providers';
import { webhookConfig, webhookSecrets } from '../../activities/webhook';
import { createApp, type IntakeDeps } from '../../services/intake/app';
import { optionalReason, reasonBody } from '../../services/intake/operator/breakers';
import { createLogApp } from '../../services/log/app';
import { defaultReturnSettings, returnRequestSchema } from '../../services/intake/returns';
import type { LogDeps } from '../../services/log/deps';
import { ENDPOINT_COMMON_KEYS, endpointCommonSchema } from '../../shared/endpoint';
import { parseWith } from '../../shared/http/validate';
import { createOutbound } from '../../shared/http/outbound';
import { leadSchema } from '../../shared/lead';
import { createLogger } from '../../shared/logger';
import { createLogMetrics } from '../../shared/metrics';

const ROOT = path.resolve(__dirname, '../..');
const SERVICES = ['intake', 'log'] as const;
type Service = (typeof SERVICES)[number];
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

const ADMIN_TOKEN = 'openapi-test-admin-token-0123456789';
const CODEC_TOKEN = 'openapi-test-codec-token-0123456789';
/** RESEND_WEBHOOK_SECRET of the intake app: the test signs the Resend callback example as Resend does. */
const RESEND_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
/** Values for path parameters when an example is sent (a parameter's own `example` wins). */
const PATH_VALUES: Record<string, string> = { token: CODEC_TOKEN };

// ---- the document -------------------------------------------------------------------------------

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const isObject = (value: unknown): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);

const spec: JsonObject = (() => {
  const parsed: unknown = YAML.parse(fs.readFileSync(path.join(ROOT, 'docs/openapi.yaml'), 'utf8'));
  assert.ok(isObject(parsed), 'docs/openapi.yaml is a mapping');
  return parsed;
})();

function pointer(ref: string): Json {
  assert.ok(ref.startsWith('#/'), `only local refs: ${ref}`);
  let node: Json = spec;
  for (const raw of ref.slice(2).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    assert.ok(isObject(node) && key in node, `unresolved $ref ${ref}`);
    node = node[key]!;
  }
  return node;
}

/** The node with every local `$ref` replaced by its target (the document has no cycles). */
function resolved(node: Json, depth = 0): Json {
  assert.ok(depth < 50, 'a $ref cycle');
  if (Array.isArray(node)) return node.map((n) => resolved(n, depth + 1));
  if (!isObject(node)) return node;
  if (typeof node.$ref === 'string') {
    const { $ref, ...siblings } = node;
    const target = resolved(pointer($ref), depth + 1);
    return isObject(target) ? { ...target, ...siblings } : target;
  }
  return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, resolved(v, depth + 1)]));
}

interface Operation {
  key: string;
  method: string;
  path: string;
  op: JsonObject;
  item: JsonObject;
}

function operations(): Operation[] {
  const paths = spec.paths;
  assert.ok(isObject(paths), 'paths');
  const out: Operation[] = [];
  for (const [p, rawItem] of Object.entries(paths)) {
    const item = resolved(rawItem);
    assert.ok(isObject(item), `path item ${p}`);
    for (const method of METHODS) {
      const op = item[method];
      if (isObject(op)) out.push({ key: `${method} ${p}`, method, path: p, op, item });
    }
  }
  return out;
}

function services(op: JsonObject): Service[] {
  const raw = op['x-service'];
  const list = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
  return list.map((s) => {
    assert.ok(typeof s === 'string' && (SERVICES as readonly string[]).includes(s), `x-service ${JSON.stringify(s)} is one of ${SERVICES.join(', ')}`);
    return s as Service;
  });
}

interface Example {
  op: Operation;
  mediaType: string;
  name: string;
  value: Json;
  schema: Json | undefined;
}

function requestExamples(op: Operation): Example[] {
  const content = isObject(op.op.requestBody) ? op.op.requestBody.content : undefined;
  if (!isObject(content)) return [];
  const out: Example[] = [];
  for (const [mediaType, media] of Object.entries(content)) {
    if (!isObject(media)) continue;
    if (media.example !== undefined) out.push({ op, mediaType, name: 'example', value: media.example, schema: media.schema });
    if (isObject(media.examples)) {
      for (const [name, ex] of Object.entries(media.examples)) {
        assert.ok(isObject(ex) && 'value' in ex, `${op.key} ${mediaType} examples.${name} has a value`);
        out.push({ op, mediaType, name: `examples.${name}`, value: ex.value!, schema: media.schema });
      }
    }
  }
  return out;
}

// ---- the apps, with dependencies that record any use ---------------------------------------------

class Unreachable extends Error {}

/** Every use of a stand-in after the apps are built: the store, Temporal, the codec, keys, signer. */
const touches: string[] = [];
let armed = false;

/**
 * A stand-in for a dependency the routes may not need before validating: any property is another
 * stand-in (so building the app works), and once armed every property read, call or await is
 * recorded; awaiting one fails (as an unreachable store or Temporal would).
 */
function standIn<T>(name: string): T {
  const target = function standInTarget() {};
  const proxy: unknown = new Proxy(target, {
    get(_t, key) {
      if (typeof key === 'symbol') return undefined;
      if (armed) touches.push(`${name}.${key}`);
      if (key === 'then') return armed ? (_ok: unknown, fail: (e: Error) => void) => fail(new Unreachable(`${name} awaited`)) : undefined;
      return standIn<unknown>(`${name}.${key}`);
    },
    apply() {
      if (armed) touches.push(`${name}()`);
      return standIn<unknown>(`${name}()`);
    },
  });
  return proxy as T;
}

const logger = createLogger({ name: 'openapi-test', level: 'silent' });
const registry = createRegistry({ outbound: createOutbound(), logger });

function intakeApp(): express.Express {
  const deps: IntakeDeps = {
    client: standIn('client'),
    store: standIn('store'),
    models: standIn('models'),
    registry,
    credentials: standIn('credentials'),
    logger,
    adminToken: ADMIN_TOKEN,
    deliveryTaskQueue: 'delivery',
    logTaskQueue: 'delivery-log',
    bodyLimit: '1mb',
    ratePerMinute: 1000,
    temporalTimeoutMs: 1000,
    deadLetterRetentionMs: 86_400_000,
    providers: defaultProviderSettings({ resendWebhookSecret: RESEND_SECRET }),
    codec: standIn('codec'),
    codecToken: CODEC_TOKEN,
    codecCorsOrigins: [],
  };
  return createApp(deps);
}

function logApp(): express.Express {
  const deps: LogDeps = {
    store: standIn('store'),
    models: standIn('models'),
    logger,
    adminToken: ADMIN_TOKEN,
    leadKeys: standIn('leadKeys'),
    signer: standIn('signer'),
    lookupKey: 'openapi-test-lookup-key',
    defaultRetentionMs: 86_400_000,
    metrics: createLogMetrics(),
    metricsToken: '',
  };
  return createLogApp(deps);
}

// ---- routes from the express 5 router stacks ------------------------------------------------------

interface RouterLayer {
  route?: { path: string | string[]; methods: Record<string, boolean | undefined> };
  handle?: { stack?: RouterLayer[] };
  /** router 2.x: the path the layer was registered with (a mount path for `use`). */
  rawPath?: string | string[] | RegExp;
}

/** An express path as an OpenAPI path: `:id` → `{id}`, no trailing slash. */
export function openApiPath(expressPath: string): string {
  assert.ok(!/[*(){}?+]/.test(expressPath), `a path form this test does not read: ${expressPath}`);
  const trimmed = expressPath.length > 1 ? expressPath.replace(/\/+$/, '') : expressPath;
  return trimmed.replace(/:([A-Za-z0-9_]+)/g, '{$1}') || '/';
}

/** Every "method path" an app registers, nested routers' mount paths included. */
export function registeredRoutes(app: express.Express): string[] {
  const router = (app as unknown as { router?: { stack?: RouterLayer[] } }).router;
  assert.ok(router?.stack, 'express 5 exposes app.router.stack');
  const out: string[] = [];
  const walk = (stack: RouterLayer[], prefix: string): void => {
    for (const layer of stack) {
      if (layer.route) {
        const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
        for (const method of Object.keys(layer.route.methods)) {
          assert.notEqual(method, '_all', `router.all() at ${String(layer.route.path)}: list its methods instead`);
          for (const p of paths) out.push(`${method} ${openApiPath(prefix + p)}`);
        }
      } else if (layer.handle?.stack) {
        assert.ok(typeof layer.rawPath === 'string', 'a mounted router keeps its mount path in layer.rawPath (router 2.x); without it, keep a table of mount paths from the app.ts files here');
        walk(layer.handle.stack, prefix + (layer.rawPath === '/' ? '' : layer.rawPath));
      }
    }
  };
  walk(router.stack, '');
  return [...new Set(out)];
}

// ---- sending an example to an app -----------------------------------------------------------------

interface Listening {
  url: string;
  close(): Promise<void>;
}

function listen(app: express.Express): Promise<Listening> {
  const server = http.createServer(app);
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () => new Promise<void>((done) => {
          server.closeAllConnections();
          server.close(() => done());
        }),
      });
    });
  });
}

interface Sent {
  status: number;
  body: string;
  touched: string[];
}

function concretePath(op: Operation): string {
  const params = [...(Array.isArray(op.item.parameters) ? op.item.parameters : []), ...(Array.isArray(op.op.parameters) ? op.op.parameters : [])];
  return op.path.replace(/\{([^}]+)\}/g, (_m, name: string) => {
    const param = params.find((p) => isObject(p) && p.in === 'path' && p.name === name);
    const example = isObject(param) ? (param.example ?? (isObject(param.schema) ? param.schema.example : undefined)) : undefined;
    return encodeURIComponent(typeof example === 'string' ? example : (PATH_VALUES[name] ?? 'x_1'));
  });
}

/** Headers a route needs besides the body: the admin token, or a provider's signature. */
function headersFor(op: Operation, raw: string): Record<string, string> {
  const headers: Record<string, string> = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };
  if (op.key === 'post /v1/callbacks/resend') {
    const id = 'msg_openapi_test';
    const at = new Date();
    Object.assign(headers, { 'svix-id': id, 'svix-timestamp': String(Math.floor(at.getTime() / 1000)), 'svix-signature': new Webhook(RESEND_SECRET).sign(id, at, raw) });
  }
  return headers;
}

async function send(base: string, op: Operation, body: Json): Promise<Sent> {
  touches.length = 0;
  armed = true;
  try {
    const raw = JSON.stringify(body);
    const res = await fetch(base + concretePath(op), { method: op.method.toUpperCase(), headers: headersFor(op, raw), body: raw });
    return { status: res.status, body: await res.text(), touched: [...touches] };
  } finally {
    armed = false;
  }
}

/** Bodies the code must refuse (400, before it uses a dependency), to show the route validates first. */
function brokenVariants(value: Json): Json[] {
  return isObject(value) ? [{ ...value, zz_not_a_field: true }, {}, []] : [{}, []];
}

// ---- direct checks with the routes' exported schemas ----------------------------------------------

/** As endpoints.create: common settings (shared/endpoint.ts), then the kind's own through the registry. */
function parseEndpointInput(value: unknown, current?: { kind: string; config: Record<string, unknown> }): void {
  assert.ok(isObject(value), 'an object');
  const common: Record<string, unknown> = {};
  const settings: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) (ENDPOINT_COMMON_KEYS.has(k) ? common : settings)[k] = v;
  const parsedCommon = parseWith(current ? endpointCommonSchema.partial() : endpointCommonSchema, common);
  const kind = current?.kind ?? String(parsedCommon.kind);
  const parsed = registry.parseSettings(kind, { ...current?.config, ...settings }, { generate: !current });
  if ('errors' in parsed) throw new Error(`refused: ${JSON.stringify(parsed.errors)}`);
  const extra = registry.get(kind)?.validate?.(parsed.config, parsed.secrets, parsedCommon.mapping) ?? [];
  if (extra.length) throw new Error(`refused: ${JSON.stringify(extra)}`);
}

function parsePreview(value: unknown): void {
  assert.ok(isObject(value), 'an object');
  assert.deepEqual(Object.keys(value).filter((k) => k !== 'lead'), [], 'only `lead`');
  if (value.lead !== undefined) parseWith(leadSchema, value.lead, 'lead.');
}

/**
 * Operations whose examples the exported zod schemas parse directly: routes that read the store
 * before validating (the endpoint's buyer first), and POST /v1/leads (a source key is checked
 * against the store first). The PATCH example is a webhook endpoint's change.
 */
const DIRECT: Record<string, (value: unknown) => void> = {
  'post /v1/leads': (v) => void parseWith(leadSchema, v),
  'post /v1/admin/buyers/{buyerId}/endpoints': (v) => parseEndpointInput(v),
  'patch /v1/admin/buyers/{buyerId}/endpoints/{endpointId}': (v) => parseEndpointInput(v, { kind: 'webhook', config: { url: 'https://buyer.example.com/leads', signingSecret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' } }),
  'post /v1/admin/buyers/{buyerId}/endpoints/{endpointId}/preview': parsePreview,
  'post /v1/buyers/{buyerId}/endpoints/{endpointId}/preview': parsePreview,
  'post /v1/admin/buyers/{buyerId}/pause': (v) => void parseWith(reasonBody, v),
  'post /v1/admin/buyers/{buyerId}/resume': (v) => void parseWith(optionalReason, v),
  'post /v1/admin/endpoints/{endpointId}/breaker/reset': (v) => void parseWith(optionalReason, v),
  'post /v1/admin/endpoints/{endpointId}/breaker/open': (v) => void parseWith(optionalReason, v),
  'post /v1/admin/leads/{leadId}/discard': (v) => void parseWith(reasonBody, v),
  // A buyer key is checked against the store before the body.
  'post /v1/buyer/returns': (v) => void parseWith(returnRequestSchema(defaultReturnSettings().reasons), v),
};

// ---- documented schema vs zod's --------------------------------------------------------------------

const COMPARED = ['type', 'minLength', 'maxLength', 'format', 'enum', 'const', 'minimum', 'maximum', 'minItems', 'maxItems'] as const;

/** Differences between a documented schema and the one zod generates (what the code enforces). */
export function schemaDrift(doc: Json | undefined, code: Json | undefined, at: string): string[] {
  if (!isObject(code)) return [];
  if (!isObject(doc)) return [`${at}: not documented`];
  const out: string[] = [];
  const same = (a: Json | undefined, b: Json | undefined) => JSON.stringify(a) === JSON.stringify(b);
  for (const k of COMPARED) {
    if (k === 'type' && doc.type === undefined && (doc.enum !== undefined || doc.const !== undefined)) continue;
    const sorted = (v: Json | undefined) => (k === 'enum' && Array.isArray(v) ? [...v].map(String).sort() : v);
    if (!same(sorted(doc[k]), sorted(code[k]))) out.push(`${at}.${k}: documented ${JSON.stringify(doc[k])}, code ${JSON.stringify(code[k])}`);
  }
  if (code.format === undefined && doc.format === undefined && !same(doc.pattern, code.pattern)) out.push(`${at}.pattern: documented ${JSON.stringify(doc.pattern)}, code ${JSON.stringify(code.pattern)}`);
  const required = (s: JsonObject) => JSON.stringify([...(Array.isArray(s.required) ? s.required : [])].sort());
  if (required(doc) !== required(code)) out.push(`${at}.required: documented ${required(doc)}, code ${required(code)}`);
  if ((doc.additionalProperties === false) !== (code.additionalProperties === false)) out.push(`${at}.additionalProperties: documented ${JSON.stringify(doc.additionalProperties)}, code ${JSON.stringify(code.additionalProperties)}`);
  if (isObject(code.properties) || isObject(doc.properties)) {
    const docProps = isObject(doc.properties) ? doc.properties : {};
    const codeProps = isObject(code.properties) ? code.properties : {};
    for (const name of new Set([...Object.keys(docProps), ...Object.keys(codeProps)])) {
      if (!(name in codeProps)) out.push(`${at}.${name}: documented, not in the code`);
      else out.push(...schemaDrift(docProps[name], codeProps[name], `${at}.${name}`));
    }
  }
  const trivial = (s: Json | undefined) => !isObject(s) || Object.keys(s).every((k) => k === 'type' && s.type === 'string');
  for (const k of ['items', 'propertyNames', 'additionalProperties'] as const) {
    if (isObject(code[k]) && !trivial(code[k])) out.push(...schemaDrift(doc[k], code[k], `${at}.${k}`));
  }
  for (const k of ['anyOf', 'oneOf'] as const) {
    const codeList = code[k];
    if (!Array.isArray(codeList)) continue;
    const docList = Array.isArray(doc.anyOf) ? doc.anyOf : Array.isArray(doc.oneOf) ? doc.oneOf : [];
    if (docList.length !== codeList.length) out.push(`${at}.${k}: documented ${docList.length} alternatives, code ${codeList.length}`);
    else codeList.forEach((c, i) => out.push(...schemaDrift(docList[i], c, `${at}.${k}[${i}]`)));
  }
  return out;
}

const toJson = (schema: z.ZodType): JsonObject => z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonObject;

/** A documented schema written as `allOf` of parts plus its own keywords, as one schema. */
function flattened(schema: Json | undefined): JsonObject {
  assert.ok(isObject(schema), 'a schema');
  const { allOf, ...own } = schema;
  const parts = [...(Array.isArray(allOf) ? allOf.map(flattened) : []), own];
  const out: JsonObject = {};
  for (const part of parts) {
    for (const [k, v] of Object.entries(part)) {
      if (k === 'properties' && isObject(v)) out.properties = { ...(isObject(out.properties) ? out.properties : {}), ...v };
      else if (k === 'required' && Array.isArray(v)) out.required = [...new Set([...(Array.isArray(out.required) ? out.required : []), ...v])];
      else out[k] = v;
    }
  }
  return out;
}

// ---- the tests ----------------------------------------------------------------------------------

describe('docs/openapi.yaml against the code', () => {
  const apps: Record<Service, express.Express> = { intake: intakeApp(), log: logApp() };
  const served = new Map<string, Service[]>();
  for (const service of SERVICES) for (const route of registeredRoutes(apps[service])) served.set(route, [...(served.get(route) ?? []), service]);
  const ops = operations();
  const listening: Partial<Record<Service, Listening>> = {};

  before(async () => {
    for (const service of SERVICES) listening[service] = await listen(apps[service]);
  });
  after(async () => {
    for (const service of SERVICES) await listening[service]?.close();
  });

  it('the route reader finds mounted routers, path arrays and parameters', () => {
    for (const route of ['post /v1/admin/sources', 'delete /v1/admin/sources/{sourceId}/keys/{keyId}', 'post /v1/codec/t/{token}/decode', 'options /v1/codec/encode', 'post /v1/callbacks/resend', 'get /v1/leads/{leadId}']) {
      assert.ok(served.get(route)?.includes('intake'), `intake serves ${route}`);
    }
    for (const route of ['get /v1/leads/{leadId}/attempts', 'post /v1/reconcile', 'get /.well-known/delivery-receipt-keys.json', 'get /']) {
      assert.ok(served.get(route)?.includes('log'), `log serves ${route}`);
    }
    assert.deepEqual(served.get('get /healthz'), ['intake', 'log']);
  });

  it('every route the apps register is documented with that method', () => {
    const documented = new Set(ops.map((o) => o.key));
    const missing = [...served.entries()].filter(([route]) => !documented.has(route)).map(([route, by]) => `${route} (${by.join(', ')})`);
    assert.deepEqual(missing, []);
  });

  it('every documented operation is served by an app', () => {
    assert.deepEqual(ops.filter((o) => !served.has(o.key)).map((o) => o.key), []);
  });

  it('every operation says which service serves it (x-service), and that service registers it', () => {
    const wrong = ops
      .map((o) => ({ key: o.key, documented: services(o.op).sort(), actual: [...(served.get(o.key) ?? [])].sort() }))
      .filter((o) => JSON.stringify(o.documented) !== JSON.stringify(o.actual))
      .map((o) => `${o.key}: x-service ${JSON.stringify(o.documented)}, served by ${JSON.stringify(o.actual)}`);
    assert.deepEqual(wrong, []);
  });

  it('every $ref resolves and every {param} of a path is a declared path parameter', () => {
    const refs: string[] = [];
    const collect = (node: Json): void => {
      if (Array.isArray(node)) node.forEach(collect);
      else if (isObject(node)) for (const [k, v] of Object.entries(node)) (k === '$ref' && typeof v === 'string' ? refs.push(v) : collect(v));
    };
    collect(spec);
    for (const ref of refs) assert.doesNotThrow(() => pointer(ref), ref);
    const undeclared: string[] = [];
    for (const o of ops) {
      const params = [...(Array.isArray(o.item.parameters) ? o.item.parameters : []), ...(Array.isArray(o.op.parameters) ? o.op.parameters : [])];
      for (const [, name] of o.path.matchAll(/\{([^}]+)\}/g)) {
        if (!params.some((p) => isObject(p) && p.in === 'path' && p.name === name && p.required === true)) undeclared.push(`${o.key}: {${name}}`);
      }
    }
    assert.deepEqual(undeclared, []);
  });

  it('every JSON request body has an example, and every example validates against its schema', () => {
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats(ajv);
    const withoutExample: string[] = [];
    const invalid: string[] = [];
    for (const o of ops) {
      const content = isObject(o.op.requestBody) ? o.op.requestBody.content : undefined;
      const examples = requestExamples(o);
      if (isObject(content) && 'application/json' in content && !examples.some((e) => e.mediaType === 'application/json')) withoutExample.push(o.key);
      for (const ex of examples) {
        assert.ok(ex.schema !== undefined, `${o.key} ${ex.mediaType}: a schema`);
        const validate = ajv.compile(resolved(ex.schema) as object);
        if (!validate(ex.value)) invalid.push(`${o.key} ${ex.mediaType} ${ex.name}: ${ajv.errorsText(validate.errors)}`);
      }
    }
    assert.deepEqual(withoutExample, [], 'JSON request bodies without an example');
    assert.deepEqual(invalid, []);
  });

  it('the code accepts every JSON request example (through the app, or the route\'s zod schemas)', async () => {
    const problems: string[] = [];
    for (const o of ops) {
      for (const ex of requestExamples(o).filter((e) => e.mediaType === 'application/json')) {
        const label = `${o.key} ${ex.name}`;
        const direct = DIRECT[o.key];
        if (direct) {
          try {
            direct(ex.value);
          } catch (error) {
            problems.push(`${label}: the route's schema refuses it: ${error instanceof Error ? error.message : String(error)}`);
          }
        }
        const [service] = services(o.op);
        const base = service ? listening[service]?.url : undefined;
        if (!base) continue;
        const answer = await send(base, o, ex.value);
        if ([400, 413, 415, 422].includes(answer.status)) {
          problems.push(`${label}: the app refuses it: ${answer.status} ${answer.body}`);
          continue;
        }
        if (direct) continue;
        // Checked through the app only if the route refuses broken bodies before using a dependency,
        // and the example got further: past validation, into the store, Temporal or the codec.
        let calibrated = false;
        for (const broken of brokenVariants(ex.value)) {
          const refused = await send(base, o, broken);
          if (refused.status === 400 && refused.touched.length === 0) calibrated = true;
        }
        if (!calibrated) problems.push(`${label}: the route does not refuse a broken body before using the store; add a direct check with its zod schema`);
        else if (answer.touched.length === 0) problems.push(`${label}: answered ${answer.status} without getting past validation: ${answer.body}`);
      }
    }
    assert.deepEqual(problems, []);
  });

  it('the documented Lead and EndpointInput say what the zod schemas say', () => {
    const schemas = resolved(isObject(spec.components) ? spec.components.schemas! : null);
    assert.ok(isObject(schemas));
    assert.deepEqual(schemaDrift(schemas.Lead, toJson(leadSchema), 'Lead'), []);
    // EndpointInput documents the common settings and the webhook kind's (other kinds: their READMEs);
    // `kind` is one of the registry's kinds (a 400 names them); secrets are generated when omitted,
    // so only `kind` is required.
    const common = toJson(endpointCommonSchema);
    const endpointInput: JsonObject = {
      type: 'object',
      required: ['kind'],
      properties: {
        ...(common.properties as JsonObject),
        kind: { type: 'string', enum: registry.kinds().map((k) => k.kind) },
        ...(toJson(webhookConfig).properties as JsonObject),
        ...(toJson(webhookSecrets).properties as JsonObject),
      },
    };
    assert.deepEqual(schemaDrift(flattened(schemas.EndpointInput), endpointInput, 'EndpointInput'), []);
    assert.deepEqual(schemaDrift(flattened(schemas.EndpointSettings), { ...endpointInput, required: [] }, 'EndpointSettings'), []);
  });
});
