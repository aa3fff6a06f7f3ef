/**
 * `npm run fakes`: the provider fakes as local servers, for trying every endpoint kind in the
 * running system without reaching the real providers. Writes `.data/fakes.env` (the provider
 * base URLs and platform settings to start the system with) and `.data/fakes.json` (credentials
 * a buyer's endpoints use), prints what each fake receives, and stops on Ctrl-C.
 *
 *   npm run fakes                              # terminal 1
 *   env $(cat .data/fakes.env) npm start       # terminal 2
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startFakeBuyer } from './buyer';
import { newServiceAccount, startGoogleSheetsFake } from './google-sheets';
import { startResendFake } from './resend';
import { startTwilioFake } from './twilio';

async function main(): Promise<void> {
  const data = path.resolve(__dirname, '../../.data');
  fs.mkdirSync(data, { recursive: true });
  const resendKey = `re_local_${randomBytes(12).toString('hex')}`;
  const twilio = { sid: `AC${randomBytes(16).toString('hex')}`, authToken: randomBytes(16).toString('hex'), numbers: ['+15005550006'] };
  const account = newServiceAccount({ name: 'lead-delivery', projectId: 'local-demo' });
  const [webhook, resend, twilioFake, sheets] = await Promise.all([
    startFakeBuyer({ port: Number(process.env.FAKE_BUYER_PORT ?? 9999) }),
    startResendFake({ apiKeys: [resendKey], verifiedDomains: ['leads.example'] }),
    startTwilioFake({ accounts: [twilio] }),
    startGoogleSheetsFake(),
  ]);
  sheets.registerServiceAccount(account);
  sheets.createSpreadsheet('demo-sheet', { tabs: ['Leads'], sharedWith: [account.key.client_email] });

  const env = {
    OUTBOUND_ALLOW: '127.0.0.1/32',
    RESEND_BASE_URL: resend.baseUrl,
    RESEND_API_KEY: resendKey,
    RESEND_VERIFIED_DOMAINS: 'leads.example',
    TWILIO_API_BASE_URL: twilioFake.baseUrl,
    GOOGLE_API_ROOT_URL: sheets.rootUrl,
  };
  fs.writeFileSync(path.join(data, 'fakes.env'), Object.entries(env).map(([k, v]) => `${k}=${v}`).join('\n') + '\n', { mode: 0o600 });
  fs.writeFileSync(path.join(data, 'fakes.json'), JSON.stringify({ webhookUrl: webhook.url, twilio: { accountSid: twilio.sid, authToken: twilio.authToken, from: twilio.numbers[0] }, serviceAccount: account.key, spreadsheetId: 'demo-sheet', sheet: 'Leads' }, null, 2), { mode: 0o600 });
  console.log(`provider fakes running:
  webhook buyer  ${webhook.url}
  Resend         ${resend.baseUrl}   (API key and verified domain leads.example in .data/fakes.env)
  Twilio         ${twilioFake.baseUrl}   (account, token and From number in .data/fakes.json)
  Google Sheets  ${sheets.rootUrl}   (service account and spreadsheet "demo-sheet", tab "Leads", in .data/fakes.json)
Start the system with them:  env $(cat .data/fakes.env) npm start
Ctrl-C stops the fakes.`);

  const seen = { webhook: 0, emails: 0, sms: 0 };
  setInterval(() => {
    for (; seen.webhook < webhook.requests.length; seen.webhook++) console.log(`[webhook] ${webhook.requests[seen.webhook]!.body}`);
    for (; seen.emails < resend.emails.length; seen.emails++) {
      const email = resend.emails[seen.emails]!;
      console.log(`[resend]  email ${email.id} to ${JSON.stringify(email.body.to)}: ${String(email.body.subject)}`);
    }
    for (; seen.sms < twilioFake.messages.length; seen.sms++) {
      const sms = twilioFake.messages[seen.sms]!;
      console.log(`[twilio]  SMS ${sms.sid} to ${sms.to}: ${sms.body}`);
    }
  }, 300).unref();
  setInterval(() => {
    const rows = sheets.rows('demo-sheet', 'Leads');
    if (rows.length) console.log(`[sheets]  demo-sheet/Leads has ${rows.length - 1} row(s) below the header`);
  }, 5_000).unref();
  const stop = () => void Promise.all([webhook.close(), resend.close(), twilioFake.close(), sheets.close()]).then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

void main();
