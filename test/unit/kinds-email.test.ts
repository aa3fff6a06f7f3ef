/**
 * The email kind's pure parts: Resend's answers → outcome classes, quota resets, sender parsing,
 * save-time validation and the request `map` renders (templates, escaping, idempotency key).
 */
import assert from 'node:assert/strict';
import { classifyResendAnswer, createEmailKind, idempotencyKeyFor, parseFrom, quotaResetAt } from '../../activities/email';
import { defaultProviderSettings } from '../../activities/providers';
import type { AttemptContext, KindAnswer, LoadedEndpoint } from '../../activities/types';
import { capRetryAfter } from '../../activities/registry';
import { MAX_RETRY_AFTER_MS } from '../../shared/delivery';

const resendError = (status: number, name: string, message = 'x', headers: Record<string, string> = {}): KindAnswer => ({ status, providerCode: name, providerMessage: message, headers });

describe('email kind (Resend): classification', () => {
  const now = Date.parse('2026-03-14T15:00:00Z');
  const classify = (answer: KindAnswer) => classifyResendAnswer(answer, now);

  it('a 200 with an id is success and names the id', () => {
    const c = classify({ status: 200, messageId: 'e-1', body: '{"id":"e-1"}' });
    assert.deepEqual([c.outcome, c.code], ['success', 'ok']);
    assert.match(c.reason, /e-1/);
  });

  it('rate limits, 5xx and concurrent idempotent requests are transient', () => {
    const table: Array<[KindAnswer, string]> = [
      [resendError(429, 'rate_limit_exceeded', 'Too many requests', { 'retry-after': '3' }), 'resend_rate_limit_exceeded'],
      [resendError(500, 'internal_server_error'), 'resend_internal_server_error'],
      [resendError(500, 'application_error'), 'resend_application_error'],
      [resendError(503, 'application_error'), 'resend_application_error'],
      [resendError(409, 'concurrent_idempotent_requests'), 'resend_concurrent_idempotent_requests'],
    ];
    for (const [answer, code] of table) assert.deepEqual([classify(answer).outcome, classify(answer).code], ['transient', code], code);
    assert.equal(classify(table[0]![0]).retryAfterMs, 3_000);
  });

  it('When there is no answer (timeout, a network failure the SDK reports without its cause, cancellation), then it is unknown: Resend may have the email', () => {
    const table: Array<[KindAnswer, string]> = [
      [{ providerCode: 'application_error', providerMessage: 'Unable to fetch data. The request could not be resolved.' }, 'resend_network_error'],
      [{ providerCode: 'timeout', providerMessage: 'no answer from Resend within 10s' }, 'timeout'],
      [{ providerCode: 'cancelled', providerMessage: 'the attempt was cancelled' }, 'cancelled'],
    ];
    for (const [answer, code] of table) assert.deepEqual([classify(answer).outcome, classify(answer).code], ['unknown', code], code);
    assert.match(classify(table[0]![0]).reason, /does not say whether the request reached it/);
  });

  it('validation, auth, sender and idempotency-misuse errors are permanent', () => {
    const table: Array<[KindAnswer, string]> = [
      [resendError(422, 'validation_error', 'Invalid `to` field.'), 'resend_validation_error'],
      [resendError(400, 'validation_error'), 'resend_validation_error'],
      [resendError(422, 'missing_required_field'), 'resend_missing_required_field'],
      [resendError(401, 'missing_api_key'), 'resend_missing_api_key'],
      [resendError(401, 'restricted_api_key'), 'resend_restricted_api_key'],
      [resendError(403, 'invalid_api_key'), 'resend_invalid_api_key'],
      [resendError(401, 'validation_error', 'API key is invalid'), 'resend_invalid_api_key'],
      [resendError(403, 'invalid_from_address'), 'resend_invalid_from_address'],
      [resendError(403, 'validation_error', 'The acme.test domain is not verified. Please, add and verify your domain.'), 'resend_domain_not_verified'],
      [resendError(403, 'validation_error', 'You can only send testing emails to your own email address'), 'resend_validation_error'],
      [resendError(409, 'invalid_idempotent_request'), 'resend_invalid_idempotent_request'],
      [resendError(400, 'invalid_idempotency_key'), 'resend_invalid_idempotency_key'],
      [resendError(451, 'security_error'), 'resend_security_error'],
      [resendError(404, 'not_found'), 'resend_not_found'],
      [{ providerCode: 'suppressed', providerMessage: 'suppressed recipient: a@b.test (hard bounce, resend:email.bounced)' }, 'suppressed'],
      [{ providerCode: 'missing_api_key', providerMessage: 'no key' }, 'resend_missing_api_key'],
      [{ providerCode: 'domain_not_verified', providerMessage: 'not configured' }, 'resend_domain_not_verified'],
    ];
    for (const [answer, code] of table) assert.deepEqual([classify(answer).outcome, classify(answer).code], ['permanent', code], code);
  });

  it('daily and monthly quotas park until the reset (the registry caps the wait at the longest the project honours)', () => {
    const daily = classify(resendError(429, 'daily_quota_exceeded', 'You have reached your daily email sending quota.'));
    assert.deepEqual([daily.outcome, daily.code], ['transient', 'resend_daily_quota_exceeded']);
    assert.equal(daily.retryAfterMs, Date.parse('2026-03-15T00:00:00Z') - now, 'as asked: until the reset');
    assert.equal(capRetryAfter(daily).retryAfterMs, Math.min(Date.parse('2026-03-15T00:00:00Z') - now, MAX_RETRY_AFTER_MS));
    assert.match(daily.reason, /resets 2026-03-15T00:00:00.000Z/);
    const late = Date.parse('2026-03-14T22:30:00Z');
    assert.equal(classifyResendAnswer(resendError(429, 'daily_quota_exceeded'), late).retryAfterMs, 90 * 60_000, 'midnight in 1h30');
    const monthly = classify(resendError(429, 'monthly_quota_exceeded'));
    assert.deepEqual([monthly.outcome, monthly.code, monthly.retryAfterMs], ['transient', 'resend_monthly_quota_exceeded', Date.parse('2026-04-01T00:00:00Z') - now]);
    assert.equal(capRetryAfter(monthly).retryAfterMs, MAX_RETRY_AFTER_MS);
    assert.match(monthly.reason, /resets 2026-04-01T00:00:00.000Z/);
  });

  it('quota resets are the next UTC midnight and the first of the next month (year end included)', () => {
    assert.equal(new Date(quotaResetAt('daily', Date.parse('2026-12-31T23:59:59Z'))).toISOString(), '2027-01-01T00:00:00.000Z');
    assert.equal(new Date(quotaResetAt('monthly', Date.parse('2026-12-15T08:00:00Z'))).toISOString(), '2027-01-01T00:00:00.000Z');
    assert.equal(new Date(quotaResetAt('monthly', Date.parse('2026-01-31T08:00:00Z'))).toISOString(), '2026-02-01T00:00:00.000Z');
  });
});

