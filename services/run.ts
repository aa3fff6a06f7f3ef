/**
 * Process lifecycle shared by every service's main.ts: start, log readiness, stop cleanly on
 * SIGINT/SIGTERM, log and exit non-zero on a fatal error.
 */
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
