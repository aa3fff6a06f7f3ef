import { createHash, createPrivateKey } from 'node:crypto';
import { z } from 'zod';
import type { EndpointKind, LoadedEndpoint } from '../types';
import type { KindDeps } from '../providers';
import type { FieldError } from '../../shared/errors';
import { applyMapping, MappingError, validateMapping, type Mapping } from '../../shared/mapping';
import { createThrottle } from '../throttle';
import { DEFAULT_BATCH, GOOGLE_SHEETS_QUOTA, LEAD_ID_COLUMN, QuotaLimiter, quoteSheet, SheetsBatcher, type BatchOptions, type QuotaLimits } from './batcher';
import { classifySheets } from './classify';

export { DEFAULT_BATCH, GOOGLE_SHEETS_QUOTA, LEAD_ID_COLUMN, QuotaLimiter, quoteSheet, SCOPES, SheetsBatcher, SheetsReadBackError, type BatchOptions, type QuotaLimits, type Reservation } from './batcher';
export { classifySheets, type SheetsAnswer } from './classify';

/**
 * Google Sheets (the official `@googleapis/sheets` client: the Sheets v4 part of `googleapis`
 * alone): one row per lead, appended to a tab of the buyer's spreadsheet with a service account
 * (the endpoint's own key, or the deployment's shared one) that the buyer shared the spreadsheet
 * with.
 *
 * - Columns: `lead_id` first, then the mapping's keys; the header row is written on first use
 *   (and extended when the mapping gains a key). Values are written RAW: a lead field such as
 *   `=HYPERLINK(…)` lands as text, never as a formula.
 * - No duplicate rows: before appending, the lead-id column is read; a lead already there is a
 *   success ("already_present") without a second row. Writes are serialised per spreadsheet.
 * - Read-back (after an ambiguous attempt): `lookup` reads column A alone (`values.get`, one read
 *   within the quota) and records the row holding the lead id (`found_on_read_back`); not found,
 *   the send goes ahead and its own check still runs.
 * - Batched: rows for one spreadsheet are collected for a short window (or until 100 rows) and
 *   written with one `values.append` after one `values.batchGet` (header + lead-id column).
 * - Within quota: a limiter paces reads and writes per service account (60/min) and per project
 *   (300/min), as Google's Sheets quotas are counted; a flush that could not start before its
 *   attempts' deadlines answers transient with the time to wait.
 * - The SDK's retries are off (gaxios would retry GETs, never POSTs): the workflow owns retries.
 *
 * This file: settings, the row a lead becomes, the kind. The batcher, its quota limiter and the
 * read-back are in `batcher.ts`; what Google's answers mean in `classify.ts`.
 */

/** Columns when the endpoint has no mapping. */
export const DEFAULT_COLUMNS: Mapping = {
  received_at: 'received_at',
  first_name: 'first_name',
  last_name: 'last_name',
  email: 'email',
  phone: 'phone',
  city: 'city',
  state: 'state',
  zip: 'zip',
};

// ---- settings ---------------------------------------------------------------------------------

export const serviceAccountKey = z
  .object({
    type: z.literal('service_account').optional(),
    project_id: z.string().min(1).max(100).optional(),
    private_key_id: z.string().max(100).optional(),
    private_key: z
      .string()
      .max(10_000)
      .refine((pem) => {
        try {
          createPrivateKey(pem);
          return true;
        } catch {
          return false;
        }
      }, 'must be the PEM private key of the service account ("-----BEGIN PRIVATE KEY-----…")'),
    client_email: z.email({ message: 'must be the service account e-mail (…@….iam.gserviceaccount.com)' }),
  })
  .loose();
export type ServiceAccountKey = z.infer<typeof serviceAccountKey>;

/** The key file's JSON, as text or as an object. */
const serviceAccountInput = z.union([
  serviceAccountKey,
  z
    .string()
    .max(20_000)
    .transform((text, ctx) => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'must be the service account key file (JSON)' });
        return z.NEVER;
      }
    })
    .pipe(serviceAccountKey),
]);

export const sheetsConfig = z
  .object({
    spreadsheetId: z.string().regex(/^[A-Za-z0-9_-]{10,200}$/, 'must be a spreadsheet id (the part of its URL after /d/)'),
    sheet: z
      .string()
      .min(1, 'must not be empty')
      .max(100, 'must be at most 100 characters')
      .regex(/^[^\u0000-\u001f\u007f]+$/, 'must not contain control characters')
      .default('Sheet1'),
  })
  .strict();

export const sheetsSecrets = z.object({ serviceAccount: serviceAccountInput.optional() }).strict();

type Config = z.infer<typeof sheetsConfig>;
type Secrets = z.infer<typeof sheetsSecrets>;

// ---- payload ----------------------------------------------------------------------------------

export type Cell = string | number | boolean;

export interface Account {
  email: string;
  key: string;
  /** Google counts "per project" quotas against the service account's project. */
  projectId: string;
  /** email + key fingerprint: one SDK client (and token cache) per key. */
  id: string;
}

export interface SheetsPayload {
  spreadsheetId: string;
  sheet: string;
  leadId: string;
  /** Column name → cell, lead_id first. */
  columns: string[];
  cells: Cell[];
  account: Account;
}

