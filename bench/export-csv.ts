/**
 * Benchmark (not a test): the billing CSV export of 10⁶ attempts through the real HTTP route.
 * On a throwaway FerretDB: inserts BENCH_ROWS attempt entries (realistic records, PII sealed like
 * the log service seals it), starts the log service's app on loopback, streams
 * `GET /v1/attempts.csv` for the whole period, counts the rows that arrive (and checks their
 * order), and prints rows/s, bytes, wall time and the peak RSS of this process (sampled every
 * 100 ms; the export streams through this same process, client included) against its baseline,
 * plus FerretDB's peak RSS. Prints figures; asserts nothing.
 *
 *   npx tsx --expose-gc bench/export-csv.ts           # 10⁶ rows
 *   BENCH_ROWS=100000 npx tsx bench/export-csv.ts
 *   BENCH_TRANSFORM_ONLY=1 npx tsx bench/export-csv.ts    # the CSV transform alone, no store
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { generateKeySpec } from '../shared/crypto';
import { listen } from '../shared/http/express';
import { createLogger } from '../shared/logger';
import { connectStore, type LogEntryDoc } from '../shared/store';
import { attemptDoc, SPAN_MS, START } from './seed-attempts';
import { createLogApp } from '../services/log/app';
import { AttemptCsvTransform } from '../services/log/attempts';
import { createLogDeps } from '../services/log/deps';
import { generateReceiptKeySpec } from '../services/log/receipt-signing';
import { startStore, stopInfra } from '../test/support/infra';

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const INSERT_BATCH = Number(process.env.BENCH_INSERT_BATCH ?? 5_000);
const mib = (bytes: number) => `${(bytes / 1_048_576).toFixed(1)} MiB`;
const gc = (globalThis as { gc?: () => void }).gc;

function rssOf(pid: number): number {
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** The CSV transform alone (documents already in memory → CSV text): the service's own share of the cost. */
async function transformAlone(): Promise<void> {
  const docs = Array.from({ length: 100_000 }, (_, i) => attemptDoc(i, 100_000));
  const rounds = 5;
  const t0 = performance.now();
  let bytes = 0;
  for (let round = 0; round < rounds; round++) {
    const csv = new AttemptCsvTransform();
    csv.on('data', (chunk: Buffer | string) => (bytes += chunk.length));
    await pipeline(Readable.from(docs), csv);
  }
  const ms = performance.now() - t0;
  console.log(`CSV transform alone: ${Math.round((rounds * docs.length) / (ms / 1000)).toLocaleString('en')} rows/s (${mib(bytes / rounds)} per 100,000 rows)`);
}

