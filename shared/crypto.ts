import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * AES-256-GCM with a key ring: the first key encrypts, every key decrypts (rotation keeps old
 * ciphertexts readable). Keys are configured as `kid:base64(32 bytes)`, comma-separated.
 */
export interface KeyRing {
  current: { id: string; key: Buffer };
  keys: Map<string, Buffer>;
}

export function parseKeyRing(spec: string, name = 'key ring'): KeyRing {
  const entries = spec.split(',').map((part) => part.trim()).filter(Boolean);
  if (entries.length === 0) throw new Error(`${name}: no keys configured`);
  const keys = new Map<string, Buffer>();
  for (const entry of entries) {
    const sep = entry.indexOf(':');
    if (sep <= 0) throw new Error(`${name}: each key must be "kid:base64", got "${entry.slice(0, 6)}…"`);
    const id = entry.slice(0, sep);
    const key = Buffer.from(entry.slice(sep + 1), 'base64');
    if (key.length !== 32) throw new Error(`${name}: key "${id}" must be 32 bytes of base64, got ${key.length}`);
    if (!/^[A-Za-z0-9_-]{1,32}$/.test(id)) throw new Error(`${name}: key id "${id}" must be 1-32 of [A-Za-z0-9_-]`);
    keys.set(id, key);
  }
  const [firstId] = keys.keys();
  return { current: { id: firstId!, key: keys.get(firstId!)! }, keys };
}

export function generateKeySpec(id = `k${new Date().toISOString().slice(0, 10).replace(/-/g, '')}`): string {
  return `${id}:${randomBytes(32).toString('base64')}`;
}

export function encryptBytes(ring: KeyRing, plaintext: Buffer, aad?: Buffer): { keyId: string; data: Buffer } {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', ring.current.key, iv);
  if (aad) cipher.setAAD(aad);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { keyId: ring.current.id, data: Buffer.concat([iv, body, cipher.getAuthTag()]) };
}

export function decryptBytes(ring: KeyRing, keyId: string, data: Buffer, aad?: Buffer): Buffer {
  const key = ring.keys.get(keyId);
  if (!key) throw new Error(`no key "${keyId}" in the key ring (was it removed before its ciphertexts were re-encrypted?)`);
  if (data.length < 28) throw new Error('ciphertext too short');
  const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, 12));
  if (aad) decipher.setAAD(aad);
  decipher.setAuthTag(data.subarray(data.length - 16));
  return Buffer.concat([decipher.update(data.subarray(12, data.length - 16)), decipher.final()]);
}

/** `v1.<kid>.<base64>`: a JSON value sealed for storage (buyer credentials). */
export function sealJson(ring: KeyRing, value: unknown, aad?: string): string {
  const { keyId, data } = encryptBytes(ring, Buffer.from(JSON.stringify(value)), aad ? Buffer.from(aad) : undefined);
  return `v1.${keyId}.${data.toString('base64')}`;
}

export function openJson<T = unknown>(ring: KeyRing, sealed: string, aad?: string): T {
  const [version, keyId, body] = sealed.split('.');
  if (version !== 'v1' || !keyId || !body) throw new Error('not a sealed value');
  return JSON.parse(decryptBytes(ring, keyId, Buffer.from(body, 'base64'), aad ? Buffer.from(aad) : undefined).toString('utf8')) as T;
}
