import assert from 'node:assert/strict';
import { applyMapping, MappingError, requireKeys, toE164, validateMapping } from '../../shared/mapping';
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
      { path: 'mapping.c', message: 'must be a lead field name, {"field"}, {"const"} or {"template"}' },
    ]);
  });
  it('applies transforms, defaults and templates', () => {
    const lead = { first_name: '  Ada Byron King ', email: 'ADA@Example.COM', phone: '(555) 010-0000', dob: '1990-05-01', custom: { note: '' } };
    const out = applyMapping({
      first: { field: 'first_name', transform: ['trim', 'name:first'] },
      last: { field: 'first_name', transform: 'name:last' },
      email: { field: 'email', transform: 'lower' },
      phone: { field: 'phone', transform: 'e164' },
      digits: { field: 'phone', transform: 'digits' },
      born: { field: 'dob', transform: 'date:MM/DD/YYYY' },
      note: { field: 'custom.note', default: 'none' },
      label: { template: '{first_name|?} from {city|unknown}' },
    }, { ...ctx, lead });
    assert.deepEqual(out, { first: 'Ada', last: 'Byron King', email: 'ada@example.com', phone: '+15550100000', digits: '5550100000', born: '05/01/1990', note: 'none', label: '  Ada Byron King  from unknown' });
  });
  it('fails with the missing key named when a required value is empty', () => {
    assert.throws(() => applyMapping({ LastName: { field: 'last_name', required: true } }, ctx), (e: Error) => e instanceof MappingError && /required field "LastName" is missing \(from lead field "last_name"\)/.test(e.message));
    assert.throws(() => requireKeys({ Company: '' }, ['LastName', 'Company']), /required fields "LastName", "Company" missing/);
  });
  it('normalises phone numbers to E.164 or refuses them', () => {
    assert.equal(toE164('+44 20 7946 0958'), '+442079460958');
    assert.equal(toE164('1-555-010-0000'), '+15550100000');
    assert.equal(toE164('020 7946 0958', '44'), '+442079460958');
    assert.equal(toE164('12345'), undefined);
  });
  it('validates transforms, templates and settings when saved', () => {
    const errors = validateMapping({ a: { field: 'email', transform: 'reverse' }, b: { template: 'Hi {frist}' }, c: { template: 'Hi {first_name' }, d: { field: 'email', extra: 1 } });
    assert.deepEqual(errors.map((e) => e.path), ['mapping.a.transform', 'mapping.b.template', 'mapping.c.template', 'mapping.d.extra']);
  });
  it('encodes JSON or a form', () => {
    assert.equal(encodeBody('form', { a: 'x y', b: 1, c: { d: true }, e: undefined }), 'a=x+y&b=1&c=%7B%22d%22%3Atrue%7D');
    assert.equal(encodeBody('json', { a: 1 }), '{"a":1}');
  });
});