async function main(): Promise<void> {
  console.log(`bench: CSV export of ${ROWS.toLocaleString('en')} attempt rows through GET /v1/attempts.csv (FerretDB on PostgreSQL)`);
  await transformAlone();
  if (process.env.BENCH_TRANSFORM_ONLY) return;
  const store = await startStore();
  const { connection, models } = await connectStore(store.url);
  try {
    // ---- seed ----------------------------------------------------------------------------------
    const seedStart = Date.now();
    for (let offset = 0; offset < ROWS; offset += INSERT_BATCH) {
      const docs: LogEntryDoc[] = [];
      for (let i = offset; i < Math.min(ROWS, offset + INSERT_BATCH); i++) docs.push(attemptDoc(i, ROWS));
      await models.LogEntry.insertMany(docs, { ordered: false, lean: true });
      if ((offset / INSERT_BATCH) % 20 === 19) process.stdout.write(`  seeded ${(offset + docs.length).toLocaleString('en')} rows (${((Date.now() - seedStart) / 1000).toFixed(0)} s)\n`);
    }
    const seedMs = Date.now() - seedStart;
    console.log(`seeded ${ROWS.toLocaleString('en')} rows in ${(seedMs / 1000).toFixed(1)} s (${Math.round(ROWS / (seedMs / 1000)).toLocaleString('en')} rows/s)`);

    // ---- the log service ------------------------------------------------------------------------
    const adminToken = `admin-${randomBytes(16).toString('hex')}`;
    const deps = createLogDeps(
      { ADMIN_TOKEN: adminToken, PII_RETENTION: '730d', LOG_KEYS: generateKeySpec('log1'), LOOKUP_KEY: `lookup-${randomBytes(16).toString('hex')}`, RECEIPT_KEYS: generateReceiptKeySpec('rcpt1') },
      { store: connection, models, logger: createLogger({ name: 'bench-log', level: 'warn' }) },
    );
    const app = await listen(createLogApp(deps), 0, '127.0.0.1');
    const url = `http://127.0.0.1:${app.port}/v1/attempts.csv?from=${new Date(START).toISOString()}&to=${new Date(START + SPAN_MS + 86_400_000).toISOString()}`;

    // ---- export ---------------------------------------------------------------------------------
    gc?.();
    await new Promise((r) => setTimeout(r, 500));
    gc?.();
    const baseline = process.memoryUsage();
    const ferretBaseline = rssOf(store.pid);
    let peakRss = baseline.rss;
    let peakHeap = baseline.heapUsed;
    let peakFerret = ferretBaseline;
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      peakRss = Math.max(peakRss, m.rss);
      peakHeap = Math.max(peakHeap, m.heapUsed);
      peakFerret = Math.max(peakFerret, rssOf(store.pid));
    }, 100);

    const t0 = performance.now();
    // node:http rather than fetch: fetch gives up when the headers take over 5 minutes, and on
    // FerretDB the first byte waits for its in-memory sort of the whole period.
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      httpGet(url, { headers: { authorization: `Bearer ${adminToken}` } }, resolve).on('error', reject);
    });
    if (response.statusCode !== 200) throw new Error(`export answered ${response.statusCode}`);
    let firstByteMs = 0;
    let bytes = 0;
    let lines = 0;
    let rest = '';
    let header = '';
    let lastAt = '';
    let outOfOrder = 0;
    const decoder = new TextDecoder();
    const sink = new Writable({
      write(chunk: Uint8Array, _encoding, done) {
        if (!firstByteMs) firstByteMs = performance.now() - t0;
        bytes += chunk.byteLength;
        const parts = (rest + decoder.decode(chunk, { stream: true })).split('\r\n');
        rest = parts.pop() ?? '';
        for (const line of parts) {
          if (lines++ === 0) {
            header = line;
            continue;
          }
          // finished_at (10th column) is the sort key: it never goes back.
          const finishedAt = line.split(',', 10)[9] ?? '';
          if (finishedAt < lastAt) outOfOrder++;
          lastAt = finishedAt;
        }
        done();
      },
    });
    for await (const chunk of response as AsyncIterable<Buffer>) {
      if (!sink.write(chunk)) await new Promise((r) => sink.once('drain', r));
    }
    await new Promise<void>((resolve) => sink.end(resolve));
    const wallMs = performance.now() - t0;
    clearInterval(sampler);
    const rows = lines - 1;

    console.log('');
    console.log(`header:        ${header}`);
    console.log(`rows received: ${rows.toLocaleString('en')} of ${ROWS.toLocaleString('en')}${rows === ROWS ? ' (all)' : ' (MISSING ROWS)'}${rest ? ' — trailing partial line!' : ''}; out of order: ${outOfOrder}`);
    console.log(`bytes:         ${bytes.toLocaleString('en')} (${mib(bytes)})`);
    console.log(`first byte:    ${(firstByteMs / 1000).toFixed(2)} s (the store reads and sorts before the first row)`);
    console.log(`wall time:     ${(wallMs / 1000).toFixed(2)} s`);
    console.log(`rows/s:        ${Math.round(rows / (wallMs / 1000)).toLocaleString('en')} overall, ${Math.round(rows / ((wallMs - firstByteMs) / 1000)).toLocaleString('en')} once streaming`);
    console.log(`node RSS:      baseline ${mib(baseline.rss)}, peak ${mib(peakRss)} (+${mib(peakRss - baseline.rss)}); heap used baseline ${mib(baseline.heapUsed)}, peak ${mib(peakHeap)}${gc ? '' : ' (run with --expose-gc for a settled baseline)'}`);
    console.log(`FerretDB RSS:  baseline ${mib(ferretBaseline)}, peak ${mib(peakFerret)} (FerretDB 1.x sorts in its own memory: see ARCHITECTURE.md, "Queries over the log")`);
    await app.close();
  } finally {
    await connection.close();
    await stopInfra();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
