/**
 * The real servers a test run needs, started once per mocha process and shared by every test
 * file: a Temporal dev server (in memory) and FerretDB on a fresh PostgreSQL database. Each
 * test file then builds its own system on them (own Mongo database, own task queues).
 * Set TEST_TEMPORAL_ADDRESS / TEST_MONGO_URL to reuse servers that are already running.
 */
import { randomBytes } from 'node:crypto';
import { startTemporalDevServer, type TemporalDevServer } from '../../deploy/local/temporal';
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

export async function startTemporal(): Promise<TemporalDevServer> {
  const server = await startTemporalDevServer({ headless: true, log: quiet, extraArgs: (process.env.TEST_TEMPORAL_ARGS ?? '').split(' ').filter(Boolean) });
  cleanups.push(() => server.stop());
  return server;
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
