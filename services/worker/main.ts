/** Entry point of the delivery worker. */
import { createKinds, createRegistry } from '../../activities/registry';
import { providerSettings } from '../../activities/providers';
import { loadConfig } from '../../shared/config';
import { dataConverter } from '../../shared/codec';
import { parseKeyRing } from '../../shared/crypto';
import { createOutbound } from '../../shared/http/outbound';
import { createLogger } from '../../shared/logger';
import { connectStore } from '../../shared/store';
import { connectClient, connectWorker } from '../../shared/temporal';
import { installRuntimeLogger } from '../../shared/worker-runtime';
import { runService } from '../run';
import { createDeliveryWorker } from './worker';
import { ensureSchedules } from './schedules';
import { parseDuration } from '../../shared/durations';

runService('worker', async (logger) => {
  const config = loadConfig();
  installRuntimeLogger(logger);
  const credentials = parseKeyRing(config.CREDENTIALS_KEYS, 'CREDENTIALS_KEYS');
  const { connection: store, models } = await connectStore(config.MONGO_URL);
  const connection = await connectWorker(config);
  // The activities' own client: breakers (query, update, signal-with-start).
  const { client, connection: clientConnection } = await connectClient(config);
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
    deps: { models, credentials, registry, logger, client, stuckNotStartedAfterMs: parseDuration(config.STUCK_NOT_STARTED_AFTER) },
  });
  await ensureSchedules(client, { taskQueue: config.DELIVERY_TASK_QUEUE, logTaskQueue: config.LOG_TASK_QUEUE, digestEveryMs: parseDuration(config.DEAD_LETTER_DIGEST_EVERY), stuckSweepEveryMs: parseDuration(config.STUCK_SWEEP_EVERY) });
  let stopping = false;
  const running = worker.run().catch((error: unknown) => {
    if (stopping) throw error;
    // A worker that stopped polling must not leave a live process doing nothing: exit, and let the supervisor restart it.
    logger.fatal({ err: error }, 'delivery worker stopped unexpectedly');
    process.exit(1);
  });
  logger.info({ taskQueue: config.DELIVERY_TASK_QUEUE }, 'delivery worker running');
  return async () => {
    stopping = true;
    worker.shutdown();
    await running;
    await connection.close();
    await clientConnection.close();
    await store.close();
  };
}, createLogger({ name: 'worker' }));
