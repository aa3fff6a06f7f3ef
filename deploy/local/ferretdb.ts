/**
 * Starts FerretDB (a MongoDB wire-protocol server) over PostgreSQL for local runs and tests, creating
 * the Postgres database when missing. When no PostgreSQL answers it falls back, loudly, to FerretDB's
 * SQLite handler (slow: full scans for every filter other than _id).
 */
import mongoose from 'mongoose';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client as PgClient } from 'pg';
import { resolveBinary } from './binaries';
import { freePort, waitForPort } from './ports';
import { describeExit, sleep, spawnManaged, type ExitInfo, type ManagedProcess } from './proc';

// The `mongodb` driver is a dependency of mongoose, not of this project: reach it through mongoose.
const { MongoClient } = mongoose.mongo;

export interface MongoStore {
  /** mongodb://127.0.0.1:<port>/<mongoDatabase> */
  url: string;
  port: number;
  handler: 'postgresql' | 'sqlite';
  /** The PostgreSQL database behind it (handler postgresql): for addContainmentIndexes. */
  pgUrl?: string;
  /** SIGTERM, wait for exit (SIGKILL after 10 s). */
  stop(): Promise<void>;
  /** SIGKILL now (simulates an outage). */
  kill(): void;
  /** Starts the same FerretDB again on the same port (stopping it first if it still runs). */
  restart(): Promise<void>;
  /** pid of the current FerretDB process (changes on restart). */
  pid: number;
  /** Resolves once the current FerretDB process has exited (never rejects; a new one after restart). */
  readonly exited: Promise<ExitInfo>;
  /** Last lines of the current process's output. */
  tail(n?: number): string;
}

export interface StartFerretDBOptions {
  /** Default: env PG_URL, else postgres://postgres@127.0.0.1:5432/lead_delivery */
  pgUrl?: string;
  /** The Postgres database name; overrides the one in pgUrl. */
  database?: string;
  /** Mongo wire port; a free port when omitted. */
  port?: number;
  /** FerretDB state folder (and SQLite data in fallback mode); a fresh temp folder when omitted. */
  stateDir?: string;
  /** Database name put into the returned mongodb:// url (default "lead_delivery"). */
  mongoDatabase?: string;
  /** Append FerretDB's stdout/stderr here; otherwise the last lines are kept for error messages. */
  logFile?: string;
  log?: (m: string) => void;
}

const HOST = '127.0.0.1';
const DEFAULT_PG_URL = 'postgres://postgres@127.0.0.1:5432/lead_delivery';
const READY_TIMEOUT_MS = 30_000;
const PG_CONNECT_TIMEOUT_MS = 3_000;
const MAX_PORT_RETRIES = 3;

type Backend = { handler: 'postgresql'; url: string } | { handler: 'sqlite'; dir: string };

interface LaunchConfig {
  binary: string;
  port: number;
  stateDir: string;
  backend: Backend;
  mongoUrl: string;
  mongoDatabase: string;
  logFile?: string;
  /** The state folder is a temp folder we created and may delete on stop() (never with SQLite data in it). */
  ownsStateDir: boolean;
}

class EarlyExitError extends Error {
  constructor(
    message: string,
    readonly portInUse: boolean,
  ) {
    super(message);
  }
}

export async function startFerretDB(opts: StartFerretDBOptions = {}): Promise<MongoStore> {
  const log = opts.log ?? (() => {});
  const binary = await resolveBinary('ferretdb', log);
  const stateDir = path.resolve(opts.stateDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'lead-delivery-ferretdb-')));
  fs.mkdirSync(stateDir, { recursive: true });
  const backend = await chooseBackend(opts, stateDir, log).catch((err: unknown) => {
    if (opts.stateDir === undefined) fs.rmSync(stateDir, { recursive: true, force: true });
    throw err;
  });
  const mongoDatabase = opts.mongoDatabase ?? 'lead_delivery';

  for (let attempt = 1; ; attempt++) {
    const port = opts.port ?? (await freePort(HOST));
    const config: LaunchConfig = {
      binary,
      port,
      stateDir,
      backend,
      mongoDatabase,
      mongoUrl: `mongodb://${HOST}:${port}/${mongoDatabase}`,
      logFile: opts.logFile,
      ownsStateDir: opts.stateDir === undefined && backend.handler === 'postgresql',
    };
    try {
      const proc = await launch(config, log);
      return makeStore(config, proc, log);
    } catch (err) {
      if (err instanceof EarlyExitError && err.portInUse && opts.port === undefined && attempt < MAX_PORT_RETRIES) {
        log(`FerretDB: port ${port} was taken before it could bind; retrying with another port.`);
        continue;
      }
      if (config.ownsStateDir) fs.rmSync(stateDir, { recursive: true, force: true });
      throw err;
    }
  }
}

