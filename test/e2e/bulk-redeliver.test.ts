/**
 * Bulk redelivery at scale, on the real servers: thousands of dead letters walked with a keyset
 * cursor fixed at the bulk's start, continued as new every few pages (state and history stay
 * small), leads already resolved (workflow closed, deleted after retention, no longer
 * dead-lettered) counted as skipped with their reason, and exact counts.
 *
 * Creating 10,000 real dead-lettered workflows is too slow on a small machine, so most dead
 * letters are summary rows with no workflow behind them (what a lead looks like once Temporal's
 * retention deleted its workflow); a few are real. BULK_DEAD_LETTERS sets how many rows (10,000).
 */
import assert from 'node:assert/strict';
import { Worker } from '@temporalio/worker';
import { temporal } from '@temporalio/proto';
import { startFakeBuyer, type FakeBuyer, type ReceivedRequest } from '../fakes/buyer';
import { eventually, startSystem, workflowBundle, type TestSystem } from '../support/system';
import { dataConverter } from '../../shared/codec';
import { leadWorkflowId, type LeadView } from '../../shared/delivery';
import { BULK_PAGE_SIZE, BULK_PAGES_PER_RUN, type BulkDeadLetterProgress, type bulkRedeliver } from '../../workflows/operator-jobs';

const ROWS = Number(process.env.BULK_DEAD_LETTERS ?? 10_000);
const REAL = 30;
const CLOSED = 3;
const BUSY = 2;

/** The route's answer: the bulk's id and its progress query (the workflow's own type, so they cannot drift). */
type Progress = { bulkId: string } & BulkDeadLetterProgress;

const leadIdOf = (request: ReceivedRequest) => /^msg_(ld_[a-z0-9]+)_/.exec(String(request.headers['webhook-id']))?.[1];
const pad = (n: number) => String(n).padStart(6, '0');

