/**
 * The one redaction policy. Used by the pino logger (secrets and PII), the delivery log
 * (secrets only: the request as sent is evidence, but a buyer's credentials are not), and the
 * error paths (messages that may echo a provider's body).
 */

/** Keys whose values are secrets wherever they appear (compared lower-case, `-`/`_` ignored). */
const SECRET_KEYS = new Set(
  [
    'authorization', 'proxyauthorization', 'cookie', 'setcookie', 'xapikey', 'apikey', 'apitoken',
    'token', 'accesstoken', 'refreshtoken', 'idtoken', 'secret', 'clientsecret', 'signingsecret',
    'password', 'pass', 'authtoken', 'privatekey', 'privatekeyid', 'credentials', 'secrets',
    'xauthtoken', 'xadmintoken', 'xtwiliosignature', 'svixsignature', 'key', 'apisecret',
  ].map(normaliseKey),
);

/** Lead fields that are personal data: never in logs in clear text. */
const PII_KEYS = new Set(
  [
    'email', 'phone', 'firstname', 'lastname', 'name', 'fullname', 'address', 'address2', 'city',
    'zip', 'postalcode', 'ip', 'dob', 'dateofbirth', 'ssn', 'to', 'from', 'recipient', 'recipients',
    'lead', 'fields', 'custom', 'body', 'payload', 'request', 'consent', 'trustedformcerturl',
    'useragent', 'emailaddress1', 'mobilephone', 'telephone1', 'firstname', 'lastname',
  ].map(normaliseKey),
);

function normaliseKey(key: string): string {
  return key.toLowerCase().replace(/[-_\s]/g, '');
}

export function isSecretKey(key: string): boolean {
  return SECRET_KEYS.has(normaliseKey(key));
}

export function isPiiKey(key: string): boolean {
  return PII_KEYS.has(normaliseKey(key));
}

/** Keeps the first four characters of a long secret so operators can tell keys apart. */
export function maskSecret(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value ?? '');
  if (text.length < 12) return '****';
  return `${text.slice(0, 4)}${'*'.repeat(8)}`;
}

const STRING_PATTERNS: Array<[RegExp, string]> = [
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi, '$1 [redacted]'],
  [/\bwhsec_[A-Za-z0-9+/=]+/g, 'whsec_[redacted]'],
  [/\b(lds|ldk)_[A-Za-z0-9_]{8,}/g, '$1_[redacted]'],
  [/[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g, '[email]'],
  [/(?<![\w.])\+?\d[\d\s().-]{8,}\d(?![\w.])/g, '[phone]'],
];

/** Removes emails, phone numbers and bearer/signing secrets from free text. */
export function redactText(text: string): string {
  let out = text;
  for (const [pattern, replacement] of STRING_PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

type Mode = 'secrets' | 'log';

function redactValue(value: unknown, mode: Mode, depth: number, seen: WeakSet<object>): unknown {
  if (typeof value === 'string') return mode === 'log' ? redactText(value) : value;
  if (value === null || typeof value !== 'object') return value;
  if (depth > 12 || seen.has(value)) return '[…]';
  seen.add(value);
  if (Array.isArray(value)) return value.map((item) => redactValue(item, mode, depth + 1, seen));
  if (value instanceof Date) return value;
  if (value instanceof Error) {
    return redactValue({ type: value.name, message: value.message, stack: value.stack }, mode, depth + 1, seen);
  }
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    if (isSecretKey(key)) out[key] = inner === undefined || inner === null || inner === '' ? inner : maskSecret(inner);
    else if (mode === 'log' && isPiiKey(key)) out[key] = inner === undefined || inner === null ? inner : '[redacted]';
    else out[key] = redactValue(inner, mode, depth + 1, seen);
  }
  return out;
}

/** Masks secrets, keeps everything else: for the delivery log's "request as sent". */
export function redactSecrets<T>(value: T): T {
  return redactValue(value, 'secrets', 0, new WeakSet()) as T;
}

/** Masks secrets and removes PII: for log lines. */
export function redactForLog<T>(value: T): T {
  return redactValue(value, 'log', 0, new WeakSet()) as T;
}

/** A URL with any userinfo and secret-looking query parameters masked. */
export function redactUrl(raw: string): string {
  try {
    const url = new URL(raw);
    if (url.username) url.username = '****';
    if (url.password) url.password = '****';
    for (const [key, value] of url.searchParams) {
      if (isSecretKey(key) || /sig|signature|code/i.test(key)) url.searchParams.set(key, maskSecret(value));
    }
    return url.toString();
  } catch {
    return raw;
  }
}

/** Headers with secret values masked (names kept, so the log shows *that* auth was sent). */
export function redactHeaders(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) out[name] = isSecretKey(name) ? maskSecret(value) : value;
  return out;
}
