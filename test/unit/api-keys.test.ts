/**
 * API keys of sources and buyers: one format with a prefix per holder (shared/api-keys.ts), and one
 * cached key check for both (`createKeyAuth`, shared/http/auth.ts): a key of one kind is never
 * looked up as the other, answers are cached, a holder's answers can be forgotten, a known key is
 * served from its last answer while the store is down, and a key never seen is a 503 then. The
 * store behind the check is the injected `lookup` (the e2e tests run it on FerretDB).
 */
import assert from 'node:assert/strict';
import { API_KEY_PREFIXES, apiKeyKind, generateApiKey, hashSecret, parseApiKey, secretMatches } from '../../shared/api-keys';
import { AppError } from '../../shared/errors';
import { createKeyAuth, type KeyStore } from '../../shared/http/auth';
import { createStoreGate } from '../../shared/store-gate';

describe('API keys (sources and buyers)', () => {
  it('When a buyer key is generated, then it has the ldb_ prefix, parses back to its id and secret, and only the secret’s hash is kept', () => {
    const key = generateApiKey('buyer');
    assert.equal(key.kind, 'buyer');
    assert.match(key.apiKey, /^ldb_[0-9a-z]{26}_[A-Za-z0-9_-]{43}$/);
    const parsed = parseApiKey(key.apiKey);
    assert.deepEqual(parsed && { kind: parsed.kind, keyId: parsed.keyId }, { kind: 'buyer', keyId: key.keyId });
    assert.equal(key.hash, hashSecret(parsed!.secret));
    assert.ok(!key.apiKey.includes(key.hash), 'the stored hash is not part of the key');
    assert.equal(secretMatches(parsed!.secret, key.hash), true);
    assert.equal(secretMatches(`${parsed!.secret.slice(0, -1)}x`, key.hash), false);
  });

  it('When a source key is generated (the default kind), then it has the lds_ prefix and the same shape as a buyer key', () => {
    const source = generateApiKey();
    const buyer = generateApiKey('buyer');
    assert.equal(source.kind, 'source');
    assert.ok(source.apiKey.startsWith(API_KEY_PREFIXES.source));
    assert.equal(source.apiKey.slice(4).replace(/[0-9a-zA-Z_-]/g, 'x'), buyer.apiKey.slice(4).replace(/[0-9a-zA-Z_-]/g, 'x'), 'same layout after the prefix');
    assert.notEqual(generateApiKey().keyId, source.keyId);
  });

  it('When a key is parsed for one kind, then a key of the other kind or a malformed one is refused', () => {
    const buyer = generateApiKey('buyer').apiKey;
    const source = generateApiKey('source').apiKey;
    assert.equal(parseApiKey(buyer, 'source'), undefined);
    assert.equal(parseApiKey(source, 'buyer'), undefined);
    assert.equal(parseApiKey(buyer, 'buyer')?.kind, 'buyer');
    for (const bad of [`ldx_${buyer.slice(4)}`, buyer.slice(0, -1), `${buyer}x`, buyer.toUpperCase(), 'ldb_', '', `lds_${'A'.repeat(26)}_${buyer.slice(-43)}`]) {
      assert.equal(parseApiKey(bad), undefined, bad);
    }
  });

  it('When a token is classified by its prefix, then source and buyer keys are told apart and anything else is neither', () => {
    assert.equal(apiKeyKind(generateApiKey('source').apiKey), 'source');
    assert.equal(apiKeyKind(generateApiKey('buyer').apiKey), 'buyer');
    assert.equal(apiKeyKind('admin-0123456789abcdef'), undefined);
    assert.equal(apiKeyKind('ld_01abc'), undefined);
  });
});

describe('cached key checks (createKeyAuth), shared by sources and buyers', () => {
  /** A key store whose answers and outages the test sets: it counts the lookups it was asked. */
  function keyStore(kind: 'source' | 'buyer') {
    const key = generateApiKey(kind);
    const state = { lookups: 0, down: false, revoked: false };
    const store: KeyStore<{ holderId: string; keyId: string }> = {
      kind,
      name: `${kind} auth (test)`,
      connection: { readyState: 1 },
      async lookup(keyId, secret) {
        state.lookups++;
        if (state.down) throw new Error('connection refused');
        await Promise.resolve();
        return keyId === key.keyId && secretMatches(secret, key.hash) && !state.revoked ? { holderId: `${kind}_1`, keyId } : undefined;
      },
      holderOf: (identity) => identity.holderId,
    };
    return { key, state, store };
  }
  const gate = () => createStoreGate({ name: 'test', pauseMs: 0 });

  it('When a key of the other kind is presented, then it is refused without asking the store', async () => {
    const { state, store } = keyStore('buyer');
    const auth = createKeyAuth(store, { gate: gate() });
    assert.equal(await auth.authenticate(generateApiKey('source').apiKey), undefined);
    assert.equal(state.lookups, 0);
  });

  it('When a valid key is checked twice, then the second answer comes from the cache; after invalidate(holder) a revocation applies at once', async () => {
    const { key, state, store } = keyStore('buyer');
    const auth = createKeyAuth(store, { gate: gate() });
    assert.deepEqual(await auth.authenticate(key.apiKey), { holderId: 'buyer_1', keyId: key.keyId });
    assert.deepEqual(await auth.authenticate(key.apiKey), { holderId: 'buyer_1', keyId: key.keyId });
    assert.equal(state.lookups, 1, 'cached');
    state.revoked = true;
    auth.invalidate('someone_else');
    assert.ok(await auth.authenticate(key.apiKey), 'another holder’s invalidation keeps this answer');
    auth.invalidate('buyer_1');
    assert.equal(await auth.authenticate(key.apiKey), undefined, 'revoked');
    assert.equal(state.lookups, 2);
  });

  it('When the store is down, then a key seen before is served from its last answer and a key never seen is a 503 store_unavailable', async () => {
    const { key, state, store } = keyStore('source');
    const auth = createKeyAuth(store, { gate: gate(), cacheMs: 0 });
    assert.ok(await auth.authenticate(key.apiKey));
    state.down = true;
    assert.deepEqual(await auth.authenticate(key.apiKey), { holderId: 'source_1', keyId: key.keyId }, 'stale answer while the store is down');
    assert.equal(state.lookups, 2, 'the store was asked again first');
    const never = generateApiKey('source').apiKey;
    await assert.rejects(auth.authenticate(never), (error: unknown) => error instanceof AppError && error.status === 503 && error.code === 'store_unavailable' && error.headers['Retry-After'] === '5');
  });
});
