/**
 * Benchmark (not a test): the plan and the time of every query shape of the log service's
 * `GET /v1/attempts` (and the dispute page's lookups), on a store seeded with BENCH_ROWS attempt
 * entries. Each query is built by the service's own code (buildAttemptQuery, chooseIndex), so the
 * plans shown are those of the route. Prints, per shape: the filter, the index hinted, what the
 * server did with it (FerretDB: whether the filter and sort were pushed down to PostgreSQL and the
 * PostgreSQL plan; MongoDB: the winning plan's stages) and the median time of a 100-item page over
 * 9 runs (3 when a page takes seconds). Asserts nothing.
 *
 *   npx tsx bench/explain-plans.ts                       # FerretDB on PostgreSQL, 200,000 rows
 *   BENCH_ROWS=1000000 npx tsx bench/explain-plans.ts
 *   MONGO_URL=mongodb://127.0.0.1:27017/explain npx tsx bench/explain-plans.ts   # a real MongoDB
 */
import type { Collection } from 'mongoose';
import { Client as PgClient } from 'pg';
import { addContainmentIndexes } from '../deploy/local/ferretdb-indexes';
import { connectStore, equalityFields, type LogEntryDoc } from '../shared/store';
import { buildAttemptQuery, type AttemptCursor, type AttemptFilters } from '../services/log/attempts';
import { startStore, stopInfra } from '../test/support/infra';
import { attemptDoc, START } from './seed-attempts';

const ROWS = Number(process.env.BENCH_ROWS ?? 200_000);
const INSERT_BATCH = 5_000;
const RUNS = 9;
const PAGE = 100;

const day = (n: number) => new Date(START + n * 86_400_000).getTime();

const SHAPES: Array<{ name: string; filters: AttemptFilters; cursor?: AttemptCursor }> = [
  { name: 'by lead', filters: { leadId: 'ld_bench000012345' } },
  { name: 'by buyer', filters: { buyerId: 'buy_7' } },
  { name: 'by endpoint', filters: { endpointId: 'ep_b7_1' } },
  { name: 'by source', filters: { sourceId: 'src_3' } },
  { name: 'by outcome', filters: { outcome: 'permanent' } },
  { name: 'by period (one day)', filters: { from: day(10), to: day(11) } },
  { name: 'buyer + period (one day)', filters: { buyerId: 'buy_7', from: day(10), to: day(11) } },
  { name: 'buyer + outcome + period', filters: { buyerId: 'buy_7', outcome: 'transient', from: day(10), to: day(20) } },
  { name: 'next page of a buyer (cursor)', filters: { buyerId: 'buy_7' }, cursor: { at: day(15), id: 'ld_bench000000000:000002' } },
];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** The parts of an explain answer that say how the query ran, whichever server gave it. */
function summarise(explain: Record<string, unknown>): string[] {
  const lines: string[] = [];
  // FerretDB 1.x: { queryPlanner: { Plan: <PostgreSQL EXPLAIN> }, filterPushdown, sortPushdown, limitPushdown }
  for (const key of ['filterPushdown', 'sortPushdown', 'limitPushdown', 'unsafeFilterPushdown']) {
    if (key in explain) lines.push(`${key}: ${String(explain[key])}`);
  }
  const planner = explain.queryPlanner as Record<string, unknown> | undefined;
  const pg = planner?.Plan as Record<string, unknown> | undefined;
  if (pg) lines.push(...pgPlan(pg, 0));
  const winning = planner?.winningPlan as Record<string, unknown> | undefined;
  if (winning) lines.push(...mongoPlan(winning, 0));
  const stats = explain.executionStats as Record<string, unknown> | undefined;
  if (stats) lines.push(`keys examined ${String(stats.totalKeysExamined)}, documents examined ${String(stats.totalDocsExamined)}, returned ${String(stats.nReturned)}`);
  return lines;
}

function pgPlan(node: Record<string, unknown>, depth: number): string[] {
  const pad = '  '.repeat(depth);
  const parts = [String(node['Node Type'])];
  if (node['Index Name']) parts.push(`using ${JSON.stringify(node['Index Name'])}`);
  if (node['Relation Name']) parts.push(`on ${JSON.stringify(node['Relation Name'])}`);
  const details = ['Index Cond', 'Filter', 'Sort Key'].filter((k) => node[k] !== undefined).map((k) => `${k}: ${JSON.stringify(node[k])}`);
  const lines = [`${pad}${parts.join(' ')}`, ...details.map((d) => `${pad}  ${d}`)];
  for (const child of (node.Plans as Array<Record<string, unknown>> | undefined) ?? []) lines.push(...pgPlan(child, depth + 1));
  return lines;
}

