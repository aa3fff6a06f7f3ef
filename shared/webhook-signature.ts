import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Standard Webhooks (v1, symmetric): signature = base64(HMAC-SHA256(secret, `${id}.${timestamp}.${body}`)),
 * sent as `webhook-signature: v1,<sig>`. The secret is `whsec_` + base64 of 24 random bytes.
 */
const PREFIX = 'whsec_';

export function generateSigningSecret(): string {
  return PREFIX + randomBytes(24).toString('base64');
}

export function isSigningSecret(value: string): boolean {
  if (!value.startsWith(PREFIX)) return false;
  const key = Buffer.from(value.slice(PREFIX.length), 'base64');
  return key.length >= 16 && key.length <= 64;
}

function secretKey(secret: string): Buffer {
  return Buffer.from(secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret, 'base64');
}

export function signWebhook(secret: string, msgId: string, timestampSeconds: number, payload: string): string {
  const mac = createHmac('sha256', secretKey(secret)).update(`${msgId}.${timestampSeconds}.${payload}`).digest('base64');
  return `v1,${mac}`;
}

/** Verifies a `webhook-signature` header (space-separated list of `v1,<sig>`) — used by our own fakes. */
export function verifyWebhook(secret: string, msgId: string, timestampSeconds: number, payload: string, header: string): boolean {
  const expected = Buffer.from(signWebhook(secret, msgId, timestampSeconds, payload));
  return header.split(' ').some((candidate) => {
    const given = Buffer.from(candidate);
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

export function webhookHeaders(secret: string, msgId: string, timestampSeconds: number, payload: string): Record<string, string> {
  return {
    'webhook-id': msgId,
    'webhook-timestamp': String(timestampSeconds),
    'webhook-signature': signWebhook(secret, msgId, timestampSeconds, payload),
  };
}
