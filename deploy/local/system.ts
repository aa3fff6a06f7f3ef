/**
 * The whole system on one machine, as `npm start` runs it, as a function: the Temporal dev server
 * (SQLite file in the data dir, Web UI, search attributes), FerretDB on the local PostgreSQL (or an
 * external MONGO_URL / TEMPORAL_ADDRESS), the log service, N delivery workers and the intake service,
 * every process under a Supervisor that restarts it with backoff when it dies. Returns the URLs, the
 * secrets and one handle per process (kill, pause, resume, restarts) for fault injection, and stop().
 *
 * `deploy/local/start.ts` is the CLI around it; a chaos program or an e2e test calls it with its own
 * data dir, ports and PostgreSQL database.
 */
import fs from 'node:fs';
import path from 'node:path';
import { connectStore, equalityFields } from '../../shared/store';
import { startFerretDB, type MongoStore } from './ferretdb';
import { addContainmentIndexes } from './ferretdb-indexes';
import { freePort } from './ports';
import { spawnManaged, type ManagedProcess } from './proc';
import { Supervisor, statusFileWriter, readStatusFile, type BackoffPolicy, type RunningProcess, type StatusFile, type SupervisedHandle } from './supervisor';
import { startTemporalDevServer } from './temporal';
import { startTemporalServer, startTemporalUi } from './temporal-server';
import { generateServiceSecrets, LOCAL_KEY_IDS, type ServiceSecrets } from './secrets';

const ROOT = path.resolve(__dirname, '../..');

export interface LocalPorts {
  intake: number;
  log: number;
  temporal: number;
  temporalUi: number;
  mongo: number;
  /** The (first) delivery worker's /healthz and /readyz. */
  workerHealth: number;
  /** The (first) delivery worker's Temporal SDK metrics. */
  workerMetrics: number;
  /** The log service worker's Temporal SDK metrics. */
  logMetrics: number;
}

/** The ports `npm start` uses unless told otherwise (further workers get free ports). */
export type TemporalMode = 'dev' | 'server';

export const DEFAULT_PORTS: LocalPorts = { intake: 8080, log: 8081, temporal: 7233, temporalUi: 8233, mongo: 27017, workerHealth: 8082, workerMetrics: 9464, logMetrics: 9465 };

/** Secrets of a data dir, generated once and kept in `<data dir>/local.json` (mode 600). */
export interface LocalSecrets extends ServiceSecrets {
  demoSourceId?: string;
  demoApiKey?: string;
}

export type SecretOverrides = Partial<Omit<LocalSecrets, 'demoSourceId' | 'demoApiKey'>>;

export interface LocalSystemOptions {
  /** Data dir: temporal.db, ferretdb/, logs/, local.json, status.json. */
  dataDir: string;
  /** Omitted ports get DEFAULT_PORTS; a port given as 0 (or every port, with 'free') is a free one. */
  ports?: Partial<LocalPorts> | 'free';
  /** Address the services bind and are reached on (default 127.0.0.1). */
  host?: string;
  /** PostgreSQL server for FerretDB (default env PG_URL, else postgres://postgres@127.0.0.1:5432/…). */
  pgUrl?: string;
  /** PostgreSQL database behind FerretDB (default lead_delivery): concurrent runs need their own. */
  pgDatabase?: string;
  /**
   * dev (default): `temporal server start-dev` on a SQLite file in the data dir. server: the Temporal
   * server binary on the local PostgreSQL plus the UI server (deploy/local/temporal-server.ts).
   */
  temporalMode?: TemporalMode;
  /** Server mode: PostgreSQL database names, shard count and pool size (default lead_delivery_temporal, 4 shards, 8 connections). */
  temporalServer?: { database?: string; numHistoryShards?: number; maxConns?: number };
  /** Use this Temporal instead of starting a dev server (not supervised then). */
  temporalAddress?: string;
  temporalUiUrl?: string;
  /** Use this MongoDB instead of starting FerretDB (not supervised then). */
  mongoUrl?: string;
  /** Delivery worker processes (default 1); they share the task queues. */
  workers?: number;
  /** Environment every service starts from (default process.env). */
  baseEnv?: NodeJS.ProcessEnv;
  /** Extra settings for the services (OUTBOUND_ALLOW, provider base URLs, STUCK_* …). */
  env?: Record<string, string | undefined>;
  /** Use these instead of the data dir's stored secrets (not stored). */
  secrets?: SecretOverrides;
  /** Nothing on stdout: every line goes to `log` only. */
  quiet?: boolean;
  /** Receives every console line (also when not quiet). */
  log?: (line: string) => void;
  /** Create the demo lead source on an empty store (default true). */
  seedDemoSource?: boolean;
  /** Extra Node options for the services (e.g. the benchmark's --cpu-prof). */
  nodeArgs?: string[];
  /** Restart backoff (default 1 s doubling to 30 s, reset after 60 s up). */
  backoff?: Partial<BackoffPolicy>;
  /** Aborting it during the start stops what was started and rejects with LocalSystemAbortedError. */
  signal?: AbortSignal;
}

