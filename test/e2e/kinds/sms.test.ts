/**
 * The sms kind end to end: intake → workflow → activity → the real `twilio` SDK → a local Twilio
 * that checks every create against Twilio's OpenAPI spec; signed status callbacks from the fake →
 * the intake's /v1/callbacks/twilio route (through a forwarding "public URL", as Twilio would reach
 * it) → provider events and the suppression list. Backoffs are second-long. The kind contract
 * (./contract.ts) runs from the table below; the cases after it are Twilio's own.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ReadBack } from '../../../shared/delivery';
import { newTwilioAccount, startTwilioFake, twilioErrors, type TwilioAccount, type TwilioFake } from '../../fakes/twilio';
import { http as request } from '../../support/system';
import { describeKind, type KindTable, type Settings } from './contract';

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

const FROM = '+15005550006';

interface Fixtures {
  twilio: TwilioFake;
  account: TwilioAccount;
  forwarder: Awaited<ReturnType<typeof startForwarder>>;
}

let counter = 0;
/** A fresh buyer number per endpoint: suppressions from one test never leak into another. */
const buyerNumber = () => `+1415555${String(1000 + ++counter).padStart(4, '0')}`;
const toOf = (settings: Settings) => String(settings.to);
const creates = (f: Fixtures) => f.twilio.requests.filter((r) => r.method === 'POST');
const lists = (f: Fixtures) => f.twilio.requests.filter((r) => r.method === 'GET');
const form = (body: string) => Object.fromEntries(new URLSearchParams(body));

