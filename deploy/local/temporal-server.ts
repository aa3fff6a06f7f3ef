/**
 * TEMPORAL_MODE=server: the Temporal server itself (go.temporal.io/server, the version the CLI's dev
 * server embeds) on the local PostgreSQL, its schema set up and upgraded by temporal-sql-tool, and the
 * Web UI from the UI server module. The topology is the one docker-compose.yml runs (temporalio/server
 * on PostgreSQL plus temporalio/ui), as processes on this machine: every Temporal service (frontend,
 * history, matching, worker) in one server process, which is how the official image runs by default.
 *
 * Unlike the dev server: persistence and visibility are PostgreSQL databases (not SQLite), the shard
 * count is fixed when the schema is first set up, the namespace and search attributes are registered
 * through the API, and dynamic config is a file (`<stateDir>/dynamicconfig.yaml`, read every 10 s).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client as PgClient } from 'pg';
import { resolveBinary } from './binaries';
import { ensurePgDatabase, redact, withDatabase } from './ferretdb';
import { freePort, freePortInRange, waitForPort } from './ports';
import { describeExit, runToCompletion, sleep, spawnManaged, type ExitInfo, type ManagedProcess } from './proc';
import { waitUntilTemporalReady, type TemporalDevServer } from './temporal';

const HOST = '127.0.0.1';
const ENV_NAME = 'lead-delivery';
const DEFAULT_PG_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
/** Namespace retention in days: closed lead workflows stay visible in the UI this long (the journal keeps the record). */
export const DEFAULT_RETENTION_DAYS = 7;
/** History shards: fixed at the first schema setup of a database, never changed afterwards. */
export const DEFAULT_HISTORY_SHARDS = 4;

export interface TemporalServerKnobs {
  /** History shards (default 4): the unit of history parallelism; fixed for the life of the database. */
  numHistoryShards?: number;
  /** Persistence QPS per frontend / history host (dynamic config frontend|history.persistenceMaxQPS). */
  frontendPersistenceMaxQps?: number;
  historyPersistenceMaxQps?: number;
  /** Task-queue partitions (matching.numTaskqueueReadPartitions / WritePartitions, default 4). */
  taskQueuePartitions?: number;
  /**
   * PostgreSQL connections of each service's persistence pool (default 8; visibility gets 2). The
   * four services in the one process each have their own pools: 4 × (8 + 2) = 40 connections at most,
   * of PostgreSQL's default max_connections of 100 that FerretDB and the tests share.
   */
  maxConns?: number;
}

export interface StartTemporalServerOptions extends TemporalServerKnobs {
  /** Config files and the pinned shard count live here. */
  stateDir: string;
  /** Frontend gRPC port; a free port when omitted. */
  port?: number;
  /** PostgreSQL server (default PG_URL, else postgres://postgres@127.0.0.1:5432); its database part is ignored. */
  pgUrl?: string;
  /** Persistence database (default "temporal"); visibility goes to `<database>_visibility`. */
  database?: string;
  namespace?: string;
  retentionDays?: number;
  logFile?: string;
  log?: (m: string) => void;
}

export interface TemporalServer extends TemporalDevServer {
  /** The two PostgreSQL databases (persistence, visibility). */
  databases: { persistence: string; visibility: string };
  numHistoryShards: number;
  /** The server's own Prometheus metrics. */
  metricsUrl: string;
}

interface ServicePorts {
  frontend: number;
  frontendHttp: number;
  frontendMembership: number;
  history: number;
  historyMembership: number;
  matching: number;
  matchingMembership: number;
  worker: number;
  workerMembership: number;
  metrics: number;
}

