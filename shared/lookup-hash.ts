/**
 * Keyed lookup hashes (HMAC-SHA256 with LOOKUP_KEY) of a lead's email and phone: how the delivery
 * log finds a lead by email or phone without storing either in clear, and how the routing plan finds
 * a lead a buyer already has (duplicate_at_buyer). One definition for both.
 */
import { createHmac } from 'node:crypto';
import { toE164 } from './mapping';

export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}

export function normalisePhone(phone: string): string {
  return toE164(phone) ?? phone.replace(/\D/g, '');
}

export function lookupHash(secret: string, kind: 'email' | 'phone', value: string): string {
  const normalised = kind === 'email' ? normaliseEmail(value) : normalisePhone(value);
  return createHmac('sha256', secret).update(`${kind}:${normalised}`).digest('hex');
}
