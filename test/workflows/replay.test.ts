/**
 * Replay: histories of real runs replay against the current workflow code without
 * nondeterminism. Fresh histories come from the scenarios below; histories recorded by earlier
 * versions live in test/workflows/histories/*.bin, protobuf-encoded. They are never re-recorded:
 * RECORD_HISTORIES=1 writes only the scenarios that have no file yet (a new shape), so every
 * released shape stays under test (ARCHITECTURE.md, "Versioning").
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import { temporal } from '@temporalio/proto';
import { startFakeBuyer, type FakeBuyer, type ScriptStep } from '../fakes/buyer';
import { http, startSystem, workflowBundle, type TestSystem } from '../support/system';
import { rememberSecret } from '../support/secrets';
import { leadWorkflowId } from '../../shared/delivery';
import { returnWorkflowId } from '../../shared/returns';
import { dataConverter } from '../../shared/codec';
import { redeliverUpdate } from '../../workflows/messages';
import { localParts } from '../../shared/buyer-controls';
import type { LeadOutcome } from '../../workflows/deliverLead';

const HISTORIES = path.join(__dirname, 'histories');
/** Test-only key (not a secret): the payload codec key the stored histories were recorded with. */
const REPLAY_PAYLOAD_KEYS = 'replay1:cmVwbGF5LWZpeHR1cmVzLW9ubHktbm90LWEtc2VjcmU=';

/** Every history replays against the current workflow code, with the fixtures' codec keys. */
async function assertReplays(all: Array<{ name: string; history: temporal.api.history.v1.IHistory }>): Promise<void> {
  const results = Worker.runReplayHistories({ workflowBundle: await workflowBundle(), dataConverter: dataConverter(REPLAY_PAYLOAD_KEYS) }, all.map((r, i) => ({ workflowId: `${r.name}-${i}`, history: r.history })));
  let replayed = 0;
  for await (const result of results) {
    assert.equal(result.error, undefined, `${result.workflowId}: ${String(result.error)}`);
    replayed++;
  }
  assert.equal(replayed, all.length);
}

