/** The sms kind's pure parts: Twilio code classification, settings, and the request it maps to. */
import assert from 'node:assert/strict';
import { classifySms, createSmsKind, listFailure, messageForm, networkError, PERMANENT_CODES, SmsReadBackError, TRANSIENT_CODES } from '../../activities/sms';
import { OutboundError } from '../../shared/http/outbound';
import { classifyThrown } from '../../activities/registry';
import { AddressGuard } from '../../shared/http/address-guard';
import { defaultProviderSettings } from '../../activities/providers';
import { MappingError } from '../../shared/mapping';

const ACCOUNT = `AC${'a'.repeat(32)}`;
const TOKEN = 'b'.repeat(32);

describe('sms kind: classification of Twilio answers', () => {
  const error = (status: number, code?: number, extra: Record<string, unknown> = {}) => classifySms({ status, ...(code !== undefined ? { providerCode: String(code) } : {}), ...extra });

  it('the documented permanent codes are permanent, named twilio_<code>', () => {
    for (const code of [21211, 21610, 21614, 21408, 21606, 21608, 20003, 21212, 21217]) {
      assert.ok(PERMANENT_CODES[code], `${code} is in the table`);
      assert.deepEqual([error(400, code).outcome, error(400, code).code], ['permanent', `twilio_${code}`], String(code));
    }
    assert.equal(error(401, 20003).reason.startsWith('20003'), true);
  });

  it('rate limits, Twilio-side faults and 5xx are transient, with Retry-After kept', () => {
    assert.deepEqual([error(429, 20429).outcome, error(429, 20429).code], ['transient', 'twilio_20429']);
    assert.equal(error(429, 20429, { headers: { 'retry-after': '3' } }).retryAfterMs, 3_000);
    assert.equal(error(500, 20500).outcome, 'transient');
    assert.equal(error(503, 20503).outcome, 'transient');
    assert.equal(error(502, 31999).outcome, 'transient');
    for (const code of Object.keys(TRANSIENT_CODES)) assert.equal(error(400, Number(code)).outcome, 'transient', code);
  });

  it('an unknown code is transient (the backoff schedule bounds the retries), even on a 4xx', () => {
    const c = error(400, 29999);
    assert.deepEqual([c.outcome, c.code], ['transient', 'twilio_29999']);
    assert.match(c.reason, /unknown Twilio code/);
  });

  it('an answer without a Twilio code falls back to the HTTP status', () => {
    assert.deepEqual([error(429).outcome, error(429).code], ['transient', 'http_429']);
    assert.deepEqual([error(502).outcome, error(502).code], ['transient', 'http_502']);
    assert.deepEqual([error(404).outcome, error(404).code], ['permanent', 'http_404']);
  });

  it('success, a message found by the retry lookup, and a suppressed number', () => {
    assert.deepEqual(classifySms({ status: 201, messageId: 'SM1' }), { outcome: 'success', code: 'ok', reason: '201', countsAgainstEndpoint: false });
    assert.equal(classifySms({ status: 200, providerCode: 'already_sent' }).code, 'already_sent');
    assert.deepEqual([classifySms({ providerCode: 'suppressed' }).outcome, classifySms({ providerCode: 'suppressed' }).code], ['permanent', 'suppressed']);
  });

  it("axios network failures are handed to the registry, which names them from its table", () => {
    const named = (error: Error) => classifyThrown(networkError(error), 1_500).code;
    assert.equal(named(Object.assign(new Error('timeout of 1500ms exceeded'), { name: 'AxiosError', code: 'ECONNABORTED' })), 'timeout');
    assert.equal(named(Object.assign(new Error('x'), { isAxiosError: true, code: 'ECONNREFUSED' })), 'connection_refused');
    assert.equal(named(Object.assign(new Error('canceled'), { name: 'CanceledError', isAxiosError: true, code: 'ERR_CANCELED' })), 'cancelled');
    assert.equal(named(Object.assign(new Error('x'), { name: 'AxiosError', code: 'ESOMETHING' })), 'network_error');
    assert.equal(networkError(new TypeError('bug')), undefined, 'not a network failure: the registry calls it internal_error');
  });
});

