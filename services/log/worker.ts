import { Worker, type NativeConnection } from '@temporalio/worker';
import type { DataConverter } from '@temporalio/common';
import type { Models } from '../../shared/models';
import { createLogActivities } from './journal';

/** The log service's worker: activities only, on the log task queue. */
export async function createLogWorker(options: { connection: NativeConnection; namespace?: string; taskQueue: string; models: Models; dataConverter: DataConverter }): Promise<Worker> {
  return Worker.create({
    connection: options.connection,
    dataConverter: options.dataConverter,
    namespace: options.namespace ?? 'default',
    taskQueue: options.taskQueue,
    activities: createLogActivities({ models: options.models }),
    maxConcurrentActivityTaskExecutions: 100,
  });
}