const table: KindTable<Fixtures> = {
  kind: 'sms',
  title: 'sms kind (Twilio) through the whole system',
  async start() {
    const account = newTwilioAccount({ numbers: [FROM], withApiKey: true });
    return { account, twilio: await startTwilioFake({ accounts: [account] }), forwarder: await startForwarder() };
  },
  providers: (f) => ({ twilioApiBaseUrl: f.twilio.baseUrl, publicUrl: f.forwarder.url }),
  started(f, system) {
    f.forwarder.target = system.intakeUrl;
  },
  async stop(f) {
    await f.twilio.close();
    await f.forwarder.close();
  },
  fake: (f) => ({
    sends: () => creates(f).map((r) => ({ body: form(r.raw), raw: r.raw, receivedAt: r.receivedAt })),
    requestCount: () => f.twilio.requests.length,
    held: (run) => f.twilio.messages.filter((m) => m.to === toOf(run.settings)).length,
    violations: () => f.twilio.violations,
    reset: () => f.twilio.reset(),
  }),
  endpoint: (f) => ({
    kind: 'sms',
    from: FROM,
    to: buyerNumber(),
    body: 'New lead: {first_name} {last_name}, {phone}. Note: {custom.note|none}',
    accountSid: f.account.sid,
    authToken: f.account.authToken,
    backoff: ['1s', '1s'],
    timeoutMs: 1500,
  }),
  lead: () => ({ first_name: 'Ada', last_name: 'Lovelace', phone: '+1 (555) 010-0000', custom: { note: '<b>call me</b> & soon' } }),
  secretFields: ['authToken'],
  secrets: (_f, settings) => [settings.authToken, settings.apiKeySecret].filter((s): s is string => typeof s === 'string'),
  maskedHeaders: ['authorization'],
  parse: form,
  request: (f, run) => ({
    method: 'POST',
    // The account SID masked in the URL.
    url: `${f.twilio.baseUrl}/2010-04-01/Accounts/${f.account.sid.slice(0, 4)}********/Messages.json`,
    body: {
      To: toOf(run.settings),
      StatusCallback: `${f.forwarder.url}/v1/callbacks/twilio/${run.endpoint.id}?lead=${run.leadId}&attempt=1`,
      From: FROM,
      // Plain text: lead values are never HTML-escaped in an SMS.
      Body: 'New lead: Ada Lovelace, +1 (555) 010-0000. Note: <b>call me</b> & soon',
    },
  }),
  readsBack: true,
  firstSend: {
    when: 'Twilio accepts the message (the text plain)',
    status: 201,
    messageId: (f, run) => f.twilio.messages.find((m) => m.to === toOf(run.settings))?.sid,
    check(h, run, [attempt]) {
      const { twilio, account, forwarder } = h.fixtures;
      assert.equal(twilio.messages.length, 1);
      const message = twilio.messages[0]!;
      assert.deepEqual([message.to, message.from, message.authUser], [toOf(run.settings), FROM, account.sid]);
      assert.equal(message.body, 'New lead: Ada Lovelace, +1 (555) 010-0000. Note: <b>call me</b> & soon');
      assert.equal(message.statusCallback, `${forwarder.url}/v1/callbacks/twilio/${run.endpoint.id}?lead=${run.leadId}&attempt=1`);
      assert.match(attempt!.request.headers.authorization!, /\*{8}$/, 'the basic auth is masked');
    },
  },
  transient: {
    when: 'Twilio answers 429 (20429) then 500 (20500)',
    script: (f) => f.twilio.script([twilioErrors.tooManyRequests(), twilioErrors.serverError()]),
    codes: ['twilio_20429', 'twilio_20500'],
  },
  refusal: {
    when: 'Twilio answers 21211 (invalid To)',
    script: (f) => f.twilio.script([twilioErrors.invalidTo()]),
    attempts: [['permanent', 'twilio_21211']],
    status: 400,
  },
  timeout: {
    when: 'Twilio creates the message but answers after our timeout (the retry finds it in the Messages list)',
    settings: () => ({ backoff: ['1s'] }),
    script: (f) => f.twilio.script([{ type: 'slow', delayMs: 3_000 }]),
    check(h, run, attempts) {
      const f = h.fixtures;
      const to = toOf(run.settings);
      const sid = f.twilio.messages[0]!.sid;
      assert.match((attempts[1]!.readBack as ReadBack).detail, new RegExp(`message ${sid} to \\${to}`));
      assert.deepEqual(lists(f).map((r) => new URL(r.path, 'http://x').searchParams.get('To')), [to], 'one list read, for the number');
      assert.equal(new URL(lists(f)[0]!.path, 'http://x').searchParams.get('From'), FROM);
      assert.match(lists(f)[0]!.headers.authorization!, /^Basic /);
    },
  },
  hangUp: {
    when: 'the connection drops after the create was sent and Twilio created nothing',
    settings: () => ({ backoff: ['1s'] }),
    script: (f) => f.twilio.script([{ type: 'hangUp' }]),
    code: 'connection_reset',
    check(h, run, attempts) {
      assert.match((attempts[1]!.readBack as ReadBack).detail, new RegExp(`no message to \\${toOf(run.settings)}`));
      assert.equal(lists(h.fixtures).length, 1, 'the send used the read-back, no second list read');
    },
  },
  preview: {
    check(_h, _run, { sample }) {
      // The sample lead has no note: the template's default fills in.
      assert.deepEqual([form(sample.body!).Body, form(sample.body!).From], ['New lead: Ada Lovelace, +15550100000. Note: none', FROM]);
    },
  },
};