function mongoPlan(node: Record<string, unknown>, depth: number): string[] {
  const pad = '  '.repeat(depth);
  const line = `${pad}${String(node.stage)}${node.indexName ? ` ${JSON.stringify(node.indexName)}` : ''}${node.indexBounds ? ` ${JSON.stringify(node.indexBounds)}` : ''}`;
  const child = (node.inputStage as Record<string, unknown> | undefined) ?? undefined;
  return [line, ...(child ? mongoPlan(child, depth + 1) : [])];
}

async function main(): Promise<void> {
  const external = process.env.MONGO_URL;
  const store = external ? undefined : await startStore();
  const url = external ?? store!.url;
  console.log(`bench: query plans of GET /v1/attempts over ${ROWS.toLocaleString('en')} attempt entries (${external ? 'MONGO_URL' : 'FerretDB on PostgreSQL'})`);
  const { connection, models } = await connectStore(url);
  try {
    const collection = models.LogEntry.collection;
    if ((await collection.estimatedDocumentCount()) < ROWS) {
      await collection.deleteMany({});
      const seedStart = Date.now();
      for (let offset = 0; offset < ROWS; offset += INSERT_BATCH) {
        const docs: LogEntryDoc[] = [];
        for (let i = offset; i < Math.min(ROWS, offset + INSERT_BATCH); i++) docs.push(attemptDoc(i, ROWS));
        await models.LogEntry.insertMany(docs, { ordered: false, lean: true });
      }
      console.log(`seeded in ${((Date.now() - seedStart) / 1000).toFixed(1)} s`);
    }
    const db = connection.db!;
    const build = await db.admin().command({ buildInfo: 1 });
    console.log(`server: ${String(build.version)}${build.ferretdbVersion ? ` (FerretDB ${String(build.ferretdbVersion)})` : ''}`);

    const phases: Array<{ title: string; before?: () => Promise<void> }> = [];
    // BENCH_SKIP_BTREE=1: only the plans with containment indexes (the btree-only ones are full scans).
    if (external || !process.env.BENCH_SKIP_BTREE) phases.push({ title: external ? 'MongoDB' : 'FerretDB, with the indexes FerretDB makes (btree)' });
    // PostgreSQL's planner needs statistics of the new rows.
    if (store?.pgUrl) await runSql(store.pgUrl, 'ANALYZE');
    if (store?.pgUrl) {
      const pgUrl = store.pgUrl;
      phases.push({
        title: 'FerretDB, with containment indexes (GIN, deploy/local/ferretdb-indexes.ts)',
        before: async () => {
          const count = await addContainmentIndexes(pgUrl, new URL(url).pathname.slice(1), equalityFields(models));
          await runSql(pgUrl, 'ANALYZE');
          console.log(`\n(${count} containment indexes added; ANALYZE)`);
        },
      });
    }
    for (const phase of phases) {
      await phase.before?.();
      console.log(`\n# ${phase.title}`);
      await explainAll(collection);
    }
  } finally {
    await connection.close();
    if (store) await stopInfra();
  }
}

async function runSql(pgUrl: string, sql: string): Promise<void> {
  const client = new PgClient({ connectionString: pgUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

async function explainAll(collection: Collection): Promise<void> {
    for (const shape of SHAPES) {
      const q = buildAttemptQuery(shape.filters, shape.cursor);
      const find = () => collection.find(q.filter, { sort: q.sort, hint: q.hint, limit: PAGE });
      const explain = (await find().explain('executionStats')) as Record<string, unknown>;
      const times: number[] = [];
      let count = 0;
      for (let run = 0; run < RUNS; run++) {
        const t = performance.now();
        count = (await find().toArray()).length;
        times.push(performance.now() - t);
        // A full scan of a big collection: three runs tell enough.
        if (run === 2 && median(times) > 3_000) break;
      }
      console.log(`\n## ${shape.name}`);
      console.log(`filter: ${JSON.stringify(q.filter)}`);
      console.log(`hint:   ${JSON.stringify(q.hint)}; sort ${JSON.stringify(q.sort)}; limit ${PAGE}`);
      for (const line of summarise(explain)) console.log(`  ${line}`);
      console.log(`  page of ${count}: median ${median(times).toFixed(1)} ms over ${times.length} runs (min ${Math.min(...times).toFixed(1)}, max ${Math.max(...times).toFixed(1)})`);
    }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