describe('email kind (Resend): settings and the rendered request', () => {
  const providers = defaultProviderSettings({ resendBaseUrl: 'http://resend.test/', resendApiKey: 're_platform_0123456789', resendVerifiedDomains: ['leads.example.com'] });
  const kind = createEmailKind({ providers });
  const config = {
    from: 'Acme Leads <leads@leads.example.com>',
    to: ['buyer@acme.test'],
    subject: 'New lead: {first_name} {last_name}',
    html: '<p>{first_name} from {city|unknown}</p>',
    text: '{first_name} from {city|unknown}',
  };
  const parsedConfig = kind.configSchema.parse(config);

  it('parses "Name <address>" and bare addresses, and refuses anything else', () => {
    assert.deepEqual(parseFrom('Acme Leads <leads@acme.test>'), { name: 'Acme Leads', address: 'leads@acme.test' });
    assert.deepEqual(parseFrom('leads@acme.test'), { address: 'leads@acme.test' });
    assert.deepEqual(parseFrom('"Acme, Inc" <leads@acme.test>'), { name: 'Acme, Inc', address: 'leads@acme.test' });
    assert.equal(parseFrom('Acme <not-an-address>'), undefined);
    assert.equal(parseFrom('a\r\nBcc: x <a@b.test>'), undefined);
  });

  it('a sender domain that is not verified, an unknown template variable and a missing key are errors at save time', () => {
    assert.deepEqual(kind.validate(parsedConfig, {}, undefined), []);
    const errors = kind.validate(kind.configSchema.parse({ ...config, from: 'x@other.test', subject: 'Hi {frist_name}', html: '<p>{custom.ok} {nope}</p>' }), {}, undefined);
    assert.deepEqual(errors.map((e) => e.path).sort(), ['from', 'html', 'subject']);
    assert.match(errors.find((e) => e.path === 'from')!.message, /other\.test is not a verified Resend sender domain/);
    assert.match(errors.find((e) => e.path === 'subject')!.message, /\{frist_name\} is not a lead field/);
    const keyless = createEmailKind({ providers: { ...providers, resendApiKey: '' } });
    assert.deepEqual(keyless.validate(parsedConfig, {}, undefined).map((e) => e.path), ['apiKey']);
    assert.deepEqual(keyless.validate(parsedConfig, { apiKey: 're_own_key_123456' }, undefined), []);
  });

  it('needs html or text, and takes a single recipient as a list', () => {
    const noBody = kind.configSchema.safeParse({ from: config.from, to: 'a@b.test', subject: 's' });
    assert.equal(noBody.success, false);
    assert.deepEqual(kind.configSchema.parse({ ...config, to: 'one@acme.test' }).to, ['one@acme.test']);
    assert.equal(kind.configSchema.safeParse({ ...config, to: ['not an address'] }).success, false);
  });

  it('renders the templates (HTML-escaped in html only), a stable idempotency key, and masks the key in the description', () => {
    const endpoint: LoadedEndpoint<typeof parsedConfig, { apiKey?: string }> = {
      endpointId: 'ep_1', buyerId: 'buy_1', kind: 'email', role: 'accept', config: parsedConfig, secrets: {}, timeoutMs: 10_000,
    };
    const ctx: AttemptContext = { leadId: 'ld_1', sourceId: 'src_1', receivedAt: 0, lead: { first_name: 'Ada <b>&', last_name: 'L\r\nBcc: x', email: 'ada@example.com' }, endpointId: 'ep_1', buyerId: 'buy_1', attempt: 1, now: 0 };
    const first = kind.map(endpoint, ctx);
    const again = kind.map(endpoint, { ...ctx, attempt: 2, now: 99_999 });
    assert.equal(first.payload.idempotencyKey, idempotencyKeyFor('ld_1', 'ep_1'));
    assert.deepEqual(again.describe, first.describe, 'every attempt sends the same request');
    const body = JSON.parse(first.describe.body) as Record<string, unknown>;
    assert.equal(body.subject, 'New lead: Ada <b>& L Bcc: x');
    assert.equal(body.html, '<p>Ada &lt;b&gt;&amp; from unknown</p>');
    assert.equal(body.text, 'Ada <b>& from unknown');
    assert.deepEqual(body.tags, [{ name: 'lead_id', value: 'ld_1' }, { name: 'endpoint_id', value: 'ep_1' }]);
    assert.equal(first.describe.url, 'http://resend.test/emails');
    assert.equal(first.describe.headers['idempotency-key'], 'lead-delivery/ld_1/ep_1');
    assert.ok(!JSON.stringify(first.describe).includes('re_platform_0123456789'), 'the API key is masked');
    assert.equal(first.payload.apiKey, 're_platform_0123456789');
  });
});
