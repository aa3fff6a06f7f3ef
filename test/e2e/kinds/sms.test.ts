/**
 * The sms kind end to end: intake → workflow → activity → the real `twilio` SDK → a local Twilio
 * that checks every create against Twilio's OpenAPI spec; signed status callbacks from the fake →
 * the intake's /v1/callbacks/twilio route (through a forwarding "public URL", as Twilio would reach
 * it) → provider events and the suppression list. Backoffs are second-long.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ReadBack } from '../../../shared/delivery';
import { newTwilioAccount, startTwilioFake, twilioErrors, type TwilioAccount, type TwilioFake } from '../../fakes/twilio';
import { capturedLogLines, http as request, startSystem, type TestSystem } from '../../support/system';
import { waitForAttempts } from '../../support/attempts';


/** A stand-in for the deployment's public URL: forwards every request to the intake service. */
async function startForwarder(): Promise<{ url: string; target: string; close(): Promise<void> }> {
  const state = { target: '' };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const upstream = http.request(`${state.target}${req.url ?? '/'}`, { method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      upstream.on('error', () => res.writeHead(502).end());
      upstream.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const forwarder = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get target() {
      return state.target;
    },
    set target(value: string) {
      state.target = value;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  return forwarder;
}

describe('sms kind (Twilio) through the whole system', function () {
  const FROM = '+15005550006';
  let system: TestSystem;
  let twilio: TwilioFake;
  let account: TwilioAccount;
  let forwarder: Awaited<ReturnType<typeof startForwarder>>;
  let counter = 0;

  before(async function () {
    this.timeout(180_000);
    account = newTwilioAccount({ numbers: [FROM], withApiKey: true });
    twilio = await startTwilioFake({ accounts: [account] });
    forwarder = await startForwarder();
    system = await startSystem({ providers: { twilioApiBaseUrl: twilio.baseUrl, publicUrl: forwarder.url } });
    forwarder.target = system.intakeUrl;
  });
  after(async () => {
    await system?.stop();
    await twilio?.close();
    await forwarder?.close();
  });
  beforeEach(() => twilio.reset());
  afterEach(function () {
    if (this.currentTest?.state === 'passed') assert.deepEqual(twilio.violations, [], 'every request matched the Twilio spec');
  });

  /** A fresh buyer number per test: suppressions from one test never leak into another. */
  const buyerNumber = () => `+1415555${String(1000 + ++counter).padStart(4, '0')}`;

  async function route(settings: Record<string, unknown> = {}) {
    const to = buyerNumber();
    const { source, endpoints } = await system.route([
      {
        kind: 'sms',
        from: FROM,
        to,
        body: 'New lead: {first_name} {last_name}, {phone}. Note: {custom.note|none}',
        accountSid: account.sid,
        authToken: account.authToken,
        backoff: ['1s', '1s'],
        timeoutMs: 1500,
        ...settings,
      },
    ]);
    return { apiKey: source.apiKey, endpoint: endpoints[0]!, to };
  }

  async function post(apiKey: string, extra: Record<string, unknown> = {}): Promise<string> {
    const res = await system.postLead(apiKey, { first_name: 'Ada', last_name: 'Lovelace', phone: '+1 (555) 010-0000', custom: { note: '<b>call me</b> & soon' }, ...extra });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return String(res.body.leadId);
  }

  const attemptsOf = (leadId: string, count: number) => waitForAttempts(system, leadId, count);

  const creates = () => twilio.requests.filter((r) => r.method === 'POST');

  it('When Twilio accepts the message, then the lead is delivered once, the text is plain, and the record masks the credentials', async () => {
    const { apiKey, endpoint, to } = await route();
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');

    assert.equal(twilio.messages.length, 1);
    const message = twilio.messages[0]!;
    assert.equal(message.to, to);
    assert.equal(message.from, FROM);
    // Plain text: lead values are never HTML-escaped in an SMS.
    assert.equal(message.body, 'New lead: Ada Lovelace, +1 (555) 010-0000. Note: <b>call me</b> & soon');
    assert.equal(message.authUser, account.sid);
    assert.equal(message.statusCallback, `${forwarder.url}/v1/callbacks/twilio/${endpoint.id}?lead=${leadId}&attempt=1`);

    const [attempt] = await attemptsOf(leadId, 1);
    assert.equal(attempt!.outcome, 'success');
    assert.equal(attempt!.code, 'ok');
    assert.equal(attempt!.response?.status, 201);
    assert.equal(attempt!.response?.messageId, message.sid);
    // The request as sent: the exact form the SDK posted; the account SID and basic auth masked.
    assert.equal(attempt!.request.body, creates()[0]!.raw);
    assert.match(attempt!.request.url, /\/2010-04-01\/Accounts\/AC[0-9a-f]{2}\*{8}\/Messages\.json$/);
    assert.match(attempt!.request.headers.authorization!, /\*{8}$/);
    const recorded = JSON.stringify(await system.attempts(leadId));
    for (const secret of [account.authToken, account.apiKeys![0]!.secret]) {
      assert.ok(!recorded.includes(secret), 'no credential in the attempt record');
      assert.ok(!capturedLogLines.some((line) => line.includes(secret)), 'no credential in any log line');
    }
    const view = await system.admin<Record<string, unknown>>('GET', `/buyers/${String(endpoint.buyerId)}/endpoints/${endpoint.id}`);
    assert.notEqual(view.body.authToken, account.authToken, 'the auth token is masked when read back');
  });

  it('When the endpoint uses an API key, then Twilio sees the key (not the account token) and the lead is delivered', async () => {
    const key = account.apiKeys![0]!;
    const { apiKey } = await route({ authToken: undefined, apiKeySid: key.sid, apiKeySecret: key.secret });
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    assert.equal(twilio.messages.length, 1);
    assert.equal(twilio.messages[0]!.authUser, key.sid);
    // Without the account's auth token there is nothing to verify callbacks with: none is asked for.
    assert.equal(twilio.messages[0]!.statusCallback, undefined);
    assert.ok(!JSON.stringify(await system.attempts(leadId)).includes(key.secret));
  });

  it('When Twilio answers 429 (20429) then 500 (20500), then both are transient, retried a backoff apart, and the third attempt sends one message', async () => {
    const { apiKey } = await route();
    twilio.script([twilioErrors.tooManyRequests(), twilioErrors.serverError()]);
    const leadId = await post(apiKey);
    const view = await system.waitForLead(leadId, (v) => v.status === 'delivered');
    assert.equal(view.endpoints[0]!.attempts, 3);
    const attempts = await attemptsOf(leadId, 3);
    assert.deepEqual(attempts.map((a) => [a.attempt, a.outcome, a.code]), [[1, 'transient', 'twilio_20429'], [2, 'transient', 'twilio_20500'], [3, 'success', 'ok']]);
    assert.equal(twilio.messages.length, 1, 'one SMS in the end');
    const [first, second] = creates();
    assert.ok(second!.receivedAt - first!.receivedAt >= 1_000, 'the retry waited for the backoff');
  });

  it('When Twilio answers an error code the kind does not know, then it is transient and retried (the backoff schedule bounds it)', async () => {
    const { apiKey } = await route({ backoff: ['1s'] });
    twilio.script([twilioErrors.unknown(29999, 400), twilioErrors.unknown(29999, 400)]);
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
    const attempts = await attemptsOf(leadId, 2);
    assert.deepEqual(attempts.map((a) => [a.attempt, a.outcome, a.code]), [[1, 'transient', 'twilio_29999'], [2, 'transient', 'twilio_29999']]);
    assert.match(attempts[0]!.reason, /unknown Twilio code/);
    assert.equal(creates().length, 2, 'one retry, as the one-step schedule allows');
  });

  for (const [name, step, code] of [
    ['21211 (invalid To)', twilioErrors.invalidTo(), 'twilio_21211'],
    ['21614 (not a mobile number)', twilioErrors.notMobile(), 'twilio_21614'],
    ['21408 (region not enabled)', twilioErrors.regionNotEnabled(), 'twilio_21408'],
    ['21606 (From not valid)', twilioErrors.fromNotValid(), 'twilio_21606'],
    ['21608 (unverified, trial)', twilioErrors.unverified(), 'twilio_21608'],
  ] as const) {
    it(`When Twilio answers ${name}, then the failure is permanent, with one attempt and no retry`, async () => {
      const { apiKey } = await route();
      twilio.script([step]);
      const leadId = await post(apiKey);
      const view = await system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
      assert.equal(view.endpoints[0]!.attempts, 1);
      const attempts = await attemptsOf(leadId, 1);
      assert.deepEqual(attempts.map((a) => [a.outcome, a.code]), [['permanent', code]]);
      assert.equal(creates().length, 1);
      assert.equal(twilio.messages.length, 0);
    });
  }

  it('When the credentials are wrong (20003), then the failure is permanent', async () => {
    const { apiKey } = await route({ authToken: 'f'.repeat(32) });
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
    const attempts = await attemptsOf(leadId, 1);
    assert.deepEqual(attempts.map((a) => [a.outcome, a.code, a.response?.status]), [['permanent', 'twilio_20003', 401]]);
  });

  it('When the number replied STOP (21610), then the failure is permanent, the number is suppressed, and the next lead fails fast without calling Twilio', async () => {
    const { apiKey, to } = await route();
    twilio.script([twilioErrors.unsubscribed()]);
    const first = await post(apiKey);
    await system.waitForLead(first, (v) => v.status === 'dead_lettered');
    assert.deepEqual((await attemptsOf(first, 1)).map((a) => [a.outcome, a.code]), [['permanent', 'twilio_21610']]);
    const suppression = await system.models.Suppression.findById(`sms:${to}`).lean();
    assert.equal(suppression?.source, 'twilio:21610');

    const second = await post(apiKey, { first_name: 'Grace' });
    await system.waitForLead(second, (v) => v.status === 'dead_lettered');
    const [attempt] = await attemptsOf(second, 1);
    assert.equal(attempt!.outcome, 'permanent');
    assert.equal(attempt!.code, 'suppressed');
    assert.equal(creates().length, 1, 'the second lead never reached Twilio');
  });

  const lists = () => twilio.requests.filter((r) => r.method === 'GET');

  it('When Twilio creates the message but answers after our timeout, then the attempt is unknown and the retry finds it in the Messages list: success found_on_read_back with its SID, no second SMS', async () => {
    const { apiKey, to } = await route({ backoff: ['1s'] });
    twilio.script([{ type: 'slow', delayMs: 3_000 }]);
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    const attempts = await attemptsOf(leadId, 2);
    assert.deepEqual(attempts.map((a) => [a.attempt, a.outcome, a.code]), [[1, 'unknown', 'timeout'], [2, 'success', 'found_on_read_back']]);
    assert.equal(twilio.messages.filter((m) => m.to === to).length, 1, 'exactly one SMS');
    const sid = twilio.messages[0]!.sid;
    const readBack = attempts[1]!.readBack as ReadBack;
    assert.deepEqual([readBack.found, readBack.messageId], [true, sid]);
    assert.match(readBack.detail, new RegExp(`message ${sid} to \\${to}`));
    assert.equal(attempts[1]!.response?.messageId, sid, 'the retry records the SID of the message the first attempt created');
    assert.equal(creates().length, 1);
    assert.deepEqual(lists().map((r) => new URL(r.path, 'http://x').searchParams.get('To')), [to], 'one list read, for the number');
    assert.equal(new URL(lists()[0]!.path, 'http://x').searchParams.get('From'), FROM);
    assert.match(lists()[0]!.headers.authorization!, /^Basic /);
  });

  it('When the connection drops after the create was sent and Twilio created nothing, then the attempt is unknown, the list has no such message, and the retry sends one SMS', async () => {
    const { apiKey, to } = await route({ backoff: ['1s'] });
    twilio.script([{ type: 'hangUp' }]);
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    const attempts = await attemptsOf(leadId, 2);
    assert.deepEqual(attempts.map((a) => [a.attempt, a.outcome, a.code]), [[1, 'unknown', 'connection_reset'], [2, 'success', 'ok']]);
    const readBack = attempts[1]!.readBack as ReadBack;
    assert.equal(readBack.found, false);
    assert.match(readBack.detail, new RegExp(`no message to \\${to}`));
    assert.equal(twilio.messages.filter((m) => m.to === to).length, 1);
    assert.equal(lists().length, 1, 'the send used the read-back, no second list read');
  });

  it('When only the first of two numbers got its message before the timeout, then the read-back records that SID and the retry texts the second number only', async () => {
    const first = buyerNumber();
    const second = buyerNumber();
    const { apiKey } = await route({ to: [first, second], backoff: ['1s'] });
    twilio.script([{ type: 'slow', delayMs: 3_000 }]);
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    const attempts = await attemptsOf(leadId, 2);
    assert.deepEqual(attempts.map((a) => [a.attempt, a.outcome, a.code]), [[1, 'unknown', 'timeout'], [2, 'success', 'ok']]);
    assert.deepEqual(twilio.messages.map((m) => m.to).sort(), [first, second].sort(), 'one SMS per number');
    const sidFirst = twilio.messages.find((m) => m.to === first)!.sid;
    const readBack = attempts[1]!.readBack as ReadBack;
    assert.deepEqual([readBack.found, readBack.messageId], [false, sidFirst]);
    assert.match(readBack.detail, /only that number is texted/);
    assert.equal(attempts[1]!.response?.messageId, `${sidFirst},${twilio.messages.find((m) => m.to === second)!.sid}`);
    assert.equal(creates().length, 2, 'the first number was not texted again');
  });

  it('When Twilio cannot answer the read-back (503 on the Messages list), then nothing is sent blind (transient read_back_…) and a later attempt still finds the message: one SMS', async () => {
    const { apiKey, to } = await route({ backoff: ['1s', '1s'] });
    twilio.script([{ type: 'slow', delayMs: 3_000 }]);
    twilio.scriptList([twilioErrors.serviceUnavailable()]);
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    const attempts = await attemptsOf(leadId, 3);
    assert.deepEqual(attempts.slice(0, 2).map((a) => [a.attempt, a.outcome, a.code]), [[1, 'unknown', 'timeout'], [2, 'transient', 'read_back_twilio_20503']]);
    assert.match(String(attempts[1]!.error), /Twilio refused the Messages list read: 503 20503/);
    assert.equal(attempts[1]!.request, undefined, 'that attempt sent nothing');
    // The read-back stays due until one completes: the third attempt reads back and finds the message.
    assert.deepEqual([attempts[2]!.outcome, attempts[2]!.code], ['success', 'found_on_read_back']);
    assert.equal(attempts[2]!.response?.messageId, twilio.messages[0]!.sid);
    assert.equal(twilio.messages.filter((m) => m.to === to).length, 1, 'exactly one SMS');
    assert.equal(creates().length, 1);
  });

  it('When the text has no lead field, then the read-back cannot tell leads apart and says so: the retry sends again', async () => {
    const { apiKey, to } = await route({ body: 'New lead waiting in your inbox', backoff: ['1s'] });
    twilio.script([{ type: 'slow', delayMs: 3_000 }]);
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    const attempts = await attemptsOf(leadId, 2);
    assert.deepEqual(attempts.map((a) => [a.attempt, a.outcome, a.code]), [[1, 'unknown', 'timeout'], [2, 'success', 'ok']]);
    const readBack = attempts[1]!.readBack as ReadBack;
    assert.equal(readBack.found, false);
    assert.match(readBack.detail, /not looked up: the text has no lead field/);
    assert.equal(lists().length, 0);
    assert.equal(twilio.messages.filter((m) => m.to === to).length, 2, 'the documented limit: a second SMS');
  });

  it('When Twilio reports the carrier outcome, then a signed callback is recorded once, linked to the attempt, and 30005 suppresses the number', async () => {
    const { apiKey, endpoint, to } = await route();
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    const sid = twilio.messages[0]!.sid;

    const sent = await twilio.statusCallback(sid, 'sent');
    assert.equal(sent.status, 204, sent.body);
    const undelivered = await twilio.statusCallback(sid, 'undelivered', { errorCode: 30005 });
    assert.equal(undelivered.status, 204, undelivered.body);
    const again = await twilio.statusCallback(sid, 'undelivered', { errorCode: 30005 });
    assert.equal(again.status, 204, 'a retried callback is accepted');

    const events = await system.models.ProviderEvent.find({ messageId: sid }).sort({ at: 1 }).lean();
    assert.deepEqual(events.map((e) => e._id).sort(), [`twilio:${sid}:sent`, `twilio:${sid}:undelivered`], 'one event per status, never duplicated');
    const event = events.find((e) => e.type === 'undelivered')!;
    assert.equal(event.leadId, leadId);
    assert.equal(event.endpointId, endpoint.id);
    assert.equal(event.attemptId, `${leadId}.${endpoint.id}.1`);
    assert.equal(event.data.errorCode, 30005);
    assert.equal(event.data.carrierOutcome, 'unknown destination handset');
    const suppression = await system.models.Suppression.findById(`sms:${to}`).lean();
    assert.equal(suppression?.source, 'twilio:30005');

    // A carrier outcome that is not about the number (30007 filtered) suppresses nothing.
    const other = await route();
    const lead2 = await post(other.apiKey);
    await system.waitForLead(lead2, (v) => v.status === 'delivered');
    const sid2 = twilio.messages.find((m) => m.to === other.to)!.sid;
    assert.equal((await twilio.statusCallback(sid2, 'undelivered', { errorCode: 30007 })).status, 204);
    assert.equal(await system.models.Suppression.findById(`sms:${other.to}`).lean(), null);
  });

  it('When a callback is not signed by the endpoint\'s account, then it is refused (403), and an unknown endpoint is 404', async () => {
    const { apiKey, endpoint } = await route();
    const leadId = await post(apiKey);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    const sid = twilio.messages[0]!.sid;
    const forged = await twilio.statusCallback(sid, 'delivered', { signature: 'bm90IGEgc2lnbmF0dXJl' });
    assert.equal(forged.status, 403);
    assert.equal(await system.models.ProviderEvent.countDocuments({ messageId: sid }), 0);

    const unsigned = await request('POST', `${forwarder.url}/v1/callbacks/twilio/${endpoint.id}`, { raw: `MessageSid=${sid}&MessageStatus=delivered`, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(unsigned.status, 403);
    const unknown = await twilio.statusCallback(sid, 'delivered', { url: `${forwarder.url}/v1/callbacks/twilio/ep_doesnotexist` });
    assert.equal(unknown.status, 404);
  });

  it('When an endpoint is saved with an unknown template variable, a number that is not E.164 or no sender, then each is a field error', async () => {
    const buyerId = await system.createBuyer();
    const base = { kind: 'sms', from: FROM, to: '+14155550100', body: 'Lead {first_name}', accountSid: account.sid, authToken: account.authToken };
    const paths = async (body: Record<string, unknown>) => {
      const res = await system.admin<{ fields: Array<{ path: string; message: string }> }>('POST', `/buyers/${buyerId}/endpoints`, body);
      assert.equal(res.status, 400, JSON.stringify(res.body));
      return res.body.fields.map((f) => f.path).sort();
    };
    assert.deepEqual(await paths({ ...base, body: 'Lead {frist_name}' }), ['body']);
    assert.deepEqual(await paths({ ...base, to: '415-555-0100' }), ['to']);
    assert.deepEqual(await paths({ ...base, to: ['+14155550100', '4155550101'] }), ['to.1']);
    assert.deepEqual(await paths({ ...base, from: '4155550100' }), ['from']);
    assert.deepEqual(await paths({ ...base, from: undefined }), ['from']);
    assert.deepEqual(await paths({ ...base, authToken: undefined }), ['authToken']);
    assert.deepEqual(await paths({ ...base, accountSid: 'AC123' }), ['accountSid']);
  });

  it('When the preview is asked for, then it shows the exact form the SDK would post, credentials masked, and sends nothing', async () => {
    const { endpoint } = await route();
    const res = await request<{ request: { method: string; url: string; headers: Record<string, string>; body: string } }>('POST', `${system.intakeUrl}/v1/buyers/${String(endpoint.buyerId)}/endpoints/${endpoint.id}/preview`, {
      token: system.adminToken,
      body: { lead: { first_name: 'Ada', last_name: 'Lovelace', phone: '+15550100000' } },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const form = new URLSearchParams(res.body.request.body);
    assert.equal(form.get('Body'), 'New lead: Ada Lovelace, +15550100000. Note: none');
    assert.equal(form.get('From'), FROM);
    assert.equal(res.body.request.method, 'POST');
    assert.ok(!JSON.stringify(res.body).includes(account.authToken));
    assert.equal(twilio.requests.length, 0);
  });
});
