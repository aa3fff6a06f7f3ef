import { Worker, type NativeConnection, type WorkerOptions } from '@temporalio/worker';
import type { DataConverter } from '@temporalio/common';
import { createLogActivities, type LogActivityDeps } from './journal';
import { createMaintenanceActivities, type MaintenanceDeps } from './maintenance';

/** The log service's worker: activities only, on the log task queue (journal writes, daily roots, retention). */
export async function createLogWorker(options: {
  connection: NativeConnection;
  namespace?: string;
  taskQueue: string;
  dataConverter: DataConverter;
  deps: LogActivityDeps & MaintenanceDeps;
  /** Running activities may finish this long at shutdown (SHUTDOWN_GRACE, ms). */
  shutdownGraceMs?: number;
  /** Tracing (shared/tracing.ts). */
  plugins?: WorkerOptions['plugins'];
}): Promise<Worker> {
  return Worker.create({
    connection: options.connection,
    dataConverter: options.dataConverter,
    namespace: options.namespace ?? 'default',
    taskQueue: options.taskQueue,
    activities: { ...createLogActivities(options.deps), ...createMaintenanceActivities(options.deps) },
    maxConcurrentActivityTaskExecutions: 100,
    ...(options.shutdownGraceMs !== undefined ? { shutdownGraceTime: options.shutdownGraceMs } : {}),
    ...(options.plugins?.length ? { plugins: options.plugins } : {}),
  });
}
