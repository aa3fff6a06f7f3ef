/**
 * The webhook kind through the kind contract (./contract.ts): intake → workflow → activity →
 * io.outbound → the scriptable fake buyer (test/fakes/buyer.ts), with a signing secret, a Bearer
 * token and a custom key header, all of which must stay out of the delivery log. Backoffs are
 * second-long, the attempt timeout 1.5 s. The webhook's own cases (signatures, Retry-After,
 * waterfalls, faults) are in test/e2e/delivery.test.ts and the other system tests.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { startFakeBuyer, type FakeBuyer, type ScriptStep } from '../../fakes/buyer';
import { describeKind, type KindTable } from './contract';

const SIGNING_SECRET = `whsec_${randomBytes(24).toString('base64')}`;
const TOKEN = `tok_${randomBytes(16).toString('hex')}`;
const BUYER_KEY = `key_${randomBytes(16).toString('hex')}`;
const OK: ScriptStep = { status: 200, body: { id: 'crm-1' } };

interface Fixtures {
  buyer: FakeBuyer;
}

/** Every request of one lead carries the same webhook-id, so the buyer can drop the copies. */
const oneWebhookId = (f: Fixtures, leadId: string, endpointId: string) => assert.deepEqual([...new Set(f.buyer.requests.map((r) => r.headers['webhook-id']))], [`msg_${leadId}_${endpointId}`]);

const table: KindTable<Fixtures> = {
  kind: 'webhook',
  title: 'webhook kind through the whole system',
  start: async () => ({ buyer: await startFakeBuyer() }),
  stop: (f) => f.buyer.close(),
  fake: (f) => ({
    sends: () => f.buyer.requests.map((r) => ({ body: JSON.parse(r.body) as unknown, raw: r.body, receivedAt: r.receivedAt })),
    requestCount: () => f.buyer.requests.length,
    reset() {
      f.buyer.requests.length = 0;
      f.buyer.script([OK]);
    },
  }),
  endpoint: (f) => ({
    kind: 'webhook',
    url: f.buyer.url,
    signingSecret: SIGNING_SECRET,
    auth: { type: 'bearer', token: TOKEN },
    headers: { 'X-Buyer-Key': BUYER_KEY },
    mapping: { firstname: 'first_name', email: 'email', amount: 'custom.loan_amount', vendor: { const: 'acme' } },
    backoff: ['1s'],
    timeoutMs: 1500,
  }),
  lead: () => ({ first_name: 'Ada', last_name: 'Lovelace', email: 'ada@example.com', phone: '+15550100000', custom: { loan_amount: 25000 } }),
  secretFields: ['signingSecret', 'auth', 'headers'],
  secrets: () => [SIGNING_SECRET, SIGNING_SECRET.slice('whsec_'.length), TOKEN, BUYER_KEY],
  maskedHeaders: ['authorization', 'x-buyer-key'],
  parse: (body) => JSON.parse(body) as unknown,
  request: (f) => ({ method: 'POST', url: f.buyer.url, body: { firstname: 'Ada', email: 'ada@example.com', amount: 25000, vendor: 'acme' } }),
  readsBack: false,
  firstSend: {
    when: 'the buyer answers 200 (signed per Standard Webhooks, with its token and key header)',
    status: 200,
    messageId: () => undefined,
    check(h, run, [attempt]) {
      const [received] = h.fixtures.buyer.requests;
      oneWebhookId(h.fixtures, run.leadId, run.endpoint.id);
      const verified = new Webhook(SIGNING_SECRET).verify(received!.body, {
        'webhook-id': String(received!.headers['webhook-id']),
        'webhook-timestamp': String(received!.headers['webhook-timestamp']),
        'webhook-signature': String(received!.headers['webhook-signature']),
      });
      assert.equal((verified as { firstname: string }).firstname, 'Ada');
      assert.deepEqual([received!.headers.authorization, received!.headers['x-buyer-key']], [`Bearer ${TOKEN}`, BUYER_KEY]);
      assert.equal(attempt!.response?.body, '{"id":"crm-1"}');
    },
  },
  transient: {
    when: 'the buyer answers 503 and then 200',
    script: (f) => f.buyer.script([{ status: 503, body: 'down' }, OK]),
    codes: ['http_503'],
    check: (h, run) => oneWebhookId(h.fixtures, run.leadId, run.endpoint.id),
  },
  refusal: { when: 'the buyer answers 404', script: (f) => f.buyer.script([{ status: 404, body: 'no such list' }]), attempts: [['permanent', 'http_404']], status: 404 },
  timeout: {
    when: 'the buyer takes the lead but answers after our timeout',
    script: (f) => f.buyer.script([{ ...OK, delayMs: 2_500 }, OK]),
    check: (h, run) => oneWebhookId(h.fixtures, run.leadId, run.endpoint.id),
  },
  hangUp: {
    when: 'the buyer resets the connection after reading the request',
    script: (f) => f.buyer.script([{ status: 200, hangUp: true }, OK]),
    code: 'connection_reset',
    check: (h, run) => oneWebhookId(h.fixtures, run.leadId, run.endpoint.id),
  },
};

describeKind(table);
