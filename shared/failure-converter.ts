/**
 * Loaded by path (`failureConverterPath`) by clients, workers and the workflow bundle: failure
 * messages and stack traces are moved into encoded attributes, which the payload codec encrypts
 * (provider error bodies can echo PII). Deterministic and I/O-free: it runs in workflow code too.
 */
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
