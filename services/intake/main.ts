/** Entry point of the intake service: config → store → Temporal client → HTTP. */
import { tracing } from '../tracing-boot';
import { createKinds, createRegistry } from '../../activities/registry';
import { providerSettings } from '../../activities/providers';
import { loadConfig } from '../../shared/config';
import { EncryptionCodec } from '../../shared/codec';
import { parseKeyRing } from '../../shared/crypto';
import { parseDuration } from '../../shared/durations';
import { createOutbound } from '../../shared/http/outbound';
import { listen } from '../../shared/http/express';
import { createLogger } from '../../shared/logger';
import { connectStore } from '../../shared/store';
import { connectClient } from '../../shared/temporal';
import { runService } from '../run';
import { createApp } from './app';
import { returnSettings } from './returns';

runService('intake', async (logger) => {
  const config = loadConfig();
  const returns = returnSettings(config);
  const credentials = parseKeyRing(config.CREDENTIALS_KEYS, 'CREDENTIALS_KEYS');
  const { connection: store, models } = await connectStore(config.MONGO_URL);
  // Lazy: intake starts (and answers 503) even while Temporal is still coming up.
  const { client, connection } = await connectClient(config, { lazy: true, interceptors: tracing.clientInterceptors });
  const app = createApp({
    client,
    store,
    models,
    registry: createRegistry({
      outbound: createOutbound({ allow: config.OUTBOUND_ALLOW }),
      logger,
      kinds: createKinds({ providers: providerSettings(config), models, logger }),
    }),
    credentials,
    logger,
    adminToken: config.ADMIN_TOKEN,
    deliveryTaskQueue: config.DELIVERY_TASK_QUEUE,
    logTaskQueue: config.LOG_TASK_QUEUE,
    bodyLimit: config.INTAKE_BODY_LIMIT,
    ratePerMinute: config.INTAKE_RATE_LIMIT,
    temporalTimeoutMs: parseDuration(config.TEMPORAL_CALL_TIMEOUT),
    providers: providerSettings(config),
    deadLetterRetentionMs: parseDuration(config.DEAD_LETTER_RETENTION),
    horizonSlackMs: parseDuration(config.STUCK_HORIZON_SLACK),
    stuckNotStartedAfterMs: parseDuration(config.STUCK_NOT_STARTED_AFTER),
    codec: EncryptionCodec.fromSpec(config.PAYLOAD_KEYS),
    codecToken: config.CODEC_TOKEN,
    codecCorsOrigins: config.CODEC_CORS_ORIGINS.split(',').map((o) => o.trim()).filter(Boolean),
    metricsToken: config.METRICS_TOKEN,
    returns,
    links: { logUrl: config.LOG_PUBLIC_URL || `http://${config.HOST === '0.0.0.0' ? '127.0.0.1' : config.HOST}:${config.LOG_PORT}`, temporalUiUrl: config.TEMPORAL_UI_URL, namespace: config.TEMPORAL_NAMESPACE },
  });
  const server = await listen(app, config.INTAKE_PORT, config.HOST);
  logger.info({ url: `http://${config.HOST}:${server.port}`, metrics: `http://${config.HOST}:${server.port}/metrics` }, 'intake listening');
  return async () => {
    // Readiness turns 503, no new connections; requests in flight (a lead being accepted) may finish.
    await server.close(parseDuration(config.HTTP_DRAIN_TIMEOUT));
    await connection.close();
    await store.close();
    await tracing.shutdown();
  };
}, createLogger({ name: 'intake' }));
