/**
 * Ed25519 keys that sign delivery receipts and daily roots. Configured as `kid:base64(PKCS#8 DER)`,
 * comma-separated: the first signs, all are published as a JWK set at
 * /.well-known/delivery-receipt-keys.json, so receipts signed by a retired key still verify.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { canonicalJson } from '../../shared/journal-hash';

export interface PublicJwk {
  kty: 'OKP';
  crv: 'Ed25519';
  x: string;
  kid: string;
  use: 'sig';
  alg: 'EdDSA';
}

export interface Signer {
  keyId: string;
  /** Signature (base64) over the canonical JSON of the value. */
  sign(value: unknown): { keyId: string; signature: string };
  verify(value: unknown, keyId: string, signature: string): boolean;
  jwks(): { keys: PublicJwk[] };
}

export function generateReceiptKeySpec(kid = `r${new Date().toISOString().slice(0, 10).replace(/-/g, '')}`): string {
  const { privateKey } = generateKeyPairSync('ed25519');
  return `${kid}:${privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64')}`;
}

export function createSigner(spec: string): Signer {
  const keys = new Map<string, { privateKey: KeyObject; publicKey: KeyObject; jwk: PublicJwk }>();
  for (const entry of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const sep = entry.indexOf(':');
    if (sep <= 0) throw new Error('RECEIPT_KEYS: each key must be "kid:base64(PKCS#8 DER of an Ed25519 key)"');
    const kid = entry.slice(0, sep);
    const privateKey = createPrivateKey({ key: Buffer.from(entry.slice(sep + 1), 'base64'), format: 'der', type: 'pkcs8' });
    if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`RECEIPT_KEYS: key "${kid}" is not an Ed25519 key`);
    const publicKey = createPublicKey(privateKey);
    const { x } = publicKey.export({ format: 'jwk' }) as { x: string };
    keys.set(kid, { privateKey, publicKey, jwk: { kty: 'OKP', crv: 'Ed25519', x, kid, use: 'sig', alg: 'EdDSA' } });
  }
  const [current] = keys.keys();
  if (!current) throw new Error('RECEIPT_KEYS: no key configured');
  return {
    keyId: current,
    sign(value) {
      const key = keys.get(current)!;
      return { keyId: current, signature: sign(null, Buffer.from(canonicalJson(value)), key.privateKey).toString('base64') };
    },
    verify(value, keyId, signature) {
      const key = keys.get(keyId);
      return !!key && verify(null, Buffer.from(canonicalJson(value)), key.publicKey, Buffer.from(signature, 'base64'));
    },
    jwks: () => ({ keys: [...keys.values()].map((k) => k.jwk) }),
  };
}