export async function startTemporalServer(opts: StartTemporalServerOptions): Promise<TemporalServer> {
  const log = opts.log ?? (() => {});
  const [serverBin, sqlTool] = [await resolveBinary('temporal-server', log), await resolveBinary('temporal-sql-tool', log)];
  const namespace = opts.namespace ?? 'default';
  const pgUrl = opts.pgUrl ?? process.env.PG_URL ?? DEFAULT_PG_URL;
  const persistence = opts.database ?? 'temporal';
  const visibility = `${persistence}_visibility`;
  const stateDir = path.resolve(opts.stateDir);
  fs.mkdirSync(path.join(stateDir, 'config'), { recursive: true });

  const numHistoryShards = pinnedShardCount(stateDir, persistence, opts.numHistoryShards ?? DEFAULT_HISTORY_SHARDS, log);
  await setUpSchema(sqlTool, pgUrl, persistence, 'postgresql/v12/temporal', log);
  await setUpSchema(sqlTool, pgUrl, visibility, 'postgresql/v12/visibility', log);

  const ports = await servicePorts(opts.port);
  writeDynamicConfig(stateDir, opts);
  fs.writeFileSync(path.join(stateDir, 'config', `${ENV_NAME}.yaml`), serverConfig({ pgUrl, persistence, visibility, numHistoryShards, ports, stateDir, maxConns: opts.maxConns ?? 8 }));

  const address = `${HOST}:${ports.frontend}`;
  const started = Date.now();
  // The config holds the PostgreSQL password (if any): it is a file of mode 600, never an argument.
  fs.chmodSync(path.join(stateDir, 'config', `${ENV_NAME}.yaml`), 0o600);
  const proc = spawnManaged(serverBin, ['--root', stateDir, '--config', 'config', '--env', ENV_NAME, '--allow-no-auth', 'start'], {
    name: 'temporal-server',
    logFile: opts.logFile,
  });
  try {
    await waitUntilTemporalReady(proc, address, namespace, {
      logFile: opts.logFile,
      log,
      label: 'Temporal server',
      registerNamespace: { retentionDays: opts.retentionDays ?? DEFAULT_RETENTION_DAYS },
      timeoutMs: 120_000,
    });
  } catch (err) {
    await proc.stop(5_000);
    throw err;
  }
  log(
    `Temporal server ready at ${address} (namespace ${namespace}, ${numHistoryShards} history shards, PostgreSQL ` +
      `${redact(withDatabase(pgUrl, persistence))} + ${visibility}) in ${Date.now() - started} ms`,
  );
  return {
    address,
    port: ports.frontend,
    namespace,
    databases: { persistence, visibility },
    numHistoryShards,
    metricsUrl: `http://${HOST}:${ports.metrics}/metrics`,
    pid: proc.pid,
    exited: proc.exited,
    tail: (n?: number) => proc.tail(n),
    stop: () => proc.stop(15_000),
    kill: () => proc.kill(),
  };
}

/**
 * The shard count is part of the data: a server started with another count than the database was set
 * up with refuses to start. The first count is written beside the config and wins afterwards.
 */
function pinnedShardCount(stateDir: string, database: string, wanted: number, log: (m: string) => void): number {
  if (!Number.isInteger(wanted) || wanted < 1) throw new Error(`numHistoryShards must be a positive integer (got ${wanted})`);
  const file = path.join(stateDir, `shards-${database}`);
  if (fs.existsSync(file)) {
    const pinned = Number(fs.readFileSync(file, 'utf8').trim());
    if (Number.isInteger(pinned) && pinned > 0) {
      if (pinned !== wanted) log(`Keeping ${pinned} history shards: database ${database} was set up with them (asked for ${wanted}).`);
      return pinned;
    }
  }
  fs.writeFileSync(file, `${wanted}\n`);
  return wanted;
}

/** Creates the database when missing, sets up schema versioning once, then upgrades to the newest embedded schema. */
async function setUpSchema(sqlTool: string, pgUrl: string, database: string, schemaName: string, log: (m: string) => void): Promise<void> {
  const created = (await ensurePgDatabase(withDatabase(pgUrl, database), database, { customPlans: false })) === 'created';
  if (created) log(`Created PostgreSQL database "${database}".`);
  if (created || !(await hasSchemaVersionTable(withDatabase(pgUrl, database)))) {
    await sqlToolRun(sqlTool, pgUrl, database, ['setup-schema', '-v', '0.0']);
  }
  await sqlToolRun(sqlTool, pgUrl, database, ['update-schema', '--schema-name', schemaName]);
}