describe('sms kind: settings and mapping', () => {
  const kind = createSmsKind({ providers: defaultProviderSettings({ publicUrl: 'https://leads.example.com/' }) });
  const endpoint = (config: Record<string, unknown>, secrets: Record<string, unknown> = { accountSid: ACCOUNT, authToken: TOKEN }) => ({
    endpointId: 'ep_1', buyerId: 'buy_1', kind: 'sms', role: 'accept' as const, timeoutMs: 10_000,
    config: kind.configSchema.parse(config), secrets: kind.secretsSchema.parse(secrets),
  });
  const ctx = (attempt = 1, lead: Record<string, unknown> = { first_name: 'Ada & <Bob>', phone: '+15550100000' }) => ({
    leadId: 'ld_1', sourceId: 'src_1', receivedAt: 1_700_000_000_000, lead, endpointId: 'ep_1', buyerId: 'buy_1', attempt, now: 1_700_000_001_000,
  });

  it('needs E.164 numbers, one sender (from xor messagingServiceSid) and either an auth token or an API key', () => {
    assert.deepEqual(kind.configSchema.parse({ from: '+15005550006', to: '+14155550100', body: 'x' }).to, ['+14155550100']);
    assert.equal(kind.configSchema.safeParse({ from: '+15005550006', to: '4155550100', body: 'x' }).success, false);
    assert.equal(kind.configSchema.safeParse({ to: '+14155550100', body: 'x' }).success, false);
    assert.equal(kind.configSchema.safeParse({ from: '+15005550006', messagingServiceSid: `MG${'1'.repeat(32)}`, to: '+14155550100', body: 'x' }).success, false);
    assert.equal(kind.secretsSchema.safeParse({ accountSid: ACCOUNT }).success, false);
    assert.equal(kind.secretsSchema.safeParse({ accountSid: ACCOUNT, apiKeySid: `SK${'1'.repeat(32)}` }).success, false);
    assert.equal(kind.secretsSchema.safeParse({ accountSid: ACCOUNT, apiKeySid: `SK${'1'.repeat(32)}`, apiKeySecret: 'c'.repeat(32) }).success, true);
  });

  it('unknown template variables are errors when the endpoint is saved', () => {
    const config = kind.configSchema.parse({ from: '+15005550006', to: '+14155550100', body: 'Hi {frist_name}' });
    assert.deepEqual(kind.validate(config, kind.secretsSchema.parse({ accountSid: ACCOUNT, authToken: TOKEN }), undefined).map((e) => e.path), ['body']);
  });

  it('renders plain text (never HTML-escaped), posts the form the SDK posts, and asks for status callbacks at the public URL', () => {
    const prepared = kind.map(endpoint({ from: '+15005550006', to: ['+14155550100', '+14155550101'], body: 'Lead {first_name} {phone}' }), ctx());
    assert.equal(prepared.payload.messages.length, 2);
    assert.equal(prepared.payload.messages[0]!.body, 'Lead Ada & <Bob> +15550100000');
    assert.equal(prepared.payload.messages[0]!.statusCallback, 'https://leads.example.com/v1/callbacks/twilio/ep_1?lead=ld_1&attempt=1');
    const lines = prepared.describe.body.split('\n');
    assert.equal(lines.length, 2);
    assert.equal(new URLSearchParams(lines[0]).get('Body'), 'Lead Ada & <Bob> +15550100000');
    assert.equal(lines[0], messageForm(prepared.payload.messages[0]!));
    assert.ok(!prepared.describe.url.includes(ACCOUNT));
    assert.ok(!JSON.stringify(prepared.describe).includes(Buffer.from(`${ACCOUNT}:${TOKEN}`).toString('base64')));
    assert.equal(prepared.payload.lookup, false, 'a first attempt does not look for earlier messages');
    assert.equal(kind.map(endpoint({ from: '+15005550006', to: '+14155550100', body: 'Lead {first_name}' }), ctx(2)).payload.lookup, true);
    assert.equal(kind.map(endpoint({ from: '+15005550006', to: '+14155550100', body: 'New lead!' }), ctx(2)).payload.lookup, false, 'a text without variables cannot tell leads apart');
  });

  it('no status callback without an auth token to verify it with', () => {
    const prepared = kind.map(endpoint({ from: '+15005550006', to: '+14155550100', body: 'x' }, { accountSid: ACCOUNT, apiKeySid: `SK${'1'.repeat(32)}`, apiKeySecret: 'c'.repeat(32) }), ctx());
    assert.equal(prepared.payload.messages[0]!.statusCallback, undefined);
  });

  it('an empty or over-long text for a lead is a mapping error (permanent, before sending)', () => {
    assert.throws(() => kind.map(endpoint({ from: '+15005550006', to: '+14155550100', body: '{city}' }), ctx()), MappingError);
    assert.throws(() => kind.map(endpoint({ from: '+15005550006', to: '+14155550100', body: `{first_name}${'x'.repeat(1590)}` }), ctx()), /at most 1600/);
  });
});

