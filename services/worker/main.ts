/** Entry point of the delivery worker. */
import { tracing } from '../tracing-boot';
import { createKinds, createRegistry } from '../../activities/registry';
import { providerSettings } from '../../activities/providers';
import { loadConfig } from '../../shared/config';
import { dataConverter } from '../../shared/codec';
import { parseKeyRing } from '../../shared/crypto';
import { createOutbound } from '../../shared/http/outbound';
import { createLogger } from '../../shared/logger';
import { connectStore } from '../../shared/store';
import { connectClient, connectWorker } from '../../shared/temporal';
import { installWorkerRuntime } from '../../shared/worker-runtime';
import { startHealthServer } from '../../shared/http/health';
import { runService, superviseWorker } from '../run';
import { createDeliveryWorker } from './worker';
import { ensureSchedules } from './schedules';
import { parseDuration } from '../../shared/durations';

runService('worker', async (logger) => {
  const config = loadConfig();
  installWorkerRuntime(logger, { metricsPort: config.WORKER_SDK_METRICS_PORT, metricsHost: config.HOST });
  const credentials = parseKeyRing(config.CREDENTIALS_KEYS, 'CREDENTIALS_KEYS');
  const { connection: store, models } = await connectStore(config.MONGO_URL);
  const connection = await connectWorker(config);
  // The activities' own client: breakers (query, update, signal-with-start).
  const { client, connection: clientConnection } = await connectClient(config, { interceptors: tracing.clientInterceptors });
  const registry = createRegistry({
    outbound: createOutbound({ allow: config.OUTBOUND_ALLOW }),
    logger,
    kinds: createKinds({ providers: providerSettings(config), models, logger }),
  });
  const worker = await createDeliveryWorker({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.DELIVERY_TASK_QUEUE,
    dataConverter: dataConverter(config.PAYLOAD_KEYS),
    maxCachedWorkflows: config.WORKER_CACHED_WORKFLOWS,
    shutdownGraceMs: parseDuration(config.SHUTDOWN_GRACE),
    plugins: tracing.workerPlugins,
    deps: { models, credentials, registry, logger, client, stuckNotStartedAfterMs: parseDuration(config.STUCK_NOT_STARTED_AFTER), ...(config.LOOKUP_KEY ? { lookupKey: config.LOOKUP_KEY } : {}) },
  });
  await ensureSchedules(client, { taskQueue: config.DELIVERY_TASK_QUEUE, logTaskQueue: config.LOG_TASK_QUEUE, digestEveryMs: parseDuration(config.DEAD_LETTER_DIGEST_EVERY), stuckSweepEveryMs: parseDuration(config.STUCK_SWEEP_EVERY) });
  const supervised = superviseWorker(worker, logger, 'delivery worker');
  const health = await startHealthServer(
    { live: () => worker.getState() !== 'FAILED', ready: () => worker.getState() === 'RUNNING', state: () => worker.getState() },
    config.WORKER_HEALTH_PORT,
    config.HOST,
  );
  if (!config.LOOKUP_KEY) logger.warn('LOOKUP_KEY is not set: buyers are not checked for leads they already have (duplicate_at_buyer)');
  logger.info({ taskQueue: config.DELIVERY_TASK_QUEUE, health: `http://${config.HOST}:${health.port}/readyz` }, 'delivery worker running');
  return async () => {
    // /readyz answers 503 from here on (the worker is DRAINING); running activities get SHUTDOWN_GRACE.
    await supervised.stop();
    await health.close();
    await connection.close();
    await clientConnection.close();
    await store.close();
    await tracing.shutdown();
  };
}, createLogger({ name: 'worker' }));
