/** Entry point of the log service: its worker (writes the delivery log) and its read API. */
import { loadConfig } from '../../shared/config';
import { dataConverter } from '../../shared/codec';
import { listen } from '../../shared/http/express';
import { createLogger } from '../../shared/logger';
import { connectStore } from '../../shared/models';
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
  logger.info({ url: `http://${config.HOST}:${server.port}` }, 'log service listening');
  const connection = await connectWorker(config);
  const worker = await createLogWorker({ connection, namespace: config.TEMPORAL_NAMESPACE, taskQueue: config.LOG_TASK_QUEUE, deps, dataConverter: dataConverter(config.PAYLOAD_KEYS) });
  const running = worker.run();
  logger.info({ taskQueue: config.LOG_TASK_QUEUE }, 'log worker running');
  return async () => {
    worker.shutdown();
    await running;
    await connection.close();
    await server.close();
    await store.close();
  };
}, createLogger({ name: 'log' }));