export type ProcessHandle = SupervisedHandle;

export interface LocalSystem {
  dataDir: string;
  /** `<data dir>/status.json`, rewritten at every state change. */
  statusFile: string;
  ports: LocalPorts;
  intakeUrl: string;
  logUrl: string;
  temporalAddress: string;
  temporalUiUrl?: string;
  /** Which Temporal was started here (undefined when TEMPORAL_ADDRESS pointed at one). */
  temporalMode?: TemporalMode;
  /** Server mode: the PostgreSQL databases of Temporal's persistence and visibility. */
  temporalDatabases?: { persistence: string; visibility: string };
  mongoUrl: string;
  /** The PostgreSQL database behind FerretDB (when FerretDB was started). */
  pgDatabase?: string;
  adminToken: string;
  /** The secrets the services run with (overrides applied). */
  secrets: LocalSecrets;
  demoSource?: { id: string; apiKey: string };
  /** temporal, ferretdb (when started here), log, worker-1…N, intake: in start order. */
  processes: ProcessHandle[];
  process(name: string): ProcessHandle;
  status(): StatusFile;
  /** Stops everything cleanly (reverse start order); nothing is restarted. Idempotent. */
  stop(): Promise<void>;
}

/** The start failed; the reason was already said and whatever had started is stopped again. */
export class LocalSystemStartError extends Error {
  override name = 'LocalSystemStartError';
}

/** The start was aborted through options.signal; whatever had started is stopped again. */
export class LocalSystemAbortedError extends Error {
  override name = 'LocalSystemAbortedError';
}

// ---------------------------------------------------------------------------------------------
// Secrets

function secretsFile(dataDir: string): string {
  return path.join(dataDir, 'local.json');
}

/** Secrets for local runs, generated once and kept in <data dir>/local.json (mode 600). */
export function loadLocalSecrets(dataDir: string): LocalSecrets & { fresh: boolean } {
  const file = secretsFile(dataDir);
  const fresh = !fs.existsSync(file);
  const stored = fresh ? {} : (JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<LocalSecrets>);
  const secrets: LocalSecrets = { ...generateServiceSecrets(LOCAL_KEY_IDS), ...stored };
  saveLocalSecrets(dataDir, secrets);
  return { ...secrets, fresh };
}

function saveLocalSecrets(dataDir: string, { adminToken, credentialsKeys, payloadKeys, codecToken, logKeys, lookupKey, receiptKeys, demoSourceId, demoApiKey }: LocalSecrets): void {
  fs.mkdirSync(dataDir, { recursive: true });
  const json = { adminToken, credentialsKeys, payloadKeys, codecToken, logKeys, lookupKey, receiptKeys, demoSourceId, demoApiKey };
  fs.writeFileSync(secretsFile(dataDir), JSON.stringify(json, null, 2), { mode: 0o600 });
}

/** Replaces every secret (and each key of a key spec) in a text with ****. */
function redactor(values: Array<string | undefined>): (text: string) => string {
  const parts = new Set<string>();
  for (const value of values) {
    if (!value) continue;
    parts.add(value);
    for (const piece of value.split(/[,:]/)) if (piece.length >= 12) parts.add(piece);
  }
  const sorted = [...parts].sort((a, b) => b.length - a.length);
  return (text) => sorted.reduce((out, secret) => out.split(secret).join('****'), text);
}

// ---------------------------------------------------------------------------------------------

