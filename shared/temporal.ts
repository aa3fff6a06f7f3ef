/**
 * Temporal connection helpers: connection options read from config in one place, the client
 * used by services, and the classification of "Temporal cannot be reached" errors.
 */
import { Client, Connection, isGrpcCancelledError, isGrpcDeadlineError, isGrpcServiceError, type ConnectionLike, type WorkflowClientInterceptor } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { Config } from './config';
import { dataConverter } from './codec';

export async function connectClient(
  config: Pick<Config, 'TEMPORAL_ADDRESS' | 'TEMPORAL_NAMESPACE' | 'PAYLOAD_KEYS'>,
  options: { lazy?: boolean; /** Tracing's client interceptors (shared/tracing.ts). */ interceptors?: WorkflowClientInterceptor[] } = {},
): Promise<{ client: Client; connection: Connection }> {
  const connectionOptions = { address: config.TEMPORAL_ADDRESS, connectTimeout: 5_000 };
  const connection = options.lazy ? Connection.lazy(connectionOptions) : await Connection.connect(connectionOptions);
  const client = new Client({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    dataConverter: dataConverter(config.PAYLOAD_KEYS),
    ...(options.interceptors?.length ? { interceptors: { workflow: options.interceptors } } : {}),
  });
  return { client, connection };
}

export async function connectWorker(config: Pick<Config, 'TEMPORAL_ADDRESS'>): Promise<NativeConnection> {
  return NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
}

/** gRPC codes that mean "the server is not there / not answering": answer 503, never drop. */
const UNREACHABLE_CODES = new Set([4 /* DEADLINE_EXCEEDED */, 14 /* UNAVAILABLE */, 1 /* CANCELLED */, 8 /* RESOURCE_EXHAUSTED */]);

export function isTemporalUnreachable(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (isGrpcServiceError(e) && UNREACHABLE_CODES.has(e.code)) return true;
    if (e instanceof Error && /deadline|unavailable|ECONNREFUSED|connect|No connection established|timed out/i.test(e.message) && e.name !== 'WorkflowExecutionAlreadyStartedError') return true;
  }
  return false;
}

/** A deadline or a cancellation: the request (a start) may have reached Temporal and been applied. */
export function mayHaveStarted(error: unknown): boolean {
  if (isGrpcDeadlineError(error) || isGrpcCancelledError(error)) return true;
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (/deadline exceeded|cancelled/i.test(e.message)) return true;
  }
  return false;
}

/** Readiness: the frontend answers within the timeout. */
export async function pingTemporal(connection: ConnectionLike, timeoutMs = 2_000): Promise<boolean> {
  try {
    await connection.withDeadline(Date.now() + timeoutMs, () => connection.workflowService.getSystemInfo({}));
    return true;
  } catch {
    return false;
  }
}
