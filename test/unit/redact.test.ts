import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger } from '../../shared/logger';
import { maskSecret, redactForLog, redactHeaders, redactSecrets, redactText, redactUrl } from '../../shared/redact';

describe('redaction policy', () => {
  it('masks secrets but keeps the rest for the delivery log', () => {
    const out = redactSecrets({ headers: { Authorization: 'Bearer abcdefghijklmnop', 'content-type': 'application/json' }, body: '{"email":"a@b.co"}', auth: { token: 'tok_123456789012' } });
    assert.deepEqual(out, { headers: { Authorization: 'Bear********', 'content-type': 'application/json' }, body: '{"email":"a@b.co"}', auth: { token: 'tok_********' } });
  });
  it('removes PII and secrets from log objects and text', () => {
    const out = redactForLog({ leadId: 'ld_1', email: 'a@b.co', lead: { phone: '+15550100' }, note: 'call +1 (555) 010-0000 or mail x.y@corp.example, key whsec_abcDEF123=' });
    assert.equal(out.leadId, 'ld_1');
    assert.equal(out.email, '[redacted]');
    assert.equal(out.lead, '[redacted]');
    assert.equal(out.note, 'call [phone] or mail [email], key whsec_[redacted]');
    assert.equal(redactText('Authorization: Bearer eyJhbGciOi.x.y'), 'Authorization: Bearer [redacted]');
  });
  it('masks short secrets completely and long ones but for four characters', () => {
    assert.equal(maskSecret('short'), '****');
    assert.equal(maskSecret('whsec_0123456789'), 'whse********');
  });
  it('masks userinfo and secret query parameters in URLs, and secret headers', () => {
    assert.equal(redactUrl('https://user:pw@crm.example/hook?api_key=abcdefghijklmnop&list=7'), 'https://****:****@crm.example/hook?api_key=abcd********&list=7');
    assert.deepEqual(redactHeaders({ 'x-api-key': 'k-1234567890123', accept: '*/*' }), { 'x-api-key': 'k-12********', accept: '*/*' });
  });
  it('keeps PII and secrets out of pino lines (objects, messages, errors)', () => {
    const lines: string[] = [];
    const logger = createLogger({ name: 't', destination: new Writable({ write(chunk: Buffer, _e, done) { lines.push(chunk.toString()); done(); } }) });
    logger.info({ lead: { email: 'ada@example.com' }, authorization: 'Bearer secret-token-123' }, 'lead from ada@example.com');
    logger.error({ err: new Error('buyer said: invalid phone +15550100000') }, 'failed');
    const text = lines.join('');
    assert.ok(!text.includes('ada@example.com'), text);
    assert.ok(!text.includes('secret-token-123'), text);
    assert.ok(!text.includes('+15550100000'), text);
    assert.ok(text.includes('[email]'));
  });
});
