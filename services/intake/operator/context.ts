/** What the operator use cases share: the store, Temporal (every call under one deadline), settings. */
import type { Client } from '@temporalio/client';
import type { KeyRing } from '../../../shared/crypto';
import type { Models } from '../../../shared/store';
import type { Registry } from '../../../activities/registry';

export interface OperatorDeps {
  models: Models;
  client: Client;
  registry: Registry;
  credentials: KeyRing;
  deliveryTaskQueue: string;
  temporalTimeoutMs: number;
  /** A lead that recorded no progress this long after its start is stuck. */
  stuckNotStartedAfterMs: number;
}

export interface OperatorContext extends OperatorDeps {
  /** Runs one Temporal call under the configured deadline. */
  withDeadline: <T>(fn: () => Promise<T>) => Promise<T>;
}

export function operatorContext(deps: OperatorDeps): OperatorContext {
  return { ...deps, withDeadline: (fn) => deps.client.connection.withDeadline(Date.now() + deps.temporalTimeoutMs, fn) };
}
