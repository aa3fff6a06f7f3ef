/**
 * The console's endpoint form (add and edit), one per kind: the webhook kind field by field (url,
 * method, format, auth, signing secret, custom headers), every other kind as two JSON textareas —
 * its settings (not secret, re-shown as typed) and its credentials (never shown again) — the field
 * names in the kind's README. The settings every endpoint has (name, role, mapping, backoff,
 * timeout, breaker, throttle) are the same inputs for all kinds.
 *
 * The form is read into the body the admin API takes and handed to `admin.endpoints.create/update`,
 * whose 400 names the fields; each error is shown under the input of its path. A re-shown form has
 * what was typed, except secrets: a secret input is always empty (on edit, empty keeps the stored
 * one, whose masked value the form shows).
 */
import { ENDPOINT_COMMON_KEYS } from '../../../shared/endpoint';
import type { FieldError } from '../../../shared/errors';
import { html, time, type Html, type Part } from '../../../shared/http/pages/html';
import type { EndpointUseCases } from '../admin/endpoints';
import { FormDecoder, raw, text, type FormBody } from './form-input';
import { fieldError, otherErrors } from './layout';

export type EndpointView = Awaited<ReturnType<EndpointUseCases['get']>>;
export type EndpointPreview = Awaited<ReturnType<EndpointUseCases['preview']>>;
export interface KindInfo {
  kind: string;
  description: string;
  /** Its secret settings (sealed at rest, masked when shown). */
  secrets: string[];
}
export type FormMode = 'create' | 'edit';

/** Keys of an endpoint's view that are not its kind's settings. */
const VIEW_KEYS: ReadonlySet<string> = new Set([...ENDPOINT_COMMON_KEYS, 'id', 'buyerId', 'version', 'createdAt', 'updatedAt', 'archivedAt']);

/** The kind's own settings of an endpoint's view (secrets as the view masks them). */
export function kindSettingsOf(view: EndpointView): Record<string, unknown> {
  return Object.fromEntries(Object.entries(view).filter(([key]) => !VIEW_KEYS.has(key)));
}

/** Every input of the form that may be shown again (no secret is among them). */
export interface EndpointFormValues {
  name: string;
  role: string;
  mapping: string;
  backoff: string;
  timeoutMs: string;
  breakerThreshold: string;
  breakerCoolDown: string;
  throttlePerSecond: string;
  throttlePerMinute: string;
  // webhook
  url: string;
  method: string;
  format: string;
  authType: string;
  authHeader: string;
  authUsername: string;
  // any other kind: its settings that are not secret, as JSON
  config: string;
}

const EMPTY: EndpointFormValues = {
  name: '', role: 'accept', mapping: '', backoff: '', timeoutMs: '', breakerThreshold: '', breakerCoolDown: '', throttlePerSecond: '', throttlePerMinute: '',
  url: '', method: 'POST', format: 'json', authType: 'none', authHeader: '', authUsername: '', config: '',
};

export function emptyValues(mode: FormMode): EndpointFormValues {
  return { ...EMPTY, authType: mode === 'edit' ? 'keep' : 'none' };
}

/**
 * What was typed, for showing the form again. The secret inputs (signing secret, auth token, value
 * and password, custom headers, credentials) are not among the values; a secret typed into the
 * settings box by mistake is taken out of it.
 */
export function valuesFromBody(body: FormBody, mode: FormMode, kind: KindInfo): EndpointFormValues {
  const values = emptyValues(mode);
  for (const key of Object.keys(values) as Array<keyof EndpointFormValues>) {
    const value = body[key];
    if (typeof value === 'string') values[key] = value;
  }
  try {
    const config: unknown = JSON.parse(values.config);
    if (config && typeof config === 'object' && !Array.isArray(config) && kind.secrets.some((k) => k in config)) {
      values.config = pretty(Object.fromEntries(Object.entries(config).filter(([k]) => !kind.secrets.includes(k))));
    }
  } catch {
    // not JSON: shown as typed (the box is for settings that are not secret)
  }
  return values;
}

const pretty = (value: unknown) => (value === undefined ? '' : JSON.stringify(value, null, 2));
const str = (value: unknown) => (typeof value === 'string' ? value : '');

