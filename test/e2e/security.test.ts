/**
 * Security and privacy on real servers: PII encrypted in Temporal's history (and readable through
 * the authenticated codec endpoint), the SSRF guard, locked-down APIs, operator-injection-proof
 * filters, security headers. (That no secret reaches a log line is checked for the whole run by
 * the root hook in test/support/hooks.ts.)
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { startFakeBuyer, type FakeBuyer } from '../fakes/buyer';
import { eventually, http as call, startSystem, type TestSystem } from '../support/system';
import { createOutbound, OutboundError, type Resolver } from '../../shared/http/outbound';
import { leadWorkflowId } from '../../shared/delivery';
import { EncryptionCodec } from '../../shared/codec';

/** A loopback listener that counts connections: the SSRF target that must never be reached. */
async function connectionCounter(host = '127.0.0.1') {
  let connections = 0;
  const server = http.createServer((_req, res) => res.end('reached'));
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server.listen(0, host, r));
  return { port: (server.address() as AddressInfo).port, count: () => connections, close: () => new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); }) };
}

describe('security', function () {
  let system: TestSystem;
  let buyer: FakeBuyer;
  before(async function () {
    this.timeout(180_000);
    system = await startSystem();
    buyer = await startFakeBuyer();
  });
  after(async () => {
    await buyer?.close();
    await system?.stop();
  });

  it('When a lead is delivered, then its history holds no email, phone or name in clear, and the codec endpoint decodes it only with a token', async () => {
    const { source, endpoints } = await system.route([{ kind: 'webhook', url: buyer.url, backoff: ['1s'], auth: { type: 'bearer', token: 'tok_buyer_crm_secret_0123456789' } }]);
    buyer.script([{ status: 500, body: 'echo: ada.lovelace@example.com +15550199' }, { status: 200 }]);
    const lead = { first_name: 'Augusta', last_name: 'Byronesque', email: 'ada.lovelace@example.com', phone: '+15550199123' };
    const res = await system.postLead(source.apiKey, lead);
    const leadId = String(res.body.leadId);
    await system.client.workflow.getHandle(leadWorkflowId(leadId)).result();

    // A client without the codec sees what the server stores.
    const connection = await Connection.connect({ address: system.temporalAddress });
    try {
      const raw = new Client({ connection });
      const history = await raw.workflow.getHandle(leadWorkflowId(leadId)).fetchHistory();
      const text = JSON.stringify(temporal.api.history.v1.History.toObject(history as temporal.api.history.v1.History, { bytes: String }));
      const bytes = Buffer.from(temporal.api.history.v1.History.encode(history).finish()).toString('latin1');
      for (const pii of ['ada.lovelace@example.com', '15550199123', 'Augusta', 'Byronesque', '5550199']) {
        assert.ok(!text.includes(pii) && !bytes.includes(pii), `${pii} in the raw history`);
      }
      // The input payload is encrypted: decode it through the codec endpoint.
      const started = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
      assert.ok(started);
      const payload = { metadata: Object.fromEntries(Object.entries(started.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])), data: Buffer.from(started.data!).toString('base64') };
      assert.equal(Buffer.from(payload.metadata.encoding!, 'base64').toString(), 'binary/encrypted');
      const url = `${system.intakeUrl}/v1/codec/decode`;
      const denied = await call('POST', url, { body: { payloads: [payload] } });
      assert.equal(denied.status, 401);
      const wrong = await call('POST', url, { token: 'not-the-admin-token', body: { payloads: [payload] } });
      assert.equal(wrong.status, 401);
      const wrongPath = await call('POST', `${system.intakeUrl}/v1/codec/t/not-the-codec-token/decode`, { body: { payloads: [payload] } });
      assert.equal(wrongPath.status, 403);
      for (const decode of [() => call<{ payloads: Array<{ data: string }> }>('POST', url, { token: system.adminToken, body: { payloads: [payload] } }), () => call<{ payloads: Array<{ data: string }> }>('POST', `${system.intakeUrl}/v1/codec/t/${system.codecToken}/decode`, { body: { payloads: [payload] } })]) {
        const decoded = await decode();
        assert.equal(decoded.status, 200);
        const input = JSON.parse(Buffer.from(decoded.body.payloads[0]!.data, 'base64').toString()) as { lead: { email: string } };
        assert.equal(input.lead.email, 'ada.lovelace@example.com');
      }
      // CORS: only the UI's origin.
      const preflight = await fetch(url, { method: 'OPTIONS', headers: { origin: 'http://127.0.0.1:8233', 'access-control-request-method': 'POST' } });
      assert.equal(preflight.status, 204);
      assert.equal(preflight.headers.get('access-control-allow-origin'), 'http://127.0.0.1:8233');
      const foreign = await fetch(url, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
      assert.equal(foreign.headers.get('access-control-allow-origin'), null);
      // Decrypted, the history still holds no buyer credential: activities load them by endpoint id.
      const codec = EncryptionCodec.fromSpec(system.payloadKeys);
      const decrypted: string[] = [];
      const walk = async (value: unknown): Promise<void> => {
        if (!value || typeof value !== 'object') return;
        const candidate = value as { metadata?: Record<string, Uint8Array>; data?: Uint8Array };
        if (candidate.metadata?.encoding && candidate.data instanceof Uint8Array) {
          const [plain] = await codec.decode([{ metadata: candidate.metadata, data: candidate.data }]);
          decrypted.push(Buffer.from(plain!.data ?? new Uint8Array()).toString('utf8'));
          return;
        }
        for (const inner of Object.values(value)) await walk(inner);
      };
      await walk(history);
      const all = decrypted.join('\n');
      assert.ok(all.includes('ada.lovelace@example.com'), 'decrypted, the lead is there');
      for (const secret of ['tok_buyer_crm_secret_0123456789', String(endpoints[0]!.signingSecret)]) assert.ok(!all.includes(secret), 'no credential in the history');
      // Failure messages (the 500 echoed PII) are encrypted too.
      const attemptFailed = history.events?.find((e) => e.activityTaskFailedEventAttributes);
      if (attemptFailed) assert.equal(attemptFailed.activityTaskFailedEventAttributes?.failure?.message, 'Encoded failure');
    } finally {
      await connection.close();
    }
  });

  describe('SSRF guard', () => {
    const table = ['127.0.0.1', 'localhost', '[::1]', '10.0.0.7', '172.16.5.4', '192.168.1.20', '100.64.0.9', '169.254.169.254', '0.0.0.0', 'crm.public-looking.example'];
    const resolve: Resolver = (hostname, callback) => {
      if (hostname === 'crm.public-looking.example') return callback(null, [{ address: '10.20.30.40', family: 4 }]);
      if (hostname === 'localhost') return callback(null, [{ address: '127.0.0.1', family: 4 }, { address: '::1', family: 6 }]);
      return callback(Object.assign(new Error('not found'), { code: 'ENOTFOUND' }), []);
    };

    it('When a buyer URL names a private, loopback, link-local or reserved address (literally or by DNS), then it is refused without a connection', async () => {
      const target = await connectionCounter();
      try {
        const outbound = createOutbound({ allow: '', resolve });
        for (const host of table) {
          const url = `http://${host}:${target.port}/leads`;
          await assert.rejects(outbound.request({ method: 'POST', url, headers: {}, body: '{}', timeoutMs: 2_000 }), (e: unknown) => e instanceof OutboundError && e.code === 'blocked_address', url);
        }
        assert.equal(target.count(), 0, 'no connection reached the target');
      } finally {
        await target.close();
      }
    });

    it('When an allowed, public-looking URL redirects to a private one, then the redirect is not followed and the failure is permanent', async () => {
      const target = await connectionCounter('127.0.0.1');
      const redirector = http.createServer((_req, res) => {
        res.writeHead(302, { location: `http://127.0.0.1:${target.port}/internal` });
        res.end();
      });
      await new Promise<void>((r) => redirector.listen(0, '127.0.0.2', r));
      try {
        const port = (redirector.address() as AddressInfo).port;
        const redirectSystem = await startSystem({ temporalAddress: system.temporalAddress, mongoUrl: `${system.mongoUrl}_redirect`, outboundAllow: '127.0.0.2/32', outboundResolve: (h, cb) => (h === 'api.crm-vendor.example' ? cb(null, [{ address: '127.0.0.2', family: 4 }]) : resolve(h, cb)) });
        try {
          const { source } = await redirectSystem.route([{ kind: 'webhook', url: `http://api.crm-vendor.example:${port}/leads` }]);
          const res = await redirectSystem.postLead(source.apiKey, { email: 'redirect@example.com' });
          const leadId = String(res.body.leadId);
          const view = await redirectSystem.waitForLead(leadId, (v) => v.status === 'dead_lettered');
          assert.equal(view.endpoints[0]!.lastCode, 'redirect_refused');
          const attempts = await eventually(async () => {
            const items = await redirectSystem.attempts(leadId);
            return items.length ? items : undefined;
          });
          assert.deepEqual([attempts[0]!.outcome, attempts[0]!.code], ['permanent', 'redirect_refused']);
          assert.match(String(attempts[0]!.reason), /not followed/);

          // And a host that resolves privately, through the whole system: refused, on record, no connection.
          const { source: other } = await redirectSystem.route([{ kind: 'webhook', url: `http://crm.public-looking.example:${target.port}/leads` }]);
          const blocked = String((await redirectSystem.postLead(other.apiKey, { email: 'ssrf@example.com' })).body.leadId);
          await redirectSystem.waitForLead(blocked, (v) => v.status === 'dead_lettered');
          const blockedAttempts = await eventually(async () => {
            const items = await redirectSystem.attempts(blocked);
            return items.length ? items : undefined;
          });
          assert.deepEqual([blockedAttempts[0]!.outcome, blockedAttempts[0]!.code], ['permanent', 'blocked_address']);
          assert.match(String(blockedAttempts[0]!.reason), /10\.20\.30\.40 is a private/);
          assert.equal(target.count(), 0, 'the private target was never connected to');
        } finally {
          await redirectSystem.stop();
        }
      } finally {
        await new Promise<void>((r) => redirector.close(() => r()));
        await target.close();
      }
    });
  });

  it('When admin and log routes are called without, or with a wrong, token, then 401 (403 for a source key)', async () => {
    const source = await system.createSource();
    const routes: Array<[string, string]> = [
      ['GET', `${system.intakeUrl}/v1/admin/sources`],
      ['POST', `${system.intakeUrl}/v1/admin/buyers`],
      ['GET', `${system.intakeUrl}/v1/admin/dead-letters`],
      ['POST', `${system.intakeUrl}/v1/admin/endpoints/ep_x/breaker/reset`],
      ['GET', `${system.logUrl}/v1/leads/ld_x/attempts`],
      ['GET', `${system.logUrl}/v1/leads/ld_x/log`],
    ];
    for (const [method, url] of routes) {
      const body = method === 'GET' ? {} : { body: {} };
      assert.equal((await call(method, url, body)).status, 401, `${method} ${url} without a token`);
      assert.equal((await call(method, url, { token: 'x'.repeat(40), ...body })).status, 401, `${method} ${url} with a wrong token`);
      assert.equal((await call(method, url, { token: source.apiKey, ...body })).status, 403, `${method} ${url} with a source key`);
    }
  });

  it('When filters or bodies carry MongoDB operators, then they are refused as bad input', async () => {
    const source = await system.createSource();
    const injected = await system.postLead(source.apiKey, { email: { $gt: '' } });
    assert.equal(injected.status, 400);
    const query = await call('GET', `${system.intakeUrl}/v1/admin/dead-letters?sourceId[$ne]=x`, { token: system.adminToken });
    assert.equal(query.status, 400);
    const inId = await call('GET', `${system.intakeUrl}/v1/admin/buyers/${encodeURIComponent('{"$gt":""}')}`, { token: system.adminToken });
    assert.equal(inId.status, 404);
    const waterfall = await system.admin('PUT', `/sources/${source.id}/waterfall`, { buyers: [{ $ne: null }] });
    assert.equal(waterfall.status, 400);
  });

  it('When any API answers, then it carries security headers and no CORS unless configured', async () => {
    const res = await fetch(`${system.intakeUrl}/healthz`, { headers: { origin: 'https://evil.example' } });
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('x-frame-options'), 'DENY');
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    assert.equal(res.headers.get('access-control-allow-origin'), null);
    assert.equal(res.headers.get('x-powered-by'), null);
  });

  it('When a source exceeds its rate, then it gets 429 with Retry-After and other sources are unaffected', async () => {
    const limited = await startSystem({ temporalAddress: system.temporalAddress, mongoUrl: `${system.mongoUrl}_rate`, ratePerMinute: 5, deliveryWorker: false });
    try {
      const a = await limited.createSource('a');
      const b = await limited.createSource('b');
      const answers = [];
      for (let i = 0; i < 7; i++) answers.push((await limited.postLead(a.apiKey, { email: `r${i}@example.com` })).status);
      assert.deepEqual(answers, [202, 202, 202, 202, 202, 429, 429]);
      const limitedAnswer = await limited.postLead(a.apiKey, { email: 'again@example.com' });
      assert.ok(Number(limitedAnswer.headers.get('retry-after')) >= 1);
      assert.equal((await limited.postLead(b.apiKey, { email: 'b@example.com' })).status, 202);
    } finally {
      await limited.stop();
    }
  });
});
