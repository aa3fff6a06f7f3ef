/**
 * `npm start`: the whole system on one machine with embedded defaults and no manual step.
 *   Temporal dev server (SQLite file under .data/, Web UI, search attributes registered)
 *   MongoDB-compatible store: MONGO_URL when given, else FerretDB on the local PostgreSQL
 *   log service, delivery worker, intake service (child processes, logs under .data/logs/)
 * Prints the URLs, the admin token and the demo source's key. Ctrl-C stops everything; the next
 * `npm start` finds the leads and timers of this one.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { generateKeySpec } from '../../shared/crypto';
import { generateReceiptKeySpec } from '../../services/log/signing';
import { startFerretDB, type MongoStore } from './ferretdb';
import { addContainmentIndexes } from './ferretdb-indexes';
import { connectStore, equalityFields } from '../../shared/models';
import { spawnManaged, type ManagedProcess } from './proc';
import { startTemporalDevServer, type TemporalDevServer } from './temporal';

const ROOT = path.resolve(__dirname, '../..');
const DATA = path.resolve(process.env.LEAD_DELIVERY_DATA ?? path.join(ROOT, '.data'));
const LOGS = path.join(DATA, 'logs');
const HOST = process.env.HOST ?? '127.0.0.1';

interface LocalSecrets {
  adminToken: string;
  credentialsKeys: string;
  payloadKeys: string;
  codecToken: string;
  logKeys: string;
  lookupKey: string;
  receiptKeys: string;
  demoSourceId?: string;
  demoApiKey?: string;
}

function say(message: string): void {
  process.stdout.write(`${message}\n`);
}

/** Secrets for local runs, generated once and kept in .data/local.json (mode 600). */
function localSecrets(): LocalSecrets & { fresh: boolean } {
  const file = path.join(DATA, 'local.json');
  const fresh = !fs.existsSync(file);
  const stored = fresh ? {} : (JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<LocalSecrets>);
  const secrets: LocalSecrets = {
    adminToken: `adm_${randomBytes(24).toString('base64url')}`,
    credentialsKeys: generateKeySpec('local1'),
    payloadKeys: generateKeySpec('payload1'),
    codecToken: `cdc_${randomBytes(24).toString('base64url')}`,
    logKeys: generateKeySpec('log1'),
    lookupKey: randomBytes(32).toString('base64url'),
    receiptKeys: generateReceiptKeySpec('receipt1'),
    ...stored,
  };
  saveSecrets(secrets);
  return { ...secrets, fresh };
}

function saveSecrets({ adminToken, credentialsKeys, payloadKeys, codecToken, logKeys, lookupKey, receiptKeys, demoSourceId, demoApiKey }: LocalSecrets): void {
  fs.mkdirSync(DATA, { recursive: true });
  const json = { adminToken, credentialsKeys, payloadKeys, codecToken, logKeys, lookupKey, receiptKeys, demoSourceId, demoApiKey };
  fs.writeFileSync(path.join(DATA, 'local.json'), JSON.stringify(json, null, 2), { mode: 0o600 });
}

