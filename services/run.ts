/**
 * Process lifecycle shared by every service's main.ts: start, log readiness, stop cleanly on
 * SIGINT/SIGTERM, log and exit non-zero on a fatal error.
 */
import type { Worker } from '@temporalio/worker';
import type { Logger } from '../shared/logger';
import { ConfigError } from '../shared/config';

export function runService(name: string, start: (logger: Logger) => Promise<() => Promise<void>>, logger: Logger): void {
  let stop: (() => Promise<void>) | undefined;
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, `${name} stopping`);
    try {
      await stop?.();
      logger.info(`${name} stopped`);
      process.exit(0);
    } catch (error) {
      logger.error({ err: error }, `${name} did not stop cleanly`);
      process.exit(1);
    }
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled rejection'));
  start(logger).then(
    (stopFn) => {
      stop = stopFn;
      if (stopping) void stopFn();
    },
    (error: unknown) => {
      if (error instanceof ConfigError) logger.fatal(error.message);
      else logger.fatal({ err: error }, `${name} failed to start`);
      process.exit(1);
    },
  );
}

/**
 * Runs a Temporal worker for the life of the process. A worker that stops for any reason other
 * than `stop()` (its run() failed, or returned) exits the process non-zero, so that a supervisor
 * (npm start's, Docker's, Kubernetes') restarts it instead of leaving a live process doing nothing.
 */
export function superviseWorker(worker: Worker, logger: Logger, name: string): { stop: () => Promise<void> } {
  let stopping = false;
  const running = worker.run().then(
    () => {
      if (stopping) return;
      logger.fatal({ state: worker.getState() }, `${name} stopped by itself`);
      process.exit(1);
    },
    (error: unknown) => {
      if (stopping) throw error;
      logger.fatal({ err: error, state: worker.getState() }, `${name} stopped unexpectedly`);
      process.exit(1);
    },
  );
  return {
    stop: async () => {
      stopping = true;
      // Stops polling at once; running activities have the worker's shutdownGraceTime to finish.
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
    },
  };
}