/** A stored endpoint's settings as the form shows them. */
export function valuesFromView(view: EndpointView, kind: KindInfo): EndpointFormValues {
  const settings = kindSettingsOf(view);
  const auth = (settings.auth ?? {}) as Record<string, unknown>;
  const secretNames = new Set(kind.secrets);
  return {
    ...emptyValues('edit'),
    name: view.name ?? '',
    role: view.role,
    mapping: pretty(view.mapping),
    backoff: view.backoff.join(', '),
    timeoutMs: String(view.timeoutMs),
    breakerThreshold: String(view.breaker.threshold),
    breakerCoolDown: view.breaker.coolDown,
    throttlePerSecond: view.throttle?.perSecond !== undefined ? String(view.throttle.perSecond) : '',
    throttlePerMinute: view.throttle?.perMinute !== undefined ? String(view.throttle.perMinute) : '',
    url: str(settings.url),
    method: str(settings.method) || 'POST',
    format: str(settings.format) || 'json',
    authHeader: str(auth.header),
    authUsername: str(auth.username),
    config: pretty(Object.fromEntries(Object.entries(settings).filter(([key]) => !secretNames.has(key)))),
  };
}

/**
 * The admin API's body of the posted form, and the fields that did not decode (a number that is
 * not one, JSON that does not parse): with any of those the use case is not called.
 * Create: an empty input is left out (the default applies; an empty signing secret is generated).
 * Edit: an empty input keeps the stored value (secrets included), except the throttle: both rates
 * empty removes it.
 */
export function endpointBody(kind: KindInfo, body: FormBody, mode: FormMode): { body: Record<string, unknown>; errors: FieldError[] } {
  const d = new FormDecoder(body);
  const out: Record<string, unknown> = mode === 'create' ? { kind: kind.kind } : {};
  const name = text(body, 'name');
  if (name) out.name = name;
  const role = text(body, 'role');
  if (role) out.role = role;
  const mapping = d.json('mapping', 'mapping', { object: true });
  if (mapping !== undefined) out.mapping = mapping;
  const backoff = d.list('backoff');
  if (backoff) out.backoff = backoff;
  const timeoutMs = d.number('timeoutMs', 'timeoutMs');
  if (timeoutMs !== undefined) out.timeoutMs = timeoutMs;
  const threshold = d.number('breakerThreshold', 'breaker.threshold');
  const coolDown = text(body, 'breakerCoolDown');
  if (threshold !== undefined || coolDown) out.breaker = { ...(threshold !== undefined ? { threshold } : {}), ...(coolDown ? { coolDown } : {}) };
  const perSecond = d.number('throttlePerSecond', 'throttle.perSecond');
  const perMinute = d.number('throttlePerMinute', 'throttle.perMinute');
  if (perSecond !== undefined || perMinute !== undefined) out.throttle = { ...(perSecond !== undefined ? { perSecond } : {}), ...(perMinute !== undefined ? { perMinute } : {}) };
  else if (mode === 'edit' && !text(body, 'throttlePerSecond') && !text(body, 'throttlePerMinute')) out.throttle = null;

  if (kind.kind === 'webhook') {
    // The URL is always given: empty is for the API to refuse (it is required).
    out.url = text(body, 'url');
    const method = text(body, 'method');
    if (method) out.method = method;
    const format = text(body, 'format');
    if (format) out.format = format;
    const signingSecret = text(body, 'signingSecret');
    if (signingSecret) out.signingSecret = signingSecret;
    const authType = text(body, 'authType');
    if (authType === 'bearer') out.auth = { type: 'bearer', token: raw(body, 'authToken') };
    else if (authType === 'apiKey') out.auth = { type: 'apiKey', ...(text(body, 'authHeader') ? { header: text(body, 'authHeader') } : {}), value: raw(body, 'authValue') };
    else if (authType === 'basic') out.auth = { type: 'basic', username: text(body, 'authUsername'), password: raw(body, 'authPassword') };
    else if (authType !== 'none' && authType !== 'keep' && authType !== '') d.errors.push({ path: 'auth', message: 'must be none, bearer, apiKey or basic' });
    const headers = d.json('headers', 'headers', { object: true });
    if (headers !== undefined) out.headers = headers;
  } else {
    const config = d.json('config', 'config', { object: true }) as Record<string, unknown> | undefined;
    const credentials = d.json('credentials', 'credentials', { object: true }) as Record<string, unknown> | undefined;
    const secretNames = new Set(kind.secrets);
    for (const key of Object.keys(config ?? {})) {
      // The settings box is shown again as typed: a secret belongs in the credentials box.
      if (secretNames.has(key)) d.errors.push({ path: 'config', message: `${key} is a secret: put it in the credentials box (it is never shown again)` });
      else if (ENDPOINT_COMMON_KEYS.has(key)) d.errors.push({ path: 'config', message: `${key} has its own input below` });
    }
    for (const key of Object.keys(credentials ?? {})) {
      if (!secretNames.has(key)) d.errors.push({ path: 'credentials', message: `${key} is not a secret of ${kind.kind} (${kind.secrets.join(', ') || 'it has none'}): put it in the settings box` });
    }
    Object.assign(out, config ?? {}, credentials ?? {});
  }
  return { body: out, errors: d.errors };
}

