import assert from 'node:assert/strict';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { EncryptionCodec } from '../../shared/codec';
import { failureConverter } from '../../shared/failure-converter';
import { generateKeySpec } from '../../shared/crypto';

const text = (p: Payload) => Buffer.from(p.data ?? new Uint8Array()).toString('latin1');

describe('payload codec', () => {
  it('encrypts payloads (no plaintext left) and decrypts them back', async () => {
    const codec = EncryptionCodec.fromSpec(generateKeySpec('k1'));
    const plain = defaultPayloadConverter.toPayload({ email: 'ada@example.com' });
    const [encrypted] = await codec.encode([plain]);
    assert.ok(!text(encrypted!).includes('ada@example.com'));
    assert.equal(Buffer.from(encrypted!.metadata!.encoding!).toString(), 'binary/encrypted');
    assert.equal(Buffer.from(encrypted!.metadata!['encryption-key-id']!).toString(), 'k1');
    const [decoded] = await codec.decode([encrypted!]);
    assert.deepEqual(defaultPayloadConverter.fromPayload(decoded!), { email: 'ada@example.com' });
  });
  it('rotates: new payloads use the first key, old ones still decode; unknown keys fail loudly', async () => {
    const oldSpec = generateKeySpec('old');
    const [byOld] = await EncryptionCodec.fromSpec(oldSpec).encode([defaultPayloadConverter.toPayload('x')]);
    const rotated = EncryptionCodec.fromSpec(`${generateKeySpec('new')},${oldSpec}`);
    assert.equal(defaultPayloadConverter.fromPayload((await rotated.decode([byOld!]))[0]!), 'x');
    const [byNew] = await rotated.encode([defaultPayloadConverter.toPayload('y')]);
    assert.equal(Buffer.from(byNew!.metadata!['encryption-key-id']!).toString(), 'new');
    await assert.rejects(EncryptionCodec.fromSpec(generateKeySpec('other')).decode([byNew!]), /no key "new"/);
  });
  it('passes unencrypted payloads through (histories written before the codec)', async () => {
    const codec = EncryptionCodec.fromSpec(generateKeySpec('k1'));
    const plain = defaultPayloadConverter.toPayload(1);
    assert.deepEqual(await codec.decode([plain]), [plain]);
  });
  it('moves failure messages and stack traces into encoded attributes, which the codec then encrypts', () => {
    const failure = failureConverter.errorToFailure(new Error('buyer said: ada@example.com is invalid'), defaultPayloadConverter);
    assert.equal(failure.message, 'Encoded failure');
    assert.equal(failure.stackTrace, '');
    assert.ok(failure.encodedAttributes?.data);
    assert.match(Buffer.from(failure.encodedAttributes.data).toString(), /ada@example.com/, 'in the encoded attributes payload, which goes through the codec');
  });
});
