/**
 * The email kind end to end: intake → workflow → activity → the real `resend` SDK → a local
 * Resend that checks every request against Resend's OpenAPI document; bounce and complaint
 * webhooks signed as Svix does (Standard Webhooks) → suppression list → later sends fail fast. Backoffs are second-long.
 * Email has no read-back: the Idempotency-Key (one per lead and endpoint) makes a retry safe. The
 * kind contract (./contract.ts) runs from the table below (endpoints with their own API key); the
 * cases after it are Resend's own.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Resend } from 'resend';
import { Webhook } from 'standardwebhooks';
import { quotaResetAt } from '../../../activities/email';
import { MAX_RETRY_AFTER_MS } from '../../../shared/delivery';
import { resendErrors, startResendFake, type ResendFake, type SentEmail } from '../../fakes/resend';
import { summary } from '../../support/attempts';
import { capturedLogLines } from '../../support/system';
import { describeKind, type KindTable, type Run, type Settings } from './contract';

const PLATFORM_KEY = `re_platform_${randomBytes(12).toString('hex')}`;
const BUYER_KEY = `re_buyer_${randomBytes(12).toString('hex')}`;
const WEBHOOK_SECRET = `whsec_${randomBytes(24).toString('base64')}`;

interface Fixtures {
  resend: ResendFake;
}

let counter = 0;
/** A fresh recipient per endpoint: suppressions from one test never leak into another. */
const recipient = () => `buyer-${++counter}-${randomBytes(3).toString('hex')}@acme.example`;
const idempotencyKey = (leadId: string, endpointId: string) => `lead-delivery/${leadId}/${endpointId}`;
const emailsOf = (f: Fixtures, leadId: string) => f.resend.emails.filter((e) => (e.body.tags as Array<{ name: string; value: string }>).some((t) => t.name === 'lead_id' && t.value === leadId));
const recipientOf = (settings: Settings) => (settings.to as string[])[0]!;
/** Every request of one lead carried the same Idempotency-Key. */
const oneKey = (f: Fixtures, run: Run) => assert.deepEqual([...new Set(f.resend.requests.map((r) => r.headers['idempotency-key']))], [idempotencyKey(run.leadId, run.endpoint.id)]);

const table: KindTable<Fixtures> = {
  kind: 'email',
  title: 'email kind (Resend) through the whole system',
  // The fake account has verified leads.example.com only; our settings also list lapsed.example.com
  // (a domain whose verification lapsed at Resend after it was configured here).
  start: async () => ({ resend: await startResendFake({ apiKeys: [PLATFORM_KEY, BUYER_KEY], verifiedDomains: ['leads.example.com'] }) }),
  providers: (f) => ({ resendBaseUrl: f.resend.baseUrl, resendApiKey: PLATFORM_KEY, resendVerifiedDomains: ['leads.example.com', 'lapsed.example.com'], resendWebhookSecret: WEBHOOK_SECRET }),
  stop: (f) => f.resend.close(),
  fake: (f) => ({
    sends: () => f.resend.requests.filter((r) => r.method === 'POST' && r.path === '/emails').map((r) => ({ body: JSON.parse(r.raw) as unknown, raw: r.raw, receivedAt: r.receivedAt })),
    requestCount: () => f.resend.requests.length,
    held: (run) => emailsOf(f, run.leadId).length,
    violations: () => f.resend.violations,
    reset: () => f.resend.reset(),
  }),
  endpoint: () => ({
    kind: 'email',
    apiKey: BUYER_KEY,
    from: 'Acme Leads <leads@leads.example.com>',
    to: [recipient()],
    subject: 'New lead: {first_name} {last_name}',
    html: '<h1>{first_name} {last_name}</h1><p>{custom.note|no note}</p>',
    text: '{first_name} {last_name} <{email}>: {custom.note|no note}',
    backoff: ['1s'],
    timeoutMs: 1500,
  }),
  lead: () => ({ first_name: 'Ada', last_name: 'Lovelace', email: 'ada@example.com', custom: { note: '<b>call me</b> & soon' } }),
  secretFields: ['apiKey'],
  secrets: (_f, settings) => [String(settings.apiKey)],
  maskedHeaders: ['authorization'],
  parse: (body) => JSON.parse(body) as unknown,
  request: (f, run) => ({
    method: 'POST',
    url: `${f.resend.baseUrl}/emails`,
    body: {
      from: 'Acme Leads <leads@leads.example.com>',
      to: run.settings.to,
      subject: 'New lead: Ada Lovelace',
      html: '<h1>Ada Lovelace</h1><p>&lt;b&gt;call me&lt;/b&gt; &amp; soon</p>',
      text: 'Ada Lovelace <ada@example.com>: <b>call me</b> & soon',
      tags: [{ name: 'lead_id', value: run.leadId }, { name: 'endpoint_id', value: run.endpoint.id }],
    },
  }),
  readsBack: false,
  firstSend: {
    when: "Resend accepts the email (rendered from the templates, sent with the endpoint's own API key)",
    status: 200,
    messageId: (f, run) => emailsOf(f, run.leadId)[0]?.id,
    check(h, run, [attempt]) {
      const { resend } = h.fixtures;
      assert.equal(resend.emails.length, 1);
      const email = resend.emails[0]!;
      assert.equal(email.apiKey, BUYER_KEY, "Resend sees the endpoint's key");
      assert.equal(email.idempotencyKey, idempotencyKey(run.leadId, run.endpoint.id));
      const received = resend.requests[0]!;
      for (const name of ['idempotency-key', 'user-agent', 'content-type']) assert.equal(attempt!.request.headers[name], received.headers[name], name);
      assert.notEqual(attempt!.request.headers.authorization, received.headers.authorization);
    },
  },
  transient: {
    when: 'Resend answers 500 and then accepts (the retry with the same idempotency key)',
    script: (f) => f.resend.script([resendErrors.serverError()]),
    codes: ['resend_internal_server_error'],
    check: (h, run) => oneKey(h.fixtures, run),
  },
  refusal: {
    when: 'Resend refuses the request as invalid (422)',
    settings: () => ({ backoff: ['1s', '1s'] }),
    script: (f) => f.resend.script([resendErrors.validation()]),
    attempts: [['permanent', 'resend_validation_error']],
    status: 422,
  },
  timeout: {
    when: 'Resend sent the email but answered after our timeout (the retry, with the same Idempotency-Key, gets the same email id)',
    script: (f) => f.resend.script([{ type: 'slow', delayMs: 2_500 }]),
    check: (h, run) => oneKey(h.fixtures, run),
  },
  hangUp: {
    when: 'the connection drops without an answer',
    script: (f) => f.resend.script([{ type: 'hangUp' }]),
    code: 'resend_network_error',
    check: (h, run) => oneKey(h.fixtures, run),
  },
  preview: {
    check(_h, run, { lead, sample }) {
      for (const request of [lead, sample]) assert.equal(request.headers?.['idempotency-key'], idempotencyKey('ld_preview', run.endpoint.id));
    },
  },
};

