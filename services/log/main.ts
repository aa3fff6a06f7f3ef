/** Entry point of the log service: its worker (writes the delivery log) and its read API. */
import { tracing } from '../tracing-boot';
import { loadConfig } from '../../shared/config';
import { dataConverter } from '../../shared/codec';
import { listen } from '../../shared/http/express';
import { createLogger } from '../../shared/logger';
import { connectStore } from '../../shared/store';
import { connectWorker } from '../../shared/temporal';
import { installWorkerRuntime } from '../../shared/worker-runtime';
import { parseDuration } from '../../shared/durations';
import { runService, superviseWorker } from '../run';
import { createLogApp } from './app';
import { createLogWorker } from './worker';
import { createLogDeps } from './deps';

runService('log', async (logger) => {
  const config = loadConfig();
  installWorkerRuntime(logger, { metricsPort: config.LOG_SDK_METRICS_PORT, metricsHost: config.HOST });
  const { connection: store, models } = await connectStore(config.MONGO_URL);
  const deps = createLogDeps(config, { store, models, logger });
  const server = await listen(createLogApp(deps), config.LOG_PORT, config.HOST);
  logger.info({ url: `http://${config.HOST}:${server.port}`, metrics: `http://${config.HOST}:${server.port}/metrics` }, 'log service listening');
  const connection = await connectWorker(config);
  const worker = await createLogWorker({ connection, namespace: config.TEMPORAL_NAMESPACE, taskQueue: config.LOG_TASK_QUEUE, deps, dataConverter: dataConverter(config.PAYLOAD_KEYS), shutdownGraceMs: parseDuration(config.SHUTDOWN_GRACE), plugins: tracing.workerPlugins });
  const supervised = superviseWorker(worker, logger, 'log worker');
  logger.info({ taskQueue: config.LOG_TASK_QUEUE }, 'log worker running');
  return async () => {
    // Readiness turns 503 and in-flight reads finish; the journal writes the worker runs get SHUTDOWN_GRACE.
    await Promise.all([server.close(parseDuration(config.HTTP_DRAIN_TIMEOUT)), supervised.stop()]);
    await connection.close();
    await store.close();
    await tracing.shutdown();
  };
}, createLogger({ name: 'log' }));