describe('workflow replay', function () {
  let system: TestSystem;
  let buyer: FakeBuyer;
  let failing: FakeBuyer;

  before(async function () {
    this.timeout(180_000);
    // Fixed codec keys: stored histories are encrypted with them and must stay readable.
    system = await startSystem({ payloadKeys: REPLAY_PAYLOAD_KEYS });
    buyer = await startFakeBuyer();
    failing = await startFakeBuyer({ steps: [{ status: 404 }] });
  });
  after(async () => {
    await buyer?.close();
    await failing?.close();
    await system?.stop();
  });

  async function scenario(name: string, steps: ScriptStep[], twoBuyers = false) {
    const source = await system.createSource(name);
    const buyers: string[] = [];
    if (twoBuyers) {
      const first = await system.createBuyer({ name: 'first' });
      await system.addEndpoint(first, { kind: 'webhook', url: failing.url });
      buyers.push(first);
    }
    const main = await system.createBuyer({ name: 'main' });
    await system.addEndpoint(main, { kind: 'webhook', url: buyer.url, backoff: ['1s', '1s'] });
    await system.addEndpoint(main, { kind: 'webhook', url: buyer.url, role: 'notify', backoff: ['1s'] });
    buyers.push(main);
    await system.setWaterfall(source.id, buyers);
    buyer.script(steps);
    const res = await system.postLead(source.apiKey, { email: `${name}@example.com`, first_name: 'Replay' });
    const leadId = String(res.body.leadId);
    const handle = system.client.workflow.getHandle(leadWorkflowId(leadId));
    if (steps.length === 1 && steps[0]!.status >= 400 && !twoBuyers) {
      // Dead-lettered: an operator redelivers it (the buyer now answers 200), covering the update path.
      await system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
      buyer.script([{ status: 200 }]);
      await handle.executeUpdate(redeliverUpdate, { args: [{ by: 'test', fields: { first_name: 'Corrected' } }] });
    }
    await handle.result();
    return { name, history: await handle.fetchHistory() };
  }

  /** A breaker that trips, goes half-open and recovers; and a lead failed over on freshness. */
  async function breakerScenario() {
    const source = await system.admin<{ id: string; apiKey: string }>('POST', '/sources', { name: 'breaker', freshness: '2s' });
    const flaky = await system.createBuyer({ name: 'flaky' });
    const steady = await system.createBuyer({ name: 'steady' });
    const ep = await system.addEndpoint(flaky, { kind: 'webhook', url: failing.url, backoff: ['5s'], breaker: { threshold: 2, coolDown: '1s' } });
    await system.addEndpoint(steady, { kind: 'webhook', url: buyer.url });
    await system.setWaterfall(source.body.id, [flaky, steady]);
    buyer.script([{ status: 200 }]);
    failing.script([{ status: 503 }]);
    const post = async (n: number) => {
      const res = await system.postLead(source.body.apiKey, { email: `breaker${n}@example.com` });
      return system.client.workflow.getHandle(leadWorkflowId(String(res.body.leadId)));
    };
    const freshness = await post(1); // 503, then the freshness deadline moves it on during the backoff
    await freshness.result();
    await (await post(2)).result(); // second failure: the breaker opens
    await new Promise((r) => setTimeout(r, 2_500)); // cool-down → half-open
    failing.script([{ status: 200 }]);
    await (await post(3)).result(); // the probe closes it
    failing.script([{ status: 404 }]);
    const breakerHandle = system.client.workflow.getHandle(`breaker-${ep.id}`);
    await new Promise((r) => setTimeout(r, 1_000));
    return [
      { name: 'freshness-failover', history: await freshness.fetchHistory() },
      { name: 'breaker', history: await breakerHandle.fetchHistory() },
    ];
  }

  /** Held by a buyer: accept-all with one endpoint taking the lead and one refusing it, then redelivered to it. */
  async function heldScenario() {
    const source = await system.createSource('held');
    const other = await startFakeBuyer({ steps: [{ status: 422 }] });
    try {
      const holder = await system.createBuyer({ name: 'holder', accept: 'all' });
      await system.addEndpoint(holder, { kind: 'webhook', url: buyer.url, backoff: [] });
      await system.addEndpoint(holder, { kind: 'webhook', url: other.url, backoff: [] });
      const next = await system.createBuyer({ name: 'next' });
      await system.addEndpoint(next, { kind: 'webhook', url: buyer.url });
      await system.setWaterfall(source.id, [holder, next]);
      buyer.script([{ status: 200 }]);
      const res = await system.postLead(source.apiKey, { email: 'held@example.com' });
      const leadId = String(res.body.leadId);
      await system.waitForLead(leadId, (v) => v.status === 'dead_lettered');
      other.script([{ status: 200 }]);
      const handle = system.client.workflow.getHandle(leadWorkflowId(leadId));
      await handle.executeUpdate(redeliverUpdate, { args: [{ by: 'test' }] });
      await handle.result();
      return { name: 'held-partial-then-redelivered', history: await handle.fetchHistory() };
    } finally {
      await other.close();
    }
  }

  /** Ambiguous: the buyer resets after reading the first request; the same endpoint is retried and takes it. */
  async function ambiguousScenario() {
    const source = await system.createSource('ambiguous');
    const main = await system.createBuyer({ name: 'resetting' });
    await system.addEndpoint(main, { kind: 'webhook', url: buyer.url, backoff: ['1s'] });
    await system.setWaterfall(source.id, [main]);
    buyer.script([{ status: 200, hangUp: true }, { status: 200 }]);
    const res = await system.postLead(source.apiKey, { email: 'ambiguous@example.com' });
    const handle = system.client.workflow.getHandle(leadWorkflowId(String(res.body.leadId)));
    await handle.result();
    return { name: 'ambiguous-reset-then-delivered', history: await handle.fetchHistory() };
  }

  /** Buyer controls: a buyer at its daily cap is skipped (reserve, skip, the next buyer takes it). */
  async function cappedScenario() {
    const source = await system.createSource('capped');
    const capped = await system.createBuyer({ name: 'capped' });
    assert.equal((await system.admin('PATCH', `/buyers/${capped}`, { caps: { daily: 1 } })).status, 200);
    await system.addEndpoint(capped, { kind: 'webhook', url: buyer.url });
    const next = await system.createBuyer({ name: 'next' });
    await system.addEndpoint(next, { kind: 'webhook', url: buyer.url });
    await system.setWaterfall(source.id, [capped, next]);
    buyer.script([{ status: 200 }]);
    await system.client.workflow.getHandle(leadWorkflowId(String((await system.postLead(source.apiKey, { email: 'cap1@example.com' })).body.leadId))).result();
    const handle = system.client.workflow.getHandle(leadWorkflowId(String((await system.postLead(source.apiKey, { email: 'cap2@example.com' })).body.leadId)));
    await handle.result();
    return { name: 'capped-skip', history: await handle.fetchHistory() };
  }

  /** A throttled endpoint (1/s): four leads at once; the last ones wait for its send slot on a timer. */
  async function throttledScenario() {
    const source = await system.createSource('throttled');
    const slow = await system.createBuyer({ name: 'slow' });
    await system.addEndpoint(slow, { kind: 'webhook', url: buyer.url, throttle: { perSecond: 1 } });
    await system.setWaterfall(source.id, [slow]);
    buyer.script([{ status: 200 }]);
    const posted = await Promise.all([1, 2, 3, 4].map((n) => system.postLead(source.apiKey, { email: `throttled${n}@example.com` })));
    const handles = posted.map((r) => system.client.workflow.getHandle(leadWorkflowId(String(r.body.leadId))));
    await Promise.all(handles.map((h) => h.result()));
    const histories = await Promise.all(handles.map((h) => h.fetchHistory()));
    // Asked twice for the same attempt: once throttled (a timer then), once sent.
    const waited = histories.find((h) => (h.events ?? []).filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'deliverAttempt').length > 1);
    assert.ok(waited, 'a lead waited for its slot');
    return { name: 'throttled-then-sent', history: waited };
  }

  /**
   * Delivery hours with `outside: "hold"`: the buyer opens at the next whole minute (UTC), so the lead
   * waits on a durable timer for the opening and the buyer takes it then. Started before the other
   * scenarios and awaited after them, so its wait (5 to 65 s) overlaps theirs.
   */
  async function startHoldScenario() {
    const opensAt = Math.ceil((Date.now() + 5_000) / 60_000) * 60_000;
    const open = localParts(opensAt, 'UTC');
    const day = (['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const)[open.weekday - 1]!;
    const hhmm = `${String(open.hour).padStart(2, '0')}:${String(open.minute).padStart(2, '0')}`;
    // Closed now, open from hhmm to the end of that day (a day not listed is closed).
    const source = await system.admin<{ id: string; apiKey: string }>('POST', '/sources', { name: 'hold', freshness: '3m' });
    const own = await startFakeBuyer({ steps: [{ status: 200 }] });
    const opening = await system.createBuyer({ name: 'opens soon' });
    assert.equal((await system.admin('PATCH', `/buyers/${opening}`, { timeZone: 'UTC', schedule: { hours: { [day]: [[hhmm, '24:00']] }, outside: 'hold' } })).status, 200);
    await system.addEndpoint(opening, { kind: 'webhook', url: own.url });
    await system.setWaterfall(source.body.id, [opening]);
    const res = await system.postLead(source.body.apiKey, { email: 'hold@example.com' });
    const handle = system.client.workflow.getHandle(leadWorkflowId(String(res.body.leadId)));
    return async () => {
      try {
        const outcome = (await handle.result()) as LeadOutcome;
        assert.equal(outcome.buyerId, opening, 'the buyer took it once open');
        assert.ok(Date.now() >= opensAt, 'taken after the opening');
        const history = await handle.fetchHistory();
        assert.ok(history.events?.some((e) => e.timerStartedEventAttributes && e.userMetadata?.summary), 'the wait is a durable timer with its summary');
        return { name: 'hold-for-opening', history };
      } finally {
        await own.close();
      }
    };
  }

  /** A buyer returns a delivered lead with a reason an operator decides (pending); an operator approves it. */
  async function returnScenario() {
    const source = await system.createSource('return');
    const taker = await system.createBuyer({ name: 'returning' });
    await system.addEndpoint(taker, { kind: 'webhook', url: buyer.url });
    await system.setWaterfall(source.id, [taker]);
    buyer.script([{ status: 200 }]);
    const res = await system.postLead(source.apiKey, { email: 'return@example.com' });
    const leadId = String(res.body.leadId);
    await system.client.workflow.getHandle(leadWorkflowId(leadId)).result();
    const key = await system.admin<{ apiKey: string }>('POST', `/buyers/${taker}/keys`);
    rememberSecret(key.body.apiKey);
    const returned = await http('POST', `${system.intakeUrl}/v1/buyer/returns`, { token: key.body.apiKey, body: { leadId, reason: 'other', note: 'replay fixture' } });
    assert.deepEqual([returned.status, returned.body.status], [201, 'pending'], JSON.stringify(returned.body));
    const approved = await system.admin('POST', `/returns/${String(returned.body.returnId)}/approve`, { reason: 'checked' });
    assert.equal(approved.body.status, 'approved', JSON.stringify(approved.body));
    const handle = system.client.workflow.getHandle(returnWorkflowId(leadId));
    await handle.result();
    return { name: 'lead-return-pending-approved', history: await handle.fetchHistory() };
  }

  it('When the history of a pending return that an operator approves is replayed (fresh and as stored), then it is deterministic', async function () {
    this.timeout(120_000);
    const run = await returnScenario();
    const updates = run.history.events?.filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes).length ?? 0;
    assert.equal(updates, 1, 'the history has the operator’s decideReturn update');
    const file = path.join(HISTORIES, `${run.name}.bin`);
    // A new shape only: an existing file is never replaced.
    if (process.env.RECORD_HISTORIES && !existsSync(file)) writeFileSync(file, temporal.api.history.v1.History.encode(run.history).finish());
    await assertReplays([run, ...(existsSync(file) ? [{ name: `stored ${run.name}.bin`, history: temporal.api.history.v1.History.decode(readFileSync(file)) }] : [])]);
  });

  it('When histories of delivered, retried, dead-lettered, failed-over, held, ambiguous, capped, throttled and hours-held leads and of breakers are replayed, then none is nondeterministic', async function () {
    this.timeout(180_000);
    const held = await startHoldScenario();
    const [freshness, breaker] = await breakerScenario();
    const runs = [
      await scenario('first-try', [{ status: 200 }]),
      await scenario('retried', [{ status: 503 }, { status: 200 }]),
      await scenario('dead-lettered-then-redelivered', [{ status: 400 }]),
      await scenario('failover', [{ status: 200 }], true),
      freshness!,
      breaker!,
      await heldScenario(),
      await ambiguousScenario(),
      await cappedScenario(),
      await throttledScenario(),
      await held(),
    ];
    const breakerRun = runs.find((r) => r.name === 'breaker')!;
    const signals = breakerRun.history.events?.filter((e) => e.workflowExecutionSignaledEventAttributes).length ?? 0;
    assert.ok(signals >= 3, `the breaker history has its outcome signals (${signals})`);
    if (process.env.RECORD_HISTORIES) {
      // New shapes only: a stored history is what some running workflow looks like; it is never replaced.
      mkdirSync(HISTORIES, { recursive: true });
      const version = process.env.RECORD_HISTORIES_SUFFIX ?? '';
      for (const run of runs) {
        const file = path.join(HISTORIES, `${run.name}${version}.bin`);
        if (!existsSync(file)) writeFileSync(file, temporal.api.history.v1.History.encode(run.history).finish());
      }
    }
    const stored = readdirSync(HISTORIES).filter((f) => f.endsWith('.bin')).map((file) => ({
      name: `stored ${file}`,
      history: temporal.api.history.v1.History.decode(readFileSync(path.join(HISTORIES, file))),
    }));
    await assertReplays([...runs, ...stored]);
    assert.ok(runs.every((r) => (r.history.events?.length ?? 0) > 5));
  });
});
