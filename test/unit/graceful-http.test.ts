/**
 * The HTTP services' graceful stop (shared/http/express.ts listen().close): on loopback, a request
 * in flight when the stop begins is answered, readiness turns 503 at once, new connections are
 * refused, and a request that outlasts the drain bound is cut when the bound expires.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import express from 'express';
import { isDraining, listen } from '../../shared/http/express';

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

function slowApp(delays: { ms: number }) {
  const app = express();
  app.get('/slow', (_req, res) => {
    setTimeout(() => res.json({ done: true }), delays.ms);
  });
  app.get('/readyz', (_req, res) => {
    res.status(isDraining(app) ? 503 : 200).end();
  });
  return app;
}

describe('graceful HTTP stop', () => {
  it('When the stop begins while a request is in flight, then that request is answered, readiness says 503 and new connections are refused', async () => {
    const app = slowApp({ ms: 300 });
    const server = await listen(app, 0, '127.0.0.1');
    assert.equal((await get(server.port, '/readyz')).status, 200);
    const inFlight = get(server.port, '/slow');
    await new Promise((r) => setTimeout(r, 50));
    const closed = server.close(5_000);
    assert.equal(isDraining(app), true);
    await assert.rejects(get(server.port, '/readyz'), /ECONNREFUSED/);
    const answer = await inFlight;
    assert.deepEqual([answer.status, JSON.parse(answer.body)], [200, { done: true }]);
    await closed;
  });

  it('When a request outlasts the drain bound, then it is cut when the bound expires', async () => {
    const app = slowApp({ ms: 5_000 });
    const server = await listen(app, 0, '127.0.0.1');
    const inFlight = get(server.port, '/slow').then(() => 'answered', (e: Error) => e.message);
    await new Promise((r) => setTimeout(r, 50));
    const started = Date.now();
    await server.close(200);
    const waited = Date.now() - started;
    assert.ok(waited >= 150 && waited < 2_000, `closed after ${waited} ms`);
    assert.match(await inFlight, /socket hang up|ECONNRESET/);
  });
});
