import { AsyncLocalStorage } from 'node:async_hooks';
import { trace } from '@opentelemetry/api';
import pino, { type Logger, type DestinationStream } from 'pino';
import { redactForLog, redactText } from './redact';

/** Ids merged into every log line written inside `withLogContext` (request, lead, workflow). */
export interface LogContext {
  requestId?: string;
  leadId?: string;
  sourceId?: string;
  workflowId?: string;
  buyerId?: string;
  endpointId?: string;
}

const context = new AsyncLocalStorage<LogContext>();

export function withLogContext<T>(ctx: LogContext, fn: () => T): T {
  return context.run({ ...context.getStore(), ...ctx }, fn);
}

export function addLogContext(ctx: LogContext): void {
  const store = context.getStore();
  if (store) Object.assign(store, ctx);
}

export function currentLogContext(): LogContext {
  return context.getStore() ?? {};
}

/**
 * `trace_id` and `span_id` of the active OpenTelemetry span, for log lines (none when traces are
 * off: the API's no-op tracer has no valid span). Only the API here, never the SDK (shared/tracing.ts).
 */
export function activeTraceIds(): { trace_id?: string; span_id?: string } {
  const ctx = trace.getActiveSpan()?.spanContext();
  if (!ctx || !trace.isSpanContextValid(ctx)) return {};
  return { trace_id: ctx.traceId, span_id: ctx.spanId };
}

export interface LoggerOptions {
  name: string;
  level?: string;
  destination?: DestinationStream;
}

/**
 * pino JSON logger. Every object passes through the one redaction policy (secrets masked,
 * PII removed) and every message through the text patterns (emails, phones, bearer tokens).
 */
export function createLogger({ name, level = process.env.LOG_LEVEL ?? 'info', destination }: LoggerOptions): Logger {
  return pino(
    {
      name,
      level,
      base: { service: name },
      timestamp: pino.stdTimeFunctions.isoTime,
      mixin: () => ({ ...context.getStore(), ...activeTraceIds() }),
      formatters: {
        level: (label) => ({ level: label }),
        log: (object) => redactForLog(object),
      },
      hooks: {
        logMethod(args, method) {
          const redacted = args.map((arg) => (typeof arg === 'string' ? redactText(arg) : arg));
          return method.apply(this, redacted as Parameters<typeof method>);
        },
      },
    },
    destination,
  );
}

export type { Logger };
