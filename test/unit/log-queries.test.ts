/**
 * Pure parts of the log queries: the cursor, the query each filter set becomes (and the index it
 * names), and the FerretDB containment indexes derived from the schemas.
 */
import assert from 'node:assert/strict';
import mongoose from 'mongoose';
import { buildAttemptQuery, chooseIndex, decodeCursor, encodeCursor, parsePageQuery } from '../../services/log/attempts';
import { containmentIndexName, containmentIndexSql } from '../../deploy/local/ferretdb-indexes';
import { createModels, equalityFields } from '../../shared/store';
import { ValidationError } from '../../shared/errors';

describe('log queries (pure)', () => {
  it('When a cursor is encoded, then it decodes to the same place; anything else is refused', () => {
    const cursor = { at: 1_764_355_200_123, id: 'ld_abc:000004' };
    assert.deepEqual(decodeCursor(encodeCursor(cursor)), cursor);
    for (const bad of ['', 'not a cursor', Buffer.from('{"at":1}').toString('base64url'), Buffer.from('[1.5,"x"]').toString('base64url'), Buffer.from('[1,{"$gt":""}]').toString('base64url'), Buffer.from('[-1,"x"]').toString('base64url')]) {
      assert.equal(decodeCursor(bad), undefined, bad);
    }
  });

  it('When a filter set is turned into a query, then each shape names the index whose prefix it fills', () => {
    assert.deepEqual(chooseIndex({ leadId: 'ld_1', buyerId: 'buy_1' }), { leadId: 1, seq: 1 });
    assert.deepEqual(chooseIndex({ buyerId: 'buy_1', endpointId: 'ep_1' }), { type: 1, endpointId: 1, at: 1, _id: 1 });
    assert.deepEqual(chooseIndex({ buyerId: 'buy_1', sourceId: 'src_1', outcome: 'success' }), { type: 1, buyerId: 1, at: 1, _id: 1 });
    assert.deepEqual(chooseIndex({ sourceId: 'src_1', outcome: 'success' }), { type: 1, sourceId: 1, at: 1, _id: 1 });
    assert.deepEqual(chooseIndex({ outcome: 'permanent', from: 1 }), { type: 1, outcome: 1, at: 1, _id: 1 });
    assert.deepEqual(chooseIndex({ from: 1, to: 2 }), { type: 1, at: 1, _id: 1 });
  });

  it('When a cursor continues a period, then the walk starts at the later of the two and skips what the last page returned', () => {
    const q = buildAttemptQuery({ buyerId: 'buy_1', from: 1_000, to: 9_000 }, { at: 5_000, id: 'ld_x:000003' });
    assert.deepEqual(q.filter, {
      type: 'attempt',
      buyerId: 'buy_1',
      at: { $gte: new Date(5_000), $lt: new Date(9_000) },
      $or: [{ at: { $gt: new Date(5_000) } }, { _id: { $gt: 'ld_x:000003' } }],
    });
    assert.deepEqual(q.sort, { at: 1, _id: 1 });
    const early = buildAttemptQuery({ from: 7_000 }, { at: 5_000, id: 'ld_x:000003' });
    assert.deepEqual(early.filter.at, { $gte: new Date(7_000) });
  });

  it('When query values are objects or repeated, then parsing refuses them before any query is built', () => {
    assert.throws(() => parsePageQuery({ buyerId: { $ne: 'x' } }), (e: unknown) => e instanceof ValidationError && e.fields.some((f) => f.path === 'query.buyerId'));
    assert.throws(() => parsePageQuery({ buyerId: ['a', 'b'] }), (e: unknown) => e instanceof ValidationError && e.fields.some((f) => f.path === 'query.buyerId'));
    assert.deepEqual(parsePageQuery({ outcome: 'success', limit: '5' }), { filters: { outcome: 'success' }, limit: 5 });
  });

  it('When the schemas are read, then each collection gets containment indexes on its String index fields and _id, not on times or numbers', () => {
    const fields = equalityFields(createModels(mongoose.createConnection()));
    assert.deepEqual(new Set(fields.deliverylog), new Set(['_id', 'leadId', 'type', 'buyerId', 'sourceId', 'endpointId', 'outcome']));
    // buyerId, returnStatus and clientId: the returns' lists, counts and clientId lookups.
    assert.deepEqual(new Set(fields.leads), new Set(['_id', 'sourceId', 'status', 'emailHash', 'phoneHash', 'buyerId', 'returnStatus', 'clientId']));
    assert.deepEqual(fields.leadkeys, ['_id']);
    for (const list of Object.values(fields)) for (const f of list) assert.ok(!['at', 'seq', 'expiresAt', 'receivedAt'].includes(f), f);
  });

  it('When a containment index is named and written, then the name fits PostgreSQL and every identifier and literal is quoted', () => {
    const name = containmentIndexName('x'.repeat(60), 'leadId');
    assert.ok(Buffer.byteLength(name) <= 63, name);
    assert.notEqual(containmentIndexName('t', 'a'), containmentIndexName('t', 'b'));
    assert.equal(
      containmentIndexSql('t_ab"c', 'deliverylog_06f20ec1', "o'dd"),
      `CREATE INDEX IF NOT EXISTS "${containmentIndexName('deliverylog_06f20ec1', "o'dd")}" ON "t_ab""c"."deliverylog_06f20ec1" USING gin ((_jsonb -> 'o''dd') jsonb_path_ops)`,
    );
  });
});
