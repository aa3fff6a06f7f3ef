import { Worker, type NativeConnection, type WorkerOptions, type WorkflowBundle } from '@temporalio/worker';
import type { DataConverter } from '@temporalio/common';
import { createActivities } from '../../activities';
import type { DeliveryDeps } from '../../activities/delivery';

/** The delivery worker: hosts workflows/ and the endpoint-kind activities on the delivery task queue. */
export async function createDeliveryWorker(options: {
  connection: NativeConnection;
  /** Encrypts every payload (shared/codec.ts); the same keys as the clients'. */
  dataConverter: DataConverter;
  namespace?: string;
  taskQueue: string;
  deps: DeliveryDeps;
  /** Pre-built workflow bundle (tests build it once); otherwise bundled from workflows/. */
  workflowBundle?: WorkflowBundle;
  /** The sticky cache's size (WORKER_CACHED_WORKFLOWS). */
  maxCachedWorkflows?: number;
  /** Running activities may finish this long at shutdown (SHUTDOWN_GRACE, ms). */
  shutdownGraceMs?: number;
  /** Tracing (shared/tracing.ts): workflow and activity interceptors, the workflow span sink. */
  plugins?: WorkerOptions['plugins'];
}): Promise<Worker> {
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace ?? 'default',
    taskQueue: options.taskQueue,
    dataConverter: options.dataConverter,
    ...(options.workflowBundle ? { workflowBundle: options.workflowBundle } : { workflowsPath: require.resolve('../../workflows') }),
    activities: createActivities(options.deps),
    maxConcurrentActivityTaskExecutions: 200,
    maxCachedWorkflows: options.maxCachedWorkflows ?? 200,
    ...(options.shutdownGraceMs !== undefined ? { shutdownGraceTime: options.shutdownGraceMs } : {}),
    ...(options.plugins?.length ? { plugins: options.plugins } : {}),
  });
}
