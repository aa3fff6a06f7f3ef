/**
 * A scriptable fake buyer: a loopback HTTP server that records every request (headers, raw
 * body, arrival time in ms) and answers from a script (status, headers, body, delay), the
 * last step repeating. Tests and local runs (`npm run fake:buyer`) share it.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ScriptStep {
  status: number;
  /** The reason phrase of the status line (default: the standard one). */
  statusText?: string;
  headers?: Record<string, string>;
  body?: string | Record<string, unknown>;
  /** Wait this long before answering (a slow buyer). */
  delayMs?: number;
  /** Destroy the connection without answering (a crashing buyer). */
  hangUp?: boolean;
}

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  receivedAt: number;
}

export interface FakeBuyer {
  url: string;
  port: number;
  requests: ReceivedRequest[];
  /** Replace the script; the last step repeats. */
  script(steps: ScriptStep[] | ((req: ReceivedRequest, index: number) => ScriptStep)): void;
  /** Resolves when `count` requests have arrived. */
  waitForRequests(count: number, timeoutMs?: number): Promise<ReceivedRequest[]>;
  close(): Promise<void>;
}

export async function startFakeBuyer(options: { port?: number; steps?: ScriptStep[] } = {}): Promise<FakeBuyer> {
  let steps: ScriptStep[] | ((req: ReceivedRequest, index: number) => ScriptStep) = options.steps ?? [{ status: 200, body: { ok: true } }];
  const requests: ReceivedRequest[] = [];
  const waiters: Array<{ count: number; resolve: () => void }> = [];

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const received: ReceivedRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), receivedAt: Date.now() };
      const index = requests.length;
      requests.push(received);
      for (const waiter of waiters.filter((w) => requests.length >= w.count)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
      const step = typeof steps === 'function' ? steps(received, index) : steps[Math.min(index, steps.length - 1)]!;
      const answer = () => {
        if (step.hangUp) return req.socket.destroy();
        const body = step.body === undefined ? '' : typeof step.body === 'string' ? step.body : JSON.stringify(step.body);
        if (step.statusText !== undefined) res.statusMessage = step.statusText;
        res.writeHead(step.status, { 'content-type': typeof step.body === 'string' ? 'text/plain' : 'application/json', ...step.headers });
        res.end(body);
      };
      if (step.delayMs) setTimeout(answer, step.delayMs).unref();
      else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}/leads`,
    port,
    requests,
    script(next) {
      steps = next;
    },
    waitForRequests(count, timeoutMs = 30_000) {
      if (requests.length >= count) return Promise.resolve(requests);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`fake buyer: ${requests.length} of ${count} requests after ${timeoutMs} ms`)), timeoutMs);
        waiters.push({ count, resolve: () => (clearTimeout(timer), resolve(requests)) });
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

if (require.main === module) {
  // `npm run fake:buyer -- [port] [statuses]`: a buyer on loopback that prints what it receives.
  // statuses: comma-separated answers in order, the last repeating (default 200), e.g. 503,503,200.
  const port = Number(process.argv[2] ?? 9999);
  const steps = (process.argv[3] ?? '200').split(',').map((status) => ({ status: Number(status), body: { received: true } }));
  void startFakeBuyer({ port, steps }).then((buyer) => {
    console.log(`fake buyer listening on ${buyer.url} (answers ${steps.map((s) => s.status).join(', then ')}; Ctrl-C to stop)`);
    let printed = 0;
    setInterval(() => {
      for (; printed < buyer.requests.length; printed++) {
        const r = buyer.requests[printed]!;
        const status = steps[Math.min(printed, steps.length - 1)]!.status;
        console.log(`${new Date(r.receivedAt).toISOString()} ${r.method} ${r.path} → ${status}  webhook-id=${String(r.headers['webhook-id'])}\n  ${r.body}`);
      }
    }, 200);
  });
}