// ---- rendering --------------------------------------------------------------------------------

const isUnder = (errors: readonly FieldError[], path: string) => errors.some((e) => e.path === path || e.path.startsWith(`${path}.`));

/** One labelled input with its hint and its error (id `error-<path>`, referenced by the input). */
function field(options: { name: string; label: string; path: string; errors: readonly FieldError[]; input: (describedBy: Html) => Html; hint?: Part }): Html {
  const invalid = isUnder(options.errors, options.path);
  const describedBy = invalid ? html` aria-invalid="true" aria-describedby="error-${options.path}"` : html``;
  return html`<div class="field${invalid ? ' invalid' : ''}" id="field-${options.name}"><label for="${options.name}">${options.label}</label>${options.input(describedBy)}${options.hint ? html`<div class="muted">${options.hint}</div>` : ''}${fieldError(options.errors, options.path)}</div>`;
}

function textInput(name: string, value: string, extra: Html, attrs: Html = html``): Html {
  return html`<input type="text" id="${name}" name="${name}" value="${value}"${attrs}${extra}>`;
}

function secretInput(name: string, extra: Html): Html {
  // Never a value: a secret is not sent back to the browser.
  return html`<input type="password" id="${name}" name="${name}" value="" autocomplete="new-password"${extra}>`;
}

function select(name: string, value: string, options: ReadonlyArray<readonly [string, string]>, extra: Html): Html {
  return html`<select id="${name}" name="${name}"${extra}>${options.map(([v, label]) => html`<option value="${v}"${v === value ? html` selected` : ''}>${label}</option>`)}</select>`;
}

function textarea(name: string, value: string, extra: Html, rows = 6): Html {
  return html`<textarea id="${name}" name="${name}" rows="${rows}" spellcheck="false"${extra}>${value}</textarea>`;
}

/** Errors of a JSON box: its own decode errors and the API's errors on the keys it holds. */
function boxError(errors: readonly FieldError[], id: string, paths: readonly string[]): Html {
  const mine = errors.filter((e) => e.path === id || paths.some((p) => e.path === p || e.path.startsWith(`${p}.`)));
  return mine.length ? html`<div class="field-error" id="error-${id}" role="alert">${mine.map((e) => html`<div>${e.path === id ? '' : `${e.path}: `}${e.message}</div>`)}</div>` : html``;
}

/** The masked value the view shows of a stored secret, for the hint beside its (empty) input. */
function stored(value: unknown): Part {
  if (value === undefined) return html`nothing stored`;
  return html`stored: <code>${typeof value === 'string' ? value : JSON.stringify(value)}</code>`;
}