export function accountOf(key: ServiceAccountKey): Account {
  const projectFromEmail = /@([^.]+)\.iam\.gserviceaccount\.com$/.exec(key.client_email)?.[1];
  return {
    email: key.client_email,
    key: key.private_key,
    projectId: key.project_id ?? projectFromEmail ?? key.client_email,
    id: `${key.client_email}#${createHash('sha256').update(key.private_key).digest('hex').slice(0, 12)}`,
  };
}

function toCell(value: unknown): Cell {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  return JSON.stringify(value);
}

/** Path-segment encoding as the SDK's URL template does it (RFC 3986: !'()* escaped too). */
function encodeSegment(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}


// ---- the kind ---------------------------------------------------------------------------------

export function createSheetsKind(deps: KindDeps, options: { batch?: BatchOptions; quota?: QuotaLimits } = {}) {
  const rootUrl = deps.providers.googleApiRootUrl.endsWith('/') ? deps.providers.googleApiRootUrl : `${deps.providers.googleApiRootUrl}/`;
  const quota = options.quota ?? GOOGLE_SHEETS_QUOTA;
  // Google counts its quotas per minute across every caller: with the store at hand, so do we
  // (activities/throttle.ts, the same send slots as endpoint throttles); a test's own quota stays local.
  const sharedQuota = deps.models && !options.quota ? { throttle: createThrottle(deps.models), limits: quota } : undefined;
  const batcher = new SheetsBatcher(rootUrl, new QuotaLimiter(quota), options.batch ?? DEFAULT_BATCH, deps.logger, sharedQuota);

  /** The deployment's shared key (GOOGLE_SERVICE_ACCOUNT), when set and valid. */
  const sharedAccount = (() => {
    if (!deps.providers.googleServiceAccount) return undefined;
    const parsed = serviceAccountInput.safeParse(deps.providers.googleServiceAccount);
    if (!parsed.success) deps.logger?.warn('GOOGLE_SERVICE_ACCOUNT is not a valid service account key: Sheets endpoints must bring their own');
    return parsed.success ? parsed.data : undefined;
  })();

  const columnsOf = (mapping: unknown): Mapping => (mapping as Mapping | undefined) ?? DEFAULT_COLUMNS;

  return {
    kind: 'sheets',
    description: "One row per lead in a Google Sheets tab (service account; header on first use; no duplicate rows; batched within quota)",
    configSchema: sheetsConfig,
    secretsSchema: sheetsSecrets,
    validate(_config, secrets, mapping): FieldError[] {
      const errors = validateMapping(mapping);
      if (mapping && typeof mapping === 'object' && !Array.isArray(mapping)) {
        if (LEAD_ID_COLUMN in mapping) errors.push({ path: `mapping.${LEAD_ID_COLUMN}`, message: `${LEAD_ID_COLUMN} is always column A (written by the kind); use another column name` });
        if (Object.keys(mapping).length === 0) errors.push({ path: 'mapping', message: 'must name at least one column' });
      }
      if (!secrets.serviceAccount && !sharedAccount) errors.push({ path: 'serviceAccount', message: 'is required: this deployment has no shared service account (GOOGLE_SERVICE_ACCOUNT)' });
      return errors;
    },
    map(endpoint, ctx) {
      const { config } = endpoint;
      const mapping = columnsOf(endpoint.mapping);
      const fields = applyMapping(mapping, ctx);
      const key = endpoint.secrets.serviceAccount ?? sharedAccount;
      if (!key) throw new MappingError('no service account: give the endpoint a serviceAccount key, or configure GOOGLE_SERVICE_ACCOUNT', 'serviceAccount');
      const columns = [LEAD_ID_COLUMN, ...Object.keys(mapping)];
      const cells = [ctx.leadId as Cell, ...Object.keys(mapping).map((k) => toCell(fields[k]))];
      const range = `${quoteSheet(config.sheet)}!A1`;
      return {
        payload: { spreadsheetId: config.spreadsheetId, sheet: config.sheet, leadId: ctx.leadId, columns, cells, account: accountOf(key) },
        describe: {
          method: 'POST',
          url: `${rootUrl}v4/spreadsheets/${encodeSegment(config.spreadsheetId)}/values/${encodeSegment(range)}:append?valueInputOption=RAW&insertDataOption=INSERT_ROWS`,
          headers: { authorization: 'Bearer <RS256 JWT signed with the service account key>', 'content-type': 'application/json' },
          // This lead's row (columns: lead_id + the mapping's keys); it may share one append with other leads' rows.
          body: JSON.stringify({ majorDimension: 'ROWS', values: [cells] }),
        },
      };
    },
    send(prepared, _endpoint: LoadedEndpoint<Config, Secrets>, io) {
      return batcher.submit(prepared.payload, io);
    },
    lookup(prepared, _endpoint: LoadedEndpoint<Config, Secrets>, io) {
      return batcher.lookup(prepared.payload, io);
    },
    classify: classifySheets,
  } satisfies EndpointKind<Config, Secrets, SheetsPayload>;
}