describe('sms kind: read-back (lookup)', () => {
  const kind = createSmsKind({ providers: defaultProviderSettings({ twilioApiBaseUrl: 'http://127.0.0.1:9' }) });
  const endpoint = (body: string) => ({
    endpointId: 'ep_1', buyerId: 'buy_1', kind: 'sms', role: 'accept' as const, timeoutMs: 10_000,
    config: kind.configSchema.parse({ from: '+15005550006', to: '+14155550100', body }), secrets: kind.secretsSchema.parse({ accountSid: ACCOUNT, authToken: TOKEN }),
  });
  const ctx = { leadId: 'ld_1', sourceId: 'src_1', receivedAt: 1_700_000_000_000, lead: { first_name: 'Ada' }, endpointId: 'ep_1', buyerId: 'buy_1', attempt: 2, now: 1_700_000_001_000, readBack: true };
  const io = { signal: new AbortController().signal, timeoutMs: 1_000, outbound: { guard: new AddressGuard(''), request: () => Promise.reject(new Error('io.outbound is not used by the sms kind')) } };

  it('When the text has no lead field, then the read-back says it cannot tell leads apart, without calling Twilio', async () => {
    const ep = endpoint('New lead!');
    const prepared = kind.map(ep, ctx);
    assert.equal(prepared.payload.attributable, false);
    const readBack = await kind.lookup(prepared, ep, io);
    assert.equal(readBack.found, false);
    assert.match(readBack.detail, /not looked up: the text has no lead field/);
  });

  it('When the text carries lead fields, then the read-back is possible', () => {
    assert.equal(kind.map(endpoint('Lead {first_name}'), ctx).payload.attributable, true);
  });

  it("When Twilio refuses or fails the list read, then the failure is thrown as the registry understands it: Twilio's answer as SmsReadBackError, a network failure as OutboundError", () => {
    const refused = listFailure(Object.assign(new Error('Service Unavailable'), { status: 503, code: 20503 }));
    assert.ok(refused instanceof SmsReadBackError);
    assert.deepEqual([refused.status, refused.twilioCode, refused.message], [503, 20503, 'Twilio refused the Messages list read: 503 20503 Service Unavailable']);
    assert.deepEqual([refused.classification.outcome, refused.classification.code], ['transient', 'twilio_20503']);
    const timeout = listFailure(Object.assign(new Error('timeout of 1000ms exceeded'), { name: 'AxiosError', code: 'ECONNABORTED' }));
    assert.ok(timeout instanceof OutboundError && classifyThrown(timeout, 1_000).code === 'timeout');
    const refusedConnection = listFailure(Object.assign(new Error('connect ECONNREFUSED'), { isAxiosError: true, code: 'ECONNREFUSED' }));
    assert.ok(refusedConnection instanceof OutboundError && classifyThrown(refusedConnection, 1_000).code === 'connection_refused');
  });

  it('When Twilio is not reachable during the read-back, then lookup throws (nothing is sent blind)', async () => {
    const ep = endpoint('Lead {first_name}');
    await assert.rejects(kind.lookup(kind.map(ep, ctx), ep, io), (e: unknown) => e instanceof OutboundError && classifyThrown(e, 1_000).code === 'connection_refused');
  });
});
