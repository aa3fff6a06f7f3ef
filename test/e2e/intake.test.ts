/**
 * Intake's contract: authentication, validation with field-level errors, body and media-type
 * limits, idempotency, lead status, and that nothing bad starts a workflow.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ApplicationFailure, WorkflowNotFoundError } from '@temporalio/common';
import { startFakeBuyer, type FakeBuyer } from '../fakes/buyer';
import { eventually, http, startSystem, type TestSystem } from '../support/system';
import { createLogActivities, JOURNAL_CONFLICT } from '../../services/log/journal';
import { leadWorkflowId, type JournalEntry } from '../../shared/delivery';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('intake', function () {
  let system: TestSystem;
  let buyer: FakeBuyer;
  let source: { id: string; apiKey: string };

  before(async function () {
    this.timeout(180_000);
    system = await startSystem({ bodyLimit: '8kb' });
    buyer = await startFakeBuyer();
    source = await system.createSource('intake test');
    const buyerId = await system.createBuyer();
    await system.addEndpoint(buyerId, { kind: 'webhook', url: buyer.url, backoff: ['1s'] });
    await system.setWaterfall(source.id, [buyerId]);
  });
  after(async () => {
    await buyer?.close();
    await system?.stop();
  });

  const workflowsOf = async (sourceId: string) => {
    let count = 0;
    for await (const _ of system.client.workflow.list({ query: `SourceId = "${sourceId}"` })) count++;
    return count;
  };

  it('When the same client id is posted twice, then one workflow runs and the second answer is 200 duplicate', async () => {
    const body = { id: 'vendor-42', email: 'grace@example.com' };
    const first = await system.postLead(source.apiKey, body);
    const second = await system.postLead(source.apiKey, body);
    assert.equal(first.status, 202);
    assert.equal(second.status, 200);
    assert.equal(second.body.duplicate, true);
    assert.equal(second.body.leadId, first.body.leadId);
    await system.waitForLead(String(first.body.leadId), (v) => v.status === 'delivered');
    const deliveries = buyer.requests.filter((r) => r.body.includes('grace@example.com'));
    assert.equal(deliveries.length, 1);
  });

  it('When the same Idempotency-Key is reused, then the same lead is answered; with other fields it is a 409', async () => {
    const headers = { 'Idempotency-Key': 'req-7f3a' };
    const first = await system.postLead(source.apiKey, { email: 'alan@example.com' }, headers);
    const again = await system.postLead(source.apiKey, { email: 'alan@example.com' }, headers);
    const changed = await system.postLead(source.apiKey, { email: 'other@example.com' }, headers);
    assert.equal(first.status, 202);
    assert.deepEqual([again.status, again.body.leadId, again.body.duplicate], [200, first.body.leadId, true]);
    assert.equal(changed.status, 409);
    assert.equal(changed.body.error, 'idempotency_conflict');
  });

  /** As Temporal's retention does: the lead's workflow is gone, its delivery log stays. */
  const forgetWorkflow = async (leadId: string) => {
    await eventually(async () => ((await system.models.Lead.findById(leadId).lean())?.status === 'delivered' ? true : undefined), 30_000, 'the lead summary says delivered');
    const workflowId = leadWorkflowId(leadId);
    await system.client.workflowService.deleteWorkflowExecution({ namespace: 'default', workflowExecution: { workflowId } });
    await eventually(async () => {
      try {
        await system.client.workflow.getHandle(workflowId).describe();
        return undefined;
      } catch (error) {
        if (error instanceof WorkflowNotFoundError) return true;
        throw error;
      }
    }, 120_000, 'the workflow is gone'); // the dev server deletes asynchronously (10-40 s)
  };
  const workflowExists = async (leadId: string) => {
    try {
      await system.client.workflow.getHandle(leadWorkflowId(leadId)).describe();
      return true;
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return false;
      throw error;
    }
  };
  const deliveriesOf = (marker: string) => buyer.requests.filter((r) => r.body.includes(marker)).length;

  it('When a lead with a client id is re-posted after Temporal no longer retains its workflow, then the answer is 200 duplicate and it is not delivered again', async function () {
    this.timeout(180_000);
    const body = { id: 'vendor-retained-1', email: 'retained@example.com' };
    const first = await system.postLead(source.apiKey, body);
    assert.equal(first.status, 202);
    const leadId = String(first.body.leadId);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    await forgetWorkflow(leadId);
    const again = await system.postLead(source.apiKey, body);
    assert.deepEqual([again.status, again.body.leadId, again.body.duplicate], [200, leadId, true]);
    await sleep(1_500);
    assert.equal(await workflowExists(leadId), false, 'no second workflow');
    assert.equal(deliveriesOf('retained@example.com'), 1);
  });

  it('When the same Idempotency-Key comes with other fields after the workflow is gone, then the answer is 409 idempotency_conflict', async function () {
    this.timeout(180_000);
    const headers = { 'Idempotency-Key': `req-${randomBytes(4).toString('hex')}` };
    const first = await system.postLead(source.apiKey, { email: 'kept@example.com', first_name: 'Kept' }, headers);
    assert.equal(first.status, 202);
    const leadId = String(first.body.leadId);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    await forgetWorkflow(leadId);
    const same = await system.postLead(source.apiKey, { first_name: 'Kept', email: 'kept@example.com' }, headers);
    assert.deepEqual([same.status, same.body.duplicate], [200, true], 'the same fields in another order are the same lead');
    const changed = await system.postLead(source.apiKey, { email: 'changed@example.com' }, headers);
    assert.deepEqual([changed.status, changed.body.error], [409, 'idempotency_conflict']);
    assert.equal(await workflowExists(leadId), false);
  });

  it('When an identical payload without an id is posted twice within the window, then both answers name the same lead and it is delivered once', async () => {
    const body = { email: 'twice@example.com', first_name: 'Twice', custom: { n: 1 } };
    const first = await system.postLead(source.apiKey, body);
    const second = await system.postLead(source.apiKey, { custom: { n: 1 }, first_name: 'Twice', email: 'twice@example.com' });
    assert.equal(first.status, 202);
    assert.deepEqual([second.status, second.body.leadId, second.body.duplicate], [200, first.body.leadId, true]);
    const other = await system.postLead(source.apiKey, { ...body, custom: { n: 2 } });
    assert.equal(other.status, 202, 'a payload that differs is another lead');
    assert.notEqual(other.body.leadId, first.body.leadId);
    await system.waitForLead(String(first.body.leadId), (v) => v.status === 'delivered');
    await sleep(1_000);
    assert.equal(buyer.requests.filter((r) => r.body.includes('twice@example.com') && r.body.includes('"n":1')).length, 1);
  });

  it('When the source\'s duplicate window ("2s") has passed, then the identical payload is a new lead; "0s" turns the window off', async function () {
    this.timeout(60_000);
    const created = await system.admin<{ id: string; apiKey: string; duplicateWindow: string }>('POST', '/sources', { name: 'short window', duplicateWindow: '2s' });
    assert.equal(created.status, 201);
    assert.equal(created.body.duplicateWindow, '2s');
    const bad = await system.admin<{ fields: Array<{ path: string }> }>('PATCH', `/sources/${created.body.id}`, { duplicateWindow: 'soon' });
    assert.deepEqual([bad.status, bad.body.fields.map((f) => f.path)], [400, ['duplicateWindow']]);
    const apiKey = created.body.apiKey;
    const body = { email: 'window@example.com' };
    const first = await system.postLead(apiKey, body);
    const within = await system.postLead(apiKey, body);
    assert.deepEqual([first.status, within.status, within.body.leadId], [202, 200, first.body.leadId]);
    await sleep(2_300);
    const after = await system.postLead(apiKey, body);
    assert.equal(after.status, 202);
    assert.notEqual(after.body.leadId, first.body.leadId);

    const off = await system.admin('PATCH', `/sources/${created.body.id}`, { duplicateWindow: '0s' });
    assert.deepEqual([off.status, off.body.duplicateWindow], [200, '0s']);
    // Applies at once in the intake that took the change (other intake processes: within the key cache's 5 s).
    const a = await system.postLead(apiKey, { email: 'nowindow@example.com' });
    const b = await system.postLead(apiKey, { email: 'nowindow@example.com' });
    assert.deepEqual([a.status, b.status], [202, 202]);
    assert.notEqual(a.body.leadId, b.body.leadId);
  });

  it('When a journal write meets other content at a seq already written, then it fails non-retryable as JournalConflict; the same content again is a no-op', async () => {
    const { appendJournal } = createLogActivities(system.log);
    const leadId = `ld_conflict${randomBytes(6).toString('hex')}`;
    const at = Date.now();
    const intake: JournalEntry = { type: 'intake', at, sourceId: source.id, lead: { email: 'conflict-a@example.com' } };
    const status: JournalEntry = { type: 'status', at: at + 1, status: 'delivering' };
    const other: JournalEntry = { type: 'intake', at: at + 5_000, sourceId: source.id, lead: { email: 'conflict-b@example.com' } };
    const isConflict = (error: unknown) => {
      assert.ok(error instanceof ApplicationFailure, String(error));
      assert.equal(error.type, JOURNAL_CONFLICT);
      assert.equal(error.type, 'JournalConflict');
      assert.equal(error.nonRetryable, true);
      assert.ok(error.message.includes(leadId) && /seq 1\b/.test(error.message), error.message);
      assert.ok(!error.message.includes('conflict-'), 'no PII in the message');
      return true;
    };
    const seqs = async () => (await system.models.LogEntry.find({ leadId }).sort({ seq: 1 }).lean()).map((d) => [d.seq, d.hash]);

    const written = await appendJournal({ leadId, sourceId: source.id, firstSeq: 1, prevHash: '', entries: [intake] });
    const retried = await appendJournal({ leadId, sourceId: source.id, firstSeq: 1, prevHash: '', entries: [intake] });
    assert.equal(retried.head, written.head, 'a retried write is a no-op');
    // Another history at seq 1: refused, and its seq 2 (new) is not left behind on the old chain.
    await assert.rejects(appendJournal({ leadId, sourceId: source.id, firstSeq: 1, prevHash: '', entries: [other, status] }), isConflict);
    assert.deepEqual(await seqs(), [[1, written.head]], 'nothing was overwritten or added');
    const overlapping = await appendJournal({ leadId, sourceId: source.id, firstSeq: 1, prevHash: '', entries: [intake, status] });
    assert.equal(overlapping.written, 2);
    const summary = await system.models.Lead.findById(leadId).lean();
    assert.deepEqual([summary?.status, summary?.statusSeq], ['delivering', 2], 'the summary takes the status of the overlapping write');
    await assert.rejects(appendJournal({ leadId, sourceId: source.id, firstSeq: 1, prevHash: '', entries: [other] }), isConflict);
    assert.deepEqual((await seqs()).map(([seq]) => seq), [1, 2]);
    assert.equal((await system.models.Lead.findById(leadId).lean())?.receivedAt.getTime(), at, 'the summary keeps the first history');
  });

  it('When two sources use the same client id, then they get two different leads', async () => {
    const other = await system.createSource('other');
    const a = await system.postLead(source.apiKey, { id: 'same-1', email: 'x@example.com' });
    const b = await system.postLead(other.apiKey, { id: 'same-1', email: 'x@example.com' });
    assert.equal(a.status, 202);
    assert.equal(b.status, 202);
    assert.notEqual(a.body.leadId, b.body.leadId);
  });

  it('When the body is invalid, then each bad field is named and no workflow starts', async () => {
    const probe = await system.createSource('validation probe');
    const res = await system.postLead(probe.apiKey, { first_name: '', email: 'not-an-email', country: 'usa', frist_name: 'typo', custom: { 'bad key': 1 } });
    assert.equal(res.status, 400);
    assert.equal(res.body.error, 'validation_failed');
    const paths = (res.body.fields as Array<{ path: string; message: string }>).map((f) => f.path).sort();
    assert.deepEqual(paths, ['country', 'custom.bad key', 'email', 'first_name', 'frist_name']);
    const missing = await system.postLead(probe.apiKey, { first_name: 'No', last_name: 'Contact' });
    assert.equal(missing.status, 400);
    assert.deepEqual(missing.body.fields, [{ path: 'email', message: 'at least one of email or phone is required' }]);
    const notObject = await system.postLead(probe.apiKey, [1, 2]);
    assert.equal(notObject.status, 400);
    // Positive control: the one valid lead of this source is the only workflow it has.
    assert.equal((await system.postLead(probe.apiKey, { email: 'valid@example.com' })).status, 202);
    await eventually(async () => ((await workflowsOf(probe.id)) >= 1 ? true : undefined), 10_000, 'the valid lead is listed');
    assert.equal(await workflowsOf(probe.id), 1);
  });

  it('When the request is malformed, oversized, not JSON or unauthenticated, then the right 4xx comes back and no workflow starts', async () => {
    const probe = await system.createSource('rejects probe');
    const url = `${system.intakeUrl}/v1/leads`;
    const malformed = await http('POST', url, { token: probe.apiKey, raw: '{"email": "a@b.c",', headers: { 'content-type': 'application/json' } });
    assert.deepEqual([malformed.status, malformed.body.error], [400, 'invalid_json']);
    const oversized = await http('POST', url, { token: probe.apiKey, body: { email: 'a@example.com', custom: { blob: 'x'.repeat(1900), b: 'x'.repeat(1900), c: 'x'.repeat(1900), d: 'x'.repeat(1900), e: 'x'.repeat(1900) } } });
    assert.deepEqual([oversized.status, oversized.body.error], [413, 'payload_too_large']);
    const form = await http('POST', url, { token: probe.apiKey, raw: 'email=a%40b.com', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.deepEqual([form.status, form.body.error], [415, 'unsupported_media_type']);
    const noKey = await http('POST', url, { body: { email: 'a@example.com' } });
    assert.equal(noKey.status, 401);
    assert.equal(noKey.headers.get('www-authenticate'), 'Bearer');
    const badKey = await http('POST', url, { token: 'lds_01hzzzzzzzzzzzzzzzzzzzzzzz_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', body: { email: 'a@example.com' } });
    assert.equal(badKey.status, 401);
    const adminPosting = await http('POST', url, { token: system.adminToken, body: { email: 'a@example.com' } });
    assert.equal(adminPosting.status, 403);
    for (const res of [malformed, oversized, form, noKey, badKey]) assert.ok(!JSON.stringify(res.body).includes(' at '), 'no stack trace');
    assert.equal((await system.postLead(probe.apiKey, { email: 'valid@example.com' })).status, 202);
    await eventually(async () => ((await workflowsOf(probe.id)) >= 1 ? true : undefined), 10_000, 'the valid lead is listed');
    assert.equal(await workflowsOf(probe.id), 1);
  });

  it('When an unknown route is called, then the answer is a JSON 404', async () => {
    const res = await http('GET', `${system.intakeUrl}/v2/nothing`);
    assert.equal(res.status, 404);
    assert.equal(res.body.error, 'not_found');
  });

  it('When a lead is looked up, then its source and the admin see it, another source does not', async () => {
    const posted = await system.postLead(source.apiKey, { email: 'lookup@example.com' });
    const leadId = String(posted.body.leadId);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    const own = await http('GET', `${system.intakeUrl}/v1/leads/${leadId}`, { token: source.apiKey });
    assert.equal(own.status, 200);
    assert.equal(own.body.status, 'delivered');
    const endpoints = own.body.endpoints as Array<{ status: string; attempts: number }>;
    assert.deepEqual(endpoints.map((e) => [e.status, e.attempts]), [['delivered', 1]]);
    const asAdmin = await http('GET', `${system.intakeUrl}/v1/leads/${leadId}`, { token: system.adminToken });
    assert.equal(asAdmin.status, 200);
    const stranger = await system.createSource('stranger');
    const other = await http('GET', `${system.intakeUrl}/v1/leads/${leadId}`, { token: stranger.apiKey });
    assert.equal(other.status, 404);
    const unknown = await http('GET', `${system.intakeUrl}/v1/leads/ld_nope`, { token: system.adminToken });
    assert.equal(unknown.status, 404);
  });

  it('When the health endpoints are called, then both answer ready', async () => {
    assert.equal((await http('GET', `${system.intakeUrl}/healthz`)).status, 200);
    const ready = await http('GET', `${system.intakeUrl}/readyz`);
    assert.deepEqual(ready.body, { status: 'ready', temporal: true, store: true });
  });
});
