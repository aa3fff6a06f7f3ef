/**
 * Buyer returns, the pure parts: the settings from the environment (a bad combination stops the
 * boot), the request's validation (400 naming the field, the allowed reasons listed), the return id
 * derived from the lead id, and the billing CSV's `returned` / `return_reason` per attempt row.
 */
import assert from 'node:assert/strict';
import { attemptCsvValues, ATTEMPT_CSV_COLUMNS, type AttemptCsvSource } from '../../services/log/attempts';
import { defaultReturnSettings, returnRequestSchema, returnSettings } from '../../services/intake/returns';
import { ConfigError } from '../../shared/config';
import { ValidationError } from '../../shared/errors';
import { parseBody } from '../../shared/http/validate';
import { leadIdOfReturn, returnIdOf } from '../../shared/returns';

describe('buyer returns (pure)', () => {
  it('When the return settings are left at their defaults, then five reasons are allowed and all but "other" are approved at once', () => {
    const settings = defaultReturnSettings();
    assert.deepEqual(settings.reasons, ['invalid_contact', 'duplicate', 'out_of_area', 'fraud', 'other']);
    assert.deepEqual(settings.autoApprove, ['invalid_contact', 'duplicate', 'out_of_area', 'fraud']);
    assert.equal(settings.decisionWindowMs, 30 * 86_400_000);
  });

  it('When RETURN_AUTO_APPROVE names a reason RETURN_REASONS does not have, then the boot stops naming the variable', () => {
    assert.throws(
      () => returnSettings({ RETURN_REASONS: 'fraud,other', RETURN_AUTO_APPROVE: 'fraud,duplicate', RETURN_DECISION_WINDOW: '7d' }),
      (e: unknown) => e instanceof ConfigError && /RETURN_AUTO_APPROVE: duplicate not in RETURN_REASONS/.test(e.message),
    );
    const none = returnSettings({ RETURN_REASONS: ' fraud , other ', RETURN_AUTO_APPROVE: '', RETURN_DECISION_WINDOW: '2d' });
    assert.deepEqual([none.reasons, none.autoApprove, none.decisionWindowMs], [['fraud', 'other'], [], 2 * 86_400_000]);
  });

  it('When a return request is parsed, then a reason off the list, a long note, no lead or both ids are 400s naming the field', () => {
    const schema = returnRequestSchema(['fraud', 'other']);
    const fields = (body: unknown) => {
      try {
        parseBody(schema, body);
        return [];
      } catch (error) {
        assert.ok(error instanceof ValidationError);
        return error.fields.map((f) => `${f.path}: ${f.message}`);
      }
    };
    assert.deepEqual(fields({ leadId: 'ld_1', reason: 'fraud', note: 'x'.repeat(1000) }), []);
    assert.deepEqual(fields({ clientId: 'form-1', reason: 'other' }), []);
    assert.deepEqual(fields({ leadId: 'ld_1', reason: 'meh' }), ['reason: must be one of fraud, other']);
    assert.deepEqual(fields({ leadId: 'ld_1' }), ['reason: must be one of fraud, other']);
    assert.deepEqual(fields({ leadId: 'ld_1', reason: 'fraud', note: 'x'.repeat(1001) }), ['note: must be at most 1000 characters']);
    assert.match(fields({ reason: 'fraud' }).join(), /^leadId: give the lead as leadId or as clientId/);
    assert.match(fields({ leadId: 'ld_1', clientId: 'c', reason: 'fraud' }).join(), /^leadId: /);
    assert.deepEqual(fields({ leadId: { $ne: 1 }, reason: 'fraud' }), ['leadId: Invalid input: expected string, received object']);
  });

  it('When a return id is derived from a lead id, then the lead id is read back from it; other text is not a return id', () => {
    assert.equal(returnIdOf('ld_01jd7x4n2m9q8r7s6t5v4w3x2y'), 'ret_01jd7x4n2m9q8r7s6t5v4w3x2y');
    assert.equal(leadIdOfReturn(returnIdOf('ld_01jd7x4n2m9q8r7s6t5v4w3x2y')), 'ld_01jd7x4n2m9q8r7s6t5v4w3x2y');
    for (const text of ['ld_01jd', 'ret_', 'ret_a/b', 'x_1', `ret_${'a'.repeat(121)}`]) assert.equal(leadIdOfReturn(text), undefined, text);
  });

  it('When attempt rows are exported, then `returned` is true / pending only on the accepted rows of the returning buyer, false elsewhere', () => {
    const row = (over: Partial<AttemptCsvSource> & { data?: Record<string, unknown> }): AttemptCsvSource => ({ leadId: 'ld_1', sourceId: 'src_1', buyerId: 'buy_a', endpointId: 'ep_1', outcome: 'success', at: new Date(0), ...over, data: { role: 'accept', outcome: 'success', ...over.data } });
    const cells = (doc: AttemptCsvSource) => {
      const values = attemptCsvValues(doc);
      return [values[ATTEMPT_CSV_COLUMNS.indexOf('returned')], values[ATTEMPT_CSV_COLUMNS.indexOf('return_reason')]];
    };
    const approved = { buyerId: 'buy_a', status: 'approved', reason: 'fraud' };
    assert.equal(attemptCsvValues(row({})).length, ATTEMPT_CSV_COLUMNS.length, 'one value per column');
    assert.deepEqual(cells(row({ return: approved })), ['true', 'fraud']);
    assert.deepEqual(cells(row({ return: { ...approved, status: 'pending' } })), ['pending', 'fraud']);
    assert.deepEqual(cells(row({ return: { ...approved, status: 'denied' } })), ['false', 'fraud']);
    assert.deepEqual(cells(row({ return: { ...approved, status: 'expired' } })), ['false', 'fraud']);
    assert.deepEqual(cells(row({})), ['false', undefined], 'no return');
    assert.deepEqual(cells(row({ return: approved, data: { role: 'notify' } })), ['false', undefined], 'a notify copy is not the accepted row');
    assert.deepEqual(cells(row({ return: approved, outcome: 'permanent', data: { outcome: 'permanent' } })), ['false', undefined], 'a failed attempt');
    assert.deepEqual(cells(row({ return: approved, buyerId: 'buy_b' })), ['false', undefined], 'another buyer’s row (a failover before the delivery)');
  });
});
