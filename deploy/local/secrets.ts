/**
 * The secrets every service runs with, generated fresh: the same generators `npm start` uses for
 * `.data/local.json` (deploy/local/system.ts, loadLocalSecrets) and `npm run secrets` uses for the
 * `.env` of docker compose (scripts/secrets.ts). Pure generation: nothing is read or written here.
 */
import { randomBytes } from 'node:crypto';
import { generateKeySpec } from '../../shared/crypto';
import { generateReceiptKeySpec } from '../../services/log/receipt-signing';

export interface ServiceSecrets {
  /** ADMIN_TOKEN: bearer token of the admin and log APIs. */
  adminToken: string;
  /** CREDENTIALS_KEYS: `kid:base64(32 bytes)`, seals buyer credentials at rest. */
  credentialsKeys: string;
  /** PAYLOAD_KEYS: `kid:base64(32 bytes)`, the payload codec of everything sent to Temporal. */
  payloadKeys: string;
  /** CODEC_TOKEN: the path token of the Temporal UI's codec endpoint. */
  codecToken: string;
  /** LOG_KEYS: `kid:base64(32 bytes)`, seals each lead's data key in the delivery log. */
  logKeys: string;
  /** LOOKUP_KEY: secret of the keyed hashes that find a lead by email or phone. */
  lookupKey: string;
  /** RECEIPT_KEYS: `kid:base64(PKCS#8 DER of an Ed25519 key)`, signs delivery receipts. */
  receiptKeys: string;
}

/** Key ids of the key specs (the part before the colon); `npm start` keeps its historical ones. */
export interface SecretKeyIds {
  credentials: string;
  payload: string;
  log: string;
  receipt: string;
}

export const LOCAL_KEY_IDS: SecretKeyIds = { credentials: 'local1', payload: 'payload1', log: 'log1', receipt: 'receipt1' };

export function generateServiceSecrets(ids: SecretKeyIds = LOCAL_KEY_IDS): ServiceSecrets {
  return {
    adminToken: `adm_${randomBytes(24).toString('base64url')}`,
    credentialsKeys: generateKeySpec(ids.credentials),
    payloadKeys: generateKeySpec(ids.payload),
    codecToken: `cdc_${randomBytes(24).toString('base64url')}`,
    logKeys: generateKeySpec(ids.log),
    lookupKey: randomBytes(32).toString('base64url'),
    receiptKeys: generateReceiptKeySpec(ids.receipt),
  };
}

/** A random token for anything else (passwords of the infrastructure): URL- and shell-safe. */
export function generateToken(prefix = '', bytes = 24): string {
  return `${prefix}${randomBytes(bytes).toString('base64url')}`;
}