describeKind(table, (h) => {
  it('When the endpoint brings no API key, then the platform key is used and stays out of the preview and the delivery log', async () => {
    const { resend } = h.fixtures;
    const { leadId, endpoint } = await h.send({ apiKey: undefined });
    const preview = await h.system.admin('POST', `/buyers/${String(endpoint.buyerId)}/endpoints/${endpoint.id}/preview`, {});
    assert.equal(preview.status, 200, JSON.stringify(preview.body));
    assert.ok(!JSON.stringify(preview.body).includes(PLATFORM_KEY), 'the preview shows no platform key');
    await h.system.waitForLead(leadId, (v) => v.status === 'delivered');
    assert.equal(resend.emails.length, 1);
    assert.equal(resend.emails[0]!.apiKey, PLATFORM_KEY);
    const [attempt] = await h.attemptsOf(leadId, 1);
    assert.notEqual(attempt!.request.headers.authorization, resend.requests[0]!.headers.authorization);
    assert.match(attempt!.request.headers.authorization!, /\*{4}/);
    assert.ok(!JSON.stringify(await h.system.attempts(leadId)).includes(PLATFORM_KEY), 'no API key in clear in the delivery log');
  });

  it('When the sender domain is not verified or a template names an unknown field, then the endpoint is refused when saved', async () => {
    const { system } = h;
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

  it('When Resend rate-limits with Retry-After, then the next attempt waits at least that long', async () => {
    const { resend } = h.fixtures;
    resend.script([resendErrors.rateLimit(2)]);
    const { leadId } = await h.send();
    await h.system.waitForLead(leadId, (v) => v.status === 'delivered');
    const attempts = await h.attemptsOf(leadId, 2);
    assert.deepEqual(summary(attempts), [[1, 'transient', 'resend_rate_limit_exceeded'], [2, 'success', 'ok']]);
    assert.equal(attempts[0]!.retryAfterMs, 2_000);
    const gap = resend.requests[1]!.receivedAt - resend.requests[0]!.receivedAt;
    assert.ok(gap >= 2_000, `waited ${gap} ms`);
    assert.equal(resend.emails.length, 1);
  });

  it('When Resend cannot be reached, then the attempt is unknown (the SDK reports no status and no cause) and a later attempt sends the email', async () => {
    const { resend } = h.fixtures;
    const { apiKey } = await h.route({ backoff: ['1s', '1s', '1s'] });
    await resend.down();
    const { leadId } = await h.post(apiKey);
    try {
      await h.system.waitForLead(leadId, (v) => (v.endpoints[0]?.attempts ?? 0) >= 1 && v.endpoints[0]!.status === 'backoff');
    } finally {
      await resend.up();
    }
    await h.system.waitForLead(leadId, (v) => v.status === 'delivered');
    const attempts = await h.attemptsOf(leadId, 2);
    assert.deepEqual(attempts[0]!.outcome, 'unknown');
    assert.equal(attempts[0]!.code, 'resend_network_error');
    assert.equal(attempts[1]!.readBack, undefined, 'email has no read-back: the Idempotency-Key makes the retry safe');
    assert.equal(attempts[0]!.response?.status, undefined);
    assert.deepEqual(attempts.at(-1)!.outcome, 'success');
    assert.equal(resend.emails.length, 1);
  });

  it('When Resend says the sender domain is not verified (403), then the failure is permanent and not retried', async () => {
    const { leadId } = await h.send({ from: 'Acme <leads@lapsed.example.com>', backoff: ['1s', '1s'] });
    await h.system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
    const [attempt] = await h.attemptsOf(leadId, 1);
    assert.deepEqual([attempt!.outcome, attempt!.code, attempt!.response?.status], ['permanent', 'resend_domain_not_verified', 403]);
    assert.equal(h.fixtures.resend.requests.length, 1);
  });

  it('When the daily quota is exhausted, then the email is parked until the quota resets (capped), not failed', async () => {
    const { resend } = h.fixtures;
    resend.script([resendErrors.dailyQuota()]);
    const { apiKey } = await h.route({ backoff: ['1s', '1s'] });
    const before = Date.now();
    const { leadId } = await h.post(apiKey);
    const view = await h.system.waitForLead(leadId, (v) => v.endpoints[0]?.status === 'backoff');
    try {
      const [attempt] = await h.attemptsOf(leadId, 1);
      assert.deepEqual([attempt!.outcome, attempt!.code], ['transient', 'resend_daily_quota_exceeded']);
      const expected = Math.min(quotaResetAt('daily', before) - before, MAX_RETRY_AFTER_MS);
      assert.ok(Math.abs(attempt!.retryAfterMs! - expected) < 60_000, `parked ${attempt!.retryAfterMs} ms, expected about ${expected}`);
      assert.ok(view.endpoints[0]!.nextAttemptAt! - before >= expected - 60_000, 'the next attempt waits for the reset');
      assert.equal(resend.requests.length, 1);
    } finally {
      await h.system.client.workflow.getHandle(`lead-${leadId}`).terminate('test over: the lead is parked until the quota resets');
    }
  });

  /** Delivers one lead to a fresh endpoint and returns what Resend sent. */
  async function deliverOne(settings: Settings = {}) {
    const run = await h.send(settings);
    await h.system.waitForLead(run.leadId, (v) => v.status === 'delivered');
    await h.attemptsOf(run.leadId, 1); // the journal holds the attempt (and its message id)
    const email = h.fixtures.resend.emails.at(-1)!;
    return { ...run, email };
  }

  const callbackUrl = () => `${h.system.intakeUrl}/v1/callbacks/resend`;
  const bounce = (email: SentEmail, type: 'Permanent' | 'Transient' = 'Permanent') =>
    JSON.stringify(h.fixtures.resend.event('email.bounced', email, { bounce: { diagnosticCode: ['smtp; 550 5.1.1 user unknown'], message: 'The recipient does not exist.', subType: type === 'Permanent' ? 'General' : 'MailboxFull', type } }));

  it('When Resend reports a hard bounce, then the recipient is suppressed, the event is linked to the attempt, and a later send fails fast without calling Resend', async () => {
    const { resend } = h.fixtures;
    const { system } = h;
    const { apiKey, endpoint, settings, leadId, email } = await deliverOne();
    const address = recipientOf(settings);
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
    const later = await h.post(apiKey, { first_name: 'Charles', last_name: 'Babbage', email: 'charles@example.com' });
    await system.waitForLead(later.leadId, (v) => v.status === 'dead_lettered');
    const [attempt] = await h.attemptsOf(later.leadId, 1);
    assert.deepEqual([attempt!.outcome, attempt!.code], ['permanent', 'suppressed']);
    assert.match(String(attempt!.reason), /hard bounce/);
    assert.equal(resend.requests.length, requestsBefore, 'Resend was not called');
  });

  it('When Resend reports a complaint, then the recipient is suppressed even as a cc; a soft bounce or a delivery is only recorded', async () => {
    const { resend } = h.fixtures;
    const { system } = h;
    const { email, settings } = await deliverOne();
    const address = recipientOf(settings);
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
    const { apiKey } = await h.route({ cc: [address.toUpperCase()] });
    const requestsBefore = resend.requests.length;
    const { leadId } = await h.post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
    assert.equal((await h.attemptsOf(leadId, 1))[0]!.code, 'suppressed');
    assert.equal(resend.requests.length, requestsBefore);
  });

  it('When a webhook is unsigned, wrongly signed, stale or malformed, then it is refused and nothing is recorded', async () => {
    const { resend } = h.fixtures;
    const { system } = h;
    const { email, settings } = await deliverOne();
    const address = recipientOf(settings);
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
    const { resend } = h.fixtures;
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
