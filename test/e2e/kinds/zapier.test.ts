/**
 * The zapier kind end to end: intake → workflow → activity → io.outbound → a local catch hook
 * that answers like Zapier. Any non-2xx is retried along the endpoint's schedule; Zapier has no
 * idempotency key and no read-back, so an ambiguous attempt is sent again (the Zap can drop it by
 * lead_id). The kind contract (./contract.ts) runs from the table below; the case after it is
 * Zapier's own.
 */
import assert from 'node:assert/strict';
import { HOOK_PATH, startZapierFake, type ZapierFake } from '../../fakes/zapier';
import { describeKind, type KindTable, type Run } from './contract';

/** The catch hook's key (the last segment of its URL): whoever knows it can post to the Zap. */
const HOOK_SECRET = HOOK_PATH.split('/')[4]!;

interface Fixtures {
  zap: ZapierFake;
}

const bodyOf = (run: Run) => ({ lead_id: run.leadId, name: 'Ada Lovelace', email: 'ada@example.com', phone: '+15550100000', amount: 25000 });

const table: KindTable<Fixtures> = {
  kind: 'zapier',
  title: 'zapier kind through the whole system',
  start: async () => ({ zap: await startZapierFake() }),
  stop: (f) => f.zap.close(),
  fake: (f) => ({
    sends: () => f.zap.requests.map((r) => ({ body: JSON.parse(r.body) as unknown, raw: r.body, receivedAt: r.receivedAt })),
    requestCount: () => f.zap.requests.length,
    violations: () => f.zap.violations,
    reset() {
      f.zap.requests.length = 0;
      f.zap.ids.length = 0;
      f.zap.script([]);
    },
  }),
  endpoint: (f) => ({
    kind: 'zapier',
    url: f.zap.hookUrl,
    mapping: { lead_id: 'lead_id', name: { template: '{first_name} {last_name}' }, email: 'email', phone: { field: 'phone', transform: 'e164' }, amount: 'custom.loan_amount' },
    backoff: ['1s'],
    timeoutMs: 1500,
  }),
  lead: () => ({ first_name: 'Ada', last_name: 'Lovelace', email: 'ada@example.com', phone: '(555) 010-0000', custom: { loan_amount: 25000 } }),
  secretFields: ['url'],
  secrets: (_f, settings) => [String(settings.url), HOOK_SECRET],
  maskedHeaders: [],
  parse: (body) => JSON.parse(body) as unknown,
  request: (f, run) => ({ method: 'POST', url: `${new URL(f.zap.hookUrl).origin}/hooks/****/****/****/`, body: bodyOf(run) }),
  readsBack: false,
  firstSend: {
    when: "the catch hook answers success (Zapier's id kept, the hook URL a masked secret)",
    status: 200,
    messageId: (f) => f.zap.ids.at(-1),
    check(h) {
      assert.equal(h.fixtures.zap.requests[0]!.headers['content-type'], 'application/json', 'posted as JSON');
    },
  },
  transient: { when: 'the catch hook answers 500 and then success', script: (f) => f.zap.script([{ status: 500, body: 'oops' }]), codes: ['http_500'] },
  refusal: {
    when: 'the catch hook answers 404 every time (still retried, as transient, until the schedule ends)',
    settings: () => ({ backoff: ['1s', '1s'] }),
    script: (f) => f.zap.script([{ status: 404, body: { status: 'failure' } }, { status: 404 }, { status: 404 }]),
    attempts: [['transient', 'http_404'], ['transient', 'http_404'], ['transient', 'http_404']],
    status: 404,
  },
  timeout: {
    when: 'Zapier answers after our timeout',
    script: (f) => f.zap.script([{ status: 200, delayMs: 2_500, body: { status: 'success', id: 'late' } }]),
    check(h, run) {
      const [first, second] = h.fixtures.zap.requests;
      assert.equal((JSON.parse(second!.body) as { lead_id: string }).lead_id, run.leadId, 'the Zap can drop the copy by lead_id');
      assert.equal(first!.body, second!.body);
    },
  },
  hangUp: {
    when: 'the connection drops without an answer after the request was sent (the Zap may have run)',
    script: (f) => f.zap.script([{ status: 200, hangUp: true }]),
    code: 'connection_reset',
  },
};

describeKind(table, (h) => {
  it('When the hook URL is not http(s) or a mapping names an unknown field, then the endpoint is refused when saved', async () => {
    const { system } = h;
    const buyerId = await system.createBuyer();
    const bad = await system.admin<{ fields: Array<{ path: string }> }>('POST', `/buyers/${buyerId}/endpoints`, { kind: 'zapier', url: 'ftp://hooks.zapier.com/x' });
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.body.fields.map((f) => f.path), ['url']);
    const mapping = await system.admin<{ fields: Array<{ path: string }> }>('POST', `/buyers/${buyerId}/endpoints`, { kind: 'zapier', url: 'https://hooks.zapier.com/hooks/catch/1/abc/', mapping: { a: 'frist_name' } });
    assert.deepEqual(mapping.body.fields.map((f) => f.path), ['mapping.a']);
    const extra = await system.admin<{ fields: Array<{ path: string }> }>('POST', `/buyers/${buyerId}/endpoints`, { kind: 'zapier', url: 'https://hooks.zapier.com/hooks/catch/1/abc/', format: 'form' });
    assert.equal(extra.status, 400);
  });
});