describe('bulk redelivery at scale', function () {
  let system: TestSystem;
  let buyer: FakeBuyer;
  let slow: FakeBuyer;

  before(async function () {
    this.timeout(180_000);
    system = await startSystem();
    [buyer, slow] = await Promise.all([startFakeBuyer(), startFakeBuyer({ steps: [{ status: 503 }] })]);
  });
  after(async () => {
    await Promise.all([buyer?.close(), slow?.close()]);
    await system?.stop();
  });

  const post = async (apiKey: string, n: string) => String((await system.postLead(apiKey, { email: `${n}@example.com`, first_name: 'Ada' })).body.leadId);
  const progressOf = async (bulkId: string) => {
    const res = await system.admin<Progress>('GET', `/bulk/${bulkId}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body;
  };

  it(`When ${ROWS.toLocaleString('en')} dead letters (most with their workflow gone, some closed, some busy, ${REAL} real) are redelivered in bulk, then each is counted exactly once with its reason, the real ones are delivered once more, and the bulk continues as new with a small history`, async function () {
    this.timeout(Math.max(240_000, ROWS * 30));
    // One buyer; 422 is about the lead, not the endpoint's health, so its breaker stays closed.
    const { source, buyerId } = await system.route([{ kind: 'webhook', url: buyer.url, backoff: [] }]);
    buyer.script([{ status: 422, body: 'rejected' }]);
    const real = await Promise.all(Array.from({ length: REAL }, (_, i) => post(source.apiKey, `real${i}`)));
    for (const leadId of real) await system.waitForLead(leadId, (v) => v.status === 'dead_lettered');

    // Leads whose workflow already closed (delivered), their summary row forced back to dead_lettered.
    buyer.script([{ status: 200 }]);
    const closed = await Promise.all(Array.from({ length: CLOSED }, (_, i) => post(source.apiKey, `closed${i}`)));
    for (const leadId of closed) await system.client.workflow.getHandle(leadWorkflowId(leadId)).result();
    await eventually(async () => ((await system.models.Lead.countDocuments({ _id: { $in: closed }, status: 'delivered' })) === CLOSED ? true : undefined), 15_000, 'closed rows delivered');
    const now = Date.now();
    await Promise.all(closed.map((leadId, i) => system.models.Lead.updateOne({ _id: leadId }, { $set: { status: 'dead_lettered', reasonCode: 'all_failed', reason: 'forced by the test', deadLetteredAt: new Date(now - (i + 1) * 600_000) } })));

    // Leads still running and not dead-lettered (waiting in a long backoff), their rows forced to dead_lettered.
    const busyRoute = await system.route([{ kind: 'webhook', url: slow.url, backoff: ['10m'] }]);
    const busy = await Promise.all(Array.from({ length: BUSY }, (_, i) => post(busyRoute.source.apiKey, `busy${i}`)));
    for (const leadId of busy) await system.waitForLead(leadId, (v) => v.status === 'delivering' && v.decisions.length > 0);
    await eventually(async () => ((await system.models.Lead.countDocuments({ _id: { $in: busy }, status: 'delivering' })) === BUSY ? true : undefined), 15_000, 'busy rows delivering');
    await Promise.all(busy.map((leadId, i) => system.models.Lead.updateOne({ _id: leadId }, { $set: { sourceId: source.id, status: 'dead_lettered', reasonCode: 'all_failed', deadLetteredAt: new Date(now - (i + 1) * 700_000) } })));

    // The bulk of it: rows whose workflow Temporal's retention deleted, spread over the past hour,
    // by fives sharing one instant (the cursor's tie-break on _id must neither skip nor repeat).
    const inserting = Date.now();
    const rows = Array.from({ length: ROWS }, (_, i) => {
      const at = new Date(now - 5_000 - Math.floor(i / 5) * Math.max(1, Math.floor(3_600_000 / Math.max(1, ROWS / 5))));
      return { _id: `ld_gone${pad(i)}`, sourceId: source.id, status: 'dead_lettered', reason: 'every buyer refused the lead', reasonCode: 'all_failed', buyersTried: [buyerId], receivedAt: at, updatedAt: at, deadLetteredAt: at, statusSeq: 3 };
    });
    for (let i = 0; i < rows.length; i += 1_000) await system.models.Lead.insertMany(rows.slice(i, i + 1_000), { ordered: false });
    console.log(`      inserted ${ROWS} dead-letter rows in ${Date.now() - inserting} ms`);
    const expected = ROWS + REAL + CLOSED + BUSY;
    assert.equal(await system.models.Lead.countDocuments({ sourceId: source.id, status: 'dead_lettered' }), expected);

    buyer.requests.length = 0;
    const started = Date.now();
    const bulk = await system.admin<{ bulkId: string; progress: string }>('POST', '/dead-letters/redeliver', { sourceId: source.id });
    assert.equal(bulk.status, 202, JSON.stringify(bulk.body));
    const { bulkId } = bulk.body;
    const first = await eventually(async () => {
      const res = await system.admin<Progress>('GET', `/bulk/${bulkId}`);
      return res.status === 200 ? res.body : undefined;
    }, 10_000, 'first progress');
    assert.equal(first.status === 'running' || first.status === 'done', true);
    assert.equal(typeof first.startedAt, 'string');
    // Dead-lettered after the bulk started: not part of it.
    const lateAt = new Date(Date.parse(first.startedAt) + 1_000);
    await system.models.Lead.insertMany(Array.from({ length: 20 }, (_, i) => ({ _id: `ld_late${pad(i)}`, sourceId: source.id, status: 'dead_lettered', reasonCode: 'all_failed', receivedAt: lateAt, updatedAt: lateAt, deadLetteredAt: lateAt, statusSeq: 3 })));

    // Progress stays readable across runs, and its counts never go back.
    let last = first;
    let polls = 0;
    const done = await eventually(async () => {
      const now = await progressOf(bulkId);
      polls++;
      assert.ok(now.matched >= last.matched && now.runs >= last.runs && now.pages >= last.pages, `progress went back: ${JSON.stringify(last)} → ${JSON.stringify(now)}`);
      assert.equal(now.matched, now.redelivered + now.skipped + now.failed, JSON.stringify(now));
      last = now;
      return now.status === 'done' ? now : undefined;
    }, Math.max(200_000, ROWS * 25), 'bulk done');
    const seconds = (Date.now() - started) / 1000;
    console.log(`      bulk of ${done.matched} dead letters: ${seconds.toFixed(1)} s, ${(done.matched / seconds).toFixed(0)} leads/s, ${done.pages} pages, ${done.runs} runs, ${polls} progress polls`);
    console.log(`      progress: ${JSON.stringify({ ...done, failures: done.failures.length })}`);

    assert.deepEqual(
      { matched: done.matched, redelivered: done.redelivered, skipped: done.skipped, failed: done.failed, failures: done.failures },
      { matched: expected, redelivered: REAL, skipped: ROWS + CLOSED + BUSY, failed: 0, failures: [] },
    );
    assert.deepEqual(done.skippedByReason, { workflow_not_found: ROWS, workflow_closed: CLOSED, not_dead_lettered: BUSY });
    assert.ok(done.finishedAt && Date.parse(done.finishedAt) >= Date.parse(done.startedAt));
    assert.equal(done.pages, Math.ceil(expected / BULK_PAGE_SIZE));

    // The real dead letters were delivered, each sent to the buyer exactly once more.
    for (const leadId of real) {
      const view: LeadView = await system.waitForLead(leadId, (v) => v.status === 'delivered', 30_000);
      assert.equal(view.buyerId, buyerId);
      assert.equal(buyer.requests.filter((r) => leadIdOf(r) === leadId).length, 1, `lead ${leadId} sent once more`);
    }
    assert.equal(buyer.requests.length, REAL, 'nothing else was sent');
    assert.equal(await system.models.Lead.countDocuments({ _id: { $regex: '^ld_late' }, status: 'dead_lettered' }), 20, 'later dead letters untouched');

    // Continued as new every few pages; the latest run's history stays small.
    const minRuns = Math.ceil(done.pages / BULK_PAGES_PER_RUN);
    assert.ok(minRuns >= 2 || ROWS < BULK_PAGE_SIZE * BULK_PAGES_PER_RUN, 'enough pages to continue as new');
    assert.ok(done.runs >= minRuns, `runs ${done.runs} ≥ ${minRuns}`);
    const executions = await eventually(async () => {
      const found = [];
      for await (const execution of system.client.workflow.list({ query: `WorkflowId = "${bulkId}"` })) found.push(execution);
      return found.length === done.runs ? found : undefined;
    }, 15_000, `${done.runs} runs listed`);
    assert.equal(executions.filter((e) => e.status.name === 'CONTINUED_AS_NEW').length, done.runs - 1);
    assert.equal(executions.filter((e) => e.status.name === 'COMPLETED').length, 1);
    // Every run's history stays small (the state carried is the cursor, counters and a bounded sample).
    const sizes = [];
    for (const execution of executions) {
      const history = await system.client.workflow.getHandle(bulkId, execution.runId).fetchHistory();
      sizes.push({ runId: execution.runId, status: execution.status.name, history, events: history.events?.length ?? 0, bytes: temporal.api.history.v1.History.encode(history).finish().length });
    }
    const latest = sizes.find((s) => s.status === 'COMPLETED')!;
    const largest = sizes.reduce((a, b) => (b.bytes > a.bytes ? b : a));
    console.log(`      ${sizes.length} runs; latest run's history ${latest.events} events / ${latest.bytes} bytes; largest ${largest.events} events / ${largest.bytes} bytes`);
    assert.ok(largest.events < 200, `each run's history is small (${largest.events} events)`);
    assert.ok(largest.bytes < 512 * 1024, `each run's history is small (${largest.bytes} bytes)`);
    // An earlier run (ended by continue-as-new) and the last one replay against today's code.
    const histories = [{ workflowId: `${bulkId}-latest`, history: latest.history }, { workflowId: `${bulkId}-largest`, history: largest.history }];
    for await (const result of Worker.runReplayHistories({ workflowBundle: await workflowBundle(), dataConverter: dataConverter(system.payloadKeys) }, histories)) {
      assert.equal(result.error, undefined, `${result.workflowId}: ${String(result.error)}`);
    }
  });

  it('When a bulk started by the previous code (bulkRedeliver) is asked for its progress, then the route answers in the same shape', async function () {
    this.timeout(60_000);
    const empty = await system.createSource('nothing dead-lettered');
    const bulkId = 'bulk-legacy-' + Date.now().toString(36);
    const handle = await system.client.workflow.start<typeof bulkRedeliver>('bulkRedeliver', { workflowId: bulkId, taskQueue: system.deliveryTaskQueue, args: [{ filter: { sourceId: empty.id }, by: 'operator' }] });
    await handle.result();
    const progress = await progressOf(bulkId);
    assert.deepEqual(
      { status: progress.status, matched: progress.matched, redelivered: progress.redelivered, skipped: progress.skipped, failed: progress.failed, failures: progress.failures },
      { status: 'done', matched: 0, redelivered: 0, skipped: 0, failed: 0, failures: [] },
    );
    assert.equal((await system.admin('GET', '/bulk/bulk-nope')).status, 404);
  });
});