function webhookFields(values: EndpointFormValues, errors: readonly FieldError[], mode: FormMode, current: Record<string, unknown>): Html {
  const keep = mode === 'edit' ? 'empty keeps the stored one; ' : '';
  const auth = current.auth;
  const storedAuth = auth && typeof auth === 'object' && 'type' in auth && typeof auth.type === 'string' ? auth.type : 'none';
  const authInvalid = isUnder(errors, 'auth');
  return html`<fieldset><legend>Webhook</legend>
${field({ name: 'url', label: 'URL', path: 'url', errors, input: (d) => textInput('url', values.url, d, html` placeholder="https://buyer.example/leads" inputmode="url" autocomplete="off"`), hint: 'http(s) only; a private or loopback address is refused' })}
<div class="cols">
${field({ name: 'method', label: 'Method', path: 'method', errors, input: (d) => select('method', values.method, [['POST', 'POST'], ['PUT', 'PUT']], d) })}
${field({ name: 'format', label: 'Body format', path: 'format', errors, input: (d) => select('format', values.format, [['json', 'JSON'], ['form', 'form (application/x-www-form-urlencoded)']], d) })}
</div>
${field({ name: 'signingSecret', label: 'Signing secret (Standard Webhooks)', path: 'signingSecret', errors, input: (d) => secretInput('signingSecret', d), hint: mode === 'create' ? html`empty: one is generated and shown once after saving; or <code>whsec_</code> + base64 of 16–64 bytes` : html`${keep}${stored(current.signingSecret)}` })}
<fieldset id="field-auth"${authInvalid ? html` class="invalid"` : ''}><legend>Auth</legend>
${field({ name: 'authType', label: 'Type', path: 'auth.type', errors, input: (d) => select('authType', values.authType, [...(mode === 'edit' ? [['keep', `keep as stored (${storedAuth})`] as const] : []), ['none', mode === 'edit' ? 'none (only if none is stored)' : 'none'], ['bearer', 'Bearer token'], ['apiKey', 'API key header'], ['basic', 'Basic (username, password)']], d), hint: mode === 'edit' ? html`fill the inputs of the type chosen; ${stored(current.auth)}` : 'fill the inputs of the type chosen' })}
<div class="cols">
${field({ name: 'authToken', label: 'Bearer token', path: 'auth.token', errors, input: (d) => secretInput('authToken', d) })}
${field({ name: 'authHeader', label: 'API key header', path: 'auth.header', errors, input: (d) => textInput('authHeader', values.authHeader, d, html` placeholder="X-API-Key"`) })}
${field({ name: 'authValue', label: 'API key value', path: 'auth.value', errors, input: (d) => secretInput('authValue', d) })}
${field({ name: 'authUsername', label: 'Basic username', path: 'auth.username', errors, input: (d) => textInput('authUsername', values.authUsername, d) })}
${field({ name: 'authPassword', label: 'Basic password', path: 'auth.password', errors, input: (d) => secretInput('authPassword', d) })}
</div>
${boxError(errors.filter((e) => !/^auth\.(type|token|header|value|username|password)(\.|$)/.test(e.path)), 'auth', ['auth'])}
</fieldset>
${field({ name: 'headers', label: 'Custom headers (JSON object, stored sealed)', path: 'headers', errors, input: (d) => textarea('headers', '', d, 3), hint: html`e.g. <code>{"X-Partner": "acme"}</code>; never shown again; ${keep}${mode === 'edit' ? stored(current.headers) : 'empty: none'}` })}
</fieldset>`;
}

function genericFields(kind: KindInfo, values: EndpointFormValues, errors: readonly FieldError[], mode: FormMode, current: Record<string, unknown>): Html {
  const secretNames = new Set(kind.secrets);
  const errorKeys = errors.map((e) => e.path.split('.')[0]!).filter((k) => !ENDPOINT_COMMON_KEYS.has(k));
  const configKeys = [...new Set(errorKeys.filter((k) => !secretNames.has(k) && k !== 'credentials'))];
  const secretKeys = [...new Set(errorKeys.filter((k) => secretNames.has(k)))];
  const storedSecrets = kind.secrets.filter((k) => current[k] !== undefined);
  return html`<fieldset><legend>${kind.kind} settings</legend>
<p class="muted">This kind’s settings as JSON, with the field names of <code>activities/${kind.kind}/README.md</code> (the same body as the admin API’s).</p>
<div class="field${configKeys.length || isUnder(errors, 'config') ? ' invalid' : ''}" id="field-config"><label for="config">Settings (JSON object; not secret)</label>${textarea('config', values.config, html``, 10)}
<div class="muted">${mode === 'edit' ? 'keys given replace the stored ones; keys left out keep theirs' : kind.kind === 'email' ? html`e.g. <code>{"from": "leads@…", "to": ["sales@buyer.example"], "subject": "New lead {first_name}", "text": "…"}</code>` : html`e.g. <code>{"setting": "value"}</code>; empty when the kind has none`}</div>
${boxError(errors, 'config', configKeys)}</div>
<div class="field${secretKeys.length || isUnder(errors, 'credentials') ? ' invalid' : ''}" id="field-credentials"><label for="credentials">Credentials (JSON object of ${kind.secrets.length ? kind.secrets.join(', ') : 'nothing: this kind has no secrets'}; sealed, never shown again)</label>${textarea('credentials', '', html``, 4)}
<div class="muted">${mode === 'edit' ? html`empty keeps the stored ones; ${storedSecrets.length ? html`stored: ${storedSecrets.map((k, i) => html`${i ? ', ' : ''}<code>${k}</code> ${typeof current[k] === 'string' ? html`<code>${current[k]}</code>` : ''}`)}` : 'nothing stored'}` : 'secrets are masked from now on'}</div>
${boxError(errors, 'credentials', secretKeys)}</div>
</fieldset>`;
}

