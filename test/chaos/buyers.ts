/**
 * Chaos buyers: loopback HTTP servers that misbehave the way buyers' CRMs do — answer 5xx or
 * refuse at random, answer slowly on both sides of the 10 s timeout, reset the connection after
 * reading the request, go down and come back — and write down every request they read and what
 * they did with it (the ground truth the verdict checks the delivery log against).
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { BuyerRequest } from './check';

export type Behaviour =
  /** Mostly 200; 5xx and 4xx at random. */
  | { kind: 'flaky'; errorRate: number; refuseRate: number }
  /** Mostly 200 at once; some answers just before and just after the timeout. */
  | { kind: 'slow'; slowRate: number; timeoutMs: number }
  /** Mostly 200; some requests read, then the connection cut. */
  | { kind: 'resetter'; resetRate: number }
  /** 200, but the server goes down (connections refused) for `downMs` every `periodMs`. */
  | { kind: 'flapping'; periodMs: number; downMs: number; errorRate: number };

export interface ChaosBuyer {
  name: string;
  url: string;
  requests: BuyerRequest[];
  /** Set after the endpoint exists: requests are attributed to this buyer id. */
  bind(buyerId: string): void;
  downs: number;
  close(): Promise<void>;
}

/** A small seeded generator: a run can be repeated with CHAOS_SEED. */
export function seeded(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

export async function startChaosBuyer(name: string, behaviour: Behaviour, random: () => number): Promise<ChaosBuyer> {
  const requests: BuyerRequest[] = [];
  let buyerId = name;
  const sockets = new Set<Socket>();
  /** Requests read but not answered yet (a slow answer): cut as resets if the server goes down. */
  const waiting = new Set<{ record: BuyerRequest; res: http.ServerResponse; timer: NodeJS.Timeout }>();

  const handler: http.RequestListener = (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const key = String(req.headers['webhook-id'] ?? '');
      const match = /^msg_(ld_[A-Za-z0-9]+)_(ep_[A-Za-z0-9]+)$/.exec(key);
      const receivedAt = Date.now();
      const note = (action: BuyerRequest['action']) => {
        if (match) requests.push({ buyerId, endpointId: match[2]!, leadId: match[1]!, key, receivedAt, action });
      };
      const answer = (status: number) => {
        note({ kind: 'answered', status, at: Date.now() });
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ buyer: name, status }));
      };
      const reset = () => {
        note({ kind: 'reset', at: Date.now() });
        req.socket.destroy();
      };
      const roll = random();
      switch (behaviour.kind) {
        case 'flaky':
          return answer(roll < behaviour.errorRate ? 503 : roll < behaviour.errorRate + behaviour.refuseRate ? 400 : 200);
        case 'resetter':
          return roll < behaviour.resetRate ? reset() : answer(200);
        case 'flapping':
          return answer(roll < behaviour.errorRate ? 502 : 200);
        case 'slow': {
          if (roll >= behaviour.slowRate) return answer(200);
          // Half just before the timeout (a success), half just after (we stop waiting; the buyer still takes it).
          const delay = random() < 0.5 ? behaviour.timeoutMs - 1_000 + Math.floor(random() * 500) : behaviour.timeoutMs + 400 + Math.floor(random() * 600);
          const pending = {
            record: { buyerId, endpointId: match?.[2] ?? '', leadId: match?.[1] ?? '', key, receivedAt, action: { kind: 'answered' as const, status: 200, at: 0 } },
            res,
            timer: setTimeout(() => {
              waiting.delete(pending);
              answer(200);
            }, delay),
          };
          waiting.add(pending);
          return;
        }
      }
    });
  };

  const server = http.createServer(handler);
  server.keepAliveTimeout = 5_000;
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  let current = server;
  let closed = false;
  let downs = 0;
  let flapTimer: NodeJS.Timeout | undefined;
  if (behaviour.kind === 'flapping') {
    const goDown = () => {
      if (closed) return;
      downs++;
      // Requests read and waiting are cut: the buyer read them (ambiguous for us).
      for (const w of waiting) {
        clearTimeout(w.timer);
        if (w.record.leadId) requests.push({ ...w.record, action: { kind: 'reset', at: Date.now() } });
      }
      waiting.clear();
      current.close();
      for (const s of sockets) s.destroy();
      flapTimer = setTimeout(() => {
        if (closed) return;
        current = http.createServer(handler);
        current.keepAliveTimeout = 5_000;
        current.on('connection', (socket) => {
          sockets.add(socket);
          socket.on('close', () => sockets.delete(socket));
        });
        current.listen(port, '127.0.0.1');
        flapTimer = setTimeout(goDown, behaviour.periodMs - behaviour.downMs);
      }, behaviour.downMs);
    };
    flapTimer = setTimeout(goDown, behaviour.periodMs - behaviour.downMs);
  }

  return {
    name,
    url: `http://127.0.0.1:${port}/leads`,
    requests,
    bind(id) {
      buyerId = id;
    },
    get downs() {
      return downs;
    },
    async close() {
      closed = true;
      clearTimeout(flapTimer);
      for (const w of waiting) clearTimeout(w.timer);
      await new Promise<void>((resolve) => {
        current.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
    },
  };
}
