/**
 * One whole delivery system for a test file, in-process, on real servers: intake and log
 * services over real HTTP (port 0), the delivery and log workers on their own task queues,
 * and a Mongo database of its own.
 */
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, NativeConnection, type Worker, type WorkflowBundle } from '@temporalio/worker';
import type { Connection as MongoConnection } from 'mongoose';
import { Writable } from 'node:stream';
import { createKinds, createRegistry } from '../../activities/registry';
import { defaultProviderSettings, type ProviderSettings } from '../../activities/providers';
import { generateKeySpec, parseKeyRing } from '../../shared/crypto';
import { createOutbound, type Resolver } from '../../shared/http/outbound';
import { rememberSecret, rememberSecretsIn } from './secrets';
import { listen } from '../../shared/http/express';
import { createLogger, type Logger } from '../../shared/logger';
import { connectStore, equalityFields, type Models } from '../../shared/store';
import { addContainmentIndexes } from '../../deploy/local/ferretdb-indexes';
import { installWorkerRuntime } from '../../shared/worker-runtime';
import { dataConverter, EncryptionCodec, FAILURE_CONVERTER_PATH } from '../../shared/codec';
import { leadWorkflowId, type LeadView } from '../../shared/delivery';
import { leadStatusQuery } from '../../workflows/messages';
import { createApp } from '../../services/intake/app';
import { createLogApp } from '../../services/log/app';
import { createLogDeps, type LogDeps } from '../../services/log/deps';
import { generateReceiptKeySpec } from '../../services/log/receipt-signing';
import { createLogWorker } from '../../services/log/worker';
import { createDeliveryWorker } from '../../services/worker/worker';
import { sharedInfra } from './infra';

let bundle: Promise<WorkflowBundle> | undefined;
export function workflowBundle(): Promise<WorkflowBundle> {
  bundle ??= bundleWorkflowCode({ workflowsPath: require.resolve('../../workflows'), failureConverterPath: FAILURE_CONVERTER_PATH, logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error: console.error } });
  return bundle;
}

/** Every log line any service wrote during the run (tests check that no secret leaked). */
export const capturedLogLines: string[] = [];
const capture = new Writable({
  write(chunk: Buffer, _enc, done) {
    capturedLogLines.push(chunk.toString('utf8'));
    if (process.env.TEST_VERBOSE) process.stdout.write(chunk);
    done();
  },
});

export function testLogger(name: string): Logger {
  return createLogger({ name, level: process.env.TEST_LOG_LEVEL ?? 'info', destination: capture });
}

export interface HttpAnswer<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  body: T;
}

export async function http<T = Record<string, unknown>>(method: string, url: string, options: { token?: string; body?: unknown; headers?: Record<string, string>; raw?: string } = {}): Promise<HttpAnswer<T>> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined = options.raw;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] ??= 'application/json';
  }
  const response = await fetch(url, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : {};
  } catch {
    /* not JSON: keep the text */
  }
  return { status: response.status, headers: response.headers, body: parsed as T };
}

export interface SystemOptions {
  temporalAddress?: string;
  /** Intake's Temporal client connects here instead (a fault-injecting proxy); the workers keep temporalAddress. */
  intakeTemporalAddress?: string;
  /** Wraps intake's Temporal client (fault injection where no real fault will do). */
  wrapIntakeClient?: (client: Client) => Client;
  mongoUrl?: string;
  /** Start without the delivery worker (tests that start it later, or as a child process). */
  deliveryWorker?: boolean;
  outboundAllow?: string;
  /** Replaces DNS for buyer URLs (SSRF tests: a public-looking name that resolves to a private address). */
  outboundResolve?: Resolver;
  bodyLimit?: string;
  ratePerMinute?: number;
  temporalTimeoutMs?: number;
  deadLetterRetentionMs?: number;
  /** Margin over a lead's horizon before it is stuck (default 1 min). */
  horizonSlackMs?: number;
  /** A lead with no recorded progress this long after its start is stuck (default 2 min). */
  stuckNotStartedAfterMs?: number;
  /** Intake's port (0: any); the UI test wires the dev server's codec endpoint to it. */
  intakePort?: number;
  codecToken?: string;
  codecCorsOrigins?: string[];
  /** Receipt signing keys (tests of rotation pass their own). */
  receiptKeys?: string;
  /** Payload codec keys (replay fixtures use fixed ones so stored histories stay readable). */
  payloadKeys?: string;
  /** Provider base URLs and credentials (point the SDKs at the fakes). */
  providers?: Partial<ProviderSettings>;
}

