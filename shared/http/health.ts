/**
 * A worker process's own small HTTP port for its supervisor: GET /healthz (liveness: the process
 * should be restarted when this fails) and GET /readyz (readiness: it is doing its work now).
 * Nothing else is served; the bodies say the state in one word.
 */
import http from 'node:http';

export interface HealthState {
  /** The process is alive and its work has not failed (a failed worker exits the process anyway). */
  live(): boolean;
  /** The process is doing its work now (a worker: polling its task queues), not starting or draining. */
  ready(): boolean;
  /** One word for the body (e.g. the worker's state: RUNNING, DRAINING…). */
  state(): string;
}

export interface HealthServer {
  port: number;
  close(): Promise<void>;
}

export function startHealthServer(health: HealthState, port: number, host: string): Promise<HealthServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    const ok = path === '/healthz' ? health.live() : path === '/readyz' ? health.ready() : undefined;
    if (req.method !== 'GET' || ok === undefined) {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'not_found' }));
      return;
    }
    res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify({ status: ok ? (path === '/healthz' ? 'ok' : 'ready') : 'not_ready', state: health.state() }));
  });
  server.keepAliveTimeout = 5_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const address = server.address();
      resolve({
        port: typeof address === 'object' && address ? address.port : port,
        close: () => new Promise<void>((done) => {
          server.close(() => done());
          server.closeAllConnections();
        }),
      });
    });
  });
}
