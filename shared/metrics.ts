/**
 * Prometheus metrics (prom-client), one registry per process (no global registry: tests run
 * several apps in one process), every metric of the product defined here with its labels. The
 * intake service and the log service serve theirs at `GET /metrics` on their own port; labels are
 * ids and codes, never lead data. `METRICS_TOKEN`, when set, is required as a bearer token.
 */
import type { RequestHandler } from 'express';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { tokensEqual, bearerToken } from './api-keys';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

function newRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  return registry;
}

export interface IntakeMetrics {
  registry: Registry;
  /** POST /v1/leads answered: 202 accepted, 200 duplicate, or refused with its error code. */
  leadsAccepted: Counter<'source'>;
  leadsDuplicate: Counter<'source'>;
  leadsRejected: Counter<'source' | 'reason'>;
  intakeDuration: Histogram<'outcome'>;
}

export function createIntakeMetrics(): IntakeMetrics {
  const registry = newRegistry('intake');
  const registers = [registry];
  return {
    registry,
    leadsAccepted: new Counter({ name: 'leads_accepted_total', help: 'Leads accepted (202), by source', labelNames: ['source'], registers }),
    leadsDuplicate: new Counter({ name: 'leads_duplicate_total', help: 'Lead posts answered as a duplicate of an accepted lead (200), by source', labelNames: ['source'], registers }),
    leadsRejected: new Counter({ name: 'leads_rejected_total', help: 'Lead posts refused, by source (unknown when unauthenticated) and error code', labelNames: ['source', 'reason'], registers }),
    intakeDuration: new Histogram({ name: 'lead_intake_duration_seconds', help: 'Time to answer POST /v1/leads, by outcome (accepted, duplicate, rejected)', labelNames: ['outcome'], buckets: LATENCY_BUCKETS, registers }),
  };
}

export interface LogMetrics {
  registry: Registry;
  /** Attempt records written to the journal (each once: a retried write counts nothing). */
  attempts: Counter<'kind' | 'outcome' | 'code'>;
  attemptDuration: Histogram<'kind'>;
  journalWrite: Histogram<'result'>;
}

export const BREAKER_STATES = ['closed', 'open', 'half_open'] as const;

/** Gauges read from the store when scraped: what is open now, not what happened. */
export interface StoreGauges {
  deadLettersOpen(): Promise<Record<string, number>>;
  pausedBuyers(): Promise<number>;
  breakers(): Promise<Record<string, number>>;
  /** Each endpoint's breaker as its workflow last published it (endpoints without a breaker yet: none). */
  breakerStates(): Promise<Array<{ buyerId: string; endpointId: string; state: string }>>;
  /** Age in seconds (since intake) of the least recently updated lead not yet terminal (0 when none). */
  oldestNonTerminalLeadAgeSeconds(): Promise<number>;
}

export function createLogMetrics(gauges?: StoreGauges): LogMetrics {
  const registry = newRegistry('log');
  const registers = [registry];
  if (gauges) {
    // A store that does not answer leaves a gauge at its last value rather than failing the scrape.
    const quietly = async (read: () => Promise<void>) => {
      try {
        await read();
      } catch {
        /* the store's own health is on /readyz */
      }
    };
    new Gauge({
      name: 'dead_letters_open', help: 'Dead-lettered leads waiting for an operator, by reason', labelNames: ['reason'], registers,
      async collect() {
        await quietly(async () => {
          const counts = await gauges.deadLettersOpen();
          this.reset();
          for (const [reason, count] of Object.entries(counts)) this.set({ reason }, count);
        });
      },
    });
    new Gauge({ name: 'buyers_paused', help: 'Buyers paused (by an operator or a breaker)', registers, async collect() { await quietly(async () => this.set(await gauges.pausedBuyers())); } });
    new Gauge({
      name: 'endpoint_breakers', help: 'Endpoint breakers by state (as published by their workflows)', labelNames: ['state'], registers,
      async collect() {
        await quietly(async () => {
          const counts = await gauges.breakers();
          this.reset();
          for (const [state, count] of Object.entries(counts)) this.set({ state }, count);
        });
      },
    });
    new Gauge({
      name: 'endpoint_breaker_state',
      help: "Each endpoint's breaker: 1 on its current state (closed, open, half_open), 0 on the others",
      labelNames: ['buyer', 'endpoint', 'state'], registers,
      async collect() {
        await quietly(async () => {
          const states = await gauges.breakerStates();
          this.reset();
          for (const b of states) {
            for (const state of BREAKER_STATES) this.set({ buyer: b.buyerId, endpoint: b.endpointId, state }, b.state === state ? 1 : 0);
          }
        });
      },
    });
    new Gauge({
      name: 'lead_oldest_nonterminal_age_seconds', help: 'Age (since intake) of the least recently updated lead that has not reached a terminal state', registers,
      async collect() { await quietly(async () => this.set(await gauges.oldestNonTerminalLeadAgeSeconds())); },
    });
  }
  return {
    registry,
    attempts: new Counter({ name: 'delivery_attempts_total', help: 'Delivery attempts on record, by endpoint kind, outcome class and code', labelNames: ['kind', 'outcome', 'code'], registers }),
    attemptDuration: new Histogram({ name: 'delivery_attempt_duration_seconds', help: 'Duration of a delivery attempt, by endpoint kind', labelNames: ['kind'], buckets: LATENCY_BUCKETS, registers }),
    journalWrite: new Histogram({ name: 'journal_write_duration_seconds', help: 'Time of one journal write (a batch of entries), by result', labelNames: ['result'], buckets: LATENCY_BUCKETS, registers }),
  };
}

/** `GET /metrics` in the Prometheus text format; with a token, only for `Authorization: Bearer <token>`. */
export function metricsRoute(registry: Registry, token = ''): RequestHandler {
  return (req, res, next) => {
    if (token) {
      const given = bearerToken(req.get('authorization'));
      if (!given || !tokensEqual(given, token)) {
        res.status(401).json({ error: 'unauthorized', message: 'Send the metrics token as a bearer token.' });
        return;
      }
    }
    registry.metrics().then((text) => {
      res.set('content-type', registry.contentType).send(text);
    }, next);
  };
}

/**
 * Counts the answers to POST /v1/leads (mounted before the route): accepted (202), duplicate (200),
 * or rejected with the error code of the body. The source is the authenticated caller's.
 */
export function countLeadPosts(metrics: IntakeMetrics): RequestHandler {
  return (req, res, next) => {
    if (req.method !== 'POST' || (req.path !== '/' && req.path !== '')) return next();
    const stop = metrics.intakeDuration.startTimer();
    let errorCode: string | undefined;
    const json = res.json.bind(res);
    res.json = (body: unknown) => {
      if (res.statusCode >= 400 && body && typeof body === 'object' && typeof (body as { error?: unknown }).error === 'string') errorCode = (body as { error: string }).error;
      return json(body);
    };
    res.on('finish', () => {
      const source = req.caller?.type === 'source' ? req.caller.sourceId : 'unknown';
      const outcome = res.statusCode === 202 ? 'accepted' : res.statusCode < 300 ? 'duplicate' : 'rejected';
      if (outcome === 'accepted') metrics.leadsAccepted.inc({ source });
      else if (outcome === 'duplicate') metrics.leadsDuplicate.inc({ source });
      else metrics.leadsRejected.inc({ source, reason: errorCode ?? `http_${res.statusCode}` });
      stop({ outcome });
    });
    next();
  };
}
