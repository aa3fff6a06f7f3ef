// A fake buyer for the README's compose walkthrough (profile `demo`): listens on 0.0.0.0:PORT inside
// the compose network, answers the scripted statuses in turn (the last repeats) and prints every
// request it receives. GET /healthz answers 200 without using a step. Plain Node, no dependencies:
//   node demo-buyer.mjs 9999 503,200
import http from 'node:http';

const port = Number(process.argv[2] ?? 9999);
const statuses = (process.argv[3] ?? '200').split(',').map(Number);
let served = 0;

http
  .createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      return;
    }
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const status = statuses[Math.min(served, statuses.length - 1)];
      served += 1;
      const headers = Object.entries(req.headers)
        .filter(([name]) => name.startsWith('webhook-') || name === 'content-type')
        .map(([name, value]) => `${name}: ${String(value)}`);
      console.log(`${new Date().toISOString()} ${req.method} ${req.url} -> ${status}\n  ${headers.join('\n  ')}\n  ${Buffer.concat(chunks).toString('utf8')}`);
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ received: status < 300 }));
    });
  })
  .listen(port, '0.0.0.0', () => console.log(`demo buyer on :${port}, answers ${statuses.join(', then ')}`));
