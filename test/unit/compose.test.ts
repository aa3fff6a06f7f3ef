/**
 * docker-compose.yml and deploy/k8s/lead-delivery.yaml, checked without a container engine:
 * every setting the services require reaches each of them, as `${VAR:?…}` references to what
 * `npm run secrets` prints; the generated `.env` plus each service's environment passes
 * loadConfig() and the services' own key parsers; MongoDB is a replica set; health checks,
 * probes, scrape targets and grace periods point at the ports and durations the config uses; the
 * file is valid against the Compose Specification's JSON schema, and `docker-compose config`
 * accepts it when the Debian docker-compose is installed. No container is started here.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Ajv2019 from 'ajv/dist/2019';
import YAML from 'yaml';
import type { Connection } from 'mongoose';
import { configSchema, loadConfig, type Config } from '../../shared/config';
import { EncryptionCodec } from '../../shared/codec';
import { parseKeyRing } from '../../shared/crypto';
import { parseDuration } from '../../shared/durations';
import { createLogger } from '../../shared/logger';
import { createIntakeMetrics, createLogMetrics, type StoreGauges } from '../../shared/metrics';
import { SEARCH_ATTRIBUTES } from '../../shared/search-attributes';
import type { Models } from '../../shared/store';
import { createLogDeps } from '../../services/log/deps';
import { createSigner } from '../../services/log/receipt-signing';
import { generateSecretEntries, parseEnvFile, renderEnvFile } from '../../scripts/secrets';

const ROOT = path.resolve(__dirname, '../..');
const read = (file: string) => fs.readFileSync(path.join(ROOT, file), 'utf8');

type Json = Record<string, unknown>;
const obj = (value: unknown, what: string): Json => {
  assert.ok(value !== null && typeof value === 'object' && !Array.isArray(value), `${what}: expected a mapping`);
  return value as Json;
};
const list = (value: unknown, what: string): unknown[] => {
  assert.ok(Array.isArray(value), `${what}: expected a list`);
  return value;
};
const str = (value: unknown, what: string): string => {
  assert.ok(typeof value === 'string' || typeof value === 'number', `${what}: expected a scalar, got ${JSON.stringify(value)}`);
  return String(value);
};

// ---- what the services require --------------------------------------------------------------

/** Settings of shared/config.ts without a default: every service must be given them. */
const SCHEMA_REQUIRED = Object.entries(configSchema.shape)
  .filter(([, schema]) => !schema.safeParse(undefined).success)
  .map(([name]) => name);

const APPS = ['intake', 'log', 'worker'] as const;
type App = (typeof APPS)[number];

/** Secrets a service needs beyond the schema's required ones (it refuses to start, or loses a feature, without them). */
const APP_SECRETS: Record<App, string[]> = {
  // The Temporal UI's codec endpoint, and a token on /metrics.
  intake: ['CODEC_TOKEN', 'METRICS_TOKEN'],
  // services/log/deps.ts refuses to start without LOG_KEYS, LOOKUP_KEY and RECEIPT_KEYS.
  log: ['LOG_KEYS', 'LOOKUP_KEY', 'RECEIPT_KEYS', 'METRICS_TOKEN'],
  // The routing plan's duplicate_at_buyer check hashes the lead's email and phone with LOOKUP_KEY (without it, no check).
  worker: ['LOOKUP_KEY'],
};

/** The port each service's health endpoints are on, from its config. */
const healthPort = (app: App, config: Config) => (app === 'intake' ? config.INTAKE_PORT : app === 'log' ? config.LOG_PORT : config.WORKER_HEALTH_PORT);

/** How long a service may need after SIGTERM (plus a margin for closing connections). */
function graceNeededMs(app: App, config: Config): number {
  const drain = parseDuration(config.HTTP_DRAIN_TIMEOUT);
  const grace = parseDuration(config.SHUTDOWN_GRACE);
  if (app === 'intake') return drain + 10_000;
  if (app === 'log') return Math.max(drain, grace) + 10_000;
  return grace + 20_000;
}

// ---- the secrets ----------------------------------------------------------------------------

const now = new Date('2026-12-03T10:00:00Z');
const envText = renderEnvFile(generateSecretEntries(now), now);
const dotEnv = parseEnvFile(envText);
const printed = new Set(Object.keys(dotEnv));

// ---- compose interpolation (the Compose Specification's rules, enough for this file) ---------

interface Interpolated {
  value: string;
  /** Variables referenced as ${VAR:?…} or ${VAR?…}. */
  required: string[];
  missing: string[];
}

function interpolate(text: string, env: Record<string, string | undefined>): Interpolated {
  const required: string[] = [];
  const missing: string[] = [];
  const value = text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (match, name?: string, op?: string, arg?: string, bare?: string) => {
    if (match === '$$') return '$';
    const variable = (name ?? bare)!;
    const set = env[variable];
    const empty = set === undefined || set === '';
    switch (op) {
      case undefined:
        return set ?? '';
      case ':-':
        return empty ? (arg ?? '') : set;
      case '-':
        return set ?? arg ?? '';
      case ':?':
      case '?':
        required.push(variable);
        if (op === ':?' ? empty : set === undefined) missing.push(variable);
        return set ?? '';
      case ':+':
        return empty ? '' : (arg ?? '');
      default:
        return set !== undefined ? (arg ?? '') : '';
    }
  });
  return { value, required, missing };
}

