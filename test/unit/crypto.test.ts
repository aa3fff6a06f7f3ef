import assert from 'node:assert/strict';
import { generateKeySpec, openJson, parseKeyRing, sealJson } from '../../shared/crypto';

describe('credentials key ring', () => {
  it('seals with the first key and opens with any key of the ring (rotation)', () => {
    const oldKey = generateKeySpec('old');
    const newKey = generateKeySpec('new');
    const sealedOld = sealJson(parseKeyRing(oldKey), { token: 't' }, 'endpoint:1');
    const rotated = parseKeyRing(`${newKey},${oldKey}`);
    assert.deepEqual(openJson(rotated, sealedOld, 'endpoint:1'), { token: 't' });
    assert.match(sealJson(rotated, { token: 't' }), /^v1\.new\./);
  });
  it('refuses a ciphertext moved to another record, tampered, or whose key is gone', () => {
    const ring = parseKeyRing(generateKeySpec('k1'));
    const sealed = sealJson(ring, { token: 't' }, 'endpoint:1');
    assert.throws(() => openJson(ring, sealed, 'endpoint:2'));
    const tampered = sealed.slice(0, -4) + (sealed.endsWith('AAA=') ? 'BBB=' : 'AAA=');
    assert.throws(() => openJson(ring, tampered, 'endpoint:1'));
    assert.throws(() => openJson(parseKeyRing(generateKeySpec('k2')), sealed, 'endpoint:1'), /no key "k1"/);
  });
  it('rejects badly configured keys with the reason', () => {
    assert.throws(() => parseKeyRing('k1:c2hvcnQ='), /32 bytes/);
    assert.throws(() => parseKeyRing(''), /no keys/);
  });
});
