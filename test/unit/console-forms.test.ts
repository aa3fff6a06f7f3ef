/** The console's buyer and endpoint forms read into the admin API's bodies (pure): what is sent, what is shown again, and never a secret. */
import assert from 'node:assert/strict';
import { scheduleJson, settingsBody } from '../../services/intake/console/buyer-settings';
import { doneMessage } from '../../services/intake/console/buyers';
import { endpointBody, valuesFromBody, type KindInfo } from '../../services/intake/console/endpoint-form';

const webhook: KindInfo = { kind: 'webhook', description: '', secrets: ['signingSecret', 'auth', 'headers'] };
const email: KindInfo = { kind: 'email', description: '', secrets: ['apiKey'] };

describe('console forms', () => {
  it('When a webhook form is posted to create, then empty inputs are left out (defaults, a generated secret), the URL is always given and typed numbers and JSON are decoded', () => {
    const { body, errors } = endpointBody(webhook, { kind: 'webhook', url: ' https://b.example/x ', method: 'POST', format: 'json', role: 'accept', authType: 'bearer', authToken: 't0ken', mapping: '{"email":"email"}', backoff: '1s, 5m,', breakerThreshold: '2', timeoutMs: '', signingSecret: '', throttlePerSecond: '', throttlePerMinute: '' }, 'create');
    assert.deepEqual(errors, []);
    assert.deepEqual(body, { kind: 'webhook', role: 'accept', mapping: { email: 'email' }, backoff: ['1s', '5m'], breaker: { threshold: 2 }, url: 'https://b.example/x', method: 'POST', format: 'json', auth: { type: 'bearer', token: 't0ken' } });
    assert.deepEqual(endpointBody(webhook, { url: '' }, 'create').body.url, '', 'an empty URL is for the API to refuse');
  });

  it('When an edit leaves both throttle rates and the secrets empty, then the throttle is removed and the secrets are kept (left out)', () => {
    const { body } = endpointBody(webhook, { url: 'https://b.example/x', authType: 'keep', signingSecret: '', headers: '', throttlePerSecond: '', throttlePerMinute: '' }, 'edit');
    assert.deepEqual(body, { throttle: null, url: 'https://b.example/x' });
  });

  it('When a number or JSON input does not decode, then its error is at the path the API names', () => {
    const { errors } = endpointBody(webhook, { url: 'https://b.example', timeoutMs: 'soon', breakerThreshold: '1x', throttlePerMinute: 'many', mapping: '{nope', headers: '[1]' }, 'create');
    assert.deepEqual(errors.map((e) => e.path), ['mapping', 'timeoutMs', 'breaker.threshold', 'throttle.perMinute', 'headers']);
    assert.match(errors[0]!.message, /must be JSON/);
    assert.equal(errors[4]!.message, 'must be a JSON object {…}');
  });

  it('When a form is shown again, then no secret input comes back, and a secret typed into a kind’s settings box is taken out of it', () => {
    const values = valuesFromBody({ url: 'https://b.example', signingSecret: 'whsec_x', authToken: 'tok', authValue: 'v', authPassword: 'p', headers: '{"X":"s"}', credentials: '{"apiKey":"re_1"}' }, 'create', webhook);
    assert.ok(!JSON.stringify(values).match(/whsec_x|tok|"v"|"p"|re_1|"s"/), JSON.stringify(values));
    assert.equal(values.url, 'https://b.example');
    const generic = valuesFromBody({ config: '{"from": "a@b.example", "apiKey": "re_secret"}' }, 'create', email);
    assert.deepEqual(JSON.parse(generic.config), { from: 'a@b.example' });
    const { errors } = endpointBody(email, { config: '{"from": "a@b.example", "apiKey": "re_secret"}', credentials: '{"from": "x"}' }, 'create');
    assert.deepEqual(errors.map((e) => e.path), ['config', 'credentials']);
  });

  it('When the settings form is posted, then every setting is sent: an empty cap, schedule or warning removes it, an empty time zone keeps the stored one', () => {
    assert.deepEqual(settingsBody({ name: ' B ', accept: 'any', 'caps.daily': '10', schedule: '', sourceCaps: '', capWarning: '', timeZone: '' }).body, { name: 'B', caps: { daily: 10 }, schedule: null, sourceCaps: null, capWarning: null, accept: 'any' });
    assert.deepEqual(settingsBody({ name: 'B', 'caps.hourly': 'x', schedule: '{' }).errors.map((e) => e.path), ['caps.hourly', 'schedule']);
  });

  it('When a schedule is shown, then it is JSON with one line per day in week order that reads back as the same schedule', () => {
    const schedule = { hours: { tue: [{ from: '08:00', to: '20:00', cap: 5 }], mon: [['08:00', '20:00'] as [string, string]] }, holidays: ['2026-12-25'], outside: 'hold' as const };
    const text = scheduleJson(schedule);
    assert.deepEqual(JSON.parse(text), schedule);
    assert.match(text, /"mon": \[\["08:00","20:00"\]\],\n {4}"tue"/);
  });

  it('When a redirect asks for a flash, then only the fixed messages are shown', () => {
    assert.match(doneMessage('breaker-reset') ?? '', /Breaker reset/);
    for (const odd of ['<script>', 'constructor', '__proto__', undefined, ['paused']]) assert.equal(doneMessage(odd), undefined);
  });
});
