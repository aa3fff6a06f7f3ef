/**
 * What endpoint kinds need from the deployment: provider base URLs (real APIs by default, the
 * fakes in tests and local runs), platform credentials, and access to the store (suppressions,
 * provider events). Built from config in one place; kinds receive it through `createKinds`.
 */
import type { Config } from '../shared/config';
import type { Logger } from '../shared/logger';
import type { Models } from '../shared/store';

export interface ProviderSettings {
  publicUrl: string;
  resendBaseUrl: string;
  resendApiKey: string;
  resendVerifiedDomains: string[];
  resendWebhookSecret: string;
  twilioApiBaseUrl: string;
  googleApiRootUrl: string;
  googleServiceAccount: string;
  hubspotApiBaseUrl: string;
  salesforceLoginUrl: string;
  dynamicsAuthorityUrl: string;
}

export interface KindDeps {
  providers: ProviderSettings;
  /** Present in processes connected to the store (worker, intake). */
  models?: Models;
  logger?: Logger;
}

export function providerSettings(config: Config): ProviderSettings {
  const list = (value: string) => value.split(',').map((v) => v.trim().toLowerCase()).filter(Boolean);
  return {
    publicUrl: config.PUBLIC_URL,
    resendBaseUrl: config.RESEND_BASE_URL,
    resendApiKey: config.RESEND_API_KEY,
    resendVerifiedDomains: list(config.RESEND_VERIFIED_DOMAINS),
    resendWebhookSecret: config.RESEND_WEBHOOK_SECRET,
    twilioApiBaseUrl: config.TWILIO_API_BASE_URL,
    googleApiRootUrl: config.GOOGLE_API_ROOT_URL,
    googleServiceAccount: config.GOOGLE_SERVICE_ACCOUNT,
    hubspotApiBaseUrl: config.HUBSPOT_API_BASE_URL,
    salesforceLoginUrl: config.SALESFORCE_LOGIN_URL,
    dynamicsAuthorityUrl: config.DYNAMICS_AUTHORITY_URL,
  };
}

/** Defaults (the real providers), for tests and tools that build settings without env. */
export function defaultProviderSettings(overrides: Partial<ProviderSettings> = {}): ProviderSettings {
  return {
    publicUrl: '',
    resendBaseUrl: 'https://api.resend.com',
    resendApiKey: '',
    resendVerifiedDomains: [],
    resendWebhookSecret: '',
    twilioApiBaseUrl: 'https://api.twilio.com',
    googleApiRootUrl: 'https://sheets.googleapis.com/',
    googleServiceAccount: '',
    hubspotApiBaseUrl: 'https://api.hubapi.com',
    salesforceLoginUrl: 'https://login.salesforce.com',
    dynamicsAuthorityUrl: 'https://login.microsoftonline.com',
    ...overrides,
  };
}