const port = (name: string, fallback: number) => Number(process.env[name] ?? fallback);

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, failed?: () => string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const problem = failed?.();
    if (problem) throw new Error(`${what}: ${problem}`);
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} was not ready within ${timeoutMs / 1000}s`);
}

async function main(): Promise<void> {
  fs.mkdirSync(LOGS, { recursive: true });
  const secrets = localSecrets();
  const adminToken = process.env.ADMIN_TOKEN ?? secrets.adminToken;
  const stops: Array<() => Promise<void>> = [];
  let stopping = false;
  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    say('\nStopping…');
    for (const stop of stops.reverse()) await stop().catch((error: unknown) => say(`  stop failed: ${String(error)}`));
    say('Stopped. Data kept in ' + DATA);
    process.exit(code);
  };
  process.on('SIGINT', () => void stopAll(0));
  process.on('SIGTERM', () => void stopAll(0));

  const intakePort = port('INTAKE_PORT', 8080);
  const logPort = port('LOG_PORT', 8081);
  const uiPort = port('TEMPORAL_UI_PORT', 8233);
  const payloadKeys = process.env.PAYLOAD_KEYS ?? secrets.payloadKeys;
  const codecToken = process.env.CODEC_TOKEN ?? secrets.codecToken;
  try {
    // ---- Temporal -----------------------------------------------------------------------------
    let temporalAddress = process.env.TEMPORAL_ADDRESS;
    let uiUrl = process.env.TEMPORAL_UI_URL;
    if (!temporalAddress) {
      say('Starting the Temporal dev server…');
      const temporal: TemporalDevServer = await startTemporalDevServer({
        port: port('TEMPORAL_PORT', 7233),
        uiPort,
        dbFile: path.join(DATA, 'temporal.db'),
        // The UI decodes the encrypted payloads through the intake service's codec endpoint.
        codecEndpoint: `http://${HOST}:${intakePort}/v1/codec/t/${codecToken}`,
        logFile: path.join(LOGS, 'temporal.log'),
        log: (m) => say(`  ${m}`),
      });
      stops.push(() => temporal.stop());
      temporalAddress = temporal.address;
      uiUrl = temporal.uiUrl;
    }

    // ---- store --------------------------------------------------------------------------------
    let mongoUrl = process.env.MONGO_URL;
    let storeNote = 'MONGO_URL';
    if (!mongoUrl) {
      say('Starting FerretDB (MongoDB wire protocol) on PostgreSQL…');
      const store: MongoStore = await startFerretDB({
        port: port('MONGO_PORT', 27017),
        stateDir: path.join(DATA, 'ferretdb'),
        logFile: path.join(LOGS, 'ferretdb.log'),
        log: (m) => say(`  ${m}`),
      });
      stops.push(() => store.stop());
      mongoUrl = store.url;
      storeNote = `FerretDB (${store.handler})`;
      if (store.pgUrl) {
        // The collections and their indexes first, then PostgreSQL indexes FerretDB's queries can use.
        const { connection, models } = await connectStore(mongoUrl);
        await connection.close();
        const count = await addContainmentIndexes(store.pgUrl, new URL(mongoUrl).pathname.slice(1), equalityFields(models));
        say(`  ${count} containment indexes in place (FerretDB's equality filters use them; ARCHITECTURE.md, Queries over the log).`);
      }
    }

    // ---- services -----------------------------------------------------------------------------
    const env = {
      ...process.env,
      TEMPORAL_ADDRESS: temporalAddress,
      TEMPORAL_UI_URL: uiUrl ?? '',
      MONGO_URL: mongoUrl,
      ADMIN_TOKEN: adminToken,
      CREDENTIALS_KEYS: process.env.CREDENTIALS_KEYS ?? secrets.credentialsKeys,
      PAYLOAD_KEYS: payloadKeys,
      LOG_KEYS: process.env.LOG_KEYS ?? secrets.logKeys,
      LOOKUP_KEY: process.env.LOOKUP_KEY ?? secrets.lookupKey,
      RECEIPT_KEYS: process.env.RECEIPT_KEYS ?? secrets.receiptKeys,
      CODEC_TOKEN: codecToken,
      CODEC_CORS_ORIGINS: process.env.CODEC_CORS_ORIGINS ?? `http://127.0.0.1:${uiPort},http://localhost:${uiPort}`,
      INTAKE_PORT: String(intakePort),
      LOG_PORT: String(logPort),
      HOST,
    };
    const services: ManagedProcess[] = [];
    const startService = (name: string) => {
      const proc = spawnManaged(process.execPath, ['--require', 'tsx/cjs', path.join(ROOT, 'services', name, 'main.ts')], {
        name,
        cwd: ROOT,
        env,
        logFile: path.join(LOGS, `${name}.log`),
      });
      // Warnings and errors also reach the console; everything is in the service's log file.
      proc.child.stdout?.on('data', (chunk: Buffer) => {
        for (const line of chunk.toString('utf8').split('\n')) {
          if (/"level":"(warn|error|fatal)"/.test(line)) say(`[${name}] ${line}`);
        }
      });
      void proc.exited.then((info) => {
        if (!stopping) {
          say(`\n${name} exited unexpectedly (${info.code ?? info.signal}). Last lines:\n${proc.tail(20)}`);
          void stopAll(1);
        }
      });
      services.push(proc);
      stops.push(() => proc.stop());
      return proc;
    };
    say('Starting the log service, the delivery worker and the intake service…');
    const log = startService('log');
    const worker = startService('worker');
    const intake = startService('intake');
    const exitedEarly = () => services.find((s) => s.exitInfo())?.name;
    const ok = async (url: string) => (await fetch(url)).status === 200;
    await waitFor('log service', () => ok(`http://${HOST}:${logPort}/readyz`), 120_000, () => exitedEarly() && `${exitedEarly()} exited:\n${log.tail(20)}`);
    await waitFor('intake service', () => ok(`http://${HOST}:${intakePort}/readyz`), 120_000, () => exitedEarly() && `${exitedEarly()} exited:\n${intake.tail(20)}`);
    await waitFor('delivery worker', () => Promise.resolve(worker.tail(200).includes('delivery worker running')), 180_000, () => exitedEarly() && `${exitedEarly()} exited:\n${worker.tail(20)}`);

    // ---- seed ---------------------------------------------------------------------------------
    const intakeUrl = `http://${HOST}:${intakePort}`;
    const adminHeaders = { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' };
    const list = (await (await fetch(`${intakeUrl}/v1/admin/sources`, { headers: adminHeaders })).json()) as { items: unknown[] };
    if (list.items.length === 0) {
      const created = (await (await fetch(`${intakeUrl}/v1/admin/sources`, { method: 'POST', headers: adminHeaders, body: JSON.stringify({ name: 'demo' }) })).json()) as { id: string; apiKey: string };
      secrets.demoSourceId = created.id;
      secrets.demoApiKey = created.apiKey;
      saveSecrets(secrets);
      say(`Seeded an empty store with the demo lead source ${created.id}.`);
    } else if (secrets.fresh && !process.env.CREDENTIALS_KEYS) {
      say(`
WARNING: the store already holds sources and buyers, but ${DATA}/local.json is new: buyer
credentials sealed with the old local key cannot be decrypted and their deliveries will fail.
Restore the old .data/local.json, or start from an empty store: stop, then drop the database
(e.g. psql -h 127.0.0.1 -U postgres -c 'drop database lead_delivery') and start again.`);
    }

    say(`
Lead delivery is running.
  Intake service   ${intakeUrl}            (POST /v1/leads, GET /v1/leads/:id, /v1/admin/…)
  Log service      http://${HOST}:${logPort}            (dispute page: open it and sign in with the admin token; GET /v1/attempts, /v1/attempts.csv, /v1/leads/:id/receipt)
  Temporal UI      ${uiUrl ?? '(external Temporal: see your cluster)'}
  Temporal         ${temporalAddress}
  Store            ${storeNote}: ${mongoUrl.replace(/\/\/[^@/]*@/, '//****@')}
  Admin token      ${adminToken}
  Demo source key  ${secrets.demoApiKey ?? '(not created by this data folder)'}${secrets.demoSourceId ? `  (source ${secrets.demoSourceId})` : ''}
  Data and logs    ${DATA}
Ctrl-C stops everything; the next npm start continues where this one stopped.`);
  } catch (error) {
    say(`\nStart failed: ${error instanceof Error ? error.message : String(error)}`);
    await stopAll(1);
  }
}

void main();
