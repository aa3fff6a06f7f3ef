/**
 * The email kind end to end: intake → workflow → activity → the real `resend` SDK → a local
 * Resend that checks every request against Resend's OpenAPI document; bounce and complaint
 * webhooks signed with svix → suppression list → later sends fail fast. Backoffs are second-long.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Resend } from 'resend';
import { Webhook } from 'svix';
import { startResendFake, resendErrors, type ResendFake, type SentEmail } from '../../fakes/resend';
import { capturedLogLines, startSystem, type TestSystem } from '../../support/system';
import { MAX_RETRY_AFTER_MS } from '../../../shared/delivery';
import { quotaResetAt } from '../../../activities/email';
import { waitForAttempts, summary } from '../../support/attempts';


describe('email kind (Resend) through the whole system', function () {
  const PLATFORM_KEY = `re_platform_${randomBytes(12).toString('hex')}`;
  const BUYER_KEY = `re_buyer_${randomBytes(12).toString('hex')}`;
  const WEBHOOK_SECRET = `whsec_${randomBytes(24).toString('base64')}`;
  let system: TestSystem;
  let resend: ResendFake;
  let counter = 0;

  before(async function () {
    this.timeout(180_000);
    // The fake account has verified leads.example.com only; our settings also list lapsed.example.com
    // (a domain whose verification lapsed at Resend after it was configured here).
    resend = await startResendFake({ apiKeys: [PLATFORM_KEY, BUYER_KEY], verifiedDomains: ['leads.example.com'] });
    system = await startSystem({
      providers: { resendBaseUrl: resend.baseUrl, resendApiKey: PLATFORM_KEY, resendVerifiedDomains: ['leads.example.com', 'lapsed.example.com'], resendWebhookSecret: WEBHOOK_SECRET },
    });
  });
  after(async () => {
    await system?.stop();
    await resend?.close();
  });
  beforeEach(() => resend.reset());
  afterEach(function () {
    if (this.currentTest?.state === 'passed') assert.deepEqual(resend.violations, [], 'every request matched the Resend spec');
  });

  /** A fresh recipient per test: suppressions from one test never leak into another. */
  const recipient = () => `buyer-${++counter}-${randomBytes(3).toString('hex')}@acme.example`;

  async function route(settings: Record<string, unknown> = {}) {
    const { source, endpoints } = await system.route([
      {
        kind: 'email',
        from: 'Acme Leads <leads@leads.example.com>',
        to: [recipient()],
        subject: 'New lead: {first_name} {last_name}',
        html: '<h1>{first_name} {last_name}</h1><p>{custom.note|no note}</p>',
        text: '{first_name} {last_name} <{email}>: {custom.note|no note}',
        backoff: ['1s'],
        timeoutMs: 1500,
        ...settings,
      },
    ]);
    return { apiKey: source.apiKey, endpoint: endpoints[0]! };
  }

  async function post(apiKey: string, extra: Record<string, unknown> = {}): Promise<string> {
    const res = await system.postLead(apiKey, { first_name: 'Ada', last_name: 'Lovelace', email: 'ada@example.com', custom: { note: '<b>call me</b> & soon' }, ...extra });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return String(res.body.leadId);
  }

  const attemptsOf = (leadId: string, count: number) => waitForAttempts(system, leadId, count);


  it('When Resend accepts the email, then the lead is delivered once, rendered from the templates, and the attempt records the request as sent with the key masked', async () => {
    const { apiKey, endpoint } = await route();
    const leadId = await post(apiKey);
    const view = await system.waitForLead(leadId, (v) => v.status === 'delivered');
    assert.equal(view.endpoints[0]!.attempts, 1);

    assert.equal(resend.emails.length, 1);
    const email = resend.emails[0]!;
    assert.deepEqual(email.body, {
      from: 'Acme Leads <leads@leads.example.com>',
      to: endpoint.to,
      subject: 'New lead: Ada Lovelace',
      html: '<h1>Ada Lovelace</h1><p>&lt;b&gt;call me&lt;/b&gt; &amp; soon</p>',
      text: 'Ada Lovelace <ada@example.com>: <b>call me</b> & soon',
      tags: [{ name: 'lead_id', value: leadId }, { name: 'endpoint_id', value: endpoint.id }],
    });
    assert.equal(email.apiKey, PLATFORM_KEY);
    assert.equal(email.idempotencyKey, `lead-delivery/${leadId}/${endpoint.id}`);

    const [attempt] = await attemptsOf(leadId, 1);
    assert.deepEqual([attempt!.outcome, attempt!.code, attempt!.response?.status, attempt!.response?.messageId], ['success', 'ok', 200, email.id]);
    const received = resend.requests[0]!;
    assert.equal(attempt!.request.body, received.raw, 'the record holds the exact body the SDK sent');
    assert.equal(attempt!.request.url, `${resend.baseUrl}/emails`);
    for (const name of ['idempotency-key', 'user-agent', 'content-type']) assert.equal(attempt!.request.headers[name], received.headers[name], name);
    assert.notEqual(attempt!.request.headers.authorization, received.headers.authorization);
    assert.ok(!JSON.stringify(await system.attempts(leadId)).includes(PLATFORM_KEY), 'no API key in clear in the delivery log');
  });

  it('When the endpoint brings its own API key, then Resend sees that key and it is stored sealed and shown masked', async () => {
    const { apiKey, endpoint } = await route({ apiKey: BUYER_KEY });
    assert.notEqual(endpoint.apiKey, BUYER_KEY);
    const shown = await system.admin('GET', `/buyers/${String(endpoint.buyerId)}/endpoints/${endpoint.id}`);
    assert.ok(!JSON.stringify(shown.body).includes(BUYER_KEY));
    const stored = await system.models.Endpoint.findById(endpoint.id).lean();
    assert.ok(!JSON.stringify(stored).includes(BUYER_KEY), 'sealed at rest');

    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    assert.equal(resend.emails[0]!.apiKey, BUYER_KEY);
    assert.ok(!JSON.stringify(await attemptsOf(leadId, 1)).includes(BUYER_KEY));
  });

  it('When the preview is asked for, then it shows the exact request for a sample lead, key masked, and nothing is sent', async () => {
    const { endpoint } = await route();
    const res = await system.admin<{ request: { method: string; url: string; headers: Record<string, string>; body: string } }>('POST', `/buyers/${String(endpoint.buyerId)}/endpoints/${endpoint.id}/preview`, { lead: { first_name: 'Grace', last_name: 'Hopper', email: 'grace@example.com' } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.request.method, 'POST');
    assert.equal(res.body.request.url, `${resend.baseUrl}/emails`);
    assert.equal(res.body.request.headers['idempotency-key'], `lead-delivery/ld_preview/${endpoint.id}`);
    assert.equal((JSON.parse(res.body.request.body) as { subject: string }).subject, 'New lead: Grace Hopper');
    assert.ok(!JSON.stringify(res.body).includes(PLATFORM_KEY));
    assert.equal(resend.requests.length, 0);
  });

  it('When the sender domain is not verified or a template names an unknown field, then the endpoint is refused when saved', async () => {
    const buyerId = await system.createBuyer();
    const base = { kind: 'email', from: 'leads@leads.example.com', to: ['x@acme.example'], subject: 'Lead', text: 'Hi' };
    const unverified = await system.admin<{ fields: Array<{ path: string; message: string }> }>('POST', `/buyers/${buyerId}/endpoints`, { ...base, from: 'Leads <leads@unverified.example>' });
    assert.equal(unverified.status, 400);
    assert.deepEqual(unverified.body.fields.map((f) => f.path), ['from']);
    assert.match(unverified.body.fields[0]!.message, /unverified\.example is not a verified Resend sender domain/);
    const unknown = await system.admin<{ fields: Array<{ path: string }> }>('POST', `/buyers/${buyerId}/endpoints`, { ...base, subject: 'Lead {frist_name}', html: '<p>{city}{nope}</p>' });
    assert.equal(unknown.status, 400);
    assert.deepEqual(unknown.body.fields.map((f) => f.path).sort(), ['html', 'subject']);
    const shape = await system.admin<{ fields: Array<{ path: string }> }>('POST', `/buyers/${buyerId}/endpoints`, { kind: 'email', from: 'nobody', to: ['not-an-address'], subject: '' });
    assert.equal(shape.status, 400);
    assert.deepEqual(shape.body.fields.map((f) => f.path).sort(), ['from', 'html', 'subject', 'to.0']);
  });

  it('When Resend answers 500 and then accepts, then the retry carries the same idempotency key and one email is sent', async () => {
    const { apiKey } = await route();
    resend.script([resendErrors.serverError()]);
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    const attempts = await attemptsOf(leadId, 2);
    assert.deepEqual(summary(attempts), [[1, 'transient', 'resend_internal_server_error'], [2, 'success', 'ok']]);
    assert.equal(resend.requests.length, 2);
    assert.equal(resend.requests[0]!.headers['idempotency-key'], resend.requests[1]!.headers['idempotency-key']);
    assert.equal(resend.emails.length, 1);
  });

  it('When Resend rate-limits with Retry-After, then the next attempt waits at least that long', async () => {
    const { apiKey } = await route();
    resend.script([resendErrors.rateLimit(2)]);
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    const attempts = await attemptsOf(leadId, 2);
    assert.deepEqual(summary(attempts), [[1, 'transient', 'resend_rate_limit_exceeded'], [2, 'success', 'ok']]);
    assert.equal(attempts[0]!.retryAfterMs, 2_000);
    const gap = resend.requests[1]!.receivedAt - resend.requests[0]!.receivedAt;
    assert.ok(gap >= 2_000, `waited ${gap} ms`);
    assert.equal(resend.emails.length, 1);
  });

  it('When Resend cannot be reached, then the attempt is unknown (the SDK reports no status and no cause) and a later attempt sends the email', async () => {
    const { apiKey } = await route({ backoff: ['1s', '1s', '1s'] });
    await resend.down();
    const leadId = await post(apiKey);
    try {
      await system.waitForLead(leadId, (v) => (v.endpoints[0]?.attempts ?? 0) >= 1 && v.endpoints[0]!.status === 'backoff');
    } finally {
      await resend.up();
    }
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    const attempts = await attemptsOf(leadId, 2);
    assert.deepEqual(attempts[0]!.outcome, 'unknown');
    assert.equal(attempts[0]!.code, 'resend_network_error');
    assert.equal(attempts[1]!.readBack, undefined, 'email has no read-back: the Idempotency-Key makes the retry safe');
    assert.equal(attempts[0]!.response?.status, undefined);
    assert.deepEqual(attempts.at(-1)!.outcome, 'success');
    assert.equal(resend.emails.length, 1);
  });

  it('When the connection drops without an answer, then the attempt is unknown and the retry uses the same key', async () => {
    const { apiKey } = await route();
    resend.script([{ type: 'hangUp' }]);
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    assert.deepEqual(summary(await attemptsOf(leadId, 2)), [[1, 'unknown', 'resend_network_error'], [2, 'success', 'ok']]);
    assert.equal(resend.requests[0]!.headers['idempotency-key'], resend.requests[1]!.headers['idempotency-key']);
    assert.equal(resend.emails.length, 1);
  });

  it('When Resend sent the email but answered after our timeout, then the attempt is unknown, the retry (no read-back: the same Idempotency-Key) gets the same email id and no second email is sent', async () => {
    const { apiKey } = await route();
    resend.script([{ type: 'slow', delayMs: 2_500 }]);
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    const attempts = await attemptsOf(leadId, 2);
    assert.deepEqual(summary(attempts), [[1, 'unknown', 'timeout'], [2, 'success', 'ok']]);
    assert.equal(attempts[1]!.readBack, undefined);
    assert.equal(resend.requests.length, 2, 'two requests reached Resend');
    assert.equal(resend.emails.length, 1, 'one email was sent');
    assert.equal(attempts[1]!.response?.messageId, resend.emails[0]!.id);
    assert.equal(resend.requests[0]!.raw, resend.requests[1]!.raw, 'the retry sent the same body');
  });

  it('When Resend refuses the request as invalid (422), then the failure is permanent and not retried', async () => {
    const { apiKey } = await route({ backoff: ['1s', '1s'] });
    resend.script([resendErrors.validation()]);
    const leadId = await post(apiKey);
    const view = await system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
    assert.equal(view.endpoints[0]!.attempts, 1);
    assert.deepEqual(summary(await attemptsOf(leadId, 1)), [[1, 'permanent', 'resend_validation_error']]);
    assert.equal(resend.requests.length, 1);
    assert.equal(resend.emails.length, 0);
  });

  it('When Resend says the sender domain is not verified (403), then the failure is permanent and not retried', async () => {
    const { apiKey } = await route({ from: 'Acme <leads@lapsed.example.com>', backoff: ['1s', '1s'] });
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
    const [attempt] = await attemptsOf(leadId, 1);
    assert.deepEqual([attempt!.outcome, attempt!.code, attempt!.response?.status], ['permanent', 'resend_domain_not_verified', 403]);
    assert.equal(resend.requests.length, 1);
  });

  it('When the daily quota is exhausted, then the email is parked until the quota resets (capped), not failed', async () => {
    const { apiKey } = await route({ backoff: ['1s', '1s'] });
    resend.script([resendErrors.dailyQuota()]);
    const before = Date.now();
    const leadId = await post(apiKey);
    const view = await system.waitForLead(leadId, (v) => v.endpoints[0]?.status === 'backoff');
    try {
      const [attempt] = await attemptsOf(leadId, 1);
      assert.deepEqual([attempt!.outcome, attempt!.code], ['transient', 'resend_daily_quota_exceeded']);
      const expected = Math.min(quotaResetAt('daily', before) - before, MAX_RETRY_AFTER_MS);
      assert.ok(Math.abs(attempt!.retryAfterMs! - expected) < 60_000, `parked ${attempt!.retryAfterMs} ms, expected about ${expected}`);
      assert.ok(view.endpoints[0]!.nextAttemptAt! - before >= expected - 60_000, 'the next attempt waits for the reset');
      assert.equal(resend.requests.length, 1);
    } finally {
      await system.client.workflow.getHandle(`lead-${leadId}`).terminate('test over: the lead is parked until the quota resets');
    }
  });

  /** Delivers one lead to a fresh endpoint and returns what Resend sent. */
  async function deliverOne(settings: Record<string, unknown> = {}) {
    const routed = await route(settings);
    const leadId = await post(routed.apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    await attemptsOf(leadId, 1); // the journal holds the attempt (and its message id)
    const email = resend.emails.at(-1)!;
    return { ...routed, leadId, email };
  }

  const callbackUrl = () => `${system.intakeUrl}/v1/callbacks/resend`;
  const bounce = (email: SentEmail, type: 'Permanent' | 'Transient' = 'Permanent') =>
    JSON.stringify(resend.event('email.bounced', email, { bounce: { diagnosticCode: ['smtp; 550 5.1.1 user unknown'], message: 'The recipient does not exist.', subType: type === 'Permanent' ? 'General' : 'MailboxFull', type } }));

  it('When Resend reports a hard bounce, then the recipient is suppressed, the event is linked to the attempt, and a later send fails fast without calling Resend', async () => {
    const { apiKey, endpoint, leadId, email } = await deliverOne();
    const address = (endpoint.to as string[])[0]!;
    const body = bounce(email);
    const first = await resend.postWebhook(callbackUrl(), WEBHOOK_SECRET, body);
    assert.equal(first.status, 200, first.body);
    const again = await resend.postWebhook(callbackUrl(), WEBHOOK_SECRET, body);
    assert.equal(again.status, 200, 'a retried webhook is accepted');

    const suppression = await system.models.Suppression.findById(`email:${address}`).lean();
    assert.equal(suppression?.source, 'resend:email.bounced');
    assert.equal(suppression?.channel, 'email');
    const events = await system.models.ProviderEvent.find({ messageId: email.id }).lean();
    assert.equal(events.length, 1, 'recorded once');
    assert.deepEqual([events[0]!._id, events[0]!.leadId, events[0]!.endpointId, events[0]!.attemptId], [`resend:${email.id}:email.bounced`, leadId, endpoint.id, `${leadId}.${endpoint.id}.1`]);

    const requestsBefore = resend.requests.length;
    const later = await post(apiKey, { first_name: 'Charles', last_name: 'Babbage', email: 'charles@example.com' });
    await system.waitForLead(later, (v) => v.status === 'dead_lettered');
    const [attempt] = await attemptsOf(later, 1);
    assert.deepEqual([attempt!.outcome, attempt!.code], ['permanent', 'suppressed']);
    assert.match(String(attempt!.reason), /hard bounce/);
    assert.equal(resend.requests.length, requestsBefore, 'Resend was not called');
  });

  it('When Resend reports a complaint, then the recipient is suppressed even as a cc; a soft bounce or a delivery is only recorded', async () => {
    const { email, endpoint } = await deliverOne();
    const address = (endpoint.to as string[])[0]!;
    const delivered = await resend.postWebhook(callbackUrl(), WEBHOOK_SECRET, JSON.stringify(resend.event('email.delivered', email)));
    assert.equal(delivered.status, 200);
    const soft = await resend.postWebhook(callbackUrl(), WEBHOOK_SECRET, bounce(email, 'Transient'));
    assert.equal(soft.status, 200);
    assert.equal(await system.models.Suppression.countDocuments({ _id: `email:${address}` }), 0, 'a soft bounce suppresses nobody');

    const complained = await resend.postWebhook(callbackUrl(), WEBHOOK_SECRET, JSON.stringify(resend.event('email.complained', email)));
    assert.equal(complained.status, 200);
    const suppression = await system.models.Suppression.findById(`email:${address}`).lean();
    assert.deepEqual([suppression?.reason, suppression?.source], ['spam complaint', 'resend:email.complained']);
    const types = (await system.models.ProviderEvent.find({ messageId: email.id }).lean()).map((e) => e.type).sort();
    assert.deepEqual(types, ['email.bounced', 'email.complained', 'email.delivered']);

    // The complainer as a cc of another buyer's endpoint: that send fails fast too.
    const other = await route({ cc: [address.toUpperCase()] });
    const requestsBefore = resend.requests.length;
    const leadId = await post(other.apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
    assert.equal((await attemptsOf(leadId, 1))[0]!.code, 'suppressed');
    assert.equal(resend.requests.length, requestsBefore);
  });

  it('When a webhook is unsigned, wrongly signed, stale or malformed, then it is refused and nothing is recorded', async () => {
    const { email, endpoint } = await deliverOne();
    const address = (endpoint.to as string[])[0]!;
    const body = bounce(email);
    const url = callbackUrl();

    const unsigned = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    assert.equal(unsigned.status, 401);
    const otherSecret = `whsec_${randomBytes(24).toString('base64')}`;
    assert.equal((await resend.postWebhook(url, otherSecret, body)).status, 401, 'signed with another secret');
    assert.equal((await resend.postWebhook(url, WEBHOOK_SECRET, body, { signature: 'v1,AAAA' })).status, 401, 'garbage signature');
    const tampered = body.replace('"type":"Permanent"', '"type":"Transient"');
    const signedOriginal = new Webhook(WEBHOOK_SECRET).sign('msg_x', new Date(), body);
    assert.equal((await resend.postWebhook(url, WEBHOOK_SECRET, tampered, { msgId: 'msg_x', signature: signedOriginal })).status, 401, 'body changed after signing');
    assert.equal((await resend.postWebhook(url, WEBHOOK_SECRET, body, { timestamp: new Date(Date.now() - 10 * 60_000) })).status, 401, 'ten minutes old');
    assert.equal((await resend.postWebhook(url, WEBHOOK_SECRET, body, { timestamp: new Date(Date.now() + 10 * 60_000) })).status, 401, 'ten minutes ahead');
    assert.equal(await system.models.Suppression.countDocuments({ _id: `email:${address}` }), 0);
    assert.equal(await system.models.ProviderEvent.countDocuments({ messageId: email.id }), 0);

    assert.equal((await resend.postWebhook(url, WEBHOOK_SECRET, 'not json')).status, 400);
    assert.equal((await resend.postWebhook(url, WEBHOOK_SECRET, JSON.stringify({ type: 'email.bounced', created_at: new Date().toISOString(), data: { to: [address] } }))).status, 400, 'no email_id');
    assert.equal(await system.models.Suppression.countDocuments({ _id: `email:${address}` }), 0);
  });

  it('When a request breaks the Resend spec, then the fake refuses it as Resend would and records the violation', async () => {
    const client = new Resend(PLATFORM_KEY, { baseUrl: resend.baseUrl });
    const bad = await client.emails.send({ from: 'leads@leads.example.com', to: ['x@acme.example'], subject: 'Hi', text: 'Hi', tags: [{ name: 'lead id', value: 'ld 1' }] });
    assert.deepEqual([bad.error?.statusCode, bad.error?.name], [422, 'validation_error']);
    const missing = await client.emails.send({ from: 'leads@leads.example.com', to: [], subject: 'Hi', text: 'Hi' });
    assert.deepEqual([missing.error?.statusCode, missing.error?.name], [422, 'validation_error']);
    const unauthorised = await new Resend('re_wrong_key', { baseUrl: resend.baseUrl }).emails.send({ from: 'leads@leads.example.com', to: 'x@acme.example', subject: 'Hi', text: 'Hi' });
    assert.deepEqual([unauthorised.error?.statusCode, unauthorised.error?.name], [401, 'validation_error']);
    const key = { idempotencyKey: 'k-1' };
    const first = await client.emails.send({ from: 'leads@leads.example.com', to: 'x@acme.example', subject: 'Hi', text: 'Hi' }, key);
    const replay = await client.emails.send({ from: 'leads@leads.example.com', to: 'x@acme.example', subject: 'Hi', text: 'Hi' }, key);
    const conflict = await client.emails.send({ from: 'leads@leads.example.com', to: 'x@acme.example', subject: 'Hello', text: 'Hi' }, key);
    assert.equal(replay.data?.id, first.data?.id);
    assert.deepEqual([conflict.error?.statusCode, conflict.error?.name], [409, 'invalid_idempotent_request']);
    assert.equal(resend.emails.length, 1);
    assert.equal(resend.violations.length, 2, 'the two malformed requests');
    assert.match(resend.violations.map((v) => v.errors.join(' ')).join(' '), /Tag names.*Tag values|fewer than 1 items/s);
    resend.violations.length = 0;
  });

  it('When the run is over, then no Resend key or webhook secret appeared in any log line', () => {
    const logs = capturedLogLines.join('\n');
    for (const secret of [PLATFORM_KEY, BUYER_KEY, WEBHOOK_SECRET.slice(6)]) assert.ok(!logs.includes(secret), 'a secret leaked into the logs');
  });
});