function makeStore(config: LaunchConfig, first: ManagedProcess, log: (m: string) => void): MongoStore {
  let current = first;
  return {
    url: config.mongoUrl,
    port: config.port,
    handler: config.backend.handler,
    ...(config.backend.handler === 'postgresql' ? { pgUrl: config.backend.url } : {}),
    get pid(): number {
      return current.pid;
    },
    get exited(): Promise<ExitInfo> {
      return current.exited;
    },
    tail: (n?: number) => current.tail(n),
    stop: async () => {
      await current.stop(10_000);
      if (config.ownsStateDir) fs.rmSync(config.stateDir, { recursive: true, force: true });
    },
    kill: () => current.kill(),
    restart: async () => {
      await current.stop(10_000);
      fs.mkdirSync(config.stateDir, { recursive: true });
      current = await launch(config, log);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/** pgUrl with its database replaced by `database`. */
export function withDatabase(pgUrl: string, database: string): string {
  const url = parsePgUrl(pgUrl);
  url.pathname = `/${encodeURIComponent(database)}`;
  return url.toString();
}

function parsePgUrl(pgUrl: string): URL {
  try {
    return new URL(pgUrl);
  } catch {
    throw new Error(`Invalid PostgreSQL URL "${pgUrl}" (expected postgres://user[:password]@host:port/database)`);
  }
}

function databaseOf(pgUrl: string): string {
  const name = decodeURIComponent(parsePgUrl(pgUrl).pathname.replace(/^\//, ''));
  return name || 'lead_delivery';
}

export function redact(pgUrl: string): string {
  const url = parsePgUrl(pgUrl);
  if (url.password) url.password = '***';
  return url.toString();
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Network-level failures (nobody answering) as opposed to errors PostgreSQL itself returned. */
function isUnreachable(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  if (['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ECONNRESET', 'EAI_AGAIN'].includes(code)) {
    return true;
  }
  const message = typeof e.message === 'string' ? e.message : '';
  return /timeout|Connection terminated/i.test(message);
}

async function withMaintenanceClient<T>(pgUrl: string, fn: (client: PgClient) => Promise<T>): Promise<T> {
  const client = new PgClient({
    connectionString: withDatabase(pgUrl, 'postgres'),
    connectionTimeoutMillis: PG_CONNECT_TIMEOUT_MS,
  });
  client.on('error', () => undefined); // a dropped connection surfaces through the pending query instead
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * Creates `database` unless it exists. Throws the pg error as is (callers classify it).
 * `customPlans` (default true, for FerretDB's databases) sets plan_cache_mode as explained below.
 */
export async function ensurePgDatabase(pgUrl: string, database: string, opts: { customPlans?: boolean } = {}): Promise<'created' | 'exists'> {
  return withMaintenanceClient(pgUrl, async (client) => {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    let outcome: 'created' | 'exists' = 'exists';
    if (!found.rowCount) {
      try {
        await client.query(`CREATE DATABASE ${quoteIdent(database)}`);
        outcome = 'created';
      } catch (err) {
        // Another process created it concurrently (42P04 duplicate_database, or 23505 on pg_database's index).
        const code = (err as { code?: unknown }).code;
        if (code !== '42P04' && code !== '23505') throw err;
      }
    }
    // FerretDB prepares one statement per filter *shape* with the field names as parameters
    // (`_jsonb -> $1 @> $2`): after five runs PostgreSQL may cache a generic plan, which cannot use
    // the expression indexes of ferretdb-indexes.ts, for every field of that shape. Plan each run.
    // Only the database's owner may: without it queries stay correct, only slower on big tables.
    if (opts.customPlans !== false) {
      await client.query(`ALTER DATABASE ${quoteIdent(database)} SET plan_cache_mode = force_custom_plan`).catch(() => undefined);
    }
    return outcome;
  });
}

/** Drops a Postgres database (test cleanup). Stop the FerretDB using it first; open sessions are terminated. */
export async function dropPgDatabase(pgUrl: string, database: string): Promise<void> {
  if (['postgres', 'template0', 'template1'].includes(database)) {
    throw new Error(`Refusing to drop the PostgreSQL system database "${database}"`);
  }
  await withMaintenanceClient(pgUrl, async (client) => {
    await client.query(`DROP DATABASE IF EXISTS ${quoteIdent(database)} WITH (FORCE)`);
  });
}

async function chooseBackend(opts: StartFerretDBOptions, stateDir: string, log: (m: string) => void): Promise<Backend> {
  const baseUrl = opts.pgUrl ?? process.env.PG_URL ?? DEFAULT_PG_URL;
  const database = opts.database ?? databaseOf(baseUrl);
  const url = withDatabase(baseUrl, database);
  try {
    const outcome = await ensurePgDatabase(url, database);
    if (outcome === 'created') log(`Created PostgreSQL database "${database}" (${redact(url)}).`);
    return { handler: 'postgresql', url };
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    if (!isUnreachable(err)) {
      throw new Error(
        `PostgreSQL at ${redact(url)} answered but could not prepare database "${database}": ${reason}. ` +
          `Check the user/password in PG_URL and that the user may CREATE DATABASE (or create it yourself: ` +
          `createdb -h <host> -U <user> ${database}).`,
      );
    }
    const dir = path.join(stateDir, 'sqlite');
    fs.mkdirSync(dir, { recursive: true });
    warnSqliteFallback(redact(url), reason, dir, log);
    return { handler: 'sqlite', dir };
  }
}

function warnSqliteFallback(url: string, reason: string, dir: string, log: (m: string) => void): void {
  const bar = '!'.repeat(100);
  const message = [
    bar,
    `!! WARNING: PostgreSQL did not answer at ${url} (${reason}).`,
    `!! FerretDB falls back to its SQLite handler, data in ${dir}`,
    `!! This is only good for a quick local look: the SQLite handler scans whole collections for every`,
    `!! filter other than _id, so the delivery log, dead letters and dashboards slow down as data grows,`,
    `!! and nothing stored here moves to PostgreSQL later.`,
    `!! Fix: start PostgreSQL (e.g. \`sudo service postgresql start\`) or set PG_URL=postgres://user@host:port/db, then restart.`,
    bar,
  ].join('\n');
  log(message);
  console.warn(message);
}

// ---------------------------------------------------------------------------------------------
// FerretDB process

function buildArgs(c: LaunchConfig): string[] {
  const backendArgs =
    c.backend.handler === 'postgresql'
      ? ['--handler=postgresql', `--postgresql-url=${c.backend.url}`]
      : ['--handler=sqlite', `--sqlite-url=file:${c.backend.dir}/`];
  return [
    ...backendArgs,
    `--listen-addr=${HOST}:${c.port}`,
    '--debug-addr=-',
    '--telemetry=disable',
    `--state-dir=${c.stateDir}`,
    '--log-level=WARN',
  ];
}

async function launch(c: LaunchConfig, log: (m: string) => void): Promise<ManagedProcess> {
  const started = Date.now();
  // A PostgreSQL password in the URL is not written to the log file's command line.
  const password = c.backend.handler === 'postgresql' ? parsePgUrl(c.backend.url).password : '';
  const proc = spawnManaged(c.binary, buildArgs(c), { name: 'ferretdb', logFile: c.logFile, ...(password ? { mask: [password, decodeURIComponent(password)] } : {}) });
  try {
    await waitUntilReady(proc, c);
  } catch (err) {
    await proc.stop(2_000);
    throw err;
  }
  log(`FerretDB (${c.backend.handler}) ready at ${c.mongoUrl} in ${Date.now() - started} ms`);
  return proc;
}

function earlyExitError(proc: ManagedProcess, c: LaunchConfig): EarlyExitError {
  const info = proc.exitInfo() ?? { code: null, signal: null };
  const output = proc.tail(40);
  return new EarlyExitError(
    `FerretDB ${describeExit(info)} before it was ready on ${HOST}:${c.port}.` +
      (c.logFile ? ` Full log: ${c.logFile}.` : '') +
      ` Last output:\n${output || '(no output)'}`,
    /address already in use/i.test(output),
  );
}

/** Port open, then a real round trip: ping plus listCollections (which needs the backend). */
async function waitUntilReady(proc: ManagedProcess, c: LaunchConfig): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let lastError = 'not checked yet';
  while (Date.now() < deadline) {
    if (proc.exitInfo()) throw earlyExitError(proc, c);
    const check = (async () => {
      await waitForPort(HOST, c.port, Math.max(1, Math.min(2_000, deadline - Date.now())));
      await pingMongo(c.mongoUrl, c.mongoDatabase);
    })();
    check.catch(() => undefined); // observed below; avoids an unhandled rejection if the exit wins the race
    const outcome = await Promise.race([check.then(() => 'ready' as const), proc.exited.then(() => 'exited' as const)]).catch(
      (err: unknown) => (err instanceof Error ? err.message : String(err)),
    );
    if (outcome === 'ready') return;
    if (outcome === 'exited') throw earlyExitError(proc, c);
    lastError = outcome;
    await sleep(200);
  }
  throw new Error(
    `FerretDB on ${HOST}:${c.port} was not ready within ${READY_TIMEOUT_MS / 1000} s (last error: ${lastError}).` +
      (c.logFile ? ` Full log: ${c.logFile}.` : '') +
      ` Last output:\n${proc.tail(40) || '(no output)'}`,
  );
}

async function pingMongo(url: string, database: string): Promise<void> {
  const client = new MongoClient(url, { serverSelectionTimeoutMS: 2_000, connectTimeoutMS: 2_000 });
  try {
    await client.connect();
    const db = client.db(database);
    await db.command({ ping: 1 });
    await db.listCollections({}, { nameOnly: true }).toArray();
  } finally {
    await client.close();
  }
}
