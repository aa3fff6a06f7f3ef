/**
 * The Temporal SDK's runtime, once per process: its own logs (worker, core) routed into pino, and
 * optionally its own worker metrics served for Prometheus (GET /metrics on `metricsPort`).
 */
import { DefaultLogger, Runtime, type LogEntry, type TelemetryOptions } from '@temporalio/worker';
import type { Logger } from './logger';

let installed = false;

export interface WorkerRuntimeOptions {
  /** Serve the SDK's metrics (temporal_* names, durations in ms) on this port; 0 or absent: off. */
  metricsPort?: number;
  /** Interface to bind the metrics port on (default 127.0.0.1). */
  metricsHost?: string;
}

/** Where the SDK's metrics are served, or undefined when off. */
export function sdkMetricsAddress(options: WorkerRuntimeOptions): string | undefined {
  if (!options.metricsPort) return undefined;
  const host = options.metricsHost ?? '127.0.0.1';
  return `${host.includes(':') ? `[${host}]` : host}:${options.metricsPort}`;
}

export function installWorkerRuntime(logger: Logger, options: WorkerRuntimeOptions = {}): void {
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
  const bindAddress = sdkMetricsAddress(options);
  const telemetryOptions: TelemetryOptions = {
    // Core (Rust) logs are forwarded into the same pino logger instead of raw stderr lines.
    logging: { filter: { core: level, other: 'ERROR' }, forward: {} },
    ...(bindAddress ? { metrics: { prometheus: { bindAddress } } } : {}),
  };
  // shutdownSignals: the process (services/run.ts) decides when workers shut down, in its own order
  // (HTTP drained, workers drained within SHUTDOWN_GRACE, connections closed), not the SDK's handlers.
  Runtime.install({ logger: new DefaultLogger(level, forward), telemetryOptions, shutdownSignals: [] });
  if (bindAddress) logger.info({ metrics: `http://${bindAddress}/metrics` }, 'Temporal SDK worker metrics served');
}
