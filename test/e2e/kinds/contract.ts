/**
 * The kind contract: what every endpoint kind does end to end (intake → workflow → activity → the
 * kind's local provider fake → the delivery log), written once and run by every kind from a small
 * table: its fake, its endpoint settings, how to make the fake answer a success, a transient error,
 * a refusal, too late or not at all, and the codes and records each answer must leave.
 *
 * How it runs (the one way): this module is not a test file (mocha picks up *.test.ts only). Each
 * kind's file, test/e2e/kinds/<kind>.test.ts, declares its table and calls
 * `describeKind(table, (h) => { …its own cases… })`. That makes one mocha `describe` per kind with
 * two suites: "the kind contract", generated here from the table, and "specific to <kind>", the
 * cases only that kind has (status callbacks, quotas, token refreshes, …). Both share one system
 * and one fake per kind, started once.
 *
 * The contract's cases: first send (the mapped request arrives once; the attempt's outcome, code
 * and status; the secrets masked in the stored endpoint, the API view and the delivery log), a
 * transient answer then success, a refusal (dead-lettered, the endpoint failed), a timeout (unknown,
 * then the kind reads back or sends again), a dropped connection (the same, with nothing applied),
 * redaction (no secret in the delivery log or in any log line) and the mapping preview.
 */
import assert from 'node:assert/strict';
import type { ReadBack, SentRequest } from '../../../shared/delivery';
import { summary, waitForAttempts, type Attempt } from '../../support/attempts';
import { capturedLogLines, http, startSystem, type SystemOptions, type TestSystem } from '../../support/system';

export type Settings = Record<string, unknown>;
export type Lead = Record<string, unknown>;
/** An endpoint as the admin API answered its creation. */
export type Endpoint = Record<string, unknown> & { id: string };

/** One lead sent to one fresh endpoint. */
export interface Run {
  leadId: string;
  lead: Lead;
  endpoint: Endpoint;
  /** The endpoint's settings as they were sent (secrets in clear). */
  settings: Settings;
}

/** A request that reached the fake carrying a lead (the kind's write), as the contract compares it. */
export interface Arrived {
  /** Its body parsed as the table's `parse` parses a recorded body; only this lead's part of it. */
  body: unknown;
  /** The exact body, where the fake keeps it: the attempt record must hold these bytes. */
  raw?: string;
  receivedAt: number;
}

/** What the contract reads from a kind's fake, whatever the fake's own API. */
export interface FakeView {
  /** The writes that carried a lead to the provider for this endpoint, in arrival order. */
  sends(endpoint: Endpoint): Arrived[];
  /** Every request the fake has received (a preview must add none). */
  requestCount(): number;
  /** How many copies of the lead the provider keeps (rows, contacts, emails, SMS); absent where it keeps none. */
  held?(run: Run): number;
  /** What the fake found wrong in our requests: must be empty after each passing test. */
  violations?(): unknown[];
  /** Forgets earlier tests' requests and scripts (before each test). */
  reset?(): void;
}

/** One case of the contract for one kind: the words of its test name and how to provoke it. */
export interface Case<F> {
  /** What the provider does: the test is named "When <when>, then …". */
  when: string;
  /** Scripts the fake's next answers. */
  script?(fixtures: F): void;
  /** This case's endpoint settings, over the table's. */
  settings?(fixtures: F): Settings;
  /** The kind's own assertions on the same run, after the contract's. */
  check?(h: KindHarness<F>, run: Run, attempts: Attempt[]): void | Promise<void>;
}

