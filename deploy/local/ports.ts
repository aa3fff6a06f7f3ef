/** TCP port helpers for the local infrastructure starters. */
import * as net from 'node:net';
import { sleep } from './proc';

/**
 * Asks the OS for a currently free TCP port on `host`. The port is released before returning, so
 * another process may grab it in between; starters that choose ports this way retry on "address in use".
 *
 * Linux hands out ephemeral ports at random, so a port just released can come straight back from the
 * next bind(0) — for instance to the Temporal dev server choosing its internal ports, which then
 * collide with the frontend port chosen here. As the dev server's own GetFreePort does, the port is
 * left with a connection in TIME_WAIT (closed from the listening side): bind(0) does not reallocate
 * it for about a minute, while an explicit bind with SO_REUSEADDR (Node, Go and libpq servers set
 * it) still succeeds.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = net.createServer();
  server.unref();
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const addr = server.address();
      if (addr === null || typeof addr === 'string') reject(new Error(`Could not determine a free port on ${host}`));
      else resolve(addr.port);
    });
  });
  try {
    await reserveWithTimeWait(server, host, port);
  } catch {
    // The reservation is an optimisation against reuse; the port is free either way.
  }
  await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
  return port;
}

/**
 * A free TCP port in [min, max] (tried at random). For ports that must stay below the ephemeral range:
 * Temporal stores membership ports in a PostgreSQL smallint, so they must be under 32768.
 */
export async function freePortInRange(host: string, min: number, max: number, avoid: ReadonlySet<number> = new Set()): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = min + Math.floor(Math.random() * (max - min + 1));
    if (avoid.has(port)) continue;
    const free = await new Promise<boolean>((resolve) => {
      const server = net.createServer();
      server.unref();
      server.once('error', () => resolve(false));
      server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error(`No free TCP port on ${host} between ${min} and ${max} after 200 tries`);
}

/** Connects to the listener and closes the accepted side first, which leaves that side in TIME_WAIT. */
function reserveWithTimeWait(server: net.Server, host: string, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timeout')), 2_000);
    server.once('connection', (accepted) => {
      accepted.once('close', () => {
        client.destroy();
        clearTimeout(timer);
        resolve();
      });
      accepted.end();
      accepted.destroySoon();
    });
    const client = net.connect({ host, port });
    client.on('error', () => undefined);
    client.once('end', () => client.end());
  });
}

/** Resolves once something accepts TCP connections on host:port; rejects after `timeoutMs`. */
export async function waitForPort(host: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = 'no attempt made';
  for (;;) {
    const remaining = deadline - Date.now();
    if (remaining <= 0) break;
    const result = await tryConnect(host, port, Math.min(1_000, remaining));
    if (result === true) return;
    lastError = result;
    await sleep(Math.min(100, Math.max(0, deadline - Date.now())));
  }
  throw new Error(`Nothing accepted TCP connections on ${host}:${port} within ${timeoutMs} ms (last error: ${lastError})`);
}

/** true when a connection was accepted, else the error text. */
function tryConnect(host: string, port: number, timeoutMs: number): Promise<true | string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (result: true | string): void => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(timeoutMs, () => done(`timeout after ${timeoutMs} ms`));
    socket.once('connect', () => done(true));
    socket.once('error', (err) => done(err.message));
  });
}
