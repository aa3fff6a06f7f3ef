/**
 * Smoke test of the local infrastructure helpers: starts a Temporal dev server and FerretDB, checks
 * both answer real calls (search attributes registered; a Mongo insert + find through mongoose,
 * surviving a FerretDB restart), stops both and prints timings.
 *
 *   npx tsx deploy/local/smoke.ts                      # in-memory Temporal, fresh throwaway Postgres db
 *   npx tsx deploy/local/smoke.ts --db-file .data/smoke/temporal.db   # persistent Temporal (run twice)
 *
 * Options: --db-file <path>, --namespace <name> (default lead-delivery-smoke),
 *          --pg-database <name> (kept afterwards; default: a fresh one that is dropped at the end).
 */
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import mongoose from 'mongoose';
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { SEARCH_ATTRIBUTES } from '../../shared/search-attributes';
import { dropPgDatabase, startFerretDB, type MongoStore } from './ferretdb';
import { startTemporalDevServer, type TemporalDevServer } from './temporal';

const DEFAULT_PG_URL = 'postgres://postgres@127.0.0.1:5432/lead_delivery';

const timings: Array<[string, number]> = [];

async function timed<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const started = Date.now();
  try {
    return await fn();
  } finally {
    timings.push([label, Date.now() - started]);
  }
}

function log(message: string): void {
  console.log(`[smoke] ${message}`);
}

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`smoke check failed: ${message}`);
}

async function checkTemporal(server: TemporalDevServer): Promise<void> {
  const connection = await Connection.connect({ address: server.address });
  try {
    const ns = await connection.workflowService.describeNamespace({ namespace: server.namespace });
    log(`namespace ${server.namespace} id=${ns.namespaceInfo?.id ?? '?'}`);
    const res = await connection.operatorService.listSearchAttributes({ namespace: server.namespace });
    const custom = Object.keys(res.customAttributes ?? {});
    for (const name of Object.keys(SEARCH_ATTRIBUTES)) assert(custom.includes(name), `search attribute ${name} missing`);
    log(`search attributes present: ${Object.keys(SEARCH_ATTRIBUTES).join(', ')}`);
  } finally {
    await connection.close();
  }
}

const MARKER_WORKFLOW_ID = 'smoke-persistence-marker';
const MARKER_LEAD_ID = 'smoke-marker';

/**
 * Persistent mode: a marker workflow (never picked up, no worker) started on the first run must still
 * be there, and findable through the custom LeadId search attribute, on the next run.
 */
async function checkPersistence(server: TemporalDevServer, dbExistedBefore: boolean): Promise<void> {
  const connection = await Connection.connect({ address: server.address });
  try {
    const client = new Client({ connection, namespace: server.namespace });
    const present = await client.workflow
      .getHandle(MARKER_WORKFLOW_ID)
      .describe()
      .then(() => true)
      .catch((err: unknown) => {
        if (err instanceof WorkflowNotFoundError) return false;
        throw err;
      });
    if (dbExistedBefore) assert(present, `marker workflow ${MARKER_WORKFLOW_ID} from the previous run is gone`);
    if (!present) {
      await client.workflow.start('smokePersistenceMarker', {
        workflowId: MARKER_WORKFLOW_ID,
        taskQueue: 'smoke-no-worker',
        workflowExecutionTimeout: '7 days',
        typedSearchAttributes: [{ key: defineSearchAttributeKey('LeadId', SearchAttributeType.KEYWORD), value: MARKER_LEAD_ID }],
      });
      log(`started marker workflow ${MARKER_WORKFLOW_ID} (run again with the same --db-file to check it persists)`);
    } else {
      log(`marker workflow ${MARKER_WORKFLOW_ID} from the previous run is still there`);
    }
    const query = `LeadId = "${MARKER_LEAD_ID}"`;
    const deadline = Date.now() + 10_000;
    let count = 0;
    while (count === 0 && Date.now() < deadline) {
      count = (await client.workflow.count(query)).count;
      if (count === 0) await new Promise((r) => setTimeout(r, 200));
    }
    assert(count > 0, `visibility query ${query} found nothing`);
    log(`visibility query ${query} finds ${count} workflow(s)`);
  } finally {
    await connection.close();
  }
}

const smokeSchema = new mongoose.Schema({ name: { type: String, required: true }, at: { type: Date, required: true } });

async function checkMongo(store: MongoStore): Promise<void> {
  const name = `smoke-${process.pid}-${Date.now()}`;
  await withModel(store, async (Model) => {
    await Model.create({ name, at: new Date() });
    const found = await Model.findOne({ name }).lean();
    assert(found?.name === name, 'inserted document not found by a non-_id filter');
  });
  log(`mongo insert + find OK (${store.handler} handler, ${store.url})`);

  await timed('ferretdb restart', () => store.restart());
  await withModel(store, async (Model) => {
    const again = await Model.findOne({ name }).lean();
    assert(again?.name === name, 'document lost across FerretDB restart');
  });
  log(`mongo document survived a FerretDB restart (pid now ${store.pid})`);
}

function smokeModel(conn: mongoose.Connection) {
  return conn.model('SmokeCheck', smokeSchema);
}

async function withModel(store: MongoStore, fn: (model: ReturnType<typeof smokeModel>) => Promise<void>): Promise<void> {
  const conn = await mongoose.createConnection(store.url, { serverSelectionTimeoutMS: 5_000 }).asPromise();
  try {
    await fn(smokeModel(conn));
  } finally {
    await conn.close();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'db-file': { type: 'string' },
      namespace: { type: 'string', default: 'lead-delivery-smoke' },
      'pg-database': { type: 'string' },
    },
  });
  const dbFile = values['db-file'];
  const pgUrl = process.env.PG_URL ?? DEFAULT_PG_URL;
  const throwawayDb = values['pg-database'] === undefined;
  const database = values['pg-database'] ?? `lead_delivery_smoke_${process.pid}_${Date.now()}`;
  const dbExistedBefore = dbFile !== undefined && fs.existsSync(dbFile);
  if (dbFile) log(`persistent Temporal db ${dbFile} (existed before: ${dbExistedBefore ? 'yes' : 'no'})`);

  let temporal: TemporalDevServer | undefined;
  let store: MongoStore | undefined;
  try {
    [temporal, store] = await timed('start both (parallel)', () =>
      Promise.all([
        timed('temporal start', () =>
          startTemporalDevServer({ dbFile, namespace: values.namespace, headless: false, log }),
        ),
        timed('ferretdb start', () => startFerretDB({ pgUrl, database, log })),
      ]),
    );
    await timed('temporal checks', () => checkTemporal(temporal as TemporalDevServer));
    if (dbFile) await timed('persistence checks', () => checkPersistence(temporal as TemporalDevServer, dbExistedBefore));
    await timed('mongo checks', () => checkMongo(store as MongoStore));
  } finally {
    await timed('stop both', () => Promise.all([temporal?.stop(), store?.stop()]));
    if (throwawayDb) await dropPgDatabase(pgUrl, database).catch((err: unknown) => log(`drop failed: ${String(err)}`));
  }
  for (const [label, ms] of timings) log(`${label.padEnd(22)} ${String(ms).padStart(6)} ms`);
  log('PASS');
}

main().catch((err: unknown) => {
  console.error(`[smoke] FAIL: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
