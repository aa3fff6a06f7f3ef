/**
 * Routes the Temporal SDK's own logs (worker, core) into pino, once per process.
 */
import { DefaultLogger, Runtime, type LogEntry } from '@temporalio/worker';
import type { Logger } from './logger';

let installed = false;

export function installRuntimeLogger(logger: Logger): void {
  if (installed) return;
  installed = true;
  const forward = (entry: LogEntry) => {
    // The log service's worker hosts activities only, by design: not worth a warning.
    if (entry.message.startsWith('No workflows registered')) return;
    const meta = entry.meta ?? {};
    const level = entry.level.toLowerCase() as 'trace' | 'debug' | 'info' | 'warn' | 'error';
    logger[level === 'trace' ? 'trace' : level]({ ...meta, sdk: true }, entry.message);
  };
  const level = (process.env.TEMPORAL_LOG_LEVEL as 'INFO' | undefined) ?? 'WARN';
  Runtime.install({
    logger: new DefaultLogger(level, forward),
    // Core (Rust) logs are forwarded into the same pino logger instead of raw stderr lines.
    telemetryOptions: { logging: { filter: { core: level, other: 'ERROR' }, forward: {} } },
  });
}