function interpolateDeep(value: unknown, env: Record<string, string | undefined>, missing: string[] = []): unknown {
  if (typeof value === 'string') {
    const result = interpolate(value, env);
    missing.push(...result.missing);
    return result.value;
  }
  if (Array.isArray(value)) return value.map((v) => interpolateDeep(v, env, missing));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolateDeep(v, env, missing)]));
  return value;
}

const composeText = read('docker-compose.yml');
/** As written (merge keys and anchors resolved, nothing interpolated). */
const compose = obj(YAML.parse(composeText, { merge: true }), 'docker-compose.yml');
const services = obj(compose.services, 'services');
const service = (name: string) => obj(services[name], `service ${name}`);
/** With the generated .env. */
const composeMissing: string[] = [];
const resolved = obj(interpolateDeep(compose, dotEnv, composeMissing), 'docker-compose.yml (interpolated)');
const resolvedService = (name: string) => obj(obj(resolved.services, 'services')[name], `service ${name}`);

function environmentOf(svc: Json, what: string): Record<string, string> {
  const env = svc.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(env.map((entry) => {
      const text = str(entry, what);
      const eq = text.indexOf('=');
      return eq < 0 ? [text, ''] : [text.slice(0, eq), text.slice(eq + 1)];
    }));
  }
  return Object.fromEntries(Object.entries(obj(env, `${what} environment`)).map(([k, v]) => [k, v === null ? '' : str(v, `${what} ${k}`)]));
}

/** The URL a `node -e "fetch('…')…"` (or wget) health check asks. */
function healthcheckUrl(svc: Json, what: string): URL {
  const test = obj(svc.healthcheck, `${what} healthcheck`).test;
  const text = Array.isArray(test) ? test.map((t) => str(t, what)).join(' ') : str(test, what);
  const url = /https?:\/\/[^'"\s)]+/.exec(text);
  assert.ok(url, `${what}: the health check asks no URL (${text})`);
  return new URL(url[0]);
}

/** Published "host:container" ports of a service → container port by host port. */
function publishedPorts(svc: Json, what: string): Array<{ host: number; container: number; ip?: string }> {
  return list(svc.ports ?? [], `${what} ports`).map((entry) => {
    const parts = str(entry, what).split(':');
    const container = Number(parts.pop());
    const host = Number(parts.pop());
    return { host, container, ...(parts.length ? { ip: parts[0]! } : {}) };
  });
}

const composeDuration = (text: string) => parseDuration(text);

// ---- k8s ------------------------------------------------------------------------------------

const k8sDocs = YAML.parseAllDocuments(read('deploy/k8s/lead-delivery.yaml')).map((doc, i) => obj(doc.toJS(), `k8s document ${i}`));
const k8sKind = (kind: string) => k8sDocs.filter((d) => d.kind === kind);
const k8sNamed = (kind: string, name: string) => {
  const found = k8sKind(kind).find((d) => obj(d.metadata, 'metadata').name === name);
  assert.ok(found, `k8s ${kind} ${name} is missing`);
  return found;
};
const deploymentOf = (app: App) => k8sNamed('Deployment', `lead-delivery-${app}`);
const containerOf = (app: App) => obj(list(obj(obj(obj(deploymentOf(app).spec, 'spec').template, 'template').spec, 'pod spec').containers, 'containers')[0], `${app} container`);
const podSpecOf = (app: App) => obj(obj(obj(deploymentOf(app).spec, 'spec').template, 'template').spec, 'pod spec');
/** Keys the README's `kubectl create secret … --from-env-file` puts in the Secret: what `npm run secrets` prints, plus MONGO_URL. */
const SECRET_KEYS = new Set([...printed, 'MONGO_URL']);
const SAMPLE_MONGO_URL = 'mongodb://lead_delivery:pw@mongo-0.mongo:27017,mongo-1.mongo:27017/lead_delivery?replicaSet=rs0';

interface K8sEnv {
  env: Record<string, string>;
  fromSecret: Set<string>;
}

function k8sEnvOf(app: App): K8sEnv {
  const container = containerOf(app);
  const env: Record<string, string> = {};
  const fromSecret = new Set<string>();
  for (const source of list(container.envFrom ?? [], `${app} envFrom`)) {
    const ref = obj(source, `${app} envFrom entry`);
    if (ref.configMapRef) {
      const cm = k8sNamed('ConfigMap', str(obj(ref.configMapRef, 'configMapRef').name, 'configMapRef name'));
      for (const [k, v] of Object.entries(obj(cm.data, 'ConfigMap data'))) env[k] = str(v, k);
    } else {
      assert.fail(`${app}: envFrom takes only ConfigMaps (secrets are named key by key): ${JSON.stringify(ref)}`);
    }
  }
  for (const entry of list(container.env ?? [], `${app} env`)) {
    const e = obj(entry, `${app} env entry`);
    const name = str(e.name, 'env name');
    if (e.value !== undefined) env[name] = str(e.value, name);
    else {
      const ref = obj(obj(e.valueFrom, `${name} valueFrom`).secretKeyRef, `${name} secretKeyRef`);
      assert.equal(ref.name, 'lead-delivery', `${app} ${name}: from the Secret lead-delivery`);
      const key = str(ref.key, `${name} key`);
      assert.ok(SECRET_KEYS.has(key), `${app} ${name}: Secret key ${key} is neither printed by npm run secrets nor MONGO_URL`);
      env[name] = key === 'MONGO_URL' ? SAMPLE_MONGO_URL : dotEnv[key]!;
      fromSecret.add(name);
    }
  }
  return { env, fromSecret };
}

/** A probe's port (a number or a container port name) as a number. */
function probePort(app: App, probe: unknown, what: string): { port: number; path: string } {
  const get = obj(obj(probe, `${app} ${what}`).httpGet, `${app} ${what} httpGet`);
  const port = get.port;
  const container = containerOf(app);
  const numeric = typeof port === 'number' ? port : Number(str(obj(list(container.ports, `${app} ports`).map((p) => obj(p, 'port')).find((p) => p.name === port), `${app} port named ${String(port)}`).containerPort, 'containerPort'));
  return { port: numeric, path: str(get.path, `${what} path`) };
}

/** The metric names a PromQL expression reads (label matchers, ranges, grouping labels and functions left out). */
function metricNames(expr: string): string[] {
  const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset']);
  const bare = expr.replace(/\{[^}]*\}/g, ' ').replace(/\[[^\]]*\]/g, ' ').replace(/\b(by|without)\s*\([^)]*\)/g, ' ');
  const names: string[] = [];
  for (const m of bare.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?/g)) {
    if (m[2] || KEYWORDS.has(m[1]!)) continue; // a function call, or a keyword
    names.push(m[1]!);
  }
  return names;
}

