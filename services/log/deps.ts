/**
 * What the log service's worker and read API need, built from config in one place.
 */
import type { Connection } from 'mongoose';
import { ConfigError, type Config } from '../../shared/config';
import { parseKeyRing } from '../../shared/crypto';
import { parseDuration } from '../../shared/durations';
import type { Logger } from '../../shared/logger';
import type { Models } from '../../shared/store';
import { createLeadKeys, type LeadKeys } from './lead-keys';
import { createSigner, type Signer } from './receipt-signing';
import { createLogMetrics, type LogMetrics } from '../../shared/metrics';
import { storeGauges } from './gauges';

export interface LogDeps {
  store: Connection;
  models: Models;
  logger: Logger;
  adminToken: string;
  leadKeys: LeadKeys;
  signer: Signer;
  lookupKey: string;
  defaultRetentionMs: number;
  /** Prometheus metrics of this process (GET /metrics): journal writes, attempts, store gauges. */
  metrics: LogMetrics;
  /** Bearer token required by GET /metrics (open when empty). */
  metricsToken: string;
}

export function createLogDeps(config: Pick<Config, 'ADMIN_TOKEN' | 'LOG_KEYS' | 'LOOKUP_KEY' | 'RECEIPT_KEYS' | 'PII_RETENTION'> & Partial<Pick<Config, 'METRICS_TOKEN'>>, base: { store: Connection; models: Models; logger: Logger }): LogDeps {
  const missing = (['LOG_KEYS', 'LOOKUP_KEY', 'RECEIPT_KEYS'] as const).filter((name) => !config[name]);
  if (missing.length) throw new ConfigError(missing.map((name) => `${name}: required by the log service`));
  if (config.LOOKUP_KEY.length < 16) throw new ConfigError(['LOOKUP_KEY: must be at least 16 characters']);
  return {
    ...base,
    adminToken: config.ADMIN_TOKEN,
    leadKeys: createLeadKeys(base.models, parseKeyRing(config.LOG_KEYS, 'LOG_KEYS')),
    signer: createSigner(config.RECEIPT_KEYS),
    lookupKey: config.LOOKUP_KEY,
    defaultRetentionMs: parseDuration(config.PII_RETENTION),
    metrics: createLogMetrics(storeGauges(base.models)),
    metricsToken: config.METRICS_TOKEN ?? '',
  };
}