/** A kind, as data for the contract. `F` is what `start` gives: the fake(s) and the credentials they know. */
export interface KindTable<F> {
  kind: string;
  /** The kind's describe title. */
  title: string;
  /** Starts the fake(s), before the system. */
  start(): Promise<F>;
  /** Provider settings that point the system at the fake. */
  providers?(fixtures: F): SystemOptions['providers'];
  /** Runs once the system is up (e.g. aims a forwarder at intake). */
  started?(fixtures: F, system: TestSystem): void;
  stop(fixtures: F): Promise<void>;
  fake(fixtures: F): FakeView;
  /** A fresh endpoint's settings: second-long backoff, a 1.5 s attempt timeout. */
  endpoint(fixtures: F): Settings;
  /** A fresh lead. */
  lead(fixtures: F): Lead;
  /** The endpoint settings that are secrets: masked in the API view, never in the clear config. */
  secretFields: string[];
  /** Every secret value of these settings, and any the fake issued for them (access tokens). */
  secrets(fixtures: F, settings: Settings): string[];
  /** Recorded request headers that carry a secret: masked in every attempt record. */
  maskedHeaders: string[];
  /** Parses a request body (recorded, previewed or received) for comparison. */
  parse(body: string): unknown;
  /** The mapped request of a lead as the attempt records it (and the preview shows it). */
  request(fixtures: F, run: Run): { method: string; url: string; body: unknown };
  /** After an ambiguous attempt, the kind reads back before sending again (else it sends again). */
  readsBack: boolean;
  firstSend: Case<F> & { status: number; messageId(fixtures: F, run: Run): string | undefined };
  /** Transient answers, then success: one code per transient attempt. */
  transient: Case<F> & { codes: string[] };
  /** A refusal: every attempt's [outcome, code] until the endpoint fails; the last one's status; how many writes reached the fake (default: one per attempt). */
  refusal: Case<F> & { attempts: Array<[outcome: 'permanent' | 'transient', code: string]>; status?: number; reason?: RegExp; sends?: number };
  /** The provider applies the request but answers after the endpoint's timeout. */
  timeout: Case<F>;
  /** The connection drops after the request was written; the provider applied nothing. */
  hangUp: Case<F> & { code: string };
  preview?: { check?(h: KindHarness<F>, run: Run, previews: { lead: SentRequest; sample: SentRequest }): void | Promise<void> };
}

/** What a kind's own cases get: the running system, the fixtures, and the table's helpers. */
export interface KindHarness<F> {
  readonly system: TestSystem;
  readonly fixtures: F;
  /** A fresh source whose waterfall is one buyer with one endpoint of this kind (the table's settings, then these). */
  route(settings?: Settings): Promise<{ apiKey: string; endpoint: Endpoint; settings: Settings }>;
  /** Posts a fresh lead (with these fields over the table's), expecting 202. */
  post(apiKey: string, extra?: Lead): Promise<{ leadId: string; lead: Lead }>;
  /** route, then post. */
  send(settings?: Settings, extra?: Lead): Promise<Run & { apiKey: string }>;
  attemptsOf(leadId: string, count: number): Promise<Attempt[]>;
}

