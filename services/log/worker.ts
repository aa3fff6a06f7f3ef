import { Worker, type NativeConnection } from '@temporalio/worker';
import type { DataConverter } from '@temporalio/common';
import { createLogActivities, type LogActivityDeps } from './journal';
import { createMaintenanceActivities, type MaintenanceDeps } from './maintenance';

/** The log service's worker: activities only, on the log task queue (journal writes, daily roots, retention). */
export async function createLogWorker(options: { connection: NativeConnection; namespace?: string; taskQueue: string; dataConverter: DataConverter; deps: LogActivityDeps & MaintenanceDeps }): Promise<Worker> {
  return Worker.create({
    connection: options.connection,
    dataConverter: options.dataConverter,
    namespace: options.namespace ?? 'default',
    taskQueue: options.taskQueue,
    activities: { ...createLogActivities(options.deps), ...createMaintenanceActivities(options.deps) },
    maxConcurrentActivityTaskExecutions: 100,
  });
}
