/**
 * Imported first by each service's main.ts, before anything else loads node:http or express:
 * starts OpenTelemetry traces when the OTEL_* variables ask for them (shared/tracing.ts), so the
 * instrumentations patch those modules before the service's code holds them. main.ts takes the
 * `tracing` it exports (client interceptors, worker plugins, shutdown).
 */
import * as path from 'node:path';
import { createLogger } from '../shared/logger';
import { startTracing, type Tracing } from '../shared/tracing';

const service = path.basename(path.dirname(require.main?.filename ?? 'service'));

function boot(): Tracing {
  try {
    return startTracing(service, createLogger({ name: service }));
  } catch (error) {
    createLogger({ name: service }).fatal({ err: error }, `${service} failed to start: ${(error as Error).message}`);
    process.exit(1);
  }
}

export const tracing = boot();
