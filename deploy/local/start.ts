/**
 * `npm start`: the whole system on one machine with embedded defaults and no manual step.
 *   Temporal dev server (SQLite file under .data/, Web UI, search attributes registered), or with
 *   TEMPORAL_MODE=server the Temporal server on the local PostgreSQL plus the UI server
 *   MongoDB-compatible store: MONGO_URL when given, else FerretDB on the local PostgreSQL
 *   log service, delivery worker(s), intake service (child processes, logs under .data/logs/)
 * Every process is supervised: one that dies is restarted with backoff (deploy/local/supervisor.ts),
 * and .data/status.json says what runs. Prints the URLs, the admin token and the demo source's key.
 * Ctrl-C stops everything; the next `npm start` finds the leads and timers of this one.
 *
 * The work is done by startLocalSystem (deploy/local/system.ts); this file maps the environment to
 * its options.
 */
import path from 'node:path';
import { DEFAULT_PORTS, LocalSystemAbortedError, LocalSystemStartError, startLocalSystem, type LocalSystem, type SecretOverrides, type TemporalMode } from './system';

const ROOT = path.resolve(__dirname, '../..');
const env = process.env;

function say(message: string): void {
  process.stdout.write(`${message}\n`);
}

function port(name: string, fallback: number): number {
  const value = env[name];
  if (value === undefined || value === '') return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0 || parsed > 65535) throw new Error(`${name} must be a port number (got "${value}")`);
  return parsed;
}

function workerCount(): number {
  const value = env.DELIVERY_WORKERS;
  if (value === undefined || value === '') return 1;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1 || parsed > 64) throw new Error(`DELIVERY_WORKERS must be a whole number from 1 to 64 (got "${value}")`);
  return parsed;
}

function temporalMode(): TemporalMode {
  const value = env.TEMPORAL_MODE;
  if (value === undefined || value === '' || value === 'dev') return 'dev';
  if (value === 'server') return 'server';
  throw new Error(`TEMPORAL_MODE must be "dev" (the dev server, default) or "server" (the Temporal server on PostgreSQL); got "${value}"`);
}

function historyShards(): number | undefined {
  const value = env.TEMPORAL_HISTORY_SHARDS;
  if (value === undefined || value === '') return undefined;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1 || parsed > 16384) throw new Error(`TEMPORAL_HISTORY_SHARDS must be a whole number from 1 to 16384 (got "${value}")`);
  return parsed;
}

function secretOverrides(): SecretOverrides {
  const pick = (name: string) => (env[name] ? env[name] : undefined);
  const overrides: SecretOverrides = {
    adminToken: pick('ADMIN_TOKEN'),
    credentialsKeys: pick('CREDENTIALS_KEYS'),
    payloadKeys: pick('PAYLOAD_KEYS'),
    codecToken: pick('CODEC_TOKEN'),
    logKeys: pick('LOG_KEYS'),
    lookupKey: pick('LOOKUP_KEY'),
    receiptKeys: pick('RECEIPT_KEYS'),
  };
  return Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
}

async function main(): Promise<void> {
  const abort = new AbortController();
  let system: LocalSystem | undefined;
  let stopping = false;
  const onSignal = () => {
    if (stopping) return;
    stopping = true;
    // Started: stop in order. Still starting: the abort stops what has started (main's catch exits).
    if (system) void system.stop().then(() => process.exit(0), () => process.exit(1));
    else abort.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    system = await startLocalSystem({
      dataDir: path.resolve(env.LEAD_DELIVERY_DATA ?? path.join(ROOT, '.data')),
      host: env.HOST ?? '127.0.0.1',
      ports: {
        intake: port('INTAKE_PORT', DEFAULT_PORTS.intake),
        log: port('LOG_PORT', DEFAULT_PORTS.log),
        temporal: port('TEMPORAL_PORT', DEFAULT_PORTS.temporal),
        temporalUi: port('TEMPORAL_UI_PORT', DEFAULT_PORTS.temporalUi),
        mongo: port('MONGO_PORT', DEFAULT_PORTS.mongo),
        workerHealth: port('WORKER_HEALTH_PORT', DEFAULT_PORTS.workerHealth),
        workerMetrics: port('WORKER_SDK_METRICS_PORT', DEFAULT_PORTS.workerMetrics),
        logMetrics: port('LOG_SDK_METRICS_PORT', DEFAULT_PORTS.logMetrics),
      },
      ...(env.PG_URL ? { pgUrl: env.PG_URL } : {}),
      ...(env.PG_DATABASE ? { pgDatabase: env.PG_DATABASE } : {}),
      temporalMode: temporalMode(),
      temporalServer: {
        ...(env.TEMPORAL_PG_DATABASE ? { database: env.TEMPORAL_PG_DATABASE } : {}),
        ...(historyShards() ? { numHistoryShards: historyShards() } : {}),
      },
      ...(env.TEMPORAL_ADDRESS ? { temporalAddress: env.TEMPORAL_ADDRESS } : {}),
      ...(env.TEMPORAL_UI_URL ? { temporalUiUrl: env.TEMPORAL_UI_URL } : {}),
      ...(env.MONGO_URL ? { mongoUrl: env.MONGO_URL } : {}),
      workers: workerCount(),
      baseEnv: env,
      secrets: secretOverrides(),
      signal: abort.signal,
    });
  } catch (error) {
    if (error instanceof LocalSystemAbortedError) process.exit(0);
    // LocalSystemStartError was said already, and what had started is stopped.
    if (!(error instanceof LocalSystemStartError)) say(`\nStart failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
}

void main();
