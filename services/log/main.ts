/** Entry point of the log service: its worker (writes the delivery log) and its read API. */
import { loadConfig } from '../../shared/config';
import { dataConverter } from '../../shared/codec';
import { listen } from '../../shared/http/express';
import { createLogger } from '../../shared/logger';
import { connectStore } from '../../shared/store';
import { connectWorker } from '../../shared/temporal';
import { installRuntimeLogger } from '../../shared/worker-runtime';
import { runService } from '../run';
import { createLogApp } from './app';
import { createLogWorker } from './worker';
import { createLogDeps } from './deps';

runService('log', async (logger) => {
  const config = loadConfig();
  installRuntimeLogger(logger);
  const { connection: store, models } = await connectStore(config.MONGO_URL);
  const deps = createLogDeps(config, { store, models, logger });
  const server = await listen(createLogApp(deps), config.LOG_PORT, config.HOST);
  logger.info({ url: `http://${config.HOST}:${server.port}`, metrics: `http://${config.HOST}:${server.port}/metrics` }, 'log service listening');
  const connection = await connectWorker(config);
  const worker = await createLogWorker({ connection, namespace: config.TEMPORAL_NAMESPACE, taskQueue: config.LOG_TASK_QUEUE, deps, dataConverter: dataConverter(config.PAYLOAD_KEYS) });
  let stopping = false;
  const running = worker.run().catch((error: unknown) => {
    if (stopping) throw error;
    // A worker that stopped polling must not leave a live process doing nothing: exit, and let the supervisor restart it.
    logger.fatal({ err: error }, 'log worker stopped unexpectedly');
    process.exit(1);
  });
  logger.info({ taskQueue: config.LOG_TASK_QUEUE }, 'log worker running');
  return async () => {
    stopping = true;
    worker.shutdown();
    await running;
    await connection.close();
    await server.close();
    await store.close();
  };
}, createLogger({ name: 'log' }));
