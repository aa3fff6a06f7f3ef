/**
 * Operator sessions of the web pages (the log service's dispute pages, intake's console), without server state: the cookie holds its expiry and
 * an HMAC of it keyed by the admin token (`base64url(expiry).hmac`), so rotating ADMIN_TOKEN ends
 * every session. HttpOnly, SameSite=Strict; the POST forms also check that they come from this
 * origin (Origin, else Referer; Sec-Fetch-Site when the browser sends it).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Request, Response } from 'express';
import { bearerToken, tokensEqual } from '../../api-keys';

export const SESSION_COOKIE = 'dispute_session';
export const SESSION_MS = 12 * 3_600_000;

function mac(adminToken: string, expiry: string): string {
  return createHmac('sha256', adminToken).update(`dispute-session:${expiry}`).digest('base64url');
}

export function createSession(adminToken: string, now = Date.now()): { value: string; expiresAt: number } {
  const expiresAt = now + SESSION_MS;
  const expiry = String(expiresAt);
  return { value: `${Buffer.from(expiry).toString('base64url')}.${mac(adminToken, expiry)}`, expiresAt };
}

export function sessionValid(adminToken: string, value: string | undefined, now = Date.now()): boolean {
  if (!value || value.length > 200) return false;
  const [encoded, given, ...rest] = value.split('.');
  if (!encoded || !given || rest.length) return false;
  const expiry = Buffer.from(encoded, 'base64url').toString('utf8');
  if (!/^\d{13,15}$/.test(expiry)) return false;
  const expiresAt = Number(expiry);
  // Expired, or further ahead than a session can be (not minted here).
  if (expiresAt <= now || expiresAt > now + SESSION_MS + 60_000) return false;
  const expected = Buffer.from(mac(adminToken, expiry));
  const actual = Buffer.from(given);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

export function readCookie(req: Request, name: string): string | undefined {
  const header = req.get('cookie');
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export function setSessionCookie(req: Request, res: Response, value: string): void {
  res.append('Set-Cookie', `${SESSION_COOKIE}=${value}; Path=/; Max-Age=${SESSION_MS / 1000}; HttpOnly; SameSite=Strict${isSecure(req) ? '; Secure' : ''}`);
}

export function clearSessionCookie(req: Request, res: Response): void {
  res.append('Set-Cookie', `${SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict${isSecure(req) ? '; Secure' : ''}`);
}

export type Access = { ok: true; via: 'cookie' | 'bearer' } | { ok: false; reason: 'none' | 'bad_token' };

/** The admin token as a Bearer header (curl), or a valid session cookie. */
export function accessOf(req: Request, adminToken: string): Access {
  const header = req.get('authorization');
  if (header !== undefined) {
    const token = bearerToken(header);
    return token && tokensEqual(token, adminToken) ? { ok: true, via: 'bearer' } : { ok: false, reason: 'bad_token' };
  }
  return sessionValid(adminToken, readCookie(req, SESSION_COOKIE)) ? { ok: true, via: 'cookie' } : { ok: false, reason: 'none' };
}

const firstValue = (v: string | undefined) => v?.split(',')[0]?.trim() || undefined;

/**
 * The origin the browser sees: behind a TLS-terminating proxy, X-Forwarded-Proto/Host. Used for
 * display (the receipt commands) and the Secure flag; spoofing them only misleads the spoofer.
 */
export function publicOrigin(req: Request): string {
  const proto = firstValue(req.get('x-forwarded-proto')) === 'https' ? 'https' : req.protocol;
  return `${proto}://${firstValue(req.get('x-forwarded-host')) ?? req.get('host') ?? ''}`;
}

export function isSecure(req: Request): boolean {
  return req.secure || firstValue(req.get('x-forwarded-proto')) === 'https';
}

/**
 * A POST from one of our own pages: its Origin (or else its Referer) names this host, and the
 * browser does not call it cross-site. A cross-site form cannot set any of the headers compared
 * here, so X-Forwarded-Host (a proxy's) is as good as Host; http and https are both accepted
 * because behind a TLS proxy the service itself sees http.
 */
export function sameOriginPost(req: Request): boolean {
  const site = req.get('sec-fetch-site');
  if (site !== undefined && site !== 'same-origin') return false;
  const hosts = [req.get('host'), firstValue(req.get('x-forwarded-host'))].filter((h): h is string => !!h);
  const origin = req.get('origin');
  const candidate = origin !== undefined && origin !== 'null' ? origin : req.get('referer');
  if (!candidate) return false;
  try {
    const url = new URL(candidate);
    return (url.protocol === 'http:' || url.protocol === 'https:') && hosts.includes(url.host);
  } catch {
    return false;
  }
}

/**
 * A local path to return to after login: `home` unless `next` is a path on this site (no scheme, no
 * host, no //) outside the sign-in pages under `base` ("" or "/console").
 */
export function safeNext(next: unknown, home = '/', base = ''): string {
  if (typeof next !== 'string' || next.length > 2000 || !next.startsWith('/') || next.startsWith('//') || /[\\\u0000-\u001f\u007f]/.test(next)) return home;
  try {
    const url = new URL(next, 'http://local.invalid');
    if (url.origin !== 'http://local.invalid' || url.pathname.startsWith(`${base}/login`) || url.pathname.startsWith(`${base}/logout`)) return home;
    return url.pathname + url.search;
  } catch {
    return home;
  }
}

/** At most `limit` failed logins per client address per window (the admin token is not guessable, but why let anyone try). */
export function createLoginThrottle(limit = 10, windowMs = 60_000) {
  const failures = new Map<string, { count: number; resetAt: number }>();
  return {
    blocked(key: string, now = Date.now()): number | undefined {
      const hit = failures.get(key);
      if (!hit || hit.resetAt <= now) return undefined;
      return hit.count >= limit ? Math.ceil((hit.resetAt - now) / 1000) : undefined;
    },
    fail(key: string, now = Date.now()): void {
      if (failures.size > 10_000) failures.clear();
      const hit = failures.get(key);
      if (!hit || hit.resetAt <= now) failures.set(key, { count: 1, resetAt: now + windowMs });
      else hit.count++;
    },
    succeed(key: string): void {
      failures.delete(key);
    },
  };
}
