/**
 * Child process for test/e2e/worker-exit.test.ts: a real Temporal worker (activities only) under
 * superviseWorker, on the Temporal server at argv[2]. After it polls, something other than the
 * process's own stop shuts the worker down (argv[3] = "shutdown") or the process is asked to stop
 * (argv[3] = "sigterm", through runService as the services do).
 */
import { NativeConnection, Worker } from '@temporalio/worker';
import { createLogger } from '../../../shared/logger';
import { installWorkerRuntime } from '../../../shared/worker-runtime';
import { runService, superviseWorker } from '../../../services/run';

const [address, mode] = [process.argv[2] ?? '127.0.0.1:7233', process.argv[3] ?? 'shutdown'];

runService('failing-worker', async (logger) => {
  installWorkerRuntime(logger); // as the services do: the SDK's own signal handlers off
  const connection = await NativeConnection.connect({ address });
  const worker = await Worker.create({ connection, taskQueue: `exit-test-${process.pid}`, activities: { noop: () => Promise.resolve() } });
  const supervised = superviseWorker(worker, logger, 'test worker');
  while (worker.getState() !== 'RUNNING') await new Promise((r) => setTimeout(r, 20));
  console.log('READY');
  // The worker stops although nobody asked the process to: as a fatal poll error would stop it.
  if (mode === 'shutdown') setTimeout(() => worker.shutdown(), 200);
  return async () => {
    await supervised.stop();
    await connection.close();
  };
}, createLogger({ name: 'failing-worker' }));
