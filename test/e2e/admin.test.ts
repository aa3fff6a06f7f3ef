/**
 * The admin API: sources and their keys, buyers, endpoints (validation, secrets shown once then
 * masked, encrypted at rest), waterfalls; and who may call it.
 */
import assert from 'node:assert/strict';
import { startFakeBuyer } from '../fakes/buyer';
import { http, startSystem, type TestSystem } from '../support/system';

describe('admin API', function () {
  let system: TestSystem;
  before(async function () {
    this.timeout(180_000);
    system = await startSystem({ deliveryWorker: false });
  });
  after(async () => {
    await system?.stop();
  });

  it('When admin routes are called without the admin token, then 401 (none or wrong) or 403 (a source key)', async () => {
    const source = await system.createSource();
    const url = `${system.intakeUrl}/v1/admin/buyers`;
    assert.equal((await http('GET', url)).status, 401);
    assert.equal((await http('GET', url, { token: 'wrong-token-wrong-token' })).status, 401);
    assert.equal((await http('GET', url, { token: source.apiKey })).status, 403);
    assert.equal((await http('GET', url, { token: system.adminToken })).status, 200);
  });

  it('When a source is created, then its key is shown once, works, can be rotated and revoked', async () => {
    const created = await system.admin<{ id: string; apiKey: string; keys: Array<{ keyId: string }> }>('POST', '/sources', { name: 'rotation' });
    assert.equal(created.status, 201);
    assert.match(created.body.apiKey, /^lds_/);
    const listed = await system.admin('GET', `/sources/${created.body.id}`);
    assert.ok(!JSON.stringify(listed.body).includes(created.body.apiKey.slice('lds_'.length + 27)), 'the key is not shown again');
    const stored = await system.models.Source.findById(created.body.id).lean();
    assert.ok(!JSON.stringify(stored).includes(created.body.apiKey.slice('lds_'.length + 27)), 'only a hash is stored');

    const rotated = await system.admin<{ keyId: string; apiKey: string }>('POST', `/sources/${created.body.id}/keys`);
    assert.equal(rotated.status, 201);
    const lookup = (key: string) => http('GET', `${system.intakeUrl}/v1/leads/ld_none`, { token: key });
    assert.equal((await lookup(created.body.apiKey)).status, 404, 'old key still valid after rotation');
    assert.equal((await lookup(rotated.body.apiKey)).status, 404, 'new key valid');
    const revoke = await system.admin('DELETE', `/sources/${created.body.id}/keys/${created.body.keys[0]!.keyId}`);
    assert.equal(revoke.status, 204);
    assert.equal((await lookup(created.body.apiKey)).status, 401, 'revoked key refused at once');
    assert.equal((await lookup(rotated.body.apiKey)).status, 404);
  });

  it('When an endpoint is created, then bad settings are named field by field', async () => {
    const buyerId = await system.createBuyer();
    const bad = await system.admin<{ fields: Array<{ path: string }> }>('POST', `/buyers/${buyerId}/endpoints`, {
      kind: 'webhook', url: 'ftp://example.com', format: 'xml', backoff: ['5m', 'soon'], timeoutMs: 50, mapping: { a: 'frist_name' }, auth: { type: 'bearer' },
    });
    assert.equal(bad.status, 400);
    const paths = bad.body.fields.map((f) => f.path).sort();
    assert.deepEqual(paths, ['backoff.1', 'timeoutMs']);
    const kindErrors = await system.admin<{ fields: Array<{ path: string }> }>('POST', `/buyers/${buyerId}/endpoints`, { kind: 'webhook', url: 'ftp://example.com', format: 'xml', auth: { type: 'bearer' } });
    assert.deepEqual(kindErrors.body.fields.map((f) => f.path).sort(), ['auth.token', 'format', 'url']);
    const mapping = await system.admin<{ fields: Array<{ path: string }> }>('POST', `/buyers/${buyerId}/endpoints`, { kind: 'webhook', url: 'https://crm.example/hook', mapping: { a: 'frist_name' } });
    assert.deepEqual(mapping.body.fields.map((f) => f.path), ['mapping.a']);
    const unknown = await system.admin<{ fields: Array<{ path: string }> }>('POST', `/buyers/${buyerId}/endpoints`, { kind: 'fax' });
    assert.deepEqual(unknown.body.fields.map((f) => f.path), ['kind']);
    const privateTarget = await system.admin<{ fields: Array<{ path: string; message: string }> }>('POST', `/buyers/${buyerId}/endpoints`, { kind: 'webhook', url: 'http://169.254.169.254/latest/meta-data' });
    assert.equal(privateTarget.status, 400);
    assert.equal(privateTarget.body.fields[0]!.path, 'url');
    assert.match(privateTarget.body.fields[0]!.message, /OUTBOUND_ALLOW/);
  });

  it('When an endpoint is created with auth, then its secrets are shown once, stored encrypted and masked afterwards', async () => {
    const buyerId = await system.createBuyer();
    const created = await system.addEndpoint(buyerId, { kind: 'webhook', url: 'https://crm.example/hook', auth: { type: 'bearer', token: 'tok_live_0123456789abcdef' }, headers: { 'X-List': 'list-secret-0987654321' } });
    assert.match(String(created.signingSecret), /^whsec_/);
    assert.deepEqual(created.auth, { type: 'bearer', token: 'tok_********' }, 'auth given by the operator is not echoed');
    const raw = JSON.stringify(await system.models.Endpoint.findById(created.id).lean());
    for (const secret of ['tok_live_0123456789abcdef', 'list-secret-0987654321', String(created.signingSecret)]) assert.ok(!raw.includes(secret), `${secret} stored in clear`);
    const read = await system.admin('GET', `/buyers/${buyerId}/endpoints/${created.id}`);
    assert.equal(read.body.signingSecret, 'whse********');
    assert.deepEqual(read.body.headers, { 'X-List': 'list********' });

    const patched = await system.admin('PATCH', `/buyers/${buyerId}/endpoints/${created.id}`, { url: 'https://crm.example/v2', backoff: ['1m'] });
    assert.equal(patched.status, 200);
    assert.equal(patched.body.version, 2);
    assert.equal(patched.body.url, 'https://crm.example/v2');
    assert.equal(patched.body.signingSecret, 'whse********', 'secrets survive a patch that does not name them');
    const kindChange = await system.admin('PATCH', `/buyers/${buyerId}/endpoints/${created.id}`, { kind: 'email' });
    assert.equal(kindChange.status, 400);
  });

  it('When a waterfall names an unknown buyer, or a buyer in use is deleted, then the answer says why and nothing changes', async () => {
    const source = await system.createSource();
    const buyerId = await system.createBuyer();
    const unknown = await system.admin<{ fields: Array<{ path: string }> }>('PUT', `/sources/${source.id}/waterfall`, { buyers: [buyerId, 'buy_missing'] });
    assert.equal(unknown.status, 400);
    assert.deepEqual(unknown.body.fields.map((f) => f.path), ['buyers.1']);
    await system.setWaterfall(source.id, [buyerId]);
    const inUse = await system.admin('DELETE', `/buyers/${buyerId}`);
    assert.equal(inUse.status, 409);
    assert.deepEqual(inUse.body.sources, [source.id]);
    assert.equal((await system.admin('GET', `/buyers/${buyerId}`)).status, 200);
    assert.equal((await system.admin('GET', '/buyers/buy_$where')).status, 404, 'odd ids never reach a query');
  });

  it('When an endpoint is deleted, then it is archived: readable by id with archivedAt, hidden from the list unless ?archived=true, and no longer changeable', async () => {
    const buyerId = await system.createBuyer();
    const kept = await system.addEndpoint(buyerId, { kind: 'webhook', url: 'https://crm.example/kept' });
    const gone = await system.addEndpoint(buyerId, { kind: 'webhook', url: 'https://crm.example/gone' });
    assert.equal((await system.admin('DELETE', `/buyers/${buyerId}/endpoints/${gone.id}`)).status, 204);
    const read = await system.admin('GET', `/buyers/${buyerId}/endpoints/${gone.id}`);
    assert.equal(read.status, 200);
    assert.ok(!Number.isNaN(Date.parse(String(read.body.archivedAt))), 'archivedAt is shown');
    assert.equal((await system.models.Endpoint.countDocuments({ _id: gone.id })), 1, 'the document stays');
    const listed = await system.admin<{ items: Array<{ id: string }> }>('GET', `/buyers/${buyerId}/endpoints`);
    assert.deepEqual(listed.body.items.map((e) => e.id), [kept.id]);
    const all = await system.admin<{ items: Array<{ id: string; archivedAt?: string }> }>('GET', `/buyers/${buyerId}/endpoints?archived=true`);
    assert.deepEqual(all.body.items.map((e) => [e.id, e.archivedAt !== undefined]), [[kept.id, false], [gone.id, true]]);
    const badFlag = await system.admin<{ fields: Array<{ path: string }> }>('GET', `/buyers/${buyerId}/endpoints?archived=yes`);
    assert.deepEqual([badFlag.status, badFlag.body.fields.map((f) => f.path)], [400, ['query.archived']]);
    const patched = await system.admin('PATCH', `/buyers/${buyerId}/endpoints/${gone.id}`, { url: 'https://crm.example/back' });
    assert.deepEqual([patched.status, patched.body.error], [409, 'archived']);
    assert.equal((await system.admin('DELETE', `/buyers/${buyerId}/endpoints/${gone.id}`)).status, 204, 'deleting again changes nothing');
    assert.equal((await system.admin('GET', `/buyers/${buyerId}`)).body.endpoints, 1, 'the count is of live endpoints');
  });

  it('When a buyer is deleted, then it and its endpoints are archived, a waterfall cannot name it, and it cannot be changed', async () => {
    const buyerId = await system.createBuyer({ name: 'to archive' });
    const endpoint = await system.addEndpoint(buyerId, { kind: 'webhook', url: 'https://crm.example/a' });
    assert.equal((await system.admin('DELETE', `/buyers/${buyerId}`)).status, 204);
    const read = await system.admin('GET', `/buyers/${buyerId}`);
    assert.equal(read.status, 200);
    assert.ok(read.body.archivedAt, 'archivedAt is shown');
    assert.ok((await system.admin('GET', `/buyers/${buyerId}/endpoints/${endpoint.id}`)).body.archivedAt, 'its endpoints are archived with it');
    const listed = await system.admin<{ items: Array<{ id: string }> }>('GET', '/buyers');
    assert.ok(!listed.body.items.some((b) => b.id === buyerId), 'hidden from the list');
    const all = await system.admin<{ items: Array<{ id: string }> }>('GET', '/buyers?archived=true');
    assert.ok(all.body.items.some((b) => b.id === buyerId), 'listed with ?archived=true');
    const patched = await system.admin('PATCH', `/buyers/${buyerId}`, { name: 'revived' });
    assert.deepEqual([patched.status, patched.body.error], [409, 'archived']);
    const added = await system.admin('POST', `/buyers/${buyerId}/endpoints`, { kind: 'webhook', url: 'https://crm.example/b' });
    assert.deepEqual([added.status, added.body.error], [409, 'archived']);
    const source = await system.createSource();
    const live = await system.createBuyer();
    const waterfall = await system.admin<{ fields: Array<{ path: string; message: string }> }>('PUT', `/sources/${source.id}/waterfall`, { buyers: [live, buyerId] });
    assert.equal(waterfall.status, 400);
    assert.deepEqual(waterfall.body.fields.map((f) => f.path), ['buyers.1']);
    assert.match(waterfall.body.fields[0]!.message, /archived/);
  });

  it('When a source is deleted, then it is archived, its keys no longer authenticate, and it cannot be changed', async () => {
    const source = await system.createSource('to archive');
    const lookup = () => http('GET', `${system.intakeUrl}/v1/leads/ld_none`, { token: source.apiKey });
    assert.equal((await lookup()).status, 404, 'the key works');
    assert.equal((await system.admin('DELETE', `/sources/${source.id}`)).status, 204);
    assert.equal((await lookup()).status, 401, 'the key no longer authenticates');
    const read = await system.admin('GET', `/sources/${source.id}`);
    assert.equal(read.status, 200);
    assert.ok(read.body.archivedAt);
    const listed = await system.admin<{ items: Array<{ id: string }> }>('GET', '/sources');
    assert.ok(!listed.body.items.some((s) => s.id === source.id));
    for (const [method, path, body] of [['PATCH', '', { name: 'x' }], ['PUT', '/waterfall', { buyers: [] }], ['POST', '/keys', undefined]] as const) {
      const res = await system.admin(method, `/sources/${source.id}${path}`, body);
      assert.deepEqual([method, path, res.status, res.body.error], [method, path, 409, 'archived']);
    }
    assert.equal((await system.admin('DELETE', '/sources/src_missing')).status, 404);
  });

  it('When a buyer named by an archived source is deleted, then that waterfall does not hold it', async () => {
    const source = await system.createSource();
    const buyerId = await system.createBuyer();
    await system.setWaterfall(source.id, [buyerId]);
    assert.equal((await system.admin('DELETE', `/buyers/${buyerId}`)).status, 409);
    assert.equal((await system.admin('DELETE', `/sources/${source.id}`)).status, 204);
    assert.equal((await system.admin('DELETE', `/buyers/${buyerId}`)).status, 204);
  });

  it('When an endpoint is deleted while a lead waits in backoff for it, then the lead ends dead-lettered on record (not an internal error) and nothing more is sent', async function () {
    this.timeout(150_000);
    const delivering = await startSystem();
    const buyer = await startFakeBuyer({ steps: [{ status: 503 }] });
    try {
      // 6 s: longer than the worker's 5-s endpoint cache, so the next attempt reads the archive.
      const { source, buyerId, endpoints } = await delivering.route([{ kind: 'webhook', url: buyer.url, backoff: ['6s'] }]);
      const endpointId = endpoints[0]!.id;
      const leadId = String((await delivering.postLead(source.apiKey, { email: 'inflight@example.com' })).body.leadId);
      await delivering.waitForLead(leadId, (v) => v.endpoints[0]?.status === 'backoff');
      assert.equal((await delivering.admin('DELETE', `/buyers/${buyerId}/endpoints/${endpointId}`)).status, 204);
      const view = await delivering.waitForLead(leadId, (v) => v.status === 'dead_lettered', 90_000);
      assert.notEqual(view.reasonCode, 'internal_error');
      assert.equal(buyer.requests.length, 1, 'nothing sent to the archived endpoint');
      assert.equal((await delivering.admin('GET', `/buyers/${buyerId}/endpoints/${endpointId}`)).status, 200, 'the endpoint the log names is still readable');
    } finally {
      await buyer.close();
      await delivering.stop();
    }
  });

  it('When a mapping is previewed, then the exact request comes back with secrets masked and nothing is sent', async () => {
    const buyerId = await system.createBuyer();
    const endpoint = await system.addEndpoint(buyerId, {
      kind: 'webhook', url: 'https://crm.example/hook?api_key=abcdefghijklmnop', auth: { type: 'bearer', token: 'tok_live_0123456789abcdef' },
      mapping: { FirstName: 'first_name', Phone: { field: 'phone', transform: 'digits' }, LastName: { field: 'last_name', required: true }, Source: { const: 'web' } },
    });
    const preview = await http<{ request: { method: string; url: string; headers: Record<string, string>; body: string } }>('POST', `${system.intakeUrl}/v1/buyers/${buyerId}/endpoints/${endpoint.id}/preview`, { token: system.adminToken, body: { lead: { first_name: 'Ada', last_name: 'L', phone: '+1 (555) 010-0000' } } });
    assert.equal(preview.status, 200);
    assert.equal(preview.body.request.method, 'POST');
    assert.equal(preview.body.request.url, 'https://crm.example/hook?api_key=abcd********');
    assert.equal(preview.body.request.headers.authorization, 'Bear********');
    assert.match(preview.body.request.headers['webhook-signature']!, /^v1,/);
    assert.deepEqual(JSON.parse(preview.body.request.body), { FirstName: 'Ada', Phone: '15550100000', LastName: 'L', Source: 'web' });
    const sample = await system.admin<{ request: { body: string } }>('POST', `/buyers/${buyerId}/endpoints/${endpoint.id}/preview`, {});
    assert.equal((JSON.parse(sample.body.request.body) as { FirstName: string }).FirstName, 'Ada', 'a built-in sample lead when none is given');
    const missing = await system.admin('POST', `/buyers/${buyerId}/endpoints/${endpoint.id}/preview`, { lead: { email: 'x@example.com' } });
    assert.deepEqual([missing.status, missing.body.error, missing.body.key], [422, 'mapping_error', 'LastName']);
    const invalid = await system.admin<{ fields: Array<{ path: string }> }>('POST', `/buyers/${buyerId}/endpoints/${endpoint.id}/preview`, { lead: { email: 'nope' } });
    assert.deepEqual(invalid.body.fields.map((f) => f.path), ['lead.email']);
  });
});
