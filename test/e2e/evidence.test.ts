/**
 * The delivery log as evidence, through the running system: hash chain and its verification,
 * Ed25519 receipts verified offline by the repo's Node-only script, tampering detected, key
 * rotation, lookup by email or phone, daily signed roots, reconciliation against a buyer's
 * CSV export, and retention (crypto-shredding) that removes PII while receipts still verify.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createPublicKey, verify } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { startFakeBuyer, type FakeBuyer } from '../fakes/buyer';
import { http, startSystem, type TestSystem } from '../support/system';
import { canonicalJson } from '../../shared/journal-hash';
import { leadWorkflowId } from '../../shared/delivery';
import { createSigner, generateReceiptKeySpec } from '../../services/log/receipt-signing';
import { checkReceipt, type Receipt } from '../../services/log/receipts';
import { EXPIRED } from '../../services/log/pii';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '../..');
const ARTIFACTS = path.join(ROOT, 'test-artifacts');

describe('evidence: chain, receipts, reconciliation, retention', function () {
  let system: TestSystem;
  let buyer: FakeBuyer;
  const receiptKeyOld = generateReceiptKeySpec('old');

  before(async function () {
    this.timeout(180_000);
    system = await startSystem({ receiptKeys: receiptKeyOld });
    buyer = await startFakeBuyer();
    mkdirSync(ARTIFACTS, { recursive: true });
  });
  after(async () => {
    await buyer?.close();
    await system?.stop();
  });

  const get = <T = Record<string, unknown>>(p: string) => http<T>('GET', `${system.logUrl}${p}`, { token: system.adminToken });
  async function deliver(apiKey: string, lead: Record<string, unknown>): Promise<string> {
    const res = await system.postLead(apiKey, lead);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const leadId = String(res.body.leadId);
    await system.client.workflow.getHandle(leadWorkflowId(leadId)).result();
    return leadId;
  }
  async function verifyOffline(receipt: unknown, keys: unknown, name: string) {
    const receiptFile = path.join(ARTIFACTS, `${name}.receipt.json`);
    const keysFile = path.join(ARTIFACTS, `${name}.keys.json`);
    writeFileSync(receiptFile, JSON.stringify(receipt, null, 2));
    writeFileSync(keysFile, JSON.stringify(keys));
    return run(process.execPath, [path.join(ROOT, 'scripts/verify-receipt.mjs'), receiptFile, keysFile]).then(
      (r) => ({ code: 0, out: r.stdout }),
      (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }),
    );
  }

  it('When a lead is delivered after a 503, then its receipt lists both attempts and verifies offline; tampering with the log is named', async function () {
    this.timeout(60_000);
    const { source } = await system.route([{ kind: 'webhook', url: buyer.url, backoff: ['1s'] }]);
    buyer.requests.length = 0;
    buyer.script([{ status: 503, body: 'busy' }, { status: 200, body: 'ok' }]);
    const leadId = await deliver(source.apiKey, { email: 'evidence@example.com', first_name: 'Eve' });

    const verified = await get<{ ok: boolean; records: number; head: string }>(`/v1/leads/${leadId}/verify`);
    assert.equal(verified.body.ok, true);
    const receipt = (await get<Receipt>(`/v1/leads/${leadId}/receipt`)).body;
    assert.equal(receipt.keyId, 'old');
    assert.equal(receipt.chain.records, verified.body.records);
    assert.equal(receipt.chain.head, verified.body.head);
    const attempts = receipt.entries.filter((e) => e.attempt).map((e) => [e.attempt!.attempt, e.attempt!.outcome, e.attempt!.status]);
    assert.deepEqual(attempts, [[1, 'transient', 503], [2, 'success', 200]]);
    assert.ok(!JSON.stringify(receipt).includes('evidence@example.com'), 'no PII in a receipt');
    const keys = (await http<{ keys: Array<{ kid: string }> }>('GET', `${system.logUrl}/.well-known/delivery-receipt-keys.json`)).body;
    assert.deepEqual(keys.keys.map((k) => k.kid), ['old']);
    const offline = await verifyOffline(receipt, keys, 'delivered-after-503');
    assert.equal(offline.code, 0, offline.out);
    assert.match(offline.out, /VALID/);
    assert.match(offline.out, /attempt 1 .*transient http_503 HTTP 503/);

    // A receipt edited by hand fails offline.
    const forged = structuredClone(receipt);
    forged.entries.find((e) => e.attempt?.attempt === 1)!.attempt!.outcome = 'success';
    const forgedCheck = await verifyOffline(forged, keys, 'forged');
    assert.equal(forgedCheck.code, 1);
    assert.match(forgedCheck.out, /signature does not match/);

    // A record edited directly in the database: verify names it, the receipt no longer matches.
    const first = await system.models.LogEntry.findOne({ leadId, type: 'attempt', 'data.attempt': 1 }).lean();
    await system.models.LogEntry.updateOne({ _id: first!._id }, { $set: { 'data.response.status': 200 } });
    const broken = await get<{ ok: boolean; brokenAt: { seq: number; reason: string } }>(`/v1/leads/${leadId}/verify`);
    assert.equal(broken.body.ok, false);
    assert.equal(broken.body.brokenAt.seq, first!.seq);
    assert.match(broken.body.brokenAt.reason, /edited/);
    const check = await http<{ signatureValid: boolean; matchesLog: boolean; mismatches: Array<{ seq: number }> }>('POST', `${system.logUrl}/v1/receipts/verify`, { token: system.adminToken, body: receipt });
    assert.equal(check.body.signatureValid, true);
    assert.equal(check.body.matchesLog, false);
    assert.deepEqual(check.body.mismatches.map((m) => m.seq), [first!.seq]);
    assert.equal((await get(`/v1/leads/${leadId}/receipt`)).status, 409, 'no receipt for a broken chain');
  });

  it('When the receipt key is rotated, then receipts signed by the old key still verify and new ones use the new key', async () => {
    const { source } = await system.route([{ kind: 'webhook', url: buyer.url }]);
    buyer.script([{ status: 200 }]);
    const leadId = await deliver(source.apiKey, { email: 'rotation@example.com' });
    const oldReceipt = (await get<Receipt>(`/v1/leads/${leadId}/receipt`)).body;
    const rotated = createSigner(`${generateReceiptKeySpec('new')},${receiptKeyOld}`);
    const docs = await system.models.LogEntry.find({ leadId }).sort({ seq: 1 }).lean();
    assert.equal(checkReceipt(oldReceipt, docs, rotated).signatureValid, true);
    const offline = await verifyOffline(oldReceipt, rotated.jwks(), 'rotated');
    assert.equal(offline.code, 0, offline.out);
    assert.equal(rotated.sign({ x: 1 }).keyId, 'new');
  });

  it('When a lead is looked up by email or phone, then it is found through the keyed hash (no clear text stored)', async () => {
    const { source } = await system.route([{ kind: 'webhook', url: buyer.url }]);
    buyer.script([{ status: 200 }]);
    const leadId = await deliver(source.apiKey, { email: 'Look.Up@Example.com', phone: '+1 (555) 010-4477' });
    const byEmail = await get<{ items: Array<{ leadId: string }> }>(`/v1/lookup?email=${encodeURIComponent('look.up@example.com')}`);
    assert.deepEqual(byEmail.body.items.map((i) => i.leadId), [leadId]);
    const byPhone = await get<{ items: Array<{ leadId: string }> }>(`/v1/lookup?phone=${encodeURIComponent('15550104477')}`);
    assert.deepEqual(byPhone.body.items.map((i) => i.leadId), [leadId]);
    const summary = JSON.stringify(await system.models.Lead.findById(leadId).lean());
    assert.ok(!/look\.up/i.test(summary) && !summary.includes('5550104477'), 'the summary holds hashes, not the email or phone');
    const journal = JSON.stringify(await system.models.LogEntry.find({ leadId }).lean());
    assert.ok(!/look\.up/i.test(journal) && !journal.includes('010-4477'), 'the journal holds PII sealed, never in clear');
  });

  it('When a day’s root is computed, then it covers that day’s entries and its signature verifies with the published key', async () => {
    const day = new Date().toISOString().slice(0, 10);
    const root = await http<{ day: string; root: string; count: number; keyId: string; signature: string }>('POST', `${system.logUrl}/v1/roots/${day}`, { token: system.adminToken });
    assert.equal(root.status, 200);
    const entries = await system.models.LogEntry.countDocuments({ at: { $gte: new Date(`${day}T00:00:00Z`) } });
    assert.ok(root.body.count > 0 && root.body.count <= entries);
    const keys = (await http<{ keys: Array<{ kid: string; x: string; kty: string; crv: string }> }>('GET', `${system.logUrl}/.well-known/delivery-receipt-keys.json`)).body;
    const jwk = keys.keys.find((k) => k.kid === root.body.keyId)!;
    const ok = verify(null, Buffer.from(canonicalJson({ day, root: root.body.root, count: root.body.count })), createPublicKey({ key: jwk, format: 'jwk' }), Buffer.from(root.body.signature, 'base64'));
    assert.equal(ok, true);
    assert.equal((await get<{ root: string }>(`/v1/roots/${day}`)).body.root, root.body.root);
    assert.equal((await get(`/v1/roots/1999-01-01`)).status, 404);
  });

  it('When a buyer’s CRM export is reconciled, then exactly the missing, duplicate and unknown leads are reported', async function () {
    this.timeout(60_000);
    const from = new Date(Date.now() - 60_000).toISOString();
    const { source, buyerId } = await system.route([{ kind: 'webhook', url: buyer.url }]);
    buyer.script([{ status: 200 }]);
    const [l1, l2, l3] = [await deliver(source.apiKey, { email: 'r1@example.com' }), await deliver(source.apiKey, { email: 'r2@example.com' }), await deliver(source.apiKey, { email: 'r3@example.com' })];
    const to = new Date(Date.now() + 60_000).toISOString();
    const csv = `"Lead ID",Name\r\n${l1},A\r\n${l2},B\r\n${l2},"B, again"\r\nld_never_sent,X\r\n`;
    const byId = await http<{ matched: number; missing: Array<{ leadId: string; attempt: { status: number }; receipt: string }>; duplicates: Array<{ value: string; rows: number[] }>; unknown: Array<{ value: string }> }>(
      'POST', `${system.logUrl}/v1/reconcile?buyerId=${buyerId}&from=${from}&to=${to}&leadIdColumn=${encodeURIComponent('Lead ID')}`,
      { token: system.adminToken, raw: csv, headers: { 'content-type': 'text/csv' } },
    );
    assert.equal(byId.status, 200, JSON.stringify(byId.body));
    assert.equal(byId.body.matched, 2);
    assert.deepEqual(byId.body.missing.map((m) => m.leadId), [l3]);
    assert.equal(byId.body.missing[0]!.attempt.status, 200);
    assert.equal(byId.body.missing[0]!.receipt, `/v1/leads/${l3}/receipt`);
    assert.deepEqual(byId.body.duplicates.map((d) => [d.value, d.rows]), [[l2, [3, 4]]]);
    assert.deepEqual(byId.body.unknown.map((u) => u.value), ['ld_never_sent']);

    const byEmail = await http<{ matched: number; missing: Array<{ leadId: string }>; unknown: Array<{ value: string }> }>(
      'POST', `${system.logUrl}/v1/reconcile?buyerId=${buyerId}&from=${from}&to=${to}&emailColumn=email`,
      { token: system.adminToken, raw: 'email\nR1@example.com\nr3@example.com\nstranger@example.com\n', headers: { 'content-type': 'text/csv' } },
    );
    assert.equal(byEmail.body.matched, 2);
    assert.deepEqual(byEmail.body.missing.map((m) => m.leadId), [l2]);
    assert.deepEqual(byEmail.body.unknown.map((u) => u.value), ['stranger@example.com']);

    const noColumn = await http<{ fields: Array<{ path: string }> }>('POST', `${system.logUrl}/v1/reconcile?buyerId=${buyerId}&from=${from}&to=${to}&leadIdColumn=id`, { token: system.adminToken, raw: 'x\n1\n', headers: { 'content-type': 'text/csv' } });
    assert.deepEqual([noColumn.status, noColumn.body.fields[0]!.path], [400, 'query.leadIdColumn']);
    const twoColumns = await http('POST', `${system.logUrl}/v1/reconcile?buyerId=${buyerId}&from=${from}&to=${to}&leadIdColumn=a&emailColumn=b`, { token: system.adminToken, raw: 'a\n', headers: { 'content-type': 'text/csv' } });
    assert.equal(twoColumns.status, 400);
  });

  it('When a lead’s retention expires, then no PII is left, it can no longer be found by email, and its receipt still verifies', async function () {
    this.timeout(60_000);
    const created = await system.admin<{ id: string; apiKey: string }>('POST', '/sources', { name: 'short retention' });
    const buyerId = await system.createBuyer();
    await system.addEndpoint(buyerId, { kind: 'webhook', url: buyer.url, backoff: ['1s'] });
    await system.setWaterfall(created.body.id, [buyerId]);
    const patched = await system.admin('PATCH', `/sources/${created.body.id}`, { retention: '1d' });
    assert.equal(patched.body.retention, '1d');
    buyer.requests.length = 0;
    buyer.script([{ status: 500, body: 'echo shred.me@example.com' }, { status: 200 }]);
    const leadId = await deliver(created.body.apiKey, { email: 'shred.me@example.com', first_name: 'Forget', phone: '+15550107788' });
    const before = (await get<Receipt>(`/v1/leads/${leadId}/receipt`)).body;
    const attemptsBefore = (await get<{ items: Array<{ request: { body: string } }> }>(`/v1/leads/${leadId}/attempts`)).body.items;
    assert.match(attemptsBefore[0]!.request.body, /shred\.me@example\.com/, 'readable while retained');

    const shred = await http<{ shredded: number }>('POST', `${system.logUrl}/v1/retention/run`, { token: system.adminToken, body: { at: new Date(Date.now() + 2 * 86_400_000).toISOString() } });
    assert.ok(shred.body.shredded >= 1);

    const attempts = (await get<{ items: Array<{ request: unknown; response: { body?: unknown; status: number } }> }>(`/v1/leads/${leadId}/attempts`)).body.items;
    assert.equal(attempts[0]!.request, EXPIRED);
    assert.equal(attempts[0]!.response.body, EXPIRED);
    assert.equal(attempts[1]!.response.status, 200, 'outcomes stay');
    const log = await get<{ items: Array<{ type: string; lead?: unknown }> }>(`/v1/leads/${leadId}/log`);
    assert.equal(log.body.items.find((e) => e.type === 'intake')!.lead, EXPIRED);
    assert.deepEqual((await get<{ items: unknown[] }>(`/v1/lookup?email=shred.me%40example.com`)).body.items, []);
    const raw = JSON.stringify([await system.models.LogEntry.find({ leadId }).lean(), await system.models.Lead.findById(leadId).lean(), await system.models.LeadKey.findById(leadId).lean()]);
    for (const pii of ['shred.me@example.com', 'Forget', '5550107788']) assert.ok(!raw.includes(pii), `${pii} left in the store`);
    assert.ok(!(await system.models.LeadKey.findById(leadId).lean())!.key, 'the data key is gone');

    assert.equal((await get<{ ok: boolean }>(`/v1/leads/${leadId}/verify`)).body.ok, true, 'the chain still verifies');
    const after = (await get<Receipt>(`/v1/leads/${leadId}/receipt`)).body;
    assert.equal(after.chain.head, before.chain.head, 'the same chain');
    const keys = (await http('GET', `${system.logUrl}/.well-known/delivery-receipt-keys.json`)).body;
    assert.equal((await verifyOffline(before, keys, 'expired-before')).code, 0);
    assert.equal((await verifyOffline(after, keys, 'expired-after')).code, 0);
  });
});