describeKind(table, (h) => {
  it('When the endpoint uses an API key, then Twilio sees the key (not the account token) and the lead is delivered', async () => {
    const { twilio, account } = h.fixtures;
    const key = account.apiKeys![0]!;
    const { leadId } = await h.send({ authToken: undefined, apiKeySid: key.sid, apiKeySecret: key.secret });
    await h.system.waitForLead(leadId, (v) => v.status === 'delivered');
    assert.equal(twilio.messages.length, 1);
    assert.equal(twilio.messages[0]!.authUser, key.sid);
    // Without the account's auth token there is nothing to verify callbacks with: none is asked for.
    assert.equal(twilio.messages[0]!.statusCallback, undefined);
    assert.ok(!JSON.stringify(await h.system.attempts(leadId)).includes(key.secret));
  });

  it('When Twilio answers an error code the kind does not know, then it is transient and retried (the backoff schedule bounds it)', async () => {
    h.fixtures.twilio.script([twilioErrors.unknown(29999, 400), twilioErrors.unknown(29999, 400)]);
    const { leadId } = await h.send({ backoff: ['1s'] });
    await h.system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
    const attempts = await h.attemptsOf(leadId, 2);
    assert.deepEqual(attempts.map((a) => [a.attempt, a.outcome, a.code]), [[1, 'transient', 'twilio_29999'], [2, 'transient', 'twilio_29999']]);
    assert.match(attempts[0]!.reason, /unknown Twilio code/);
    assert.equal(creates(h.fixtures).length, 2, 'one retry, as the one-step schedule allows');
  });

  for (const [name, step, code] of [
    ['21614 (not a mobile number)', twilioErrors.notMobile(), 'twilio_21614'],
    ['21408 (region not enabled)', twilioErrors.regionNotEnabled(), 'twilio_21408'],
    ['21606 (From not valid)', twilioErrors.fromNotValid(), 'twilio_21606'],
    ['21608 (unverified, trial)', twilioErrors.unverified(), 'twilio_21608'],
  ] as const) {
    it(`When Twilio answers ${name}, then the failure is permanent, with one attempt and no retry`, async () => {
      const { twilio } = h.fixtures;
      twilio.script([step]);
      const { leadId } = await h.send();
      const view = await h.system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
      assert.equal(view.endpoints[0]!.attempts, 1);
      const attempts = await h.attemptsOf(leadId, 1);
      assert.deepEqual(attempts.map((a) => [a.outcome, a.code]), [['permanent', code]]);
      assert.equal(creates(h.fixtures).length, 1);
      assert.equal(twilio.messages.length, 0);
    });
  }

  it('When the credentials are wrong (20003), then the failure is permanent', async () => {
    const { leadId } = await h.send({ authToken: 'f'.repeat(32) });
    await h.system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
    const attempts = await h.attemptsOf(leadId, 1);
    assert.deepEqual(attempts.map((a) => [a.outcome, a.code, a.response?.status]), [['permanent', 'twilio_20003', 401]]);
  });

  it('When the number replied STOP (21610), then the failure is permanent, the number is suppressed, and the next lead fails fast without calling Twilio', async () => {
    const { system } = h;
    h.fixtures.twilio.script([twilioErrors.unsubscribed()]);
    const { apiKey, settings } = await h.route();
    const first = await h.post(apiKey);
    await system.waitForLead(first.leadId, (v) => v.status === 'dead_lettered');
    assert.deepEqual((await h.attemptsOf(first.leadId, 1)).map((a) => [a.outcome, a.code]), [['permanent', 'twilio_21610']]);
    const suppression = await system.models.Suppression.findById(`sms:${toOf(settings)}`).lean();
    assert.equal(suppression?.source, 'twilio:21610');

    const second = await h.post(apiKey, { first_name: 'Grace' });
    await system.waitForLead(second.leadId, (v) => v.status === 'dead_lettered');
    const [attempt] = await h.attemptsOf(second.leadId, 1);
    assert.equal(attempt!.outcome, 'permanent');
    assert.equal(attempt!.code, 'suppressed');
    assert.equal(creates(h.fixtures).length, 1, 'the second lead never reached Twilio');
  });

  it('When only the first of two numbers got its message before the timeout, then the read-back records that SID and the retry texts the second number only', async () => {
    const { twilio } = h.fixtures;
    const first = buyerNumber();
    const second = buyerNumber();
    twilio.script([{ type: 'slow', delayMs: 3_000 }]);
    const { leadId } = await h.send({ to: [first, second], backoff: ['1s'] });
    await h.system.waitForLead(leadId, (v) => v.status === 'delivered');
    const attempts = await h.attemptsOf(leadId, 2);
    assert.deepEqual(attempts.map((a) => [a.attempt, a.outcome, a.code]), [[1, 'unknown', 'timeout'], [2, 'success', 'ok']]);
    assert.deepEqual(twilio.messages.map((m) => m.to).sort(), [first, second].sort(), 'one SMS per number');
    const sidFirst = twilio.messages.find((m) => m.to === first)!.sid;
    const readBack = attempts[1]!.readBack as ReadBack;
    assert.deepEqual([readBack.found, readBack.messageId], [false, sidFirst]);
    assert.match(readBack.detail, /only that number is texted/);
    assert.equal(attempts[1]!.response?.messageId, `${sidFirst},${twilio.messages.find((m) => m.to === second)!.sid}`);
    assert.equal(creates(h.fixtures).length, 2, 'the first number was not texted again');
  });

  it('When Twilio cannot answer the read-back (503 on the Messages list), then nothing is sent blind (transient read_back_…) and a later attempt still finds the message: one SMS', async () => {
    const { twilio } = h.fixtures;
    twilio.script([{ type: 'slow', delayMs: 3_000 }]);
    twilio.scriptList([twilioErrors.serviceUnavailable()]);
    const { leadId, settings } = await h.send({ backoff: ['1s', '1s'] });
    await h.system.waitForLead(leadId, (v) => v.status === 'delivered');
    const attempts = await h.attemptsOf(leadId, 3);
    assert.deepEqual(attempts.slice(0, 2).map((a) => [a.attempt, a.outcome, a.code]), [[1, 'unknown', 'timeout'], [2, 'transient', 'read_back_twilio_20503']]);
    assert.match(String(attempts[1]!.error), /Twilio refused the Messages list read: 503 20503/);
    assert.equal(attempts[1]!.request, undefined, 'that attempt sent nothing');
    // The read-back stays due until one completes: the third attempt reads back and finds the message.
    assert.deepEqual([attempts[2]!.outcome, attempts[2]!.code], ['success', 'found_on_read_back']);
    assert.equal(attempts[2]!.response?.messageId, twilio.messages[0]!.sid);
    assert.equal(twilio.messages.filter((m) => m.to === toOf(settings)).length, 1, 'exactly one SMS');
    assert.equal(creates(h.fixtures).length, 1);
  });

  it('When the text has no lead field, then the read-back cannot tell leads apart and says so: the retry sends again', async () => {
    const { twilio } = h.fixtures;
    twilio.script([{ type: 'slow', delayMs: 3_000 }]);
    const { leadId, settings } = await h.send({ body: 'New lead waiting in your inbox', backoff: ['1s'] });
    await h.system.waitForLead(leadId, (v) => v.status === 'delivered');
    const attempts = await h.attemptsOf(leadId, 2);
    assert.deepEqual(attempts.map((a) => [a.attempt, a.outcome, a.code]), [[1, 'unknown', 'timeout'], [2, 'success', 'ok']]);
    const readBack = attempts[1]!.readBack as ReadBack;
    assert.equal(readBack.found, false);
    assert.match(readBack.detail, /not looked up: the text has no lead field/);
    assert.equal(lists(h.fixtures).length, 0);
    assert.equal(twilio.messages.filter((m) => m.to === toOf(settings)).length, 2, 'the documented limit: a second SMS');
  });

  it('When Twilio reports the carrier outcome, then a signed callback is recorded once, linked to the attempt, and 30005 suppresses the number', async () => {
    const { twilio } = h.fixtures;
    const { system } = h;
    const { leadId, endpoint, settings } = await h.send();
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
    const suppression = await system.models.Suppression.findById(`sms:${toOf(settings)}`).lean();
    assert.equal(suppression?.source, 'twilio:30005');

    // A carrier outcome that is not about the number (30007 filtered) suppresses nothing.
    const other = await h.send();
    await system.waitForLead(other.leadId, (v) => v.status === 'delivered');
    const sid2 = twilio.messages.find((m) => m.to === toOf(other.settings))!.sid;
    assert.equal((await twilio.statusCallback(sid2, 'undelivered', { errorCode: 30007 })).status, 204);
    assert.equal(await system.models.Suppression.findById(`sms:${toOf(other.settings)}`).lean(), null);
  });

  it("When a callback is not signed by the endpoint's account, then it is refused (403), and an unknown endpoint is 404", async () => {
    const { twilio, forwarder } = h.fixtures;
    const { system } = h;
    const { leadId, endpoint } = await h.send();
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
    const { account } = h.fixtures;
    const buyerId = await h.system.createBuyer();
    const base = { kind: 'sms', from: FROM, to: '+14155550100', body: 'Lead {first_name}', accountSid: account.sid, authToken: account.authToken };
    const paths = async (body: Record<string, unknown>) => {
      const res = await h.system.admin<{ fields: Array<{ path: string; message: string }> }>('POST', `/buyers/${buyerId}/endpoints`, body);
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
});