function commonFields(values: EndpointFormValues, errors: readonly FieldError[], mode: FormMode): Html {
  const keep = mode === 'edit' ? 'empty keeps the stored value' : 'empty: the default';
  return html`<fieldset><legend>Delivery</legend>
<div class="cols">
${field({ name: 'name', label: 'Name (optional)', path: 'name', errors, input: (d) => textInput('name', values.name, d) })}
${field({ name: 'role', label: 'Role', path: 'role', errors, input: (d) => select('role', values.role, [['accept', 'accept (the buyer takes the lead here)'], ['notify', 'notify (a copy; never decides)']], d) })}
</div>
${field({ name: 'mapping', label: 'Mapping (JSON object)', path: 'mapping', errors, input: (d) => textarea('mapping', values.mapping, d, 8), hint: html`e.g. <code>{"email": "email", "phone": {"field": "phone", "transform": "e164"}, "src": {"const": "acme"}}</code>; ${mode === 'edit' ? 'empty keeps the stored mapping' : 'empty: the lead’s fields as they are'}` })}
<div class="cols">
${field({ name: 'backoff', label: 'Backoff (waits between attempts, comma separated)', path: 'backoff', errors, input: (d) => textInput('backoff', values.backoff, d, html` placeholder="5m, 15m, 1h"`), hint: `${keep} (5m, 15m, 1h)` })}
${field({ name: 'timeoutMs', label: 'Timeout (ms)', path: 'timeoutMs', errors, input: (d) => textInput('timeoutMs', values.timeoutMs, d, html` inputmode="numeric" placeholder="10000"`), hint: `${keep} (10000)` })}
${field({ name: 'breakerThreshold', label: 'Breaker threshold (consecutive failures)', path: 'breaker.threshold', errors, input: (d) => textInput('breakerThreshold', values.breakerThreshold, d, html` inputmode="numeric" placeholder="5"`), hint: `${keep} (5)` })}
${field({ name: 'breakerCoolDown', label: 'Breaker cool-down (doubles per trip)', path: 'breaker.coolDown', errors, input: (d) => textInput('breakerCoolDown', values.breakerCoolDown, d, html` placeholder="5m"`), hint: `${keep} (5m)` })}
</div>
<fieldset id="field-throttle"${isUnder(errors, 'throttle') ? html` class="invalid"` : ''}><legend>Throttle (sends across all workers)</legend>
<div class="cols">
${field({ name: 'throttlePerSecond', label: 'Per second', path: 'throttle.perSecond', errors, input: (d) => textInput('throttlePerSecond', values.throttlePerSecond, d, html` inputmode="numeric"`) })}
${field({ name: 'throttlePerMinute', label: 'Per minute', path: 'throttle.perMinute', errors, input: (d) => textInput('throttlePerMinute', values.throttlePerMinute, d, html` inputmode="numeric"`) })}
</div>
<div class="muted">both empty: no throttle${mode === 'edit' ? ' (a stored one is removed)' : ''}</div>
${boxError(errors.filter((e) => e.path === 'throttle'), 'throttle', [])}
</fieldset>
</fieldset>`;
}