async function resolvePorts(requested: LocalSystemOptions['ports'], host: string): Promise<LocalPorts> {
  const wanted: Partial<LocalPorts> = requested === 'free' ? { intake: 0, log: 0, temporal: 0, temporalUi: 0, mongo: 0, workerHealth: 0, workerMetrics: 0, logMetrics: 0 } : (requested ?? {});
  const ports = { ...DEFAULT_PORTS, ...wanted };
  const taken = new Set(Object.values(ports).filter((p) => p !== 0));
  for (const key of Object.keys(ports) as Array<keyof LocalPorts>) {
    if (ports[key] !== 0) continue;
    let port: number;
    do port = await freePort(host);
    while (taken.has(port));
    taken.add(port);
    ports[key] = port;
  }
  return ports;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, failed: () => string | undefined, aborted: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (aborted()) throw new LocalSystemAbortedError('start aborted');
    const problem = failed();
    if (problem) throw new Error(`${what}: ${problem}`);
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} was not ready within ${timeoutMs / 1000}s`);
}

function running(proc: ManagedProcess): RunningProcess {
  return { pid: proc.pid, exited: proc.exited, stop: () => proc.stop(), tail: (n) => proc.tail(n) };
}

export async function startLocalSystem(options: LocalSystemOptions): Promise<LocalSystem> {
  const dataDir = path.resolve(options.dataDir);
  const logs = path.join(dataDir, 'logs');
  const host = options.host ?? '127.0.0.1';
  const workers = options.workers ?? 1;
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`workers must be a positive integer (got ${workers})`);
  const say = (message: string) => {
    if (!options.quiet) process.stdout.write(`${message}\n`);
    options.log?.(message);
  };
  fs.mkdirSync(logs, { recursive: true });

  const stored = loadLocalSecrets(dataDir);
  const overrides = options.secrets ?? {};
  const secrets: LocalSecrets = {
    adminToken: overrides.adminToken ?? stored.adminToken,
    credentialsKeys: overrides.credentialsKeys ?? stored.credentialsKeys,
    payloadKeys: overrides.payloadKeys ?? stored.payloadKeys,
    codecToken: overrides.codecToken ?? stored.codecToken,
    logKeys: overrides.logKeys ?? stored.logKeys,
    lookupKey: overrides.lookupKey ?? stored.lookupKey,
    receiptKeys: overrides.receiptKeys ?? stored.receiptKeys,
    ...(stored.demoSourceId ? { demoSourceId: stored.demoSourceId } : {}),
    ...(stored.demoApiKey ? { demoApiKey: stored.demoApiKey } : {}),
  };
  const pgPassword = (() => {
    try {
      return decodeURIComponent(new URL(options.pgUrl ?? process.env.PG_URL ?? 'postgres://x@h/d').password) || undefined;
    } catch {
      return undefined;
    }
  })();
  const redact = redactor([secrets.adminToken, secrets.credentialsKeys, secrets.payloadKeys, secrets.codecToken, secrets.logKeys, secrets.lookupKey, secrets.receiptKeys, pgPassword]);

  const statusFile = path.join(dataDir, 'status.json');
  const supervisor = new Supervisor({ say, writeStatus: statusFileWriter(statusFile), redact, ...(options.backoff ? { backoff: options.backoff } : {}) });
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    // Synchronously marks everything as stopping (a child that exits from now on is not restarted).
    stopping ??= (() => {
      say('\nStopping…');
      const done = supervisor.stop();
      return done.then(() => say(`Stopped. Data kept in ${dataDir}`));
    })();
    return stopping;
  };
  const signal = options.signal;
  let started = false;
  const aborted = () => signal?.aborted === true;
  const abortedPromise = new Promise<never>((_, reject) => {
    signal?.addEventListener(
      'abort',
      () => {
        // At once: children that die from the same Ctrl-C are not restarted.
        if (!started) void stop();
        reject(new LocalSystemAbortedError('start aborted'));
      },
      { once: true },
    );
  });
  abortedPromise.catch(() => undefined); // observed through step()
  const step = <T>(promise: Promise<T>): Promise<T> => (signal ? Promise.race([promise, abortedPromise]) : promise);

  try {
    if (aborted()) throw new LocalSystemAbortedError('start aborted');
    const ports = await resolvePorts(options.ports, host);

    // ---- Temporal -----------------------------------------------------------------------------
    let temporalAddress = options.temporalAddress;
    let temporalUiUrl = options.temporalUiUrl;
    const temporalMode: TemporalMode | undefined = temporalAddress ? undefined : (options.temporalMode ?? 'dev');
    let temporalDatabases: { persistence: string; visibility: string } | undefined;
    // The UI decodes the encrypted payloads through the intake service's codec endpoint.
    const codecEndpoint = `http://${host}:${ports.intake}/v1/codec/t/${secrets.codecToken}`;
    if (temporalMode === 'dev') {
      say('Starting the Temporal dev server…');
      const temporalOptions = {
        port: ports.temporal,
        uiPort: ports.temporalUi,
        dbFile: path.join(dataDir, 'temporal.db'),
        codecEndpoint,
        logFile: path.join(logs, 'temporal.log'),
        log: (m: string) => say(`  ${m}`),
      };
      const started: { uiUrl?: string } = {};
      await step(
        supervisor.add({
          name: 'temporal',
          // Started again with the same db file and ports: the workflows and their timers are where they were.
          start: async () => {
            const server = await startTemporalDevServer(temporalOptions);
            temporalAddress = server.address;
            started.uiUrl = server.uiUrl;
            return { pid: server.pid, exited: server.exited, stop: () => server.stop(), tail: (n) => server.tail(n) };
          },
        }),
      );
      temporalUiUrl = started.uiUrl;
    } else if (temporalMode === 'server') {
      const database = options.temporalServer?.database ?? 'lead_delivery_temporal';
      say(`Starting the Temporal server on PostgreSQL (databases ${database}, ${database}_visibility) and its Web UI…`);
      const stateDir = path.join(dataDir, 'temporal-server');
      await step(
        supervisor.add({
          name: 'temporal',
          // Started again on the same databases and frontend port: the workflows and their timers are where they were.
          start: async () => {
            const server = await startTemporalServer({
              stateDir,
              port: ports.temporal,
              database,
              ...(options.pgUrl ? { pgUrl: options.pgUrl } : {}),
              ...(options.temporalServer?.numHistoryShards ? { numHistoryShards: options.temporalServer.numHistoryShards } : {}),
              ...(options.temporalServer?.maxConns ? { maxConns: options.temporalServer.maxConns } : {}),
              logFile: path.join(logs, 'temporal.log'),
              log: (m: string) => say(`  ${m}`),
            });
            temporalAddress = server.address;
            temporalDatabases = server.databases;
            return { pid: server.pid, exited: server.exited, stop: () => server.stop(), tail: (n) => server.tail(n) };
          },
        }),
      );
      const address = temporalAddress;
      if (!address) throw new Error('the Temporal server did not start');
      const started: { url?: string } = {};
      await step(
        supervisor.add({
          name: 'temporal-ui',
          start: async () => {
            const ui = await startTemporalUi({ stateDir, temporalAddress: address, port: ports.temporalUi, codecEndpoint, logFile: path.join(logs, 'temporal-ui.log'), log: (m: string) => say(`  ${m}`) });
            started.url = ui.url;
            return { pid: ui.pid, exited: ui.exited, stop: () => ui.stop(), tail: (n) => ui.tail(n) };
          },
        }),
      );
      temporalUiUrl = started.url;
    }

    // ---- store --------------------------------------------------------------------------------
    let mongoUrl = options.mongoUrl;
    let storeNote = 'MONGO_URL';
    let pgDatabase: string | undefined;
    if (!mongoUrl) {
      say('Starting FerretDB (MongoDB wire protocol) on PostgreSQL…');
      const holder: { store?: MongoStore } = {};
      await step(
        supervisor.add({
          name: 'ferretdb',
          start: async (restart) => {
            if (restart && holder.store) await holder.store.restart();
            else
              holder.store = await startFerretDB({
                port: ports.mongo,
                stateDir: path.join(dataDir, 'ferretdb'),
                logFile: path.join(logs, 'ferretdb.log'),
                log: (m) => say(`  ${m}`),
                ...(options.pgUrl ? { pgUrl: options.pgUrl } : {}),
                ...(options.pgDatabase ? { database: options.pgDatabase } : {}),
              });
            const current = holder.store;
            return { pid: current.pid, exited: current.exited, stop: () => current.stop(), tail: (n) => current.tail(n) };
          },
        }),
      );
      const store = holder.store;
      if (!store) throw new Error('FerretDB did not start');
      mongoUrl = store.url;
      storeNote = `FerretDB (${store.handler})`;
      if (store.pgUrl) {
        pgDatabase = decodeURIComponent(new URL(store.pgUrl).pathname.slice(1));
        // The collections and their indexes first, then PostgreSQL indexes FerretDB's queries can use.
        const { connection, models } = await step(connectStore(mongoUrl));
        await connection.close();
        const count = await step(addContainmentIndexes(store.pgUrl, new URL(mongoUrl).pathname.slice(1), equalityFields(models)));
        say(`  ${count} containment indexes in place (FerretDB's equality filters use them; ARCHITECTURE.md, Queries over the log).`);
      }
    }
    if (!temporalAddress) throw new Error('the Temporal dev server did not start');

    // ---- services -----------------------------------------------------------------------------
    const baseEnv = options.baseEnv ?? process.env;
    const env: NodeJS.ProcessEnv = {
      ...baseEnv,
      ...options.env,
      TEMPORAL_ADDRESS: temporalAddress,
      TEMPORAL_UI_URL: temporalUiUrl ?? '',
      MONGO_URL: mongoUrl,
      ADMIN_TOKEN: secrets.adminToken,
      CREDENTIALS_KEYS: secrets.credentialsKeys,
      PAYLOAD_KEYS: secrets.payloadKeys,
      LOG_KEYS: secrets.logKeys,
      LOOKUP_KEY: secrets.lookupKey,
      RECEIPT_KEYS: secrets.receiptKeys,
      CODEC_TOKEN: secrets.codecToken,
      CODEC_CORS_ORIGINS: options.env?.CODEC_CORS_ORIGINS ?? baseEnv.CODEC_CORS_ORIGINS ?? `http://127.0.0.1:${ports.temporalUi},http://localhost:${ports.temporalUi}`,
      INTAKE_PORT: String(ports.intake),
      LOG_PORT: String(ports.log),
      HOST: host,
    };
    /** The current process of each service (readiness checks read its output). */
    const current = new Map<string, ManagedProcess>();
    // Each delivery worker's own ports (health, SDK metrics): the first takes the configured ones.
    const workerPorts: Array<{ health: number; metrics: number }> = [{ health: ports.workerHealth, metrics: ports.workerMetrics }];
    const taken = new Set(Object.values(ports));
    const another = async () => {
      let port: number;
      do port = await freePort(host);
      while (taken.has(port));
      taken.add(port);
      return port;
    };
    for (let i = 2; i <= workers; i++) workerPorts.push({ health: await another(), metrics: await another() });
    const ownEnv = (name: string): NodeJS.ProcessEnv => {
      if (name === 'log') return { ...env, LOG_SDK_METRICS_PORT: String(ports.logMetrics) };
      const own = workerPorts[Number(name.replace('worker-', '')) - 1];
      return own ? { ...env, WORKER_HEALTH_PORT: String(own.health), WORKER_SDK_METRICS_PORT: String(own.metrics) } : env;
    };
    const service = (name: string, dir: string, logFile: string) =>
      supervisor.add({
        name,
        start: () => {
          const proc = spawnManaged(process.execPath, [...(options.nodeArgs ?? []), '--require', 'tsx/cjs', path.join(ROOT, 'services', dir, 'main.ts')], { name, cwd: ROOT, env: ownEnv(name), logFile });
          // Warnings and errors also reach the console; everything is in the service's log file.
          proc.child.stdout?.on('data', (chunk: Buffer) => {
            for (const line of chunk.toString('utf8').split('\n')) {
              if (/"level":"(warn|error|fatal)"/.test(line)) say(`[${name}] ${redact(line)}`);
            }
          });
          current.set(name, proc);
          return Promise.resolve(running(proc));
        },
      });
    say(workers === 1 ? 'Starting the log service, the delivery worker and the intake service…' : `Starting the log service, ${workers} delivery workers and the intake service…`);
    const serviceNames = ['log', ...Array.from({ length: workers }, (_, i) => `worker-${i + 1}`), 'intake'];
    await service('log', 'log', path.join(logs, 'log.log'));
    for (let i = 1; i <= workers; i++) await service(`worker-${i}`, 'worker', path.join(logs, workers === 1 ? 'worker.log' : `worker-${i}.log`));
    await service('intake', 'intake', path.join(logs, 'intake.log'));

    // A service that exits before the system is ready fails the start (a config error would loop).
    const exitedEarly = () => {
      const name = serviceNames.find((n) => supervisor.get(n).lastExit() !== null);
      return name && `${name} exited:\n${supervisor.get(name).tail(20)}`;
    };
    const ok = async (url: string) => (await fetch(url)).status === 200;
    const intakeUrl = `http://${host}:${ports.intake}`;
    const logUrl = `http://${host}:${ports.log}`;
    await waitFor('log service', () => ok(`${logUrl}/readyz`), 120_000, exitedEarly, aborted);
    await waitFor('intake service', () => ok(`${intakeUrl}/readyz`), 120_000, exitedEarly, aborted);
    const workersRunning = () => serviceNames.filter((n) => n.startsWith('worker-')).every((n) => current.get(n)?.tail(200).includes('delivery worker running'));
    await waitFor(workers === 1 ? 'delivery worker' : 'delivery workers', () => Promise.resolve(workersRunning()), 180_000, exitedEarly, aborted);

    // ---- seed ---------------------------------------------------------------------------------
    const adminHeaders = { authorization: `Bearer ${secrets.adminToken}`, 'content-type': 'application/json' };
    const list = (await step((await step(fetch(`${intakeUrl}/v1/admin/sources`, { headers: adminHeaders }))).json())) as { items: unknown[] };
    if (list.items.length === 0 && options.seedDemoSource !== false) {
      const response = await step(fetch(`${intakeUrl}/v1/admin/sources`, { method: 'POST', headers: adminHeaders, body: JSON.stringify({ name: 'demo' }) }));
      const created = (await step(response.json())) as { id: string; apiKey: string };
      secrets.demoSourceId = stored.demoSourceId = created.id;
      secrets.demoApiKey = stored.demoApiKey = created.apiKey;
      saveLocalSecrets(dataDir, stored);
      say(`Seeded an empty store with the demo lead source ${created.id}.`);
    } else if (list.items.length > 0 && stored.fresh && !overrides.credentialsKeys) {
      say(`
WARNING: the store already holds sources and buyers, but ${dataDir}/local.json is new: buyer
credentials sealed with the old local key cannot be decrypted and their deliveries will fail.
Restore the old .data/local.json, or start from an empty store: stop, then drop the database
(e.g. psql -h 127.0.0.1 -U postgres -c 'drop database ${pgDatabase ?? 'lead_delivery'}') and start again.`);
    }

    say(`
Lead delivery is running.
  Intake service   ${intakeUrl}            (POST /v1/leads, GET /v1/leads/:id, /v1/admin/…)
  Log service      ${logUrl}            (dispute page: open it and sign in with the admin token; GET /v1/attempts, /v1/attempts.csv, /v1/leads/:id/receipt)
  Metrics          ${intakeUrl}/metrics  ${logUrl}/metrics   (Prometheus text format)
  Temporal SDK     http://${host}:${ports.workerMetrics}/metrics (delivery worker)  http://${host}:${ports.logMetrics}/metrics (log worker)
  Worker health    http://${host}:${ports.workerHealth}/healthz  /readyz
  Temporal UI      ${temporalUiUrl ?? '(external Temporal: see your cluster)'}
  Temporal         ${temporalAddress}${temporalMode === 'server' ? `  (server mode: PostgreSQL ${temporalDatabases?.persistence ?? ''}, ${temporalDatabases?.visibility ?? ''})` : temporalMode === 'dev' ? '  (dev server)' : ''}
  Store            ${storeNote}: ${mongoUrl.replace(/\/\/[^@/]*@/, '//****@')}
  Delivery workers ${workers}
  Admin token      ${secrets.adminToken}
  Demo source key  ${secrets.demoApiKey ?? '(not created by this data folder)'}${secrets.demoSourceId ? `  (source ${secrets.demoSourceId})` : ''}
  Data and logs    ${dataDir}   (status of the processes: ${statusFile})
Crashed processes are restarted with backoff. Ctrl-C stops everything; the next npm start continues where this one stopped.`);

    const processes = supervisor.names().map((name) => supervisor.get(name));
    started = true;
    return {
      dataDir,
      statusFile,
      ports,
      intakeUrl,
      logUrl,
      temporalAddress,
      ...(temporalUiUrl ? { temporalUiUrl } : {}),
      ...(temporalMode ? { temporalMode } : {}),
      ...(temporalDatabases ? { temporalDatabases } : {}),
      mongoUrl,
      ...(pgDatabase ? { pgDatabase } : {}),
      adminToken: secrets.adminToken,
      secrets,
      ...(secrets.demoSourceId && secrets.demoApiKey ? { demoSource: { id: secrets.demoSourceId, apiKey: secrets.demoApiKey } } : {}),
      processes,
      process: (name) => supervisor.get(name),
      status: () => (fs.existsSync(statusFile) ? readStatusFile(statusFile) : supervisor.status()),
      stop,
    };
  } catch (error) {
    started = true;
    if (aborted() || error instanceof LocalSystemAbortedError) {
      await stop();
      throw new LocalSystemAbortedError('start aborted');
    }
    const message = redact(error instanceof Error ? error.message : String(error));
    say(`\nStart failed: ${message}`);
    await stop();
    throw new LocalSystemStartError(message, { cause: error });
  }
}
