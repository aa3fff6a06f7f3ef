import { z } from 'zod';

/**
 * The lead as a source posts it. Strict: unknown top-level fields are errors (a typo such as
 * `frist_name` is caught at intake, not discovered by a buyer). Free-form answers go in `custom`.
 */
const text = (max: number) => z.string().trim().min(1, 'must not be empty').max(max, `must be at most ${max} characters`);

const phone = text(32).refine((value) => /^\+?[\d\s().-]+$/.test(value) && (value.match(/\d/g)?.length ?? 0) >= 7 && (value.match(/\d/g)?.length ?? 0) <= 15, {
  message: 'must be a phone number: 7 to 15 digits, optionally with +, spaces, dots, dashes or parentheses',
});

const customValue = z.union([z.string().max(2000, 'must be at most 2000 characters'), z.number().finite(), z.boolean(), z.null()]);

export const consentSchema = z
  .object({
    granted: z.boolean(),
    text: text(4000).optional(),
    at: z.iso.datetime({ offset: true, message: 'must be an ISO 8601 date-time' }).optional(),
    trustedform_cert_url: z.url({ protocol: /^https?$/, message: 'must be an http(s) URL' }).max(500).optional(),
    jornaya_lead_id: text(100).optional(),
    page_url: z.url({ protocol: /^https?$/, message: 'must be an http(s) URL' }).max(2000).optional(),
    user_agent: text(1000).optional(),
  })
  .strict();

export const leadSchema = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/, 'must be 1-128 characters of letters, digits, _ . : -').optional(),
    campaign: text(100).optional(),
    first_name: text(100).optional(),
    last_name: text(100).optional(),
    email: z.email({ message: 'must be an email address' }).max(254).optional(),
    phone: phone.optional(),
    address: text(200).optional(),
    address2: text(200).optional(),
    city: text(100).optional(),
    state: text(100).optional(),
    zip: text(20).optional(),
    country: z.string().regex(/^[A-Z]{2}$/, 'must be an ISO 3166-1 alpha-2 code such as "US"').optional(),
    ip: z.union([z.ipv4(), z.ipv6()], { message: 'must be an IPv4 or IPv6 address' }).optional(),
    dob: z.iso.date({ message: 'must be a date YYYY-MM-DD' }).optional(),
    consent: consentSchema.optional(),
    custom: z
      .record(z.string().regex(/^[A-Za-z0-9_]{1,64}$/, 'custom keys must be 1-64 letters, digits or _'), customValue)
      .refine((value) => Object.keys(value).length <= 100, { message: 'must have at most 100 keys' })
      .optional(),
  })
  .strict()
  .superRefine((lead, ctx) => {
    if (!lead.email && !lead.phone) {
      ctx.addIssue({ code: 'custom', path: ['email'], message: 'at least one of email or phone is required' });
    }
  });

export type LeadInput = z.infer<typeof leadSchema>;
/** The lead as delivered: the input without the client id (kept as `clientId` on the envelope). */
export type Lead = Omit<LeadInput, 'id'>;

/** Standard field names a mapping may read, besides `custom.<key>` and the envelope fields. */
export const LEAD_FIELDS = [
  'campaign', 'first_name', 'last_name', 'email', 'phone', 'address', 'address2', 'city', 'state', 'zip', 'country', 'ip', 'dob',
  'consent.granted', 'consent.text', 'consent.at', 'consent.trustedform_cert_url', 'consent.jornaya_lead_id', 'consent.page_url', 'consent.user_agent',
] as const;

/** Fields every delivery can read about the lead besides its own data. */
export const ENVELOPE_FIELDS = ['lead_id', 'source_id', 'received_at', 'client_id'] as const;