/** The paths the form shows beside an input (the rest are listed at its top). */
function shownPaths(kind: KindInfo, errors: readonly FieldError[]): string[] {
  const common = ['name', 'role', 'mapping', 'backoff', 'timeoutMs', 'breaker', 'throttle'];
  if (kind.kind === 'webhook') return [...common, 'url', 'method', 'format', 'signingSecret', 'auth', 'headers'];
  return [...common, 'config', 'credentials', ...errors.map((e) => e.path.split('.')[0]!).filter((k) => !ENDPOINT_COMMON_KEYS.has(k) && k !== 'kind')];
}

/** The form itself (no page around it). */
export function endpointForm(options: { kind: KindInfo; mode: FormMode; action: string; values: EndpointFormValues; errors: readonly FieldError[]; current?: EndpointView; cancel: string; /** Create: the form's one-time token (once.ts), so a reload of the page the post answers adds no second endpoint. */ once?: string }): Html {
  const { kind, mode, values, errors } = options;
  const current = options.current ? kindSettingsOf(options.current) : {};
  return html`<form method="post" action="${options.action}" id="endpoint-form" novalidate>
${mode === 'create' ? html`<input type="hidden" name="kind" value="${kind.kind}">` : ''}${options.once ? html`<input type="hidden" name="once" value="${options.once}">` : ''}
${errors.length ? html`<p class="error" role="alert" id="form-errors">Not saved: ${errors.length === 1 ? 'one field needs' : `${errors.length} fields need`} a change (see below).</p>` : ''}
${otherErrors(errors, shownPaths(kind, errors))}
${kind.kind === 'webhook' ? webhookFields(values, errors, mode, current) : genericFields(kind, values, errors, mode, current)}
${commonFields(values, errors, mode)}
<div class="actions"><button type="submit" id="save">${mode === 'create' ? 'Add endpoint' : 'Save changes'}</button> <a href="${options.cancel}">Cancel</a></div>
</form>`;
}

/** The mapping preview of a saved endpoint: the exact request the sample lead would produce. */
export function previewPanel(preview: EndpointPreview | { error: string }): Html {
  if ('error' in preview) return html`<div class="card" id="preview"><h2>Mapping preview</h2><p class="error">${preview.error}</p></div>`;
  const { request } = preview;
  let body = request.body ?? '';
  try {
    body = JSON.stringify(JSON.parse(body), null, 2);
  } catch {
    // not JSON (a form body, a text message): shown as it is
  }
  return html`<div class="card" id="preview"><h2>Mapping preview</h2>
<p class="muted">The request the sample lead would produce with the saved settings: nothing is sent; secrets are masked.</p>
${request.method || request.url ? html`<pre id="preview-request">${request.method ?? ''} ${request.url ?? ''}</pre>` : ''}
${request.headers && Object.keys(request.headers).length ? html`<table class="kv" id="preview-headers">${Object.entries(request.headers).map(([k, v]) => html`<tr><th>${k}</th><td class="mono">${v}</td></tr>`)}</table>` : ''}
<pre id="preview-body">${body}</pre>
<details><summary>The sample lead</summary><pre>${JSON.stringify(preview.lead, null, 2)}</pre></details>
</div>`;
}

/** The page after a create: the endpoint, and the secrets generated for it, shown this once. */
export function createdBody(options: { view: EndpointView; generated: Record<string, unknown>; buyerHref: string; editHref: string }): Html {
  const entries = Object.entries(options.generated);
  return html`<div class="card"><h1>Endpoint added</h1>
<p>Endpoint ${options.view.name ? html`<strong>${options.view.name}</strong> ` : ''}<code id="endpoint-id">${options.view.id}</code> (${options.view.kind}, ${options.view.role}) was saved, version ${options.view.version}, at ${time(options.view.createdAt)}.</p>
${entries.length ? html`<div class="warning" id="generated"><strong>Shown this once:</strong> copy ${entries.length === 1 ? 'this secret' : 'these secrets'} to the buyer now. ${entries.length === 1 ? 'It is' : 'They are'} stored sealed and shown only masked from now on.
${entries.map(([k, v]) => html`<div><strong>${k}</strong><code class="shown-once" id="${k === 'signingSecret' ? 'signing-secret' : `secret-${k}`}">${typeof v === 'string' ? v : JSON.stringify(v)}</code></div>`)}</div>` : ''}
<p class="actions"><a href="${options.buyerHref}" id="to-buyer">Back to the buyer</a> <a href="${options.editHref}">Edit it, see its mapping preview</a></p></div>`;
}
