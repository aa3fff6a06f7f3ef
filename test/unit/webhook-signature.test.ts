import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Webhook } from 'standardwebhooks';
import { generateSigningSecret, isSigningSecret, signWebhook, verifyWebhook, webhookHeaders } from '../../shared/webhook-signature';

const vector = JSON.parse(readFileSync(path.join(__dirname, '../fakes/specs/standard-webhooks/sign-test-vector.json'), 'utf8')) as {
  vectors: Array<{ secret: string; msg_id: string; timestamp: number; payload: string; expected_signature: string }>;
};

describe('Standard Webhooks signer', () => {
  it('reproduces the reference libraries’ test vector', () => {
    assert.ok(vector.vectors.length > 0);
    for (const v of vector.vectors) assert.equal(signWebhook(v.secret, v.msg_id, v.timestamp, v.payload), v.expected_signature);
  });

  it('produces headers the standardwebhooks package verifies, and rejects a tampered body', () => {
    const secret = generateSigningSecret();
    assert.ok(isSigningSecret(secret));
    const body = JSON.stringify({ email: 'a@example.com' });
    const headers = webhookHeaders(secret, 'msg_1', Math.floor(Date.now() / 1000), body);
    assert.deepEqual(new Webhook(secret).verify(body, headers), { email: 'a@example.com' });
    assert.throws(() => new Webhook(secret).verify(body.replace('a@', 'b@'), headers));
    assert.ok(verifyWebhook(secret, 'msg_1', Number(headers['webhook-timestamp']), body, `v1,bogus ${headers['webhook-signature']}`));
    assert.ok(!verifyWebhook(secret, 'msg_2', Number(headers['webhook-timestamp']), body, headers['webhook-signature']!));
  });

  it('refuses malformed secrets', () => {
    assert.ok(!isSigningSecret('secret'));
    assert.ok(!isSigningSecret('whsec_AAAA'));
  });
});