export function describeKind<F>(table: KindTable<F>, specific?: (h: KindHarness<F>) => void): void {
  describe(table.title, function () {
    let system: TestSystem | undefined;
    let fixtures: F | undefined;

    const h: KindHarness<F> = {
      get system() {
        if (!system) throw new Error(`${table.kind}: the system is not started`);
        return system;
      },
      get fixtures() {
        if (fixtures === undefined) throw new Error(`${table.kind}: the fake is not started`);
        return fixtures;
      },
      async route(settings = {}) {
        const all = { ...table.endpoint(h.fixtures), ...settings };
        const { source, endpoints } = await h.system.route([all]);
        return { apiKey: source.apiKey, endpoint: endpoints[0]!, settings: all };
      },
      async post(apiKey, extra = {}) {
        const lead = { ...table.lead(h.fixtures), ...extra };
        const res = await h.system.postLead(apiKey, lead);
        assert.equal(res.status, 202, JSON.stringify(res.body));
        return { leadId: String(res.body.leadId), lead };
      },
      async send(settings, extra) {
        const { apiKey, endpoint, settings: all } = await h.route(settings);
        const { leadId, lead } = await h.post(apiKey, extra);
        return { apiKey, endpoint, settings: all, leadId, lead };
      },
      attemptsOf: (leadId, count) => waitForAttempts(h.system, leadId, count),
    };

    before(async function () {
      this.timeout(180_000);
      fixtures = await table.start();
      const providers = table.providers?.(fixtures);
      system = await startSystem(providers ? { providers } : {});
      table.started?.(fixtures, system);
    });
    after(async () => {
      await system?.stop();
      if (fixtures !== undefined) await table.stop(fixtures);
    });
    beforeEach(() => table.fake(h.fixtures).reset?.());
    afterEach(function () {
      if (this.currentTest?.state === 'passed' && fixtures !== undefined) assert.deepEqual(table.fake(fixtures).violations?.() ?? [], [], `every request matched what ${table.kind}'s provider documents`);
    });

    describe('the kind contract', () => contract(table, h));
    if (specific) describe(`specific to ${table.kind}`, () => specific(h));
  });
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** The first step of an endpoint's backoff schedule, in ms (the tables use whole seconds). */
function firstBackoffMs(settings: Settings): number {
  const step = Array.isArray(settings.backoff) ? String(settings.backoff[0]) : '';
  const match = /^(\d+)s$/.exec(step);
  assert.ok(match, `the table's backoff is in whole seconds, got ${step || '(none)'}`);
  return Number(match[1]) * 1000;
}

/** No secret in `value`, as it is or JSON-escaped (a secret inside a recorded JSON body is escaped twice). */
function assertNoSecret(secrets: string[], where: string, value: unknown): void {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  for (const secret of secrets) {
    const escaped = JSON.stringify(secret).slice(1, -1);
    assert.ok(!text.includes(secret) && !text.includes(escaped), `a secret (${secret.slice(0, 4)}…, ${secret.length} chars) is in ${where}`);
  }
}

function contract<F>(t: KindTable<F>, h: KindHarness<F>): void {
  const fake = () => t.fake(h.fixtures);
  const secretsOf = (settings: Settings) => {
    const secrets = t.secrets(h.fixtures, settings);
    assert.ok(secrets.length > 0 && secrets.every((s) => s.length > 0), 'the table names the secrets to look for');
    return secrets;
  };
  const heldIs = (run: Run, count: number, what: string) => {
    const held = fake().held?.(run);
    if (held !== undefined) assert.equal(held, count, what);
  };

  it(`When ${t.firstSend.when}, then the mapped request arrives once, the attempt records outcome, code and status, and the secrets are masked in the stored endpoint, the API view and the delivery log`, async () => {
    t.firstSend.script?.(h.fixtures);
    const { apiKey, endpoint, settings } = await h.route(t.firstSend.settings?.(h.fixtures));
    const secrets = secretsOf(settings);
    const stored = await h.system.models.Endpoint.findById(endpoint.id).lean();
    assert.ok(stored, 'the endpoint is stored');
    assert.ok(typeof stored.secrets === 'string' && stored.secrets.length > 0, 'its secrets are stored sealed');
    const shown = await h.system.admin('GET', `/buyers/${String(endpoint.buyerId)}/endpoints/${endpoint.id}`);
    assert.equal(shown.status, 200, JSON.stringify(shown.body));
    for (const field of t.secretFields) {
      assert.equal(field in stored.config, false, `${field} is not in the clear config`);
      assert.match(JSON.stringify(shown.body[field]), /\*{4}/, `${field} is shown masked`);
    }
    assertNoSecret(secrets, 'the answer to its creation', endpoint);
    assertNoSecret(secrets, 'the stored endpoint', stored);
    assertNoSecret(secrets, 'the API view', shown.body);

    const { leadId, lead } = await h.post(apiKey);
    const run: Run = { leadId, lead, endpoint, settings };
    const view = await h.system.waitForLead(leadId, (v) => v.status === 'delivered');
    assert.equal(view.endpoints[0]!.attempts, 1);
    const expected = t.request(h.fixtures, run);
    const sends = fake().sends(endpoint);
    assert.equal(sends.length, 1, 'the request arrived once');
    assert.deepEqual(sends[0]!.body, expected.body, 'the mapped request arrived');
    heldIs(run, 1, 'the provider keeps one copy');

    const attempts = await h.attemptsOf(leadId, 1);
    const attempt = attempts[0]!;
    assert.deepEqual([attempt.outcome, attempt.code, attempt.response?.status, attempt.response?.messageId], ['success', 'ok', t.firstSend.status, t.firstSend.messageId(h.fixtures, run)]);
    assert.deepEqual([attempt.request.method, attempt.request.url], [expected.method, expected.url]);
    assert.deepEqual(t.parse(attempt.request.body), expected.body, 'the record holds the mapped request');
    if (sends[0]!.raw !== undefined) assert.equal(attempt.request.body, sends[0]!.raw, 'the record holds the request as sent');
    assertNoSecret(t.secrets(h.fixtures, settings), 'the delivery log', await h.system.attempts(leadId));
    await t.firstSend.check?.(h, run, attempts);
  });

  const transients = t.transient.codes.length;
  it(`When ${t.transient.when}, then ${transients === 1 ? 'the attempt is' : 'each attempt is'} transient, retried a backoff apart, and attempt ${transients + 1} delivers the lead once`, async () => {
    t.transient.script?.(h.fixtures);
    const run = await h.send(t.transient.settings?.(h.fixtures));
    const view = await h.system.waitForLead(run.leadId, (v) => v.status === 'delivered');
    assert.equal(view.endpoints[0]!.attempts, transients + 1);
    const attempts = await h.attemptsOf(run.leadId, transients + 1);
    assert.deepEqual(summary(attempts), [...t.transient.codes.map((code, i): [number, string, string] => [i + 1, 'transient', code]), [transients + 1, 'success', 'ok']]);
    const sends = fake().sends(run.endpoint);
    assert.equal(sends.length, transients + 1, 'one request per attempt');
    const gap = sends[1]!.receivedAt - sends[0]!.receivedAt;
    assert.ok(gap >= firstBackoffMs(run.settings), `the retry waited for the backoff (${gap} ms)`);
    heldIs(run, 1, 'the provider keeps one copy');
    assertNoSecret(secretsOf(run.settings), 'the attempt records', attempts);
    await t.transient.check?.(h, run, attempts);
  });

  const refused = t.refusal.attempts;
  it(`When ${t.refusal.when}, then the endpoint fails and the lead is dead-lettered after ${plural(refused.length, 'attempt')}: ${refused.map(([outcome, code]) => `${outcome} ${code}`).join(', ')}`, async () => {
    t.refusal.script?.(h.fixtures);
    const run = await h.send(t.refusal.settings?.(h.fixtures));
    const view = await h.system.waitForLead(run.leadId, (v) => v.status === 'dead_lettered');
    assert.deepEqual([view.endpoints[0]!.status, view.endpoints[0]!.attempts], ['failed', refused.length]);
    const attempts = await h.attemptsOf(run.leadId, refused.length);
    assert.deepEqual(summary(attempts), refused.map(([outcome, code], i) => [i + 1, outcome, code]));
    if (t.refusal.status !== undefined) assert.equal(attempts.at(-1)!.response?.status, t.refusal.status);
    if (t.refusal.reason) assert.match(attempts.at(-1)!.reason, t.refusal.reason);
    assert.equal(fake().sends(run.endpoint).length, t.refusal.sends ?? refused.length, 'no request beyond the attempts');
    heldIs(run, 0, 'the provider keeps nothing');
    assertNoSecret(secretsOf(run.settings), 'the attempt records', attempts);
    await t.refusal.check?.(h, run, attempts);
  });

  const retry = t.readsBack ? 'the retry reads it back first: success found_on_read_back, nothing sent again' : 'the retry sends the same request again (no read-back)';
  it(`When ${t.timeout.when}, then the attempt is unknown and ${retry}`, async () => {
    t.timeout.script?.(h.fixtures);
    const run = await h.send(t.timeout.settings?.(h.fixtures));
    await h.system.waitForLead(run.leadId, (v) => v.status === 'delivered');
    const attempts = await h.attemptsOf(run.leadId, 2);
    assert.deepEqual(summary(attempts), [[1, 'unknown', 'timeout'], [2, 'success', t.readsBack ? 'found_on_read_back' : 'ok']]);
    const readBack = attempts[1]!.readBack as ReadBack | undefined;
    const sends = fake().sends(run.endpoint);
    const messageId = t.firstSend.messageId(h.fixtures, run);
    if (t.readsBack) {
      assert.deepEqual([readBack?.found, readBack?.messageId], [true, messageId], 'the read-back found what the first attempt wrote');
      assert.equal(sends.length, 1, 'not sent again');
    } else {
      assert.equal(readBack, undefined, 'nothing read back');
      assert.equal(sends.length, 2, 'sent again');
      assert.deepEqual(sends[1]!.body, sends[0]!.body, 'the same request');
      if (sends[0]!.raw !== undefined) assert.equal(sends[1]!.raw, sends[0]!.raw, 'the same bytes');
    }
    assert.equal(attempts[1]!.response?.messageId, messageId);
    heldIs(run, 1, 'the provider keeps one copy');
    assertNoSecret(secretsOf(run.settings), 'the attempt records', attempts);
    await t.timeout.check?.(h, run, attempts);
  });

  it(`When ${t.hangUp.when}, then the attempt is unknown (${t.hangUp.code}) and the retry ${t.readsBack ? 'reads back, finds nothing, and sends it once' : 'sends it again'}`, async () => {
    t.hangUp.script?.(h.fixtures);
    const run = await h.send(t.hangUp.settings?.(h.fixtures));
    await h.system.waitForLead(run.leadId, (v) => v.status === 'delivered');
    const attempts = await h.attemptsOf(run.leadId, 2);
    assert.deepEqual(summary(attempts), [[1, 'unknown', t.hangUp.code], [2, 'success', 'ok']]);
    const readBack = attempts[1]!.readBack as ReadBack | undefined;
    if (t.readsBack) assert.equal(readBack?.found, false, 'the read-back found nothing');
    else assert.equal(readBack, undefined, 'nothing read back');
    assert.equal(fake().sends(run.endpoint).length, 2, 'one request per attempt');
    heldIs(run, 1, 'the provider keeps one copy');
    assertNoSecret(secretsOf(run.settings), 'the attempt records', attempts);
    await t.hangUp.check?.(h, run, attempts);
  });

  it('When a lead is answered with a transient error and then delivered, then no secret of the endpoint (nor a token issued for it) is in its delivery log or in any log line, and the recorded requests show secrets masked', async () => {
    t.transient.script?.(h.fixtures);
    const run = await h.send(t.transient.settings?.(h.fixtures));
    await h.system.waitForLead(run.leadId, (v) => v.status === 'delivered');
    const attempts = await h.attemptsOf(run.leadId, transients + 1);
    const log = await http<{ items: Array<Record<string, unknown>> }>('GET', `${h.system.logUrl}/v1/leads/${run.leadId}/log`, { token: h.system.adminToken });
    assert.equal(log.status, 200, JSON.stringify(log.body));
    assert.equal(log.body.items.filter((e) => e.type === 'attempt').length, transients + 1, 'the delivery log holds every attempt');
    const secrets = secretsOf(run.settings);
    assertNoSecret(secrets, 'the delivery log', log.body.items);
    assertNoSecret(secrets, 'the attempt records', attempts);
    assertNoSecret(secrets, 'a log line', capturedLogLines.join('\n'));
    for (const attempt of attempts) for (const name of t.maskedHeaders) assert.match(String(attempt.request.headers[name]), /\*{4}/, `${name} is recorded masked`);
  });

  it('When the mapping preview is asked for, with a lead or with the sample lead, then it shows the request that would be sent, secrets masked, and nothing is sent', async () => {
    const { endpoint, settings } = await h.route();
    const before = fake().requestCount();
    const lead = t.lead(h.fixtures);
    const path = `/buyers/${String(endpoint.buyerId)}/endpoints/${endpoint.id}/preview`;
    const withLead = await h.system.admin<{ request: SentRequest }>('POST', path, { lead });
    assert.equal(withLead.status, 200, JSON.stringify(withLead.body));
    const sample = await h.system.admin<{ request: SentRequest }>('POST', path, {});
    assert.equal(sample.status, 200, JSON.stringify(sample.body));

    const run: Run = { leadId: 'ld_preview', lead, endpoint, settings };
    const expected = t.request(h.fixtures, run);
    assert.deepEqual([withLead.body.request.method, withLead.body.request.url], [expected.method, expected.url]);
    assert.deepEqual(t.parse(withLead.body.request.body ?? ''), expected.body, 'the request this lead would be sent');
    assert.deepEqual([sample.body.request.method, sample.body.request.url], [expected.method, expected.url]);
    assert.ok(sample.body.request.body, 'the sample lead is mapped too');
    const secrets = secretsOf(settings);
    assertNoSecret(secrets, 'the preview', withLead.body);
    assertNoSecret(secrets, 'the preview of the sample lead', sample.body);
    for (const name of t.maskedHeaders) assert.match(String(withLead.body.request.headers?.[name]), /\*{4}/, `${name} is shown masked`);
    assert.equal(fake().requestCount(), before, 'a preview sends nothing');
    await t.preview?.check?.(h, run, { lead: withLead.body.request, sample: sample.body.request });
  });
}
