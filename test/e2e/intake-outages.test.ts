/**
 * Intake says 503 only when it is true: with the store stopped or frozen a known source key still
 * gets its leads accepted (and delivered once the store is back), a key never seen gets 503 (not
 * 500, not 401); a start whose answer Temporal sent too late is looked up before answering.
 * Each outage runs on servers of its own.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import type { Client, WorkflowClient } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/common';
import { startFakeBuyer, type FakeBuyer } from '../fakes/buyer';
import { sharedInfra, startStore } from '../support/infra';
import { rememberSecret } from '../support/secrets';
import { capturedLogLines, eventually, startSystem, type HttpAnswer, type TestSystem } from '../support/system';
import { generateApiKey } from '../../shared/api-keys';
import { deriveLeadId } from '../../shared/ids';
import { leadWorkflowId } from '../../shared/delivery';
import type { MongoStore } from '../../deploy/local/ferretdb';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const logLinesWith = (text: string) => capturedLogLines.filter((line) => line.includes(text)).length;

async function routeTo(system: TestSystem, url: string) {
  const source = await system.createSource();
  const buyerId = await system.createBuyer();
  await system.addEndpoint(buyerId, { kind: 'webhook', url, backoff: ['1s'] });
  await system.setWaterfall(source.id, [buyerId]);
  return source;
}

async function workflowExists(system: TestSystem, leadId: string): Promise<boolean> {
  try {
    await system.client.workflow.getHandle(leadWorkflowId(leadId)).describe();
    return true;
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return false;
    throw error;
  }
}

/**
 * A TCP proxy in front of the Temporal frontend that can hold the server's answers: `hold(ms)`
 * delays every byte coming back for the next `ms` (released in order afterwards), so a request
 * reaches the server and is applied while its answer arrives after the caller's deadline.
 */