export interface TestSystem {
  intakeUrl: string;
  logUrl: string;
  adminToken: string;
  credentialsKeys: string;
  payloadKeys: string;
  codecToken: string;
  mongoUrl: string;
  temporalAddress: string;
  deliveryTaskQueue: string;
  logTaskQueue: string;
  client: Client;
  models: Models;
  store: MongoConnection;
  /** The log service's dependencies (lead keys, signer, lookup key). */
  log: LogDeps;
  admin<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<HttpAnswer<T>>;
  createSource(name?: string): Promise<{ id: string; apiKey: string }>;
  /**
   * A buyer; its duplicateWindow is "0s" unless given: the tests deliver the same sample person to
   * one buyer many times (CRM upserts, retries, searches). test/e2e/buyer-controls.test.ts tests the check.
   */
  createBuyer(options?: { name?: string; accept?: 'all' | 'any'; duplicateWindow?: string }): Promise<string>;
  addEndpoint(buyerId: string, body: Record<string, unknown>): Promise<Record<string, unknown> & { id: string }>;
  setWaterfall(sourceId: string, buyers: string[]): Promise<void>;
  /** A fresh source whose waterfall is one new buyer with these endpoints. */
  route(endpoints: Array<Record<string, unknown>>, buyer?: { accept?: 'all' | 'any'; name?: string }): Promise<{ source: { id: string; apiKey: string }; buyerId: string; endpoints: Array<Record<string, unknown> & { id: string }> }>;
  postLead(apiKey: string, body: unknown, headers?: Record<string, string>): Promise<HttpAnswer>;
  leadState(leadId: string): Promise<LeadView>;
  waitForLead(leadId: string, until: (view: LeadView) => boolean, timeoutMs?: number): Promise<LeadView>;
  attempts(leadId: string): Promise<Array<Record<string, unknown>>>;
  startDeliveryWorker(): Promise<void>;
  stopDeliveryWorker(): Promise<void>;
  stop(): Promise<void>;
}