async function hasSchemaVersionTable(url: string): Promise<boolean> {
  const client = new PgClient({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const res = await client.query("SELECT 1 FROM information_schema.tables WHERE table_name = 'schema_version'");
    return (res.rowCount ?? 0) > 0;
  } finally {
    await client.end();
  }
}

async function sqlToolRun(sqlTool: string, pgUrl: string, database: string, command: string[]): Promise<void> {
  const url = new URL(pgUrl);
  const args = ['--plugin', 'postgres12', '--endpoint', url.hostname, '--port', url.port || '5432', '--user', decodeURIComponent(url.username || 'postgres'), '--database', database, ...command];
  // The password goes through the environment (SQL_PASSWORD), not the command line.
  const env = { ...process.env, SQL_PASSWORD: decodeURIComponent(url.password) };
  for (let attempt = 1; ; attempt++) {
    const res = await runToCompletion(sqlTool, args, { name: 'temporal-sql-tool', env, timeoutMs: 120_000 });
    if (res.code === 0) return;
    if (attempt >= 3) {
      throw new Error(`temporal-sql-tool ${command.join(' ')} on database ${database} ${describeExit(res)}:\n${res.output.split('\n').slice(-20).join('\n')}`);
    }
    await sleep(1_000 * attempt);
  }
}

/** Membership ports are stored in a PostgreSQL smallint (cluster_membership.rpc_port): below 32768. */
const MEMBERSHIP_PORTS: [number, number] = [20_000, 32_000];

async function servicePorts(frontend: number | undefined): Promise<ServicePorts> {
  const taken = new Set<number>(frontend ? [frontend] : []);
  const claim = (p: number): number => {
    taken.add(p);
    return p;
  };
  const next = async (): Promise<number> => {
    for (;;) {
      const p = await freePort(HOST);
      if (!taken.has(p)) return claim(p);
    }
  };
  const membership = async (): Promise<number> => claim(await freePortInRange(HOST, MEMBERSHIP_PORTS[0], MEMBERSHIP_PORTS[1], taken));
  return {
    frontend: frontend && frontend > 0 ? frontend : await next(),
    frontendHttp: await next(),
    frontendMembership: await membership(),
    history: await next(),
    historyMembership: await membership(),
    matching: await next(),
    matchingMembership: await membership(),
    worker: await next(),
    workerMembership: await membership(),
    metrics: await next(),
  };
}

function yamlString(value: string): string {
  return JSON.stringify(value); // a JSON string is a valid YAML double-quoted scalar
}

function serverConfig(o: { pgUrl: string; persistence: string; visibility: string; numHistoryShards: number; ports: ServicePorts; stateDir: string; maxConns: number }): string {
  const url = new URL(o.pgUrl);
  const store = (database: string, maxConns: number) => `      sql:
        pluginName: "postgres12"
        databaseName: ${yamlString(database)}
        connectAddr: ${yamlString(`${url.hostname}:${url.port || '5432'}`)}
        connectProtocol: "tcp"
        user: ${yamlString(decodeURIComponent(url.username || 'postgres'))}
        password: ${yamlString(decodeURIComponent(url.password))}
        maxConns: ${maxConns}
        maxIdleConns: ${maxConns}
        maxConnLifetime: "1h"`;
  const service = (grpc: number, membership: number, http?: number) => `    rpc:
      grpcPort: ${grpc}
      membershipPort: ${membership}
      bindOnIP: "${HOST}"${http ? `\n      httpPort: ${http}` : ''}`;
  const p = o.ports;
  return `# Written by deploy/local/temporal-server.ts at every start; edit that file, not this one.
log:
  stdout: true
  level: warn
persistence:
  defaultStore: postgres-default
  visibilityStore: postgres-visibility
  numHistoryShards: ${o.numHistoryShards}
  datastores:
    postgres-default:
${store(o.persistence, o.maxConns)}
    postgres-visibility:
${store(o.visibility, 2)}
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: "${HOST}"
  metrics:
    prometheus:
      framework: "tally"
      timerType: "histogram"
      listenAddress: "${HOST}:${p.metrics}"
services:
  frontend:
${service(p.frontend, p.frontendMembership, p.frontendHttp)}
  history:
${service(p.history, p.historyMembership)}
  matching:
${service(p.matching, p.matchingMembership)}
  worker:
${service(p.worker, p.workerMembership)}
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: "active"
  currentClusterName: "active"
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: "frontend"
      rpcAddress: "${HOST}:${p.frontend}"
      httpAddress: "${HOST}:${p.frontendHttp}"
dcRedirectionPolicy:
  policy: "noop"
dynamicConfigClient:
  filepath: ${yamlString(path.join(o.stateDir, 'dynamicconfig.yaml'))}
  pollInterval: "10s"
`;
}

/**
 * The knobs that matter for this workload, as dynamic config (ARCHITECTURE.md, Temporal in server mode):
 * persistence QPS limits per host, task-queue partitions, and update-with-start (the breaker's operator
 * actions use it; on by default in 1.29, written out so that an older server does not quietly lack it).
 */
function writeDynamicConfig(stateDir: string, knobs: TemporalServerKnobs): void {
  const partitions = knobs.taskQueuePartitions ?? 4;
  const entries: Record<string, string | number | boolean> = {
    'frontend.enableExecuteMultiOperation': true,
    'frontend.persistenceMaxQPS': knobs.frontendPersistenceMaxQps ?? 2000,
    'history.persistenceMaxQPS': knobs.historyPersistenceMaxQps ?? 9000,
    'matching.numTaskqueueReadPartitions': partitions,
    'matching.numTaskqueueWritePartitions': partitions,
    'limit.maxIDLength': 255,
  };
  const body = Object.entries(entries)
    .map(([key, value]) => `${key}:\n  - value: ${typeof value === 'string' ? yamlString(value) : String(value)}\n    constraints: {}`)
    .join('\n');
  fs.writeFileSync(path.join(stateDir, 'dynamicconfig.yaml'), `# Written by deploy/local/temporal-server.ts at every start.\n${body}\n`);
}

// ---------------------------------------------------------------------------------------------
// Web UI

export interface StartTemporalUiOptions {
  stateDir: string;
  temporalAddress: string;
  /** UI port; a free port when omitted. */
  port?: number;
  /** Remote codec endpoint (the intake service's /v1/codec/t/<token>). */
  codecEndpoint?: string;
  logFile?: string;
  log?: (m: string) => void;
}

export interface TemporalUi {
  url: string;
  port: number;
  pid: number;
  exited: Promise<ExitInfo>;
  tail(n?: number): string;
  stop(): Promise<void>;
}

/** The Temporal Web UI server (github.com/temporalio/ui-server), pointed at a server's frontend. */
export async function startTemporalUi(opts: StartTemporalUiOptions): Promise<TemporalUi> {
  const log = opts.log ?? (() => {});
  const bin = await resolveBinary('temporal-ui-server', log);
  const port = opts.port && opts.port > 0 ? opts.port : await freePort(HOST);
  const dir = path.join(path.resolve(opts.stateDir), 'ui');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${ENV_NAME}.yaml`);
  fs.writeFileSync(
    file,
    `# Written by deploy/local/temporal-server.ts at every start.
temporalGrpcAddress: ${yamlString(opts.temporalAddress)}
host: "${HOST}"
port: ${port}
enableUi: true
defaultNamespace: default
cors:
  cookieInsecure: true
  allowOrigins:
    - "http://${HOST}:${port}"
    - "http://localhost:${port}"
codec:
  endpoint: ${yamlString(opts.codecEndpoint ?? '')}
  passAccessToken: false
  includeCredentials: false
`,
    { mode: 0o600 }, // the codec endpoint carries the codec token
  );
  fs.writeFileSync(path.join(dir, 'base.yaml'), '# empty: every setting is in the environment file\n');
  const proc: ManagedProcess = spawnManaged(bin, ['--root', path.resolve(opts.stateDir), '--config', 'ui', '--env', ENV_NAME, 'start'], {
    name: 'temporal-ui',
    logFile: opts.logFile,
  });
  try {
    await Promise.race([
      waitForPort(HOST, port, 30_000),
      proc.exited.then((info) => {
        throw new Error(`Temporal UI server ${describeExit(info)} before it listened. Last output:\n${proc.tail(30)}`);
      }),
    ]);
  } catch (err) {
    await proc.stop(2_000);
    throw err;
  }
  const url = `http://${HOST}:${port}`;
  log(`Temporal UI ready at ${url}`);
  return { url, port, pid: proc.pid, exited: proc.exited, tail: (n) => proc.tail(n), stop: () => proc.stop(5_000) };
}
