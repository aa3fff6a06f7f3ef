/**
 * Buyer returns on the real stack (intake, delivery worker, log service, Temporal dev server,
 * FerretDB, a fake buyer over HTTP): buyer keys issued, used only on /v1/buyer, revoked; a buyer
 * returns a lead it took (auto-approved, or pending until an operator approves or denies it); the
 * return is in the lead's journal (same hash chain: /verify, the receipt), its summary, the lead's
 * state, the billing CSV and the dispute page; the refusals (not this buyer's lead, outside the
 * window, already returned, a delivery still finishing, bad input) say why.
 */
import assert from 'node:assert/strict';
import { startFakeBuyer, type FakeBuyer } from '../fakes/buyer';
import { sharedInfra } from '../support/infra';
import { rememberSecret } from '../support/secrets';
import { capturedLogLines, eventually, http, startSystem, type TestSystem } from '../support/system';
import { parseCsv } from '../../shared/csv';
import { leadWorkflowId } from '../../shared/delivery';
import { returnIdOf, returnWorkflowId, type LeadReturnInput, type ReturnState } from '../../shared/returns';
import type { leadReturn } from '../../workflows/returns';
import { ATTEMPT_CSV_COLUMNS } from '../../services/log/attempts';
import { createSession, SESSION_COOKIE } from '../../shared/http/pages/session';
import type { LogEntryDoc } from '../../shared/store';
import type { deliverLead } from '../../workflows/deliverLead';

type Body = Record<string, unknown>;