export async function startSystem(options: SystemOptions = {}): Promise<TestSystem> {
  const infra = options.temporalAddress && options.mongoUrl ? undefined : await sharedInfra();
  const temporalAddress = options.temporalAddress ?? infra!.temporalAddress;
  const suffix = randomBytes(4).toString('hex');
  const mongoUrl = options.mongoUrl ?? `${infra!.mongoBase}/t_${suffix}`;
  const adminToken = `admin-${randomBytes(16).toString('hex')}`;
  const credentialsKeys = generateKeySpec('test1');
  const payloadKeys = options.payloadKeys ?? generateKeySpec('pk1');
  const converter = dataConverter(payloadKeys);
  const codecToken = options.codecToken ?? `codec-${randomBytes(12).toString('hex')}`;
  const credentials = parseKeyRing(credentialsKeys);
  const deliveryTaskQueue = `delivery-${suffix}`;
  const logTaskQueue = `log-${suffix}`;
  const logger = testLogger('test');
  installWorkerRuntime(logger);

  const { connection: store, models } = await connectStore(mongoUrl);
  // As `npm start` does on FerretDB: PostgreSQL indexes its equality filters can use.
  if (infra?.pgUrl && !options.mongoUrl) await addContainmentIndexes(infra.pgUrl, `t_${suffix}`, equalityFields(models));
  const connection = await Connection.connect({ address: temporalAddress });
  const client = new Client({ connection, dataConverter: converter });
  const intakeConnection = options.intakeTemporalAddress ? await Connection.connect({ address: options.intakeTemporalAddress }) : undefined;
  const intakeBase = intakeConnection ? new Client({ connection: intakeConnection, dataConverter: converter }) : client;
  const intakeClient = options.wrapIntakeClient ? options.wrapIntakeClient(intakeBase) : intakeBase;
  const nativeConnection = await NativeConnection.connect({ address: temporalAddress });
  const outbound = createOutbound({ allow: options.outboundAllow ?? '127.0.0.0/8,::1/128', ...(options.outboundResolve ? { resolve: options.outboundResolve } : {}) });
  for (const secret of [adminToken, credentialsKeys, payloadKeys, codecToken]) rememberSecret(secret);
  const providers = defaultProviderSettings(options.providers);
  const registry = createRegistry({ outbound, logger, kinds: createKinds({ providers, models, logger }) });

  const logKeys = { LOG_KEYS: generateKeySpec('log1'), LOOKUP_KEY: `lookup-${randomBytes(16).toString('hex')}`, RECEIPT_KEYS: options.receiptKeys ?? generateReceiptKeySpec('rcpt1') };
  for (const secret of Object.values(logKeys)) rememberSecret(secret);
  const logDeps = createLogDeps({ ADMIN_TOKEN: adminToken, PII_RETENTION: '730d', ...logKeys }, { store, models, logger: testLogger('log') });
  const logApp = await listen(createLogApp(logDeps), 0, '127.0.0.1');
  const logUrl = `http://127.0.0.1:${logApp.port}`;
  const intake = await listen(
    createApp({
      client: intakeClient,
      store,
      models,
      registry,
      credentials,
      logger: testLogger('intake'),
      adminToken,
      deliveryTaskQueue,
      logTaskQueue,
      bodyLimit: options.bodyLimit ?? '64kb',
      ratePerMinute: options.ratePerMinute ?? 100_000,
      temporalTimeoutMs: options.temporalTimeoutMs ?? 3_000,
      deadLetterRetentionMs: options.deadLetterRetentionMs ?? 30 * 86_400_000,
      ...(options.horizonSlackMs !== undefined ? { horizonSlackMs: options.horizonSlackMs } : {}),
      ...(options.stuckNotStartedAfterMs !== undefined ? { stuckNotStartedAfterMs: options.stuckNotStartedAfterMs } : {}),
      providers,
      codec: EncryptionCodec.fromSpec(payloadKeys),
      codecToken,
      codecCorsOrigins: options.codecCorsOrigins ?? ['http://127.0.0.1:8233'],
      links: { logUrl, temporalUiUrl: 'http://127.0.0.1:8233', namespace: 'default' },
    }),
    options.intakePort ?? 0,
    '127.0.0.1',
  );
  const logWorker = await createLogWorker({ connection: nativeConnection, taskQueue: logTaskQueue, deps: logDeps, dataConverter: converter });
  const logRunning = logWorker.run();

  let deliveryWorker: Worker | undefined;
  let deliveryRunning: Promise<void> | undefined;
  const startDeliveryWorker = async () => {
    if (deliveryWorker) return;
    deliveryWorker = await createDeliveryWorker({
      connection: nativeConnection,
      taskQueue: deliveryTaskQueue,
      dataConverter: converter,
      deps: { models, credentials, registry, logger: testLogger('worker'), client, lookupKey: logKeys.LOOKUP_KEY, ...(options.stuckNotStartedAfterMs !== undefined ? { stuckNotStartedAfterMs: options.stuckNotStartedAfterMs } : {}) },
      workflowBundle: await workflowBundle(),
    });
    deliveryRunning = deliveryWorker.run();
  };
  const stopDeliveryWorker = async () => {
    if (!deliveryWorker) return;
    deliveryWorker.shutdown();
    await deliveryRunning;
    deliveryWorker = undefined;
  };
  if (options.deliveryWorker !== false) await startDeliveryWorker();

  const intakeUrl = `http://127.0.0.1:${intake.port}`;
  const admin = <T,>(method: string, path: string, body?: unknown) => http<T>(method, `${intakeUrl}/v1/admin${path}`, { token: adminToken, ...(body !== undefined ? { body } : {}) });

  const system: TestSystem = {
    intakeUrl,
    logUrl,
    adminToken,
    credentialsKeys,
    payloadKeys,
    codecToken,
    mongoUrl,
    temporalAddress,
    deliveryTaskQueue,
    logTaskQueue,
    client,
    models,
    store,
    log: logDeps,
    admin,
    async createSource(name = 'test source') {
      const res = await admin<{ id: string; apiKey: string }>('POST', '/sources', { name });
      if (res.status !== 201) throw new Error(`create source: ${res.status} ${JSON.stringify(res.body)}`);
      rememberSecret(res.body.apiKey);
      return res.body;
    },
    async createBuyer({ name = 'test buyer', accept, duplicateWindow = '0s' } = {}) {
      const res = await admin<{ id: string }>('POST', '/buyers', { name, duplicateWindow, ...(accept ? { accept } : {}) });
      if (res.status !== 201) throw new Error(`create buyer: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body.id;
    },
    async addEndpoint(buyerId, body) {
      rememberSecretsIn(body);
      const res = await admin<Record<string, unknown> & { id: string }>('POST', `/buyers/${buyerId}/endpoints`, body);
      rememberSecretsIn(res.body);
      if (res.status !== 201) throw new Error(`add endpoint: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    },
    async setWaterfall(sourceId, buyers) {
      const res = await admin('PUT', `/sources/${sourceId}/waterfall`, { buyers });
      if (res.status !== 200) throw new Error(`waterfall: ${res.status} ${JSON.stringify(res.body)}`);
    },
    async route(endpoints, buyer = {}) {
      const source = await system.createSource();
      const buyerId = await system.createBuyer(buyer);
      const created = [];
      for (const endpoint of endpoints) created.push(await system.addEndpoint(buyerId, endpoint));
      await system.setWaterfall(source.id, [buyerId]);
      return { source, buyerId, endpoints: created };
    },
    postLead: (apiKey, body, headers) => http('POST', `${intakeUrl}/v1/leads`, { token: apiKey, body, ...(headers ? { headers } : {}) }),
    leadState: (leadId) => client.workflow.getHandle(leadWorkflowId(leadId)).query(leadStatusQuery),
    async waitForLead(leadId, until, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      let last: LeadView | undefined;
      while (Date.now() < deadline) {
        try {
          last = await system.leadState(leadId);
          // A terminal lead counts once its journal is written too: what it says is then in the delivery log.
          const settled = !['delivered', 'dead_lettered', 'discarded'].includes(last.status) || (last.journal?.pending ?? 0) === 0;
          if (until(last) && settled) return last;
        } catch (error) {
          if (!/not found|no worker|query/i.test(String(error))) throw error;
        }
        await new Promise((r) => setTimeout(r, 150));
      }
      throw new Error(`lead ${leadId} did not reach the expected state in ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
    },
    async attempts(leadId) {
      const res = await http<{ items: Array<Record<string, unknown>> }>('GET', `${logUrl}/v1/leads/${leadId}/attempts`, { token: adminToken });
      return res.status === 200 ? res.body.items : [];
    },
    startDeliveryWorker,
    stopDeliveryWorker,
    async stop() {
      await stopDeliveryWorker();
      logWorker.shutdown();
      await logRunning;
      await intake.close();
      await logApp.close();
      await connection.close();
      await intakeConnection?.close();
      await nativeConnection.close();
      await store.close();
    },
  };
  return system;
}

/** Polls until `check` returns a value (not undefined) or the time is up. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 30_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} not reached within ${timeoutMs} ms${lastError instanceof Error ? `: ${lastError.message}` : ''}`);
}
