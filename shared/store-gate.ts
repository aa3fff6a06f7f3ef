/**
 * Bounded store calls for request paths that must keep working while the store does not (intake:
 * key checks, duplicate checks). mongoose buffers commands while it is disconnected and a frozen
 * server (SIGSTOP, a hung VM) never answers, so every call is raced against a short timeout. After
 * a failure the store is not asked again for a short pause: requests meanwhile take their fallback
 * at once instead of each waiting out the timeout. One warning per outage, one line when it ends.
 */
import type { Logger } from './logger';

/** The store did not answer (error, timeout, disconnected, or paused after a recent failure). */
export class StoreUnavailableError extends Error {
  constructor(readonly reason: string, options?: { cause?: unknown }) {
    super(`the store is unavailable (${reason})`, options);
    this.name = 'StoreUnavailableError';
  }
}

export interface StoreGate {
  /**
   * Runs `op` bounded by `timeoutMs` (default: the gate's). Throws StoreUnavailableError when the
   * store fails or is slow, when the connection is down, and during the pause after a failure
   * unless `force` (a caller with no fallback may still try).
   */
  run<T>(op: () => PromiseLike<T>, options?: { timeoutMs?: number; force?: boolean }): Promise<T>;
  /** Since the last failure, until the next success. */
  readonly down: boolean;
}

export interface StoreGateOptions {
  /** The mongoose connection (its readyState): a disconnected store is not asked at all. */
  connection?: { readyState: number };
  timeoutMs?: number;
  /** After a failure, skip the store this long (default 1 s). */
  pauseMs?: number;
  logger?: Logger;
  /** Who falls back (for the log line): "intake". */
  name: string;
}

const CONNECTED = 1;

export function createStoreGate(options: StoreGateOptions): StoreGate {
  const timeoutMs = options.timeoutMs ?? 500;
  const pauseMs = options.pauseMs ?? 1_000;
  let downSince: number | undefined;
  let retryAt = 0;

  const failed = (reason: string, error?: unknown): never => {
    retryAt = Date.now() + pauseMs;
    if (downSince === undefined) {
      downSince = Date.now();
      // The error's name and code only: a driver message may quote the filter.
      const cause = error instanceof Error ? (error as Error & { code?: unknown }) : undefined;
      const code = typeof cause?.code === 'number' || typeof cause?.code === 'string' ? cause.code : undefined;
      options.logger?.warn({ component: options.name, reason, ...(cause ? { errName: cause.name } : {}), ...(code !== undefined ? { errCode: code } : {}) }, `store not answering: ${options.name} serves from its fallbacks until it is back`);
    }
    throw new StoreUnavailableError(reason, { cause: error });
  };

  return {
    get down() {
      return downSince !== undefined;
    },
    async run<T>(op: () => PromiseLike<T>, runOptions: { timeoutMs?: number; force?: boolean } = {}): Promise<T> {
      if (!runOptions.force && downSince !== undefined && Date.now() < retryAt) throw new StoreUnavailableError('paused after a failure');
      if (options.connection && options.connection.readyState !== CONNECTED) return failed('disconnected');
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new StoreUnavailableError('timeout')), runOptions.timeoutMs ?? timeoutMs);
        timer.unref();
      });
      try {
        const value = await Promise.race([Promise.resolve(op()), timeout]);
        if (downSince !== undefined) {
          options.logger?.info({ component: options.name, downMs: Date.now() - downSince }, 'store answering again');
          downSince = undefined;
        }
        return value;
      } catch (error) {
        return failed(error instanceof StoreUnavailableError ? error.reason : 'error', error);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