// ---------------------------------------------------------------------------------------------

describe('npm run secrets', () => {
  it('When it runs, then it prints every secret once as NAME=value lines, with comments, that a .env parser reads back', () => {
    const entries = generateSecretEntries(now);
    const readBack = parseEnvFile(renderEnvFile(entries, now));
    assert.equal(new Set(entries.map((e) => e.name)).size, entries.length, 'each name once');
    assert.deepEqual(Object.keys(readBack), entries.map((e) => e.name), 'nothing else is set (the optional settings are commented out)');
    for (const entry of entries) {
      assert.ok(entry.value.length >= 16, `${entry.name} is long enough`);
      assert.match(entry.value, /^[A-Za-z0-9_+/=:,-]+$/, `${entry.name}: no quoting, spaces or $ needed`);
      assert.ok(entry.help.length > 0, `${entry.name} is explained`);
      assert.equal(readBack[entry.name], entry.value);
    }
    for (const name of [...SCHEMA_REQUIRED, ...Object.values(APP_SECRETS).flat()]) assert.ok(printed.has(name), `${name} is printed`);
    // Two runs, two sets of keys.
    assert.notEqual(generateSecretEntries(now)[0]!.value, generateSecretEntries(now)[0]!.value);
  });

  it('When run as the package script prints it, then the output is the same kind of .env (no banner, nothing on stderr)', function () {
    this.timeout(60_000);
    const scripts = obj(JSON.parse(read('package.json')), 'package.json').scripts;
    assert.equal(obj(scripts, 'scripts').secrets, 'tsx scripts/secrets.ts');
    const run = spawnSync(process.execPath, ['--require', 'tsx/cjs', 'scripts/secrets.ts'], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stderr, '');
    const env = parseEnvFile(run.stdout);
    assert.deepEqual(Object.keys(env).sort(), [...printed].sort());
    assert.notEqual(env.ADMIN_TOKEN, dotEnv.ADMIN_TOKEN);
  });

  it('When the .env exists, then git and the Docker build context both ignore it', () => {
    assert.match(read('.gitignore'), /^\.env$/m);
    assert.match(read('.dockerignore'), /^\.env$/m);
  });
});

