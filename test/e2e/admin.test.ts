/**
 * The admin API: sources and their keys, buyers, endpoints (validation, secrets shown once then
 * masked, encrypted at rest), waterfalls; and who may call it.
 */
import assert from 'node:assert/strict';
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
    assert.ok(!JSON.stringify(listed.body).includes(created.body.apiKey.split('_')[2]!), 'the key is not shown again');
    const stored = await system.models.Source.findById(created.body.id).lean();
    assert.ok(!JSON.stringify(stored).includes(created.body.apiKey.split('_')[2]!), 'only a hash is stored');

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
