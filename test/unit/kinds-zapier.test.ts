/** The zapier kind's pure parts: any non-2xx is transient, Zapier's id kept, the hook URL masked. */
import assert from 'node:assert/strict';
import { classifyZapierAnswer, maskHookUrl, zapier, zapierId } from '../../activities/zapier';

describe('zapier kind: classification and the rendered request', () => {
  it('2xx is success; every other status is transient, Retry-After kept', () => {
    assert.deepEqual([200, 201, 202].map((status) => classifyZapierAnswer({ status }).outcome), ['success', 'success', 'success']);
    for (const status of [301, 400, 401, 403, 404, 410, 422, 429, 500, 503]) {
      const c = classifyZapierAnswer({ status });
      assert.deepEqual([c.outcome, c.code], ['transient', `http_${status}`], String(status));
    }
    assert.equal(classifyZapierAnswer({ status: 429, headers: { 'retry-after': '4' } }).retryAfterMs, 4_000);
  });

  it("keeps the id of Zapier's success answer", () => {
    assert.equal(zapierId('{"id":"a-1","request_id":"r-1","attempt":"r-1","status":"success"}'), 'a-1');
    assert.equal(zapierId('{"request_id":"r-1","status":"success"}'), 'r-1');
    assert.equal(zapierId('ok'), undefined);
    assert.equal(zapierId('[1]'), undefined);
  });

  it("masks the hook's secret path segments in the record", () => {
    assert.equal(maskHookUrl('https://hooks.zapier.com/hooks/catch/1234567/abc9xyz123/'), 'https://hooks.zapier.com/hooks/catch/1234567/****/');
    assert.equal(maskHookUrl('http://127.0.0.1:8080/hooks/catch/1234567/abc9xyz/'), 'http://127.0.0.1:8080/hooks/****/****/****/');
    assert.ok(!maskHookUrl('https://hooks.zapier.com/hooks/catch/1/secretsecret/?k=v').includes('secretsecret'));
  });

  it('When a retry follows an ambiguous attempt, then nothing is read back: a catch hook cannot be asked what it received', () => {
    assert.equal('lookup' in zapier, false);
  });

  it('posts the mapped lead as JSON and records the request with the URL masked', () => {
    const endpoint = { endpointId: 'ep_1', buyerId: 'buy_1', kind: 'zapier', role: 'accept' as const, config: {}, secrets: { url: 'https://hooks.zapier.com/hooks/catch/1234567/abc9xyz123/' }, mapping: { name: { template: '{first_name} {last_name}' }, email: 'email', lead: 'lead_id' }, timeoutMs: 10_000 };
    const prepared = zapier.map(endpoint, { leadId: 'ld_1', sourceId: 'src_1', receivedAt: 0, lead: { first_name: 'Ada', last_name: 'Lovelace', email: 'ada@example.com' }, endpointId: 'ep_1', buyerId: 'buy_1', attempt: 1, now: 0 });
    assert.equal(prepared.payload.url, endpoint.secrets.url);
    assert.deepEqual(JSON.parse(prepared.payload.body), { name: 'Ada Lovelace', email: 'ada@example.com', lead: 'ld_1' });
    assert.deepEqual(prepared.describe, { method: 'POST', url: 'https://hooks.zapier.com/hooks/catch/1234567/****/', headers: prepared.payload.headers, body: prepared.payload.body });
  });
});
