/** TCP port helpers for the local infrastructure starters. */
import * as net from 'node:net';
import { sleep } from './proc';

/**
 * Asks the OS for a currently free TCP port on `host`. The port is released before returning, so
 * another process may grab it in between; starters that choose ports this way retry on "address in use".
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host, port: 0, exclusive: true }, () => {
      const addr = server.address();
      if (addr === null || typeof addr === 'string') {
        server.close();
        reject(new Error(`Could not determine a free port on ${host}`));
        return;
      }
      server.close((err) => (err ? reject(err) : resolve(addr.port)));
    });
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
