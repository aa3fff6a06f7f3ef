/**
 * The payload codec: every payload a client or worker sends to Temporal (workflow inputs and
 * results, activity inputs and results, signals, updates, queries, memos, failures' messages
 * and stack traces) is encrypted with AES-256-GCM before it leaves the process, so lead PII is
 * never stored in Temporal's history in clear text. The key id travels in the payload's
 * metadata: new payloads use the ring's first key, old ones stay readable while their key is in
 * the ring (rotation). Search attributes are not payloads of ours: they hold ids and statuses only.
 */
import type { DataConverter, Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { decryptBytes, encryptBytes, parseKeyRing, type KeyRing } from './crypto';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
const KEY_ID = 'encryption-key-id';
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class EncryptionCodec implements PayloadCodec {
  constructor(private readonly ring: KeyRing) {}

  static fromSpec(spec: string): EncryptionCodec {
    return new EncryptionCodec(parseKeyRing(spec, 'PAYLOAD_KEYS'));
  }

  encode(payloads: Payload[]): Promise<Payload[]> {
    return new Promise((resolve) =>
      resolve(payloads.map((payload) => {
        const plain = temporal.api.common.v1.Payload.encode(payload).finish();
        const { keyId, data } = encryptBytes(this.ring, Buffer.from(plain));
        return { metadata: { encoding: encoder.encode(ENCRYPTED_ENCODING), [KEY_ID]: encoder.encode(keyId) }, data: new Uint8Array(data) };
      })),
    );
  }

  /** A payload that cannot be decrypted rejects (never a silent pass-through of ciphertext). */
  decode(payloads: Payload[]): Promise<Payload[]> {
    return new Promise((resolve) =>
      resolve(payloads.map((payload) => {
        const encoding = payload.metadata?.encoding;
        if (!encoding || decoder.decode(encoding) !== ENCRYPTED_ENCODING) return payload;
        const keyId = payload.metadata?.[KEY_ID];
        if (!keyId || !payload.data) throw new Error('encrypted payload without key id or data');
        const plain = decryptBytes(this.ring, decoder.decode(keyId), Buffer.from(payload.data));
        return temporal.api.common.v1.Payload.decode(plain);
      })),
    );
  }
}

/** Failure messages and stack traces become encoded attributes, so the codec encrypts them too. */
export const FAILURE_CONVERTER_PATH = require.resolve('./failure-converter');

/** The data converter every client and worker uses. */
export function dataConverter(payloadKeys: string): DataConverter {
  return { payloadCodecs: [EncryptionCodec.fromSpec(payloadKeys)], failureConverterPath: FAILURE_CONVERTER_PATH };
}
