/**
 * The real servers a test run needs, started once per mocha process and shared by every test
 * file: a Temporal dev server (in memory) and FerretDB on a fresh PostgreSQL database. Each
 * test file then builds its own system on them (own Mongo database, own task queues).
 * Set TEST_TEMPORAL_ADDRESS / TEST_MONGO_URL to reuse servers that are already running.
 * TEST_TEMPORAL_MODE=server runs them against the Temporal server on PostgreSQL instead of the dev
 * server (deploy/local/temporal-server.ts; its two databases are dropped when the run ends).
 */
import { randomBytes } from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';
import { startTemporalDevServer, type TemporalDevServer } from '../../deploy/local/temporal';
import { startTemporalServer } from '../../deploy/local/temporal-server';
import { startFerretDB, dropPgDatabase, type MongoStore } from '../../deploy/local/ferretdb';

export interface SharedInfra {
  temporalAddress: string;
  /** mongodb://host:port (no database: each test file picks its own). */
  mongoBase: string;
  /** The PostgreSQL database behind FerretDB (not with TEST_MONGO_URL). */
  pgUrl?: string;
}

let shared: Promise<SharedInfra> | undefined;
const cleanups: Array<() => Promise<void>> = [];

const quiet = (message: string) => {
  if (process.env.TEST_VERBOSE) console.log(message);
};

export function pgUrl(): string {
  return process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
}

export function sharedInfra(): Promise<SharedInfra> {
  shared ??= (async () => {
    const [temporalAddress, store] = await Promise.all([
      process.env.TEST_TEMPORAL_ADDRESS ?? startTemporal().then((s) => s.address),
      process.env.TEST_MONGO_URL ? { mongoBase: process.env.TEST_MONGO_URL } : startStore().then((s) => ({ mongoBase: baseOf(s.url), ...(s.pgUrl ? { pgUrl: s.pgUrl } : {}) })),
    ]);
    return { temporalAddress, ...store };
  })();
  return shared;
}

/** Which Temporal the tests run on: the dev server (default) or, with TEST_TEMPORAL_MODE=server, the server on PostgreSQL. */
export function testTemporalMode(): 'dev' | 'server' {
  const mode = process.env.TEST_TEMPORAL_MODE ?? 'dev';
  if (mode !== 'dev' && mode !== 'server') throw new Error(`TEST_TEMPORAL_MODE must be dev or server (got "${mode}")`);
  return mode;
}

export interface TestTemporal extends TemporalDevServer {
  /** After a kill: the same kind of server on the same port (server mode: on the same databases; dev: empty, in memory). */
  startAgain(): Promise<TemporalDevServer>;
}

export async function startTemporal(): Promise<TestTemporal> {
  if (testTemporalMode() === 'server') {
    const database = `ld_temporal_${process.pid}_${randomBytes(3).toString('hex')}`;
    // Few connections each: several servers and FerretDBs share PostgreSQL's 100 during a run.
    const options = { stateDir: path.join(os.tmpdir(), database), pgUrl: pgUrl(), database, maxConns: 4, log: quiet };
    const server = await startTemporalServer(options);
    let again: TemporalDevServer | undefined;
    cleanups.push(async () => {
      await again?.stop();
      await server.stop();
      for (const db of [server.databases.persistence, server.databases.visibility]) await dropPgDatabase(pgUrl(), db).catch(() => undefined);
    });
    return { ...server, startAgain: async () => (again = await startTemporalServer({ ...options, port: server.port })) };
  }
  const devOptions = { headless: true, log: quiet, extraArgs: (process.env.TEST_TEMPORAL_ARGS ?? '').split(' ').filter(Boolean) };
  const server = await startTemporalDevServer(devOptions);
  let again: TemporalDevServer | undefined;
  cleanups.push(async () => {
    await again?.stop();
    await server.stop();
  });
  return { ...server, startAgain: async () => (again = await startTemporalDevServer({ ...devOptions, port: server.port })) };
}

/** A FerretDB on its own fresh PostgreSQL database, dropped when the run ends. */
export async function startStore(): Promise<MongoStore> {
  const database = `ld_test_${process.pid}_${randomBytes(3).toString('hex')}`;
  const store = await startFerretDB({ pgUrl: pgUrl(), database, log: quiet });
  cleanups.push(async () => {
    await store.stop();
    await dropPgDatabase(pgUrl(), database).catch(() => undefined);
  });
  return store;
}

export function baseOf(mongoUrl: string): string {
  const url = new URL(mongoUrl);
  return `${url.protocol}//${url.host}`;
}

export async function stopInfra(): Promise<void> {
  while (cleanups.length) await cleanups.pop()!().catch((error: unknown) => console.error('cleanup failed', error));
  shared = undefined;
}
