/**
 * Every secret a test run creates or is given (tokens, keys, API keys, webhook secrets, provider
 * credentials), so the run can prove that none of them reached a log line.
 */
import { isSecretKey } from '../../shared/redact';

const secrets = new Set<string>();

export function rememberSecret(value: unknown): void {
  if (typeof value === 'string' && value.length >= 8) secrets.add(value);
}

/** Remembers every string under a secret-looking key (token, secret, password, apiKey, auth, …). */
export function rememberSecretsIn(value: unknown, underSecret = false): void {
  if (typeof value === 'string') {
    if (underSecret) rememberSecret(value);
    return;
  }
  if (value === null || typeof value !== 'object') return;
  for (const [key, inner] of Object.entries(value)) rememberSecretsIn(inner, underSecret || isSecretKey(key) || /secret|token|password|key$/i.test(key));
}

/** The secrets found in the given lines: empty when nothing leaked. */
export function leakedSecrets(lines: readonly string[]): string[] {
  const text = lines.join('\n');
  return [...secrets].filter((secret) => text.includes(secret)).map((s) => `${s.slice(0, 4)}… (${s.length} chars)`);
}

export function rememberedSecretCount(): number {
  return secrets.size;
}
