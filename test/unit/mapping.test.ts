import assert from 'node:assert/strict';
import { applyMapping, validateMapping } from '../../shared/mapping';
import { encodeBody } from '../../activities/webhook';

const ctx = { leadId: 'ld_1', sourceId: 'src_1', receivedAt: Date.parse('2026-11-28T12:00:00.123Z'), lead: { first_name: 'Ada', email: 'ada@example.com', custom: { score: 7 }, consent: { granted: true } } };

describe('field mapping', () => {
  it('maps lead fields, custom fields, envelope fields and constants to buyer keys', () => {
    const out = applyMapping({ firstname: 'first_name', mail: { field: 'email' }, score: 'custom.score', id: 'lead_id', at: 'received_at', tcpa: 'consent.granted', list: { const: 7 }, phone: 'phone' }, ctx);
    assert.deepEqual(out, { firstname: 'Ada', mail: 'ada@example.com', score: 7, id: 'ld_1', at: '2026-11-28T12:00:00.123Z', tcpa: true, list: 7 });
  });
  it('sends the standard flat lead when there is no mapping', () => {
    assert.deepEqual(applyMapping(undefined, ctx), { lead_id: 'ld_1', source_id: 'src_1', received_at: '2026-11-28T12:00:00.123Z', first_name: 'Ada', email: 'ada@example.com', custom: { score: 7 }, consent: { granted: true } });
  });
  it('names every bad entry when the endpoint is saved', () => {
    assert.deepEqual(validateMapping({ a: 'frist_name', b: { const: { x: 1 } }, c: 42, d: 'custom.ok' }), [
      { path: 'mapping.a', message: '"frist_name" is not a lead field (use e.g. "first_name", "custom.<key>", "lead_id")' },
      { path: 'mapping.b', message: 'a constant must be a string, number, boolean or null' },
      { path: 'mapping.c', message: 'must be a lead field name or {"const": value}' },
    ]);
  });
  it('encodes JSON or a form', () => {
    assert.equal(encodeBody('form', { a: 'x y', b: 1, c: { d: true }, e: undefined }), 'a=x+y&b=1&c=%7B%22d%22%3Atrue%7D');
    assert.equal(encodeBody('json', { a: 1 }), '{"a":1}');
  });
});