describe('docker-compose.yml', () => {
  it('When it is read, then it is valid against the Compose Specification JSON schema', () => {
    // Draft 2019-09. Its `$schema` says http:// where Ajv knows the meta-schema as https://, and it still
    // carries draft-04 `id` strings that Ajv 8 refuses: both are dropped from a copy (a property named
    // "id" would be an object, and stays). Compose's own formats (duration, ports…) are not enforced.
    const dropIds = (value: unknown): unknown =>
      Array.isArray(value) ? value.map(dropIds) : value && typeof value === 'object' ? Object.fromEntries(Object.entries(value).filter(([k, v]) => !(k === 'id' && typeof v === 'string')).map(([k, v]) => [k, dropIds(v)])) : value;
    const { $schema: _meta, ...schema } = obj(dropIds(JSON.parse(read('test/fakes/specs/compose-spec/compose-spec.json'))), 'compose-spec.json');
    const ajv = new Ajv2019({ strict: false, allErrors: true, validateFormats: false });
    const validate = ajv.compile(schema);
    const ok = validate(compose);
    assert.ok(ok, JSON.stringify(validate.errors, null, 2));
    // Also with the secrets filled in (what the engine gets).
    assert.ok(validate(resolved), JSON.stringify(validate.errors, null, 2));
  });

  it('When the generated .env is used, then every ${VAR:?} of the file is set, and each is a variable npm run secrets prints', () => {
    assert.deepEqual(composeMissing, []);
    const referenced = new Set<string>();
    const collect = (value: unknown): void => {
      if (typeof value === 'string') for (const name of interpolate(value, {}).required) referenced.add(name);
      else if (value && typeof value === 'object') Object.values(value).forEach(collect);
    };
    collect(compose);
    assert.ok(referenced.size > 0);
    for (const name of referenced) assert.ok(printed.has(name), `${name} is required by docker-compose.yml but not printed by npm run secrets`);
    // …and nothing printed is left unused.
    for (const name of printed) assert.ok(referenced.has(name), `${name} is printed but docker-compose.yml does not use it`);
  });

  for (const app of APPS) {
    it(`When ${app} starts, then every required setting reaches it as a \${VAR:?…} reference to a printed secret, and its environment passes loadConfig() and the key parsers`, () => {
      const written = environmentOf(service(app), app);
      for (const name of [...SCHEMA_REQUIRED, ...APP_SECRETS[app]]) {
        assert.ok(name in written, `${app}: ${name} is not set`);
        const refs = interpolate(written[name]!, {}).required;
        assert.deepEqual(refs, [name], `${app}: ${name} must be \${${name}:?…} (is ${written[name]})`);
        assert.ok(printed.has(name), `${app}: ${name} is not printed by npm run secrets`);
      }
      const env = environmentOf(resolvedService(app), app);
      const config = loadConfig(env);
      for (const name of [...SCHEMA_REQUIRED, ...APP_SECRETS[app]]) assert.equal(env[name], dotEnv[name], `${app}: ${name} is the generated value`);
      parseKeyRing(config.CREDENTIALS_KEYS, 'CREDENTIALS_KEYS');
      EncryptionCodec.fromSpec(config.PAYLOAD_KEYS);
      assert.equal(config.HOST, '0.0.0.0', `${app} listens beyond the container's loopback`);
      if (app === 'log') {
        // What the log service checks at boot (LOG_KEYS, LOOKUP_KEY, RECEIPT_KEYS), with its own code.
        const logger = createLogger({ name: 'compose-test', level: 'silent' });
        createLogDeps(config, { store: {} as unknown as Connection, models: {} as unknown as Models, logger });
        createSigner(config.RECEIPT_KEYS);
      }
      // The worker gets no secret it does not use.
      if (app === 'worker') for (const name of ['LOG_KEYS', 'RECEIPT_KEYS', 'CODEC_TOKEN', 'METRICS_TOKEN']) assert.ok(!(name in written), `worker: ${name} is not its business`);
    });
  }

  it('When the services connect to MongoDB, then MONGO_URL names the replica set rs0 that the mongo service runs and initiates, as the services user', () => {
    const mongo = service('mongo');
    const command = list(mongo.command, 'mongo command').map((c) => str(c, 'mongo command'));
    assert.equal(command[command.indexOf('--replSet') + 1], 'rs0');
    assert.ok(command.includes('--keyFile'), 'a replica set with authentication needs its key file');
    const check = JSON.stringify(mongo.healthcheck);
    assert.match(check, /rs\.initiate\(\{ _id: 'rs0', members: \[\{ _id: 0, host: 'mongo:27017' \}\] \}\)/);
    assert.match(check, /isWritablePrimary/);
    for (const app of APPS) {
      const url = new URL(environmentOf(resolvedService(app), app).MONGO_URL!);
      assert.equal(url.searchParams.get('replicaSet'), 'rs0', `${app}: replicaSet=rs0`);
      assert.equal(url.host, 'mongo:27017', `${app}: the member's announced host`);
      assert.equal(url.pathname, '/lead_delivery');
      assert.equal(url.username, 'lead_delivery');
      assert.equal(decodeURIComponent(url.password), dotEnv.MONGO_PASSWORD);
    }
    const init = read('deploy/docker/mongo-init.js');
    assert.match(init, /getSiblingDB\('lead_delivery'\)\.createUser/);
    assert.match(init, /user: 'lead_delivery'/);
    assert.match(init, /role: 'readWrite', db: 'lead_delivery'/);
    assert.ok(list(mongo.volumes, 'mongo volumes').some((v) => str(v, 'volume').endsWith(':/docker-entrypoint-initdb.d/10-lead-delivery-user.js:ro')));
  });

  it('When a service runs, then it has a health check, and a one-shot setup step is instead waited for to complete', () => {
    const oneShots = new Set<string>();
    for (const [name, raw] of Object.entries(services)) {
      const svc = obj(raw, name);
      for (const [dep, cond] of Object.entries(obj(svc.depends_on ?? {}, `${name} depends_on`))) {
        const condition = obj(cond, `${name} depends_on ${dep}`).condition;
        assert.ok(services[dep], `${name} depends on a service ${dep} that does not exist`);
        if (condition === 'service_completed_successfully') oneShots.add(dep);
        if (condition === 'service_healthy') assert.ok(obj(services[dep], dep).healthcheck, `${name} waits for ${dep} to be healthy, which has no health check`);
      }
    }
    assert.deepEqual([...oneShots].sort(), ['temporal-namespace', 'temporal-schema']);
    for (const [name, raw] of Object.entries(services)) {
      const svc = obj(raw, name);
      if (oneShots.has(name)) assert.equal(svc.restart, 'no', `${name} runs once`);
      else {
        const check = obj(svc.healthcheck, `${name} healthcheck`);
        assert.ok(check.test, `${name}: health check test`);
        assert.notEqual(check.disable, true);
        assert.equal(svc.restart, 'unless-stopped', `${name} is restarted`);
      }
    }
    for (const app of APPS) {
      const deps = obj(service(app).depends_on, `${app} depends_on`);
      assert.deepEqual(deps.mongo, { condition: 'service_healthy' });
      assert.deepEqual(deps['temporal-namespace'], { condition: 'service_completed_successfully' });
    }
    assert.deepEqual(obj(service('temporal').depends_on, 'temporal')['temporal-schema'], { condition: 'service_completed_successfully' });
    assert.deepEqual(obj(service('temporal-namespace').depends_on, 'temporal-namespace').temporal, { condition: 'service_healthy' });
  });

  it("When a service's health is checked, then the check asks its readiness on the port its config uses, and intake and log are published on those ports", () => {
    for (const app of APPS) {
      const config = loadConfig(environmentOf(resolvedService(app), app));
      const url = healthcheckUrl(resolvedService(app), app);
      assert.equal(Number(url.port), healthPort(app, config), `${app}: health check port`);
      assert.equal(url.pathname, '/readyz', `${app}: readiness`);
      assert.equal(url.hostname, '127.0.0.1');
    }
    const intake = loadConfig(environmentOf(resolvedService('intake'), 'intake'));
    assert.deepEqual(publishedPorts(service('intake'), 'intake').map((p) => p.container), [intake.INTAKE_PORT]);
    const log = loadConfig(environmentOf(resolvedService('log'), 'log'));
    assert.deepEqual(publishedPorts(service('log'), 'log').map((p) => p.container), [log.LOG_PORT]);
    // Scalable: no host port, no fixed container name.
    assert.equal(service('worker').ports, undefined);
    assert.equal(service('worker').container_name, undefined);
  });

  it('When SIGTERM stops a service, then compose waits longer than its drain and shutdown grace, as long as Kubernetes does', () => {
    for (const app of APPS) {
      const config = loadConfig(environmentOf(resolvedService(app), app));
      const composeGrace = composeDuration(str(service(app).stop_grace_period, `${app} stop_grace_period`));
      assert.ok(composeGrace >= graceNeededMs(app, config), `${app}: stop_grace_period ${composeGrace} ms < ${graceNeededMs(app, config)} ms`);
      assert.equal(Number(podSpecOf(app).terminationGracePeriodSeconds) * 1000, composeGrace, `${app}: compose and k8s agree`);
    }
  });

  it("When the Temporal UI decodes payloads, then its codec endpoint is intake's host-visible /v1/codec/t/<CODEC_TOKEN>, and intake allows the UI's origin", () => {
    const ui = resolvedService('temporal-ui');
    const endpoint = new URL(environmentOf(ui, 'temporal-ui').TEMPORAL_CODEC_ENDPOINT!);
    const intakeHostPort = publishedPorts(service('intake'), 'intake')[0]!.host;
    assert.equal(endpoint.href, `http://localhost:${intakeHostPort}/v1/codec/t/${dotEnv.CODEC_TOKEN}`);
    const uiPort = publishedPorts(service('temporal-ui'), 'temporal-ui')[0]!;
    const origins = loadConfig(environmentOf(resolvedService('intake'), 'intake')).CODEC_CORS_ORIGINS.split(',');
    assert.ok(origins.includes(`http://localhost:${uiPort.host}`), `intake CODEC_CORS_ORIGINS ${origins.join(',')} lacks the UI origin`);
    assert.equal(loadConfig(environmentOf(resolvedService('intake'), 'intake')).CODEC_TOKEN, dotEnv.CODEC_TOKEN);
  });

  it('When Prometheus scrapes, then it reaches every metrics port the config uses (with the metrics token where /metrics wants it), and Grafana is provisioned with it', () => {
    const prom = obj(YAML.parse(read('deploy/prometheus/prometheus.yml')), 'prometheus.yml');
    const jobs = list(prom.scrape_configs, 'scrape_configs').map((j) => obj(j, 'job'));
    const target = (job: Json) => {
      const dns = job.dns_sd_configs ? obj(list(job.dns_sd_configs, 'dns_sd')[0], 'dns_sd') : undefined;
      if (dns) return { host: str(list(dns.names, 'names')[0], 'name'), port: Number(dns.port) };
      const [host, port] = str(list(obj(list(job.static_configs, 'static')[0], 'static').targets, 'targets')[0], 'target').split(':');
      return { host: host!, port: Number(port) };
    };
    const scraped = jobs.map((job) => ({ ...target(job), bearer: Boolean(job.authorization) }));
    const intake = loadConfig(environmentOf(resolvedService('intake'), 'intake'));
    const log = loadConfig(environmentOf(resolvedService('log'), 'log'));
    const worker = loadConfig(environmentOf(resolvedService('worker'), 'worker'));
    const wanted = [
      { host: 'intake', port: intake.INTAKE_PORT, bearer: true },
      { host: 'log', port: log.LOG_PORT, bearer: true },
      { host: 'log', port: log.LOG_SDK_METRICS_PORT, bearer: false },
      { host: 'worker', port: worker.WORKER_SDK_METRICS_PORT, bearer: false },
    ];
    for (const want of wanted) assert.ok(scraped.some((s) => s.host === want.host && s.port === want.port && s.bearer === want.bearer), `not scraped: ${JSON.stringify(want)}`);
    for (const job of jobs.filter((j) => j.authorization)) assert.equal(obj(job.authorization, 'authorization').credentials_file, '/prometheus/.metrics-token');
    assert.match(list(service('prometheus').entrypoint, 'entrypoint').join(' '), /"\$\$METRICS_TOKEN" > \/prometheus\/\.metrics-token/);
    const grafanaVolumes = list(service('grafana').volumes, 'grafana volumes').map((v) => str(v, 'volume'));
    assert.ok(grafanaVolumes.includes('./deploy/grafana/provisioning:/etc/grafana/provisioning:ro'));
    assert.ok(grafanaVolumes.includes('./deploy/grafana/lead-delivery.json:/etc/grafana/dashboards/lead-delivery.json:ro'));
    const datasource = obj(list(obj(YAML.parse(read('deploy/grafana/provisioning/datasources/prometheus.yml')), 'datasources').datasources, 'datasources')[0], 'datasource');
    assert.equal(datasource.url, 'http://prometheus:9090');
    const provider = obj(list(obj(YAML.parse(read('deploy/grafana/provisioning/dashboards/lead-delivery.yml')), 'dashboards').providers, 'providers')[0], 'provider');
    assert.equal(obj(provider.options, 'options').path, '/etc/grafana/dashboards');
  });

  it('When the Grafana dashboard is loaded, then every metric it queries is one the services or the Temporal SDK export, through the provisioned datasource', async () => {
    const dashboard = obj(JSON.parse(read('deploy/grafana/lead-delivery.json')), 'dashboard');
    const datasourceUid = str(obj(list(obj(YAML.parse(read('deploy/grafana/provisioning/datasources/prometheus.yml')), 'ds').datasources, 'ds')[0], 'ds').uid, 'uid');
    const noGauges: StoreGauges = {
      deadLettersOpen: () => Promise.resolve({}),
      pausedBuyers: () => Promise.resolve(0),
      breakers: () => Promise.resolve({}),
      breakerStates: () => Promise.resolve([]),
      oldestNonTerminalLeadAgeSeconds: () => Promise.resolve(0),
    };
    const exported = new Set<string>();
    for (const registry of [createIntakeMetrics().registry, createLogMetrics(noGauges).registry]) {
      for (const metric of await registry.getMetricsAsJSON()) {
        exported.add(metric.name);
        if (String(metric.type) === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) exported.add(metric.name + suffix);
      }
    }
    // The Temporal SDK's (core) names, prefixed temporal_ (sdk-core crates/sdk-core/src/telemetry/metrics.rs and
    // crates/client/src/metrics.rs in @temporalio/core-bridge); counters carry no _total, histograms are in ms.
    for (const name of ['workflow_completed', 'workflow_failed', 'workflow_task_execution_failed', 'activity_execution_failed', 'request_failure', 'worker_task_slots_available', 'sticky_cache_size']) exported.add(`temporal_${name}`);
    for (const name of ['workflow_task_schedule_to_start_latency', 'activity_schedule_to_start_latency', 'activity_execution_latency']) exported.add(`temporal_${name}_bucket`);
    exported.add('up');
    const coreDir = path.join(ROOT, 'node_modules/@temporalio/core-bridge/sdk-core/crates');
    const coreFiles = ['sdk-core/src/telemetry/metrics.rs', 'common/src/telemetry/metrics.rs', 'client/src/metrics.rs'].map((f) => path.join(coreDir, f));
    const core = coreFiles.every((f) => fs.existsSync(f)) ? coreFiles.map((f) => fs.readFileSync(f, 'utf8')).join('\n') : undefined;
    const used = new Set<string>();
    const panels = list(dashboard.panels, 'panels').map((p) => obj(p, 'panel'));
    for (const panel of panels.filter((p) => p.type !== 'row')) {
      assert.equal(obj(panel.datasource, `${String(panel.title)} datasource`).uid, datasourceUid, `${String(panel.title)}: the provisioned datasource`);
      for (const t of list(panel.targets, `${String(panel.title)} targets`)) for (const name of metricNames(str(obj(t, 'target').expr, 'expr'))) used.add(name);
    }
    for (const name of used) {
      assert.ok(exported.has(name), `the dashboard queries ${name}, which nothing exports`);
      // Where the SDK's source ships in node_modules, each temporal_* name is one of its metrics.
      if (name.startsWith('temporal_') && core) assert.ok(core.includes(`"${name.replace(/^temporal_/, '').replace(/_bucket$/, '')}"`), `${name}: not a Temporal SDK core metric`);
    }
    for (const name of ['leads_accepted_total', 'delivery_attempts_total', 'dead_letters_open', 'endpoint_breaker_state', 'lead_oldest_nonterminal_age_seconds', 'temporal_workflow_task_schedule_to_start_latency_bucket', 'temporal_worker_task_slots_available']) assert.ok(used.has(name), `the dashboard shows ${name}`);
  });

  it('When volumes and images are declared, then state lives in named volumes and every image is an official, pinned one', () => {
    const named = new Set(Object.keys(obj(compose.volumes, 'volumes')));
    const stateful: Record<string, string> = { postgres: '/var/lib/postgresql/data', mongo: '/data/db', prometheus: '/prometheus', grafana: '/var/lib/grafana' };
    for (const [name, raw] of Object.entries(services)) {
      const svc = obj(raw, name);
      for (const mount of list(svc.volumes ?? [], `${name} volumes`).map((v) => str(v, 'volume'))) {
        const source = mount.split(':')[0]!;
        if (!source.startsWith('.') && !source.startsWith('/')) assert.ok(named.has(source), `${name}: volume ${source} is not declared`);
        else assert.match(mount, /:ro$/, `${name}: files of the repository are mounted read-only (${mount})`);
      }
      const image = str(svc.image, `${name} image`);
      if (svc.build) assert.equal(image, 'lead-delivery:local');
      else {
        assert.match(image, /^(postgres|mongo|node|temporalio\/(server|admin-tools|ui)|prom\/prometheus|grafana\/grafana|jaegertracing\/jaeger):[^:]+$/, `${name}: official image, ${image}`);
        assert.doesNotMatch(image, /:latest$/, `${name}: pinned`);
      }
    }
    for (const [name, target] of Object.entries(stateful)) {
      assert.ok(list(service(name).volumes, name).some((v) => { const [src, dst] = str(v, 'volume').split(':'); return named.has(src!) && dst === target; }), `${name}: ${target} on a named volume`);
    }
    const tag = (name: string) => str(service(name).image, name).split(':')[1];
    assert.equal(tag('temporal'), tag('temporal-schema'));
    assert.equal(tag('temporal'), tag('temporal-namespace'));
    for (const app of APPS) assert.deepEqual(service(app).build, { context: '.', dockerfile: 'deploy/docker/Dockerfile' }, `${app}: the one Dockerfile`);
  });

  it('When the Dockerfile builds, then it installs production dependencies only (tsx among them) and runs as a non-root user', () => {
    const dockerfile = read('deploy/docker/Dockerfile');
    assert.match(dockerfile, /npm ci --omit=dev/);
    assert.match(dockerfile, /^USER node$/m);
    const pkg = obj(JSON.parse(read('package.json')), 'package.json');
    assert.ok(obj(pkg.dependencies, 'dependencies').tsx, 'tsx is a runtime dependency (the services run through it)');
    for (const app of APPS) assert.deepEqual(service(app).command, ['node', '--require', 'tsx/cjs', `services/${app}/main.ts`]);
  });

  it('When the namespace step registers search attributes, then its list is the one of shared/search-attributes.ts', () => {
    const script = read('deploy/docker/register-search-attributes.sh');
    const line = /^SEARCH_ATTRIBUTES="([^"]*)"$/m.exec(script);
    assert.ok(line, 'SEARCH_ATTRIBUTES="…" in the script');
    const registered = Object.fromEntries(line[1]!.split(/\s+/).map((pair) => pair.split('=') as [string, string]));
    assert.deepEqual(registered, { ...SEARCH_ATTRIBUTES });
    const schema = read('deploy/docker/temporal-schema.sh');
    for (const db of ['temporal', 'temporal_visibility']) assert.match(schema, new RegExp(`\\b${db}:`), `schema step covers ${db}`);
    assert.match(schema, /setup-schema -v 0\.0/);
    assert.match(schema, /update-schema -d "\$SCHEMA_DIR\/\$dir\/versioned"/);
  });

  it('When /usr/bin/docker-compose (Debian, 1.29) is installed, then `docker-compose config -q` accepts the file with the generated .env, and refuses it without', function () {
    this.timeout(60_000);
    // DOCKER_COMPOSE_BIN names another binary (a path that does not exist shows the skip).
    const candidates = process.env.DOCKER_COMPOSE_BIN ? [process.env.DOCKER_COMPOSE_BIN] : ['/usr/bin/docker-compose', '/usr/local/bin/docker-compose'];
    const bin = candidates.find((p) => fs.existsSync(p));
    if (!bin) {
      console.log(`      skipped: no docker-compose at ${candidates.join(' or ')} (apt-get install docker-compose); the Compose schema check above still ran`);
      this.skip();
      return;
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'compose-test-'));
    try {
      const envFile = path.join(dir, 'generated.env');
      fs.writeFileSync(envFile, envText, { mode: 0o600 });
      execFileSync(bin, ['-f', path.join(ROOT, 'docker-compose.yml'), '--env-file', envFile, 'config', '-q'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
      for (const profile of ['tracing', 'demo']) {
        const names = execFileSync(bin, ['-f', path.join(ROOT, 'docker-compose.yml'), '--env-file', envFile, '--profile', profile, 'config', '--services'], { cwd: ROOT, encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
        assert.ok(names.split('\n').includes(profile === 'tracing' ? 'jaeger' : 'demo-buyer'));
      }
      const emptyEnv = path.join(dir, 'empty.env');
      fs.writeFileSync(emptyEnv, '');
      const refused = spawnSync(bin, ['-f', path.join(ROOT, 'docker-compose.yml'), '--env-file', emptyEnv, 'config', '-q'], { cwd: ROOT, encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
      assert.notEqual(refused.status, 0);
      assert.match(refused.stderr, /npm run -s secrets > \.env/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('deploy/k8s/lead-delivery.yaml', () => {
  for (const app of APPS) {
    it(`When ${app} is deployed, then every required setting comes from the Secret or its env, and the result passes loadConfig()`, () => {
      const { env, fromSecret } = k8sEnvOf(app);
      for (const name of [...SCHEMA_REQUIRED, ...APP_SECRETS[app], 'MONGO_URL']) {
        assert.ok(name in env, `${app}: ${name} is not set`);
        assert.ok(fromSecret.has(name), `${app}: ${name} comes from the Secret`);
      }
      const config = loadConfig(env);
      assert.equal(config.HOST, '0.0.0.0');
      if (app === 'log') createLogDeps(config, { store: {} as unknown as Connection, models: {} as unknown as Models, logger: createLogger({ name: 'k8s-test', level: 'silent' }) });
      if (app === 'worker') for (const name of ['LOG_KEYS', 'RECEIPT_KEYS', 'CODEC_TOKEN', 'METRICS_TOKEN']) assert.ok(!fromSecret.has(name), `worker: ${name} is not its business`);
    });

    it(`When ${app}'s probes run, then they ask /healthz and /readyz on the port its config uses, with a grace period, resources and scrape annotations that match`, () => {
      const config = loadConfig(k8sEnvOf(app).env);
      const container = containerOf(app);
      const live = probePort(app, container.livenessProbe, 'livenessProbe');
      const ready = probePort(app, container.readinessProbe, 'readinessProbe');
      const startup = probePort(app, container.startupProbe, 'startupProbe');
      for (const probe of [live, ready, startup]) assert.equal(probe.port, healthPort(app, config), `${app}: probe port`);
      assert.equal(live.path, '/healthz');
      assert.equal(startup.path, '/healthz');
      assert.equal(ready.path, '/readyz');
      assert.ok(Number(podSpecOf(app).terminationGracePeriodSeconds) * 1000 >= graceNeededMs(app, config), `${app}: terminationGracePeriodSeconds`);
      const resources = obj(container.resources, `${app} resources`);
      const requests = obj(resources.requests, 'requests');
      assert.ok(requests.cpu && requests.memory, `${app}: cpu and memory requests`);
      assert.ok(obj(resources.limits, 'limits').memory, `${app}: a memory limit`);
      const annotations = obj(obj(obj(obj(deploymentOf(app).spec, 'spec').template, 'template').metadata, 'metadata').annotations, 'annotations');
      assert.equal(annotations['prometheus.io/scrape'], 'true');
      const metricsPort = app === 'intake' ? config.INTAKE_PORT : app === 'log' ? config.LOG_PORT : config.WORKER_SDK_METRICS_PORT;
      assert.equal(Number(annotations['prometheus.io/port']), metricsPort, `${app}: scrape port`);
      const security = obj(podSpecOf(app).securityContext, 'securityContext');
      assert.equal(security.runAsNonRoot, true);
    });
  }

  it('When nodes are drained or load grows, then intake and the worker keep a PodDisruptionBudget and the worker a HorizontalPodAutoscaler', () => {
    for (const app of ['intake', 'worker'] as const) {
      const labels = obj(obj(obj(obj(deploymentOf(app).spec, 'spec').template, 'template').metadata, 'metadata').labels, 'labels');
      const pdb = k8sKind('PodDisruptionBudget').find((p) => JSON.stringify(obj(obj(p.spec, 'spec').selector, 'selector').matchLabels) === JSON.stringify(labels));
      assert.ok(pdb, `${app}: a PodDisruptionBudget selects its pods`);
      const replicas = Number(obj(deploymentOf(app).spec, 'spec').replicas);
      assert.ok(Number(obj(pdb.spec, 'spec').minAvailable) < replicas, `${app}: the PDB still lets one pod be evicted`);
    }
    const hpa = k8sNamed('HorizontalPodAutoscaler', 'lead-delivery-worker');
    assert.equal(hpa.apiVersion, 'autoscaling/v2');
    const spec = obj(hpa.spec, 'hpa spec');
    assert.deepEqual(spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: 'lead-delivery-worker' });
    assert.ok(Number(spec.minReplicas) >= 2 && Number(spec.maxReplicas) > Number(spec.minReplicas));
    assert.match(read('deploy/k8s/lead-delivery.yaml'), /backlog/, 'the better signal is named');
  });
});
