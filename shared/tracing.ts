/**
 * OpenTelemetry traces, off by default, on with the standard variables: OTEL_TRACES_EXPORTER
 * (`otlp` or `console`; `none` turns it off), OTEL_EXPORTER_OTLP_ENDPOINT or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (OTLP over HTTP, JSON), OTEL_EXPORTER_OTLP_HEADERS,
 * OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_SDK_DISABLED=true.
 *
 * One trace per lead post: the intake request (HTTP server span) → starting the lead's workflow
 * (Temporal client interceptor, context passed in the workflow's headers) → the workflow and each
 * activity (Temporal's workflow and activity interceptors, workflow spans exported through a sink)
 * → the outbound HTTP request to the buyer (node:http and fetch instrumentation). Log lines written
 * inside a span carry its `trace_id` and `span_id` (shared/logger.ts).
 *
 * services/tracing-boot.ts, the first import of each service's main.ts, calls startTracing() before
 * anything else loads node:http; main.ts takes its result.
 */
import type * as OtlpHttp from '@opentelemetry/exporter-trace-otlp-http';
import type * as InstrumentationHttp from '@opentelemetry/instrumentation-http';
import type * as InstrumentationUndici from '@opentelemetry/instrumentation-undici';
import type * as Resources from '@opentelemetry/resources';
import type * as SdkNode from '@opentelemetry/sdk-node';
import type * as SdkTraceBase from '@opentelemetry/sdk-trace-base';
import type * as TemporalOtel from '@temporalio/interceptors-opentelemetry';
import type { OpenTelemetryPlugin } from '@temporalio/interceptors-opentelemetry';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { WorkflowClientInterceptor } from '@temporalio/client';
import type { Logger } from './logger';

export interface Tracing {
  enabled: boolean;
  /** For every Temporal Client of the process (starts, signals and updates carry the trace). */
  clientInterceptors: WorkflowClientInterceptor[];
  /** For Worker.create({ plugins }): workflow and activity spans. */
  workerPlugins: OpenTelemetryPlugin[];
  /** Flushes and stops (at shutdown, after the workers stopped). */
  shutdown(): Promise<void>;
}

const OFF: Tracing = { enabled: false, clientInterceptors: [], workerPlugins: [], shutdown: () => Promise.resolve() };

/** Whether the standard variables turn traces on (pure: tested with plain objects). */
export function tracingWanted(env: Record<string, string | undefined>): 'otlp' | 'console' | undefined {
  if ((env.OTEL_SDK_DISABLED ?? '').toLowerCase() === 'true') return undefined;
  const exporter = (env.OTEL_TRACES_EXPORTER ?? '').trim().toLowerCase();
  if (exporter === 'none') return undefined;
  if (exporter === 'console') return 'console';
  if (exporter && exporter !== 'otlp') throw new Error(`OTEL_TRACES_EXPORTER: "${exporter}" is not supported here (otlp, console or none)`);
  const on = exporter === 'otlp' || Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
  const protocol = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL || env.OTEL_EXPORTER_OTLP_PROTOCOL || '').trim().toLowerCase();
  // OTLP over HTTP with JSON bodies (collectors take JSON and protobuf on the same HTTP port): a gRPC endpoint would drop every span.
  if (on && protocol === 'grpc') throw new Error('OTEL_EXPORTER_OTLP_PROTOCOL: grpc is not supported here; use http/json (port 4318 of a collector)');
  return on ? 'otlp' : undefined;
}

/** Starts the OpenTelemetry SDK when the environment asks for traces (once per process: services/tracing-boot.ts). */
export function startTracing(service: string, logger: Logger, env: Record<string, string | undefined> = process.env): Tracing {
  const wanted = tracingWanted(env);
  if (!wanted) return OFF;
  // The SDK is loaded only when traces are on (it costs start time and memory otherwise).
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http') as typeof OtlpHttp;
  const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http') as typeof InstrumentationHttp;
  const { UndiciInstrumentation } = require('@opentelemetry/instrumentation-undici') as typeof InstrumentationUndici;
  const { Resource } = require('@opentelemetry/resources') as typeof Resources;
  const { NodeSDK } = require('@opentelemetry/sdk-node') as typeof SdkNode;
  const { BatchSpanProcessor, ConsoleSpanExporter } = require('@opentelemetry/sdk-trace-base') as typeof SdkTraceBase;
  const { OpenTelemetryPlugin, OpenTelemetryWorkflowClientInterceptor } = require('@temporalio/interceptors-opentelemetry') as typeof TemporalOtel;
  /* eslint-enable @typescript-eslint/no-require-imports */
  const exporter: SpanExporter = wanted === 'console' ? new ConsoleSpanExporter() : new OTLPTraceExporter();
  const processor = new BatchSpanProcessor(exporter, { scheduledDelayMillis: 1_000 });
  const serviceName = env.OTEL_SERVICE_NAME || `lead-delivery-${service}`;
  const sdk = new NodeSDK({
    serviceName,
    spanProcessors: [processor],
    instrumentations: [
      new HttpInstrumentation({
        // Probes and scrapes are not traced; the span names the route, never a query string.
        ignoreIncomingRequestHook: (req) => /^\/(healthz|readyz|metrics)(\?|$)/.test(req.url ?? ''),
        headersToSpanAttributes: { client: { requestHeaders: [], responseHeaders: [] }, server: { requestHeaders: [], responseHeaders: [] } },
      }),
      new UndiciInstrumentation(),
    ],
  });
  sdk.start();
  const resource = new Resource({ 'service.name': serviceName });
  const plugin = new OpenTelemetryPlugin({ resource, spanProcessor: processor });
  logger.info({ exporter: wanted, serviceName }, 'OpenTelemetry traces on');
  return {
    enabled: true,
    clientInterceptors: [new OpenTelemetryWorkflowClientInterceptor()],
    workerPlugins: [plugin],
    shutdown: () => sdk.shutdown(),
  };
}