async function startHoldingProxy(target: string): Promise<{ address: string; hold(ms: number): void; close(): Promise<void> }> {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  let holdUntil = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((downstream) => {
    const upstream = net.connect(port, host);
    sockets.add(downstream).add(upstream);
    const held: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    const release = () => {
      timer = undefined;
      while (held.length) downstream.write(held.shift()!);
    };
    upstream.on('data', (chunk: Buffer) => {
      const wait = holdUntil - Date.now();
      if (wait <= 0 && held.length === 0) return void downstream.write(chunk);
      held.push(chunk);
      timer ??= setTimeout(release, Math.max(0, wait));
    });
    downstream.on('data', (chunk: Buffer) => upstream.write(chunk));
    const close = () => {
      clearTimeout(timer);
      downstream.destroy();
      upstream.destroy();
    };
    upstream.on('error', close).on('close', close);
    downstream.on('error', close).on('close', close);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port: bound } = server.address() as net.AddressInfo;
  return {
    address: `127.0.0.1:${bound}`,
    hold(ms) {
      holdUntil = Date.now() + ms;
    },
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

describe('intake outages', function () {
  let buyer: FakeBuyer;
  before(async () => {
    buyer = await startFakeBuyer();
  });
  after(async () => {
    await buyer?.close();
  });
  const deliveriesOf = (marker: string) => buyer.requests.filter((r) => r.body.includes(marker)).length;

  describe('when the store is out', function () {
    let store: MongoStore;
    let system: TestSystem;
    before(async function () {
      this.timeout(180_000);
      store = await startStore();
      const { temporalAddress } = await sharedInfra();
      system = await startSystem({ temporalAddress, mongoUrl: store.url.replace(/\/[^/]*$/, '/t_intake_outage') });
    });
    after(async () => {
      await system?.stop().catch(() => undefined);
    });

    /** Posts during the outage: leads of a known key (new each), a key never seen, a client-id lead. */
    async function postDuringOutage(apiKey: string, tag: string) {
      const answers: HttpAnswer[] = [];
      for (let i = 0; i < 3; i++) answers.push(await system.postLead(apiKey, { email: `${tag}-${i}@example.com` }));
      answers.push(await system.postLead(apiKey, { id: `${tag}-with-id`, email: `${tag}-id@example.com` }));
      const unknownKey = generateApiKey().apiKey;
      rememberSecret(unknownKey); // the run's log check proves it reached no log line
      const unknown = await system.postLead(unknownKey, { email: `${tag}-unknown@example.com` });
      return { answers, unknown };
    }

    function checkOutageAnswers({ answers, unknown }: Awaited<ReturnType<typeof postDuringOutage>>) {
      assert.deepEqual(answers.map((a) => a.status), [202, 202, 202, 202], JSON.stringify(answers.map((a) => a.body)));
      assert.equal(new Set(answers.map((a) => a.body.leadId)).size, 4);
      assert.equal(unknown.status, 503, JSON.stringify(unknown.body));
      assert.equal(unknown.body.error, 'store_unavailable');
      assert.equal(unknown.headers.get('retry-after'), '5');
    }

    it('When the store is stopped, then a known key still gets 202, a key never seen gets 503 store_unavailable, and the leads are delivered once it is back', async function () {
      this.timeout(240_000);
      const source = await routeTo(system, buyer.url);
      const warm = await system.postLead(source.apiKey, { email: 'warm-stopped@example.com' });
      await system.waitForLead(String(warm.body.leadId), (v) => v.status === 'delivered');
      await store.stop();
      let outage: Awaited<ReturnType<typeof postDuringOutage>>;
      try {
        await sleep(5_500); // past the key cache's 5 s: each check now has to fall back
        outage = await postDuringOutage(source.apiKey, 'stopped');
      } finally {
        await store.restart();
      }
      checkOutageAnswers(outage);
      for (const answer of outage.answers) await system.waitForLead(String(answer.body.leadId), (v) => v.status === 'delivered', 120_000);
      for (const marker of ['stopped-0@', 'stopped-1@', 'stopped-2@', 'stopped-id@']) assert.equal(deliveriesOf(marker), 1, marker);
      const again = await eventually(async () => {
        const res = await system.postLead(generateApiKey().apiKey, { email: 'after@example.com' });
        return res.status === 401 ? res : undefined;
      }, 30_000, 'an unknown key is a 401 again');
      assert.equal(again.body.error, 'unauthorized');
    });

    it('When the store is frozen (SIGSTOP), then a known key still gets 202 without waiting on it, a key never seen gets 503, and after SIGCONT the leads are delivered', async function () {
      this.timeout(240_000);
      const source = await routeTo(system, buyer.url);
      const warm = await system.postLead(source.apiKey, { email: 'warm-frozen@example.com' });
      await system.waitForLead(String(warm.body.leadId), (v) => v.status === 'delivered');
      const warnings = logLinesWith('store not answering: intake');
      process.kill(store.pid, 'SIGSTOP');
      let outage: Awaited<ReturnType<typeof postDuringOutage>>;
      let took: number;
      try {
        await sleep(5_500);
        const started = Date.now();
        outage = await postDuringOutage(source.apiKey, 'frozen');
        took = Date.now() - started;
      } finally {
        process.kill(store.pid, 'SIGCONT');
      }
      checkOutageAnswers(outage);
      assert.equal(logLinesWith('store not answering: intake') - warnings, 1, 'one warning for the outage, not one per request');
      // Bounded store calls: a frozen store costs intake a timeout or two, not a hang.
      assert.ok(took < 8_000, `the five requests took ${took} ms`);
      for (const answer of outage.answers) await system.waitForLead(String(answer.body.leadId), (v) => v.status === 'delivered', 120_000);
      for (const marker of ['frozen-0@', 'frozen-1@', 'frozen-2@', 'frozen-id@']) assert.equal(deliveriesOf(marker), 1, marker);
    });
  });

  it('When the start reaches Temporal but its answer comes after the deadline, then intake looks before answering: 202, and the lead runs once', async function () {
    this.timeout(120_000);
    const { temporalAddress, mongoBase } = await sharedInfra();
    const proxy = await startHoldingProxy(temporalAddress);
    // Only intake's client goes through the proxy; the workers talk to the server directly.
    const system = await startSystem({ temporalAddress, intakeTemporalAddress: proxy.address, mongoUrl: `${mongoBase}/t_lost_answer_${Date.now()}`, temporalTimeoutMs: 1_000 });
    try {
      const source = await routeTo(system, buyer.url);
      assert.equal((await system.postLead(source.apiKey, { email: 'before-hold@example.com' })).status, 202);
      const lost = logLinesWith('answer was lost');
      proxy.hold(1_600); // the start's answer arrives ~0.6 s after its 1 s deadline; the describe's in time
      const res = await system.postLead(source.apiKey, { email: 'late-answer@example.com', first_name: 'Late' });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      assert.equal(logLinesWith('answer was lost') - lost, 1, 'the start did time out, and intake looked');
      assert.equal(res.body.duplicate, undefined);
      const leadId = String(res.body.leadId);
      await system.waitForLead(leadId, (v) => v.status === 'delivered');
      await sleep(1_000);
      assert.equal(deliveriesOf('late-answer@example.com'), 1);
    } finally {
      await system.stop().catch(() => undefined);
      await proxy.close();
    }
  });

  it('When the start times out before reaching Temporal, then the answer is 503 with Retry-After and no workflow exists', async function () {
    this.timeout(120_000);
    // A wrapped client: no real fault drops a request reliably before the server sees it (a proxy
    // swallowing bytes would corrupt the HTTP/2 stream). Its start throws what a deadline throws.
    let failNextStart = false;
    const wrap = (client: Client): Client => {
      const workflow = Object.create(client.workflow) as WorkflowClient;
      workflow.start = ((...args: Parameters<WorkflowClient['start']>) => {
        if (!failNextStart) return client.workflow.start(...args);
        failNextStart = false;
        const error = Object.assign(new Error('4 DEADLINE_EXCEEDED: Deadline exceeded after 1.001s'), { code: 4 /* DEADLINE_EXCEEDED */, details: 'Deadline exceeded after 1.001s', metadata: {} });
        return Promise.reject(error);
      }) as WorkflowClient['start'];
      const wrapped = Object.create(client) as Client;
      Object.defineProperty(wrapped, 'workflow', { value: workflow });
      return wrapped;
    };
    const system = await startSystem({ wrapIntakeClient: wrap, temporalTimeoutMs: 1_000 });
    try {
      const source = await routeTo(system, buyer.url);
      failNextStart = true;
      const res = await system.postLead(source.apiKey, { id: 'never-started', email: 'never@example.com' });
      assert.equal(res.status, 503, JSON.stringify(res.body));
      assert.equal(res.headers.get('retry-after'), '5');
      const leadId = deriveLeadId(source.id, 'id:never-started');
      assert.equal(await workflowExists(system, leadId), false);
      const retried = await system.postLead(source.apiKey, { id: 'never-started', email: 'never@example.com' });
      assert.deepEqual([retried.status, retried.body.leadId], [202, leadId], 'the retry starts it');
      assert.equal(await workflowExists(system, leadId), true);
    } finally {
      await system.stop().catch(() => undefined);
    }
  });
});