describe('buyer returns (end to end)', function () {
  let system: TestSystem;
  let fake: FakeBuyer;
  let failingNotify: FakeBuyer;
  let source: { id: string; apiKey: string };
  let otherSource: { id: string; apiKey: string };
  let buyerId: string;
  let otherBuyerId: string;
  let buyerKey: string;
  let otherBuyerKey: string;

  const buyerApi = <T = Body>(method: string, path: string, key: string, body?: unknown) => http<T>(method, `${system.intakeUrl}/v1/buyer${path}`, { token: key, ...(body !== undefined ? { body } : {}) });
  const returnLead = (key: string, body: unknown) => buyerApi('POST', '/returns', key, body);

  /** Posts a lead and waits until its workflow has closed (delivered, journal flushed). */
  async function deliver(apiKey: string, lead: Body): Promise<string> {
    const res = await system.postLead(apiKey, lead);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const leadId = String(res.body.leadId);
    const outcome = (await system.client.workflow.getHandle<typeof deliverLead>(leadWorkflowId(leadId)).result());
    assert.equal(outcome.status, 'delivered');
    return leadId;
  }

  async function issueKey(forBuyer: string): Promise<{ keyId: string; apiKey: string }> {
    const res = await system.admin<{ keyId: string; apiKey: string }>('POST', `/buyers/${forBuyer}/keys`);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    rememberSecret(res.body.apiKey);
    return res.body;
  }

  const returnDone = (leadId: string): Promise<ReturnState> => system.client.workflow.getHandle<typeof leadReturn>(returnWorkflowId(leadId)).result();
  const journal = (leadId: string) => http<{ items: Array<Body & { type: string; seq: number }> }>('GET', `${system.logUrl}/v1/leads/${leadId}/log`, { token: system.adminToken });
  async function csvRows(leadId: string): Promise<Array<Record<string, string>>> {
    const res = await fetch(`${system.logUrl}/v1/attempts.csv?leadId=${leadId}`, { headers: { authorization: `Bearer ${system.adminToken}` } });
    assert.equal(res.status, 200);
    const [header = [], ...rows] = parseCsv(await res.text());
    assert.deepEqual(header, [...ATTEMPT_CSV_COLUMNS]);
    return rows.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i] ?? ''])));
  }
  const disputePage = async (leadId: string) => {
    const res = await fetch(`${system.logUrl}/leads/${leadId}`, { headers: { cookie: `${SESSION_COOKIE}=${createSession(system.adminToken).value}` }, redirect: 'manual' });
    assert.equal(res.status, 200);
    return res.text();
  };

  before(async function () {
    this.timeout(120_000);
    const { temporalAddress, mongoBase } = await sharedInfra();
    system = await startSystem({ temporalAddress, mongoUrl: `${mongoBase}/t_returns_${Date.now()}` });
    fake = await startFakeBuyer();
    failingNotify = await startFakeBuyer({ steps: [{ status: 503 }] });
    source = await system.createSource('returns source');
    otherSource = await system.createSource('other source');
    buyerId = await system.createBuyer({ name: 'Returning Buyer' });
    otherBuyerId = await system.createBuyer({ name: 'Other Buyer' });
    await system.addEndpoint(buyerId, { kind: 'webhook', url: fake.url });
    await system.addEndpoint(otherBuyerId, { kind: 'webhook', url: fake.url });
    await system.setWaterfall(source.id, [buyerId]);
    await system.setWaterfall(otherSource.id, [otherBuyerId]);
    buyerKey = (await issueKey(buyerId)).apiKey;
    otherBuyerKey = (await issueKey(otherBuyerId)).apiKey;
  });
  after(async () => {
    await system?.stop();
    await fake?.close();
    await failingNotify?.close();
  });

  it('When an operator issues a buyer key, then it is shown once (ldb_, only its hash stored), works on /v1/buyer only, and stops at once when revoked', async function () {
    const issued = await issueKey(buyerId);
    assert.match(issued.apiKey, /^ldb_[0-9a-z]{26}_[A-Za-z0-9_-]{43}$/);
    const shown = await system.admin<{ keys: Array<Body> }>('GET', `/buyers/${buyerId}`);
    assert.ok(shown.body.keys.some((k) => k.keyId === issued.keyId && k.createdAt && !('hash' in k)), JSON.stringify(shown.body.keys));
    const stored = await system.models.Buyer.findById(buyerId).lean();
    const storedKey = stored!.keys!.find((k) => k.keyId === issued.keyId)!;
    assert.match(storedKey.hash, /^[0-9a-f]{64}$/);
    assert.ok(!JSON.stringify(stored).includes(issued.apiKey.slice(-43)), 'the secret itself is not stored');

    assert.equal((await buyerApi('GET', '/returns', issued.apiKey)).status, 200, 'the buyer API takes it');
    const adminRoute = await http('GET', `${system.intakeUrl}/v1/admin/buyers/${buyerId}`, { token: issued.apiKey });
    assert.deepEqual([adminRoute.status, adminRoute.body.error], [403, 'forbidden'], 'not the admin API');
    assert.equal((await http('GET', `${system.logUrl}/v1/attempts?buyerId=${buyerId}`, { token: issued.apiKey })).status, 403, 'not the log API');
    assert.equal((await system.postLead(issued.apiKey, { email: 'not-a-source@example.com' })).status, 403, 'not lead intake');
    const sourceOnBuyerApi = await returnLead(source.apiKey, { leadId: 'ld_x', reason: 'fraud' });
    assert.deepEqual([sourceOnBuyerApi.status, sourceOnBuyerApi.body.error], [403, 'forbidden'], 'a source key may not use the buyer API');
    assert.equal((await buyerApi('GET', '/returns', system.adminToken)).status, 403, 'operators use /v1/admin/returns');
    assert.equal((await buyerApi('GET', '/returns', `${issued.apiKey.slice(0, -2)}xx`)).status, 401, 'a wrong secret');

    assert.equal((await system.admin('DELETE', `/buyers/${buyerId}/keys/${issued.keyId}`)).status, 204);
    const revoked = await buyerApi('GET', '/returns', issued.apiKey);
    assert.deepEqual([revoked.status, revoked.body.error], [401, 'unauthorized'], 'revoked: 401 at once');
    assert.equal((await system.admin('DELETE', `/buyers/${buyerId}/keys/nokey`)).status, 404);
    assert.ok((await system.models.Buyer.findById(buyerId).lean())!.keys!.find((k) => k.keyId === issued.keyId)!.revokedAt);
  });

  it('When a buyer returns a lead it took with an auto-approved reason, then 201 approved; the journal, its chain, the receipt, the lead, the CSV, the counts and the dispute page show it', async function () {
    this.timeout(60_000);
    const note = 'Number <b>disconnected</b> & mailbox full';
    const leadId = await deliver(source.apiKey, { email: 'returned@example.com', first_name: 'Ret', id: `client-${Date.now()}` });
    const res = await returnLead(buyerKey, { leadId, reason: 'invalid_contact', note });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.deepEqual(res.body, { returnId: `ret_${leadId.slice(3)}`, leadId, status: 'approved' });
    const returnId = String(res.body.returnId);
    const state = await returnDone(leadId);
    assert.equal(state.status, 'approved');
    assert.equal(state.recorded, 1, 'one journal entry: the request');

    // The journal: the return entry continues the lead's chain; its note is sealed at rest, opened for operators.
    const items = (await journal(leadId)).body.items;
    const entry = items[items.length - 1]!;
    assert.equal(entry.type, 'return');
    assert.deepEqual([entry.returnId, entry.buyerId, entry.reason, entry.status, entry.by, entry.note], [returnId, buyerId, 'invalid_contact', 'approved', 'buyer', note]);
    assert.equal(entry.prevHash, items[items.length - 2]!.hash, 'linked to the delivery’s last entry');
    const raw = await system.models.LogEntry.findOne({ leadId, type: 'return' }).lean<LogEntryDoc>();
    assert.match(String(raw!.data.note), /^enc:v1:/, 'the note is sealed with the lead’s key');
    assert.equal(raw!.buyerId, buyerId);
    const verify = await http<{ ok: boolean; records: number }>('GET', `${system.logUrl}/v1/leads/${leadId}/verify`, { token: system.adminToken });
    assert.deepEqual([verify.body.ok, verify.body.records], [true, items.length]);
    const receipt = await http<{ entries: Array<Body>; return?: Body; status: string }>('GET', `${system.logUrl}/v1/leads/${leadId}/receipt`, { token: system.adminToken });
    assert.equal(receipt.status, 200);
    assert.deepEqual(receipt.body.entries[receipt.body.entries.length - 1]!.return, { returnId, buyerId, status: 'approved', reason: 'invalid_contact', by: 'buyer' });
    assert.deepEqual(receipt.body.return, { returnId, status: 'approved', reason: 'invalid_contact' });
    assert.equal(receipt.body.status, 'delivered', 'the delivery’s own status is unchanged');
    assert.ok(!JSON.stringify(receipt.body).includes('disconnected'), 'no note (PII) in the receipt');

    // The lead's state, as its source sees it.
    const lead = await http<{ return?: Body; status: string }>('GET', `${system.intakeUrl}/v1/leads/${leadId}`, { token: source.apiKey });
    assert.equal(lead.body.status, 'delivered');
    assert.deepEqual(Object.keys(lead.body.return ?? {}).sort(), ['decidedAt', 'reason', 'requestedAt', 'returnId', 'status']);
    assert.deepEqual([lead.body.return?.returnId, lead.body.return?.status, lead.body.return?.reason], [returnId, 'approved', 'invalid_contact']);

    // The billing export: the accepted row says returned.
    const rows = await csvRows(leadId);
    assert.deepEqual(rows.map((r) => [r.outcome, r.returned, r.return_reason]), [['success', 'true', 'invalid_contact']]);

    // The buyer's list and the return by id; the admin counts.
    const mine = await buyerApi<{ items: Array<Body> }>('GET', '/returns', buyerKey);
    assert.ok(mine.body.items.some((r) => r.returnId === returnId && r.status === 'approved' && r.reason === 'invalid_contact'));
    const one = await buyerApi('GET', `/returns/${returnId}`, buyerKey);
    assert.deepEqual([one.status, one.body.leadId, one.body.status, one.body.clientId === undefined], [200, leadId, 'approved', false]);
    assert.equal((await buyerApi('GET', `/returns/${returnId}`, otherBuyerKey)).status, 404, 'another buyer cannot read it');
    const counts = await system.admin<{ returns: Body }>('GET', `/buyers/${buyerId}`);
    assert.equal(counts.body.returns.approved, 1);
    const sourceCounts = await system.admin<{ returns: Body }>('GET', `/sources/${source.id}`);
    assert.equal(sourceCounts.body.returns.approved, 1);

    // A second return of the same lead.
    const again = await returnLead(buyerKey, { leadId, reason: 'duplicate' });
    assert.deepEqual([again.status, again.body.error, again.body.returnId, again.body.status], [409, 'already_returned', returnId, 'approved']);

    // The dispute page: the return in the timeline, the note shown escaped like other PII.
    const page = await disputePage(leadId);
    assert.match(page, /<li class="return r-approved" id="e\d+" data-type="return" data-status="approved" data-reason="invalid_contact">/);
    assert.ok(page.includes('Number &lt;b&gt;disconnected&lt;/b&gt; &amp; mailbox full'), 'the note, escaped');
    assert.ok(!page.includes('<b>disconnected</b>'));
    assert.match(page, /id="return-status"><span class="badge approved">approved<\/span> <code>invalid_contact<\/code>/);
    assert.ok(!capturedLogLines.some((line) => line.includes('disconnected')), 'the note never reaches a log line');
  });

  it('When a buyer returns a lead by the source’s own id (clientId), then it is found among its leads; an id two sources share is ambiguous', async function () {
    this.timeout(60_000);
    const clientId = `shared-${Date.now()}`;
    const first = await deliver(source.apiKey, { email: 'c1@example.com', id: clientId });
    const res = await returnLead(buyerKey, { clientId, reason: 'duplicate' });
    assert.deepEqual([res.status, res.body.leadId, res.body.status], [201, first, 'approved']);
    await returnDone(first);

    // The same source id from a second source, both delivered to this buyer.
    const twin = await system.createSource('twin source');
    await system.setWaterfall(twin.id, [buyerId]);
    const other = `dup-${Date.now()}`;
    const a = await deliver(source.apiKey, { email: 'c2@example.com', id: other });
    const b = await deliver(twin.apiKey, { email: 'c3@example.com', id: other });
    const ambiguous = await returnLead(buyerKey, { clientId: other, reason: 'fraud' });
    assert.deepEqual([ambiguous.status, ambiguous.body.error, ambiguous.body.field], [409, 'ambiguous_client_id', 'clientId']);
    assert.deepEqual((ambiguous.body.leadIds as string[]).sort(), [a, b].sort());
    const unknown = await returnLead(buyerKey, { clientId: 'never-sent', reason: 'fraud' });
    assert.deepEqual([unknown.status, unknown.body.error, unknown.body.field], [409, 'not_returnable', 'clientId']);
  });

  it('When a buyer returns a lead delivered to another buyer, or one that does not exist, then both get the same 409 not_returnable', async function () {
    this.timeout(60_000);
    const theirs = await deliver(otherSource.apiKey, { email: 'theirs@example.com' });
    const notYours = await returnLead(buyerKey, { leadId: theirs, reason: 'fraud' });
    const unknown = await returnLead(buyerKey, { leadId: 'ld_00000000000000000000000000', reason: 'fraud' });
    assert.deepEqual([notYours.status, notYours.body.error, notYours.body.field], [409, 'not_returnable', 'leadId']);
    assert.deepEqual(unknown.body, notYours.body, 'nothing tells another buyer’s lead from an unknown one');
    assert.ok(!JSON.stringify(notYours.body).includes(otherBuyerId));
    assert.equal(await system.models.Lead.countDocuments({ _id: theirs, returnId: { $exists: true } }), 0);
  });

  it('When the buyer’s return window has passed, then 409 return_window_closed says when it closed', async function () {
    this.timeout(60_000);
    const patched = await system.admin('PATCH', `/buyers/${otherBuyerId}`, { returnWindow: '1s' });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    try {
      const leadId = await deliver(otherSource.apiKey, { email: 'late@example.com' });
      await new Promise((r) => setTimeout(r, 1_500));
      const res = await returnLead(otherBuyerKey, { leadId, reason: 'invalid_contact' });
      assert.deepEqual([res.status, res.body.error, res.body.field, res.body.returnWindow], [409, 'return_window_closed', 'leadId', '1s']);
      assert.match(String(res.body.message), /return window of 1s closed at /);
      assert.ok(Date.parse(String(res.body.closedAt)) - Date.parse(String(res.body.deliveredAt)) === 1_000);
    } finally {
      await system.admin('PATCH', `/buyers/${otherBuyerId}`, { returnWindow: '7d' });
    }
  });

  it('When a return has a bad reason, a note over 1000 characters or no lead, then 400 names the field (and lists the allowed reasons)', async function () {
    const leadId = 'ld_00000000000000000000000000';
    const bad = await returnLead(buyerKey, { leadId, reason: 'changed_my_mind' });
    assert.equal(bad.status, 400);
    const fields = bad.body.fields as Array<{ path: string; message: string }>;
    assert.deepEqual(fields.map((f) => f.path), ['reason']);
    assert.equal(fields[0]!.message, 'must be one of invalid_contact, duplicate, out_of_area, fraud, other');
    const long = await returnLead(buyerKey, { leadId, reason: 'other', note: 'x'.repeat(1001) });
    assert.deepEqual((long.body.fields as Array<{ path: string }>).map((f) => f.path), ['note']);
    const neither = await returnLead(buyerKey, { reason: 'other' });
    assert.deepEqual((neither.body.fields as Array<{ path: string }>).map((f) => f.path), ['leadId']);
    const both = await returnLead(buyerKey, { leadId, clientId: 'x', reason: 'other' });
    assert.deepEqual((both.body.fields as Array<{ path: string }>).map((f) => f.path), ['leadId']);
    const extra = await returnLead(buyerKey, { leadId, reason: 'other', refund: true });
    assert.deepEqual((extra.body.fields as Array<{ path: string }>).map((f) => f.path), ['refund']);
  });

  it('When a lead’s delivery is still finishing (a notify copy retrying), then 409 lead_in_flight with Retry-After', async function () {
    this.timeout(60_000);
    const slow = await system.createSource('slow notify');
    const slowBuyer = await system.createBuyer({ name: 'Notify retrying' });
    await system.addEndpoint(slowBuyer, { kind: 'webhook', url: fake.url });
    await system.addEndpoint(slowBuyer, { kind: 'webhook', url: failingNotify.url, role: 'notify', backoff: ['10m'] });
    await system.setWaterfall(slow.id, [slowBuyer]);
    const key = await issueKey(slowBuyer);
    const posted = await system.postLead(slow.apiKey, { email: 'inflight@example.com' });
    const leadId = String(posted.body.leadId);
    await eventually(async () => ((await system.models.Lead.findById(leadId).lean())?.status === 'delivered' ? true : undefined), 30_000, 'the summary says delivered');
    const res = await returnLead(key.apiKey, { leadId, reason: 'fraud' });
    assert.deepEqual([res.status, res.body.error, res.headers.get('retry-after')], [409, 'lead_in_flight', '30'], JSON.stringify(res.body));
    assert.equal((await system.client.workflow.getHandle(leadWorkflowId(leadId)).describe()).status.name, 'RUNNING');
    await system.client.workflow.getHandle(leadWorkflowId(leadId)).terminate('test over');
  });

  it('When a return waits for an operator, then the list counts it pending; approving records the decision (once); denying needs a reason; the CSV and the page follow', async function () {
    this.timeout(90_000);
    const approveLead = await deliver(source.apiKey, { email: 'pending1@example.com' });
    const denyLead = await deliver(source.apiKey, { email: 'pending2@example.com' });
    const toApprove = await returnLead(buyerKey, { leadId: approveLead, reason: 'other', note: 'says it never asked' });
    const toDeny = await returnLead(buyerKey, { leadId: denyLead, reason: 'other' });
    assert.deepEqual([toApprove.status, toApprove.body.status, toDeny.status, toDeny.body.status], [201, 'pending', 201, 'pending']);
    const approveId = String(toApprove.body.returnId);
    const denyId = String(toDeny.body.returnId);
    // The buyer reads it at once (from the workflow until the summary has it).
    assert.equal((await buyerApi('GET', `/returns/${approveId}`, buyerKey)).body.status, 'pending');

    const listed = await eventually(async () => {
      const res = await system.admin<{ items: Array<Body>; counts: Record<string, number>; next: unknown }>('GET', `/returns?buyerId=${buyerId}&status=pending`);
      return res.body.items.length === 2 ? res : undefined;
    }, 20_000, 'both returns listed as pending');
    assert.deepEqual(listed.body.items.map((r) => r.returnId), [denyId, approveId], 'newest first');
    assert.equal(listed.body.counts.pending, 2);
    assert.ok((listed.body.counts.approved ?? 0) >= 2, JSON.stringify(listed.body.counts));
    assert.deepEqual(Object.keys(listed.body.counts).sort(), ['approved', 'denied', 'expired', 'pending']);
    const pageOne = await system.admin<{ items: Array<Body>; next: string | null }>('GET', `/returns?buyerId=${buyerId}&status=pending&limit=1`);
    assert.deepEqual(pageOne.body.items.map((r) => r.returnId), [denyId]);
    const pageTwo = await system.admin<{ items: Array<Body>; next: string | null }>('GET', `/returns?buyerId=${buyerId}&status=pending&limit=1&cursor=${pageOne.body.next}`);
    assert.deepEqual([pageTwo.body.items.map((r) => r.returnId), pageTwo.body.next], [[approveId], null]);
    const bySource = await system.admin<{ counts: Record<string, number> }>('GET', `/returns?sourceId=${otherSource.id}`);
    assert.equal(bySource.body.counts.pending, 0, 'counted per source');
    assert.equal((await system.admin('GET', '/returns?status=lost')).status, 400);
    assert.equal((await csvRows(approveLead))[0]!.returned, 'pending');

    const approved = await system.admin('POST', `/returns/${approveId}/approve`, {});
    assert.deepEqual([approved.status, approved.body.status], [200, 'approved'], JSON.stringify(approved.body));
    const decision = (await journal(approveLead)).body.items.at(-1)!;
    assert.deepEqual([decision.type, decision.status, decision.by, decision.returnId], ['return_decision', 'approved', 'operator', approveId]);
    const twice = await system.admin('POST', `/returns/${approveId}/approve`, {});
    assert.deepEqual([twice.status, twice.body.error, twice.body.status], [409, 'already_decided', 'approved']);
    const afterAll = await system.admin('POST', `/returns/${approveId}/deny`, { reason: 'too late' });
    assert.deepEqual([afterAll.status, afterAll.body.error], [409, 'already_decided']);
    assert.deepEqual((await csvRows(approveLead)).map((r) => [r.returned, r.return_reason]), [['true', 'other']]);
    assert.equal((await http<{ ok: boolean }>('GET', `${system.logUrl}/v1/leads/${approveLead}/verify`, { token: system.adminToken })).body.ok, true);

    const noReason = await system.admin<{ fields: Array<{ path: string }> }>('POST', `/returns/${denyId}/deny`, {});
    assert.deepEqual([noReason.status, noReason.body.fields.map((f) => f.path)], [400, ['reason']]);
    const denied = await system.admin('POST', `/returns/${denyId}/deny`, { reason: 'contact verified by phone' });
    assert.deepEqual([denied.status, denied.body.status], [200, 'denied']);
    const shown = await buyerApi('GET', `/returns/${denyId}`, buyerKey);
    assert.deepEqual([shown.body.status, shown.body.decisionReason, typeof shown.body.decidedAt], ['denied', 'contact verified by phone', 'string']);
    assert.deepEqual((await csvRows(denyLead)).map((r) => [r.returned, r.return_reason]), [['false', 'other']]);
    const lead = await http<{ return?: Body }>('GET', `${system.intakeUrl}/v1/leads/${denyLead}`, { token: system.adminToken });
    assert.equal(lead.body.return?.status, 'denied');
    assert.equal((await system.admin('POST', '/returns/ret_nosuchlead/approve', {})).status, 404);
    const state = await returnDone(denyLead);
    assert.deepEqual([state.status, state.decidedBy, state.recorded], ['denied', 'operator', 2]);

    const counts = await system.admin<{ returns: Record<string, number> }>('GET', `/buyers/${buyerId}`);
    assert.equal(counts.body.returns.pending, 0);
    assert.equal(counts.body.returns.denied, 1);

    const page = await disputePage(denyLead);
    assert.match(page, /data-type="return" data-status="pending" data-reason="other"/);
    assert.match(page, /data-type="return_decision" data-status="denied"/);
    assert.ok(page.includes('contact verified by phone'));
    assert.match(page, /id="return-status"><span class="badge denied">denied<\/span>/);
  });

  it('When a pending return is not decided within the decision window, then it is recorded expired (by system) and can no longer be decided', async function () {
    this.timeout(60_000);
    const leadId = await deliver(source.apiKey, { email: 'expiring@example.com' });
    // The workflow as the use case starts it, with a decision window of 1.5 s instead of 30 days.
    const input: LeadReturnInput = { returnId: returnIdOf(leadId), leadId, sourceId: source.id, buyerId, reason: 'other', status: 'pending', requestedAt: Date.now(), logTaskQueue: system.logTaskQueue, decisionWindowMs: 1_500 };
    const handle = await system.client.workflow.start<typeof leadReturn>('leadReturn', { workflowId: returnWorkflowId(leadId), taskQueue: system.deliveryTaskQueue, args: [input] });
    const state = await handle.result();
    assert.deepEqual([state.status, state.decidedBy, state.decisionReason, state.recorded], ['expired', 'system', 'not decided within 1500ms', 2]);
    assert.ok(state.decidedAt! - state.requestedAt >= 1_500);
    const last = (await journal(leadId)).body.items.at(-1)!;
    assert.deepEqual([last.type, last.status, last.by], ['return_decision', 'expired', 'system']);
    const late = await system.admin('POST', `/returns/${input.returnId}/approve`, {});
    assert.deepEqual([late.status, late.body.error, late.body.status], [409, 'already_decided', 'expired']);
    assert.deepEqual((await csvRows(leadId)).map((r) => [r.returned, r.return_reason]), [['false', 'other']]);
  });

  it('When the lead’s personal data has expired before its return, then the note is dropped (never stored in clear) and the entry says so', async function () {
    this.timeout(60_000);
    const shortLived = await system.admin<{ id: string; apiKey: string }>('POST', '/sources', { name: 'short retention', retention: '1s' });
    rememberSecret(shortLived.body.apiKey);
    await system.setWaterfall(shortLived.body.id, [buyerId]);
    const leadId = await deliver(shortLived.body.apiKey, { email: 'shredded@example.com' });
    await new Promise((r) => setTimeout(r, 1_100));
    const shred = await http<{ shredded: number }>('POST', `${system.logUrl}/v1/retention/run`, { token: system.adminToken, body: {} });
    assert.ok(shred.body.shredded >= 1, JSON.stringify(shred.body));
    const note = 'a note about a person whose data is gone';
    const res = await returnLead(buyerKey, { leadId, reason: 'fraud', note });
    assert.deepEqual([res.status, res.body.status], [201, 'approved']);
    const state = await returnDone(leadId);
    assert.equal(state.noteDropped, 'retention_expired');
    const raw = await system.models.LogEntry.findOne({ leadId, type: 'return' }).lean<LogEntryDoc>();
    assert.equal(raw!.data.note, undefined);
    assert.equal(raw!.data.noteDropped, 'retention_expired');
    assert.ok(!JSON.stringify(await system.models.LogEntry.find({ leadId }).lean()).includes(note), 'nowhere in the journal');
    assert.equal((await http<{ ok: boolean }>('GET', `${system.logUrl}/v1/leads/${leadId}/verify`, { token: system.adminToken })).body.ok, true);
    assert.match(await disputePage(leadId), /\[not kept: the lead’s personal data had expired \(retention_expired\)\]/);
  });

  it('When the buyer pages through all its returns (every status), then they come newest first, each once', async function () {
    const all = await buyerApi<{ items: Array<Body>; next: string | null }>('GET', '/returns?limit=200', buyerKey);
    assert.ok(all.body.items.length >= 6, `${all.body.items.length} returns`);
    assert.ok(new Set(all.body.items.map((r) => r.status)).size >= 3, 'several statuses');
    const times = all.body.items.map((r) => Date.parse(String(r.requestedAt)));
    assert.deepEqual(times, [...times].sort((a, b) => b - a), 'newest first');
    const paged: string[] = [];
    let cursor: string | null = null;
    do {
      const res: { body: { items: Array<Body>; next: string | null } } = await buyerApi('GET', `/returns?limit=2${cursor ? `&cursor=${cursor}` : ''}`, buyerKey);
      paged.push(...res.body.items.map((r) => String(r.returnId)));
      cursor = res.body.next;
    } while (cursor);
    assert.deepEqual(paged, all.body.items.map((r) => r.returnId), 'the same returns, in the same order, page by page');
    assert.ok(all.body.items.every((r) => r.buyerId === buyerId && r.sourceId === undefined), 'only its own, without the source');
    assert.equal((await buyerApi('GET', '/returns?cursor=nonsense', buyerKey)).status, 400);
  });

  it('When leads were returned, then each returned lead’s journal holds its return entries and still verifies as one chain', async function () {
    const returned = await system.models.Lead.find({ returnId: { $exists: true } }, { _id: 1 }).lean();
    assert.ok(returned.length >= 4, `${returned.length} returned leads`);
    for (const { _id: leadId } of returned) {
      const verify = await http<{ ok: boolean }>('GET', `${system.logUrl}/v1/leads/${leadId}/verify`, { token: system.adminToken });
      assert.equal(verify.body.ok, true, leadId);
      assert.ok(await system.models.LogEntry.exists({ leadId, type: 'return' }), leadId);
    }
  });
});
