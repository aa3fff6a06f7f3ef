/**
 * What an on-call engineer relies on, through the processes `npm start` runs (startLocalSystem,
 * temp data dir, free ports, a fresh PostgreSQL database), with traces on through the standard
 * OTEL_* variables and pointed at a local OTLP/HTTP collector:
 * - one trace per lead: the intake request, the lead's workflow, its activities and the outbound
 *   HTTP request to the buyer share one trace id, and the services' log lines about that lead
 *   carry it;
 * - the delivery worker's health port answers /healthz and /readyz, and the Temporal SDK's own
 *   worker metrics are served for Prometheus after a delivery;
 * - SIGTERM drains a worker and it exits 0 (a clean stop), where a crash exits non-zero.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http, { type Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { dropPgDatabase } from '../../deploy/local/ferretdb';
import { readStatusFile } from '../../deploy/local/supervisor';
import { startLocalSystem, type LocalSystem } from '../../deploy/local/system';
import { startFakeBuyer, type FakeBuyer } from '../fakes/buyer';
import { pgUrl, testTemporalMode } from '../support/infra';
import { rememberSecret } from '../support/secrets';
import { eventually, http as request } from '../support/system';

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: Array<{ key: string; value: OtlpValue }>;
}
interface CollectedSpan extends OtlpSpan {
  service: string;
}

/** A collector speaking OTLP/HTTP with JSON bodies (what @opentelemetry/exporter-trace-otlp-http sends). */
async function startCollector(): Promise<{ url: string; spans: CollectedSpan[]; close: () => Promise<void> }> {
  const spans: CollectedSpan[] = [];
  const server: Server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/traces' && /json/.test(req.headers['content-type'] ?? '')) {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          resourceSpans?: Array<{ resource?: { attributes?: Array<{ key: string; value: OtlpValue }> }; scopeSpans?: Array<{ spans?: OtlpSpan[] }> }>;
        };
        for (const rs of body.resourceSpans ?? []) {
          const service = rs.resource?.attributes?.find((a) => a.key === 'service.name')?.value.stringValue ?? '?';
          for (const ss of rs.scopeSpans ?? []) for (const span of ss.spans ?? []) spans.push({ ...span, service });
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } else {
        res.writeHead(415).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}`, spans, close: () => new Promise((r) => server.close(() => r())) };
}

const attr = (span: OtlpSpan, key: string) => {
  const v = span.attributes?.find((a) => a.key === key)?.value;
  return v?.stringValue ?? (v?.intValue !== undefined ? String(v.intValue) : undefined);
};

describe('production shape: traces, worker health and SDK metrics, graceful stop', function () {
  const database = `ld_test_production_${process.pid}_${randomBytes(3).toString('hex')}`;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lead-delivery-production-'));
  let system: LocalSystem | undefined;
  let buyer: FakeBuyer | undefined;
  let collector: Awaited<ReturnType<typeof startCollector>> | undefined;
  let source: { id: string; apiKey: string };
  let leadId = '';

  before(async function () {
    this.timeout(180_000);
    buyer = await startFakeBuyer();
    collector = await startCollector();
    system = await startLocalSystem({
      dataDir,
      ports: 'free',
      pgUrl: pgUrl(),
      pgDatabase: database,
      temporalMode: testTemporalMode(),
      temporalServer: { database: `${database}_temporal`, maxConns: 4 },
      env: { OUTBOUND_ALLOW: '127.0.0.0/8', LOG_LEVEL: 'info', OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', SHUTDOWN_GRACE: '5s' },
      seedDemoSource: false,
      quiet: true,
    });
    for (const secret of Object.values(system.secrets)) rememberSecret(secret);
    const sys = system;
    const admin = <T = Record<string, unknown>>(method: string, url: string, body?: unknown) => request<T>(method, `${sys.intakeUrl}/v1/admin${url}`, { token: sys.adminToken, ...(body !== undefined ? { body } : {}) });
    const created = await admin<{ id: string; apiKey: string }>('POST', '/sources', { name: 'production test' });
    assert.equal(created.status, 201);
    source = created.body;
    rememberSecret(source.apiKey);
    const buyerRes = await admin<{ id: string }>('POST', '/buyers', { name: 'Traced Loans' });
    const endpoint = await admin('POST', `/buyers/${buyerRes.body.id}/endpoints`, { kind: 'webhook', url: buyer.url, mapping: { email: 'email', first_name: 'first_name' } });
    assert.equal(endpoint.status, 201, JSON.stringify(endpoint.body));
    assert.equal((await admin('PUT', `/sources/${source.id}/waterfall`, { buyers: [buyerRes.body.id] })).status, 200);
  });

  after(async function () {
    this.timeout(60_000);
    await system?.stop();
    await buyer?.close();
    await collector?.close();
    for (const db of [database, `${database}_temporal`, `${database}_temporal_visibility`]) await dropPgDatabase(pgUrl(), db).catch(() => undefined);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('When a lead is delivered with traces on, then the intake request, the workflow, its activities and the request to the buyer share one trace id, and the log lines about the lead carry it', async function () {
    this.timeout(90_000);
    const sys = system!;
    const posted = await request<{ leadId: string }>('POST', `${sys.intakeUrl}/v1/leads`, { token: source.apiKey, body: { first_name: 'Tracy', email: 'tracy@example.com' } });
    assert.equal(posted.status, 202, JSON.stringify(posted.body));
    leadId = posted.body.leadId;
    await eventually(async () => {
      const res = await request<{ status: string }>('GET', `${sys.intakeUrl}/v1/leads/${leadId}`, { token: source.apiKey });
      return res.body.status === 'delivered' ? true : undefined;
    }, 60_000, `lead ${leadId} delivered`);
    await buyer!.waitForRequests(1, 5_000);

    const spans = collector!.spans;
    // The intake's server span for the post is the root of the lead's trace.
    const root = await eventually(() => Promise.resolve(spans.find((s) => s.service === 'lead-delivery-intake' && s.kind === 2 && attr(s, 'http.method') === 'POST' && (attr(s, 'http.target') ?? attr(s, 'url.path') ?? '').startsWith('/v1/leads'))), 20_000, 'the intake server span');
    const traceId = root.traceId;
    const buyerPort = new URL(buyer!.url).port;
    const inTrace = () => spans.filter((s) => s.traceId === traceId);
    const want = {
      'workflow start (intake client)': (s: CollectedSpan) => s.service === 'lead-delivery-intake' && s.name.startsWith('StartWorkflow:'),
      'the workflow run (worker)': (s: CollectedSpan) => s.service === 'lead-delivery-worker' && s.name.startsWith('RunWorkflow:'),
      'an activity run (worker)': (s: CollectedSpan) => s.service === 'lead-delivery-worker' && s.name.startsWith('RunActivity:'),
      'a journal write (log service)': (s: CollectedSpan) => s.service === 'lead-delivery-log' && s.name.startsWith('RunActivity:'),
      'the POST to the buyer (worker)': (s: CollectedSpan) => s.service === 'lead-delivery-worker' && s.kind === 3 && (attr(s, 'net.peer.port') === buyerPort || attr(s, 'server.port') === buyerPort),
    };
    await eventually(() => Promise.resolve(Object.values(want).every((p) => inTrace().some(p)) ? true : undefined), 20_000, 'every span of the lead').catch(() => undefined);
    const missing = Object.entries(want).filter(([, p]) => !inTrace().some(p)).map(([name]) => name);
    assert.deepEqual(missing, [], `spans of trace ${traceId}: ${inTrace().map((s) => `${s.service} ${s.name}`).join(', ')}`);
    // No span attribute carries the lead's data.
    assert.ok(!JSON.stringify(spans).includes('tracy@example.com'), 'an email reached a span');

    // Log lines written while handling the lead carry its trace id (intake's access log line, the worker's attempt lines).
    const logLines = (name: string) => fs.readFileSync(path.join(dataDir, 'logs', `${name}.log`), 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const intakeLines = logLines('intake').filter((l) => l.leadId === leadId || (typeof l.msg === 'string' && l.msg.startsWith('POST /v1/leads 202')));
    assert.ok(intakeLines.length > 0, 'intake logged the lead');
    for (const line of intakeLines) assert.equal(line.trace_id, traceId, `intake line without the trace id: ${JSON.stringify(line)}`);
    const workerLines = logLines('worker').filter((l) => l.leadId === leadId);
    assert.ok(workerLines.length > 0, 'the worker logged the lead');
    const untraced = workerLines.filter((l) => l.trace_id !== traceId);
    assert.deepEqual(untraced, [], 'worker lines about the lead without its trace id');
  });

  it('When the delivery worker runs, then its health port answers live and ready, and the Temporal SDK serves its worker metrics', async function () {
    this.timeout(30_000);
    const sys = system!;
    const base = `http://127.0.0.1:${sys.ports.workerHealth}`;
    const live = await fetch(`${base}/healthz`);
    assert.equal(live.status, 200);
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { status: 'ready', state: 'RUNNING' });
    assert.equal((await fetch(`${base}/other`)).status, 404);

    const sdk = await (await fetch(`http://127.0.0.1:${sys.ports.workerMetrics}/metrics`)).text();
    assert.match(sdk, /^temporal_worker_task_slots_available\{/m, 'task slots gauge');
    assert.match(sdk, /^temporal_workflow_completed\{[^}]*workflow_type="deliverLead"[^}]*\} [1-9]/m, 'the delivered lead workflow counted');
    assert.match(sdk, /^temporal_activity_execution_latency_bucket\{/m, 'activity latency histogram');
    const logSdk = await (await fetch(`http://127.0.0.1:${sys.ports.logMetrics}/metrics`)).text();
    assert.match(logSdk, /^temporal_activity_execution_latency_count\{[^}]*task_queue="delivery-log"/m, "the log worker's activities");
  });

  it('When the delivery worker gets SIGTERM, then it drains and exits 0 (a stop, not a crash), and the supervisor starts it again', async function () {
    this.timeout(60_000);
    const sys = system!;
    const worker = sys.process('worker-1');
    const pid = readStatusFile(sys.statusFile).services['worker-1']!.pid!;
    process.kill(pid, 'SIGTERM');
    const next = await worker.waitForRestart(pid, 40_000);
    assert.notEqual(next, pid);
    const exit = readStatusFile(sys.statusFile).services['worker-1']!.lastExit;
    assert.equal(exit?.code, 0, `exit: ${JSON.stringify(exit)}`);
    const log = fs.readFileSync(path.join(dataDir, 'logs', 'worker.log'), 'utf8');
    assert.match(log, /"msg":"worker stopped"/);
    assert.doesNotMatch(log, /stopped unexpectedly|stopped by itself/);
  });
});
