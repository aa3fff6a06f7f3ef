/**
 * The console's buyer settings form: name, accept rule, time zone, caps, schedule and per-source
 * caps (JSON), duplicate and return windows, the cap warning. Read into the admin API's PATCH body
 * and handed to `admin.buyers.update` (its 400's fields shown under their inputs). The form always
 * sends every setting: an empty cap, schedule, per-source caps or cap warning removes it; an empty
 * time zone or window keeps the stored one (they have defaults, and the form shows them).
 */
import { CAP_WINDOWS, DAY_KEYS, type Schedule } from '../../../shared/buyer-controls';
import type { FieldError } from '../../../shared/errors';
import { html, type Html, type Part } from '../../../shared/http/pages/html';
import type { BuyerView } from '../admin/buyers';
import { FormDecoder, raw, text, type FormBody } from './form-input';
import { fieldError, otherErrors } from './layout';

export interface BuyerSettingsValues {
  name: string;
  accept: string;
  timeZone: string;
  caps: Record<string, string>;
  schedule: string;
  sourceCaps: string;
  duplicateWindow: string;
  returnWindow: string;
  capWarning: string;
}

const pretty = (value: unknown) => (value === undefined || (typeof value === 'object' && value !== null && !Object.keys(value).length) ? '' : JSON.stringify(value, null, 2));

/** A schedule as JSON with one line per day (its windows), days in week order. */
export function scheduleJson(schedule: Schedule): string {
  const hours: Record<string, unknown> = schedule.hours;
  const days = [...DAY_KEYS.filter((d) => d in hours), ...Object.keys(hours).filter((d) => !(DAY_KEYS as readonly string[]).includes(d))].map((d) => `    ${JSON.stringify(d)}: ${JSON.stringify(hours[d])}`);
  const rest = Object.entries(schedule).filter(([k]) => k !== 'hours').map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)}`);
  return `{\n  "hours": {${days.length ? `\n${days.join(',\n')}\n  ` : ''}}${rest.length ? `,\n${rest.join(',\n')}` : ''}\n}`;
}

export function settingsFromView(view: BuyerView): BuyerSettingsValues {
  const caps = view.caps as Partial<Record<string, number>>;
  return {
    name: view.name,
    accept: view.accept,
    timeZone: view.timeZone,
    caps: Object.fromEntries(CAP_WINDOWS.map((w) => [w, caps[w] !== undefined ? String(caps[w]) : ''])),
    schedule: view.schedule ? scheduleJson(view.schedule) : '',
    sourceCaps: pretty(view.sourceCaps),
    duplicateWindow: view.duplicateWindow,
    returnWindow: view.returnWindow,
    capWarning: view.capWarning !== undefined ? String(view.capWarning) : '',
  };
}

export function settingsFromBody(body: FormBody): BuyerSettingsValues {
  return {
    name: raw(body, 'name'),
    accept: text(body, 'accept'),
    timeZone: raw(body, 'timeZone'),
    caps: Object.fromEntries(CAP_WINDOWS.map((w) => [w, raw(body, `caps.${w}`)])),
    schedule: raw(body, 'schedule'),
    sourceCaps: raw(body, 'sourceCaps'),
    duplicateWindow: raw(body, 'duplicateWindow'),
    returnWindow: raw(body, 'returnWindow'),
    capWarning: raw(body, 'capWarning'),
  };
}

/** The PATCH body of the posted form, and the fields that did not decode (then nothing is sent). */
export function settingsBody(body: FormBody): { body: Record<string, unknown>; errors: FieldError[] } {
  const d = new FormDecoder(body);
  const caps: Record<string, number> = {};
  for (const window of CAP_WINDOWS) {
    const n = d.number(`caps.${window}`, `caps.${window}`);
    if (n !== undefined) caps[window] = n;
  }
  const out: Record<string, unknown> = {
    name: text(body, 'name'),
    caps: Object.keys(caps).length ? caps : null,
    schedule: d.json('schedule', 'schedule', { object: true }) ?? null,
    sourceCaps: d.json('sourceCaps', 'sourceCaps', { object: true }) ?? null,
    capWarning: d.number('capWarning', 'capWarning') ?? null,
  };
  for (const key of ['accept', 'timeZone', 'duplicateWindow', 'returnWindow'] as const) {
    const value = text(body, key);
    if (value) out[key] = value;
  }
  return { body: out, errors: d.errors };
}

function field(name: string, label: string, errors: readonly FieldError[], input: Html, hint?: Part, path = name): Html {
  const invalid = errors.some((e) => e.path === path || e.path.startsWith(`${path}.`));
  return html`<div class="field${invalid ? ' invalid' : ''}" id="field-${name}"><label for="${name}">${label}</label>${input}${hint ? html`<div class="muted">${hint}</div>` : ''}${fieldError(errors, path)}</div>`;
}

const describe = (errors: readonly FieldError[], path: string) =>
  errors.some((e) => e.path === path || e.path.startsWith(`${path}.`)) ? html` aria-invalid="true" aria-describedby="error-${path}"` : html``;

export function settingsForm(options: { action: string; values: BuyerSettingsValues; errors: readonly FieldError[]; cancel: string }): Html {
  const { values, errors } = options;
  const input = (name: string, value: string, attrs: Html = html``) => html`<input type="text" id="${name}" name="${name}" value="${value}"${attrs}${describe(errors, name)}>`;
  return html`<form method="post" action="${options.action}" id="settings-form" novalidate>
${errors.length ? html`<p class="error" role="alert" id="form-errors">Not saved: see the fields marked below.</p>` : ''}
${otherErrors(errors, ['name', 'accept', 'timeZone', 'caps', 'schedule', 'sourceCaps', 'duplicateWindow', 'returnWindow', 'capWarning'])}
<div class="cols">
${field('name', 'Name', errors, input('name', values.name))}
${field('accept', 'Accept rule', errors, html`<select id="accept" name="accept"${describe(errors, 'accept')}>${[['all', 'all: every accept endpoint must take the lead'], ['any', 'any: one accept endpoint is enough']].map(([v, l]) => html`<option value="${v}"${v === values.accept ? html` selected` : ''}>${l}</option>`)}</select>`)}
${field('timeZone', 'Time zone (IANA)', errors, input('timeZone', values.timeZone, html` placeholder="America/Chicago"`), 'caps’ days and weeks and the schedule are in this zone; empty keeps the stored one')}
${field('capWarning', 'Cap warning (% of a cap)', errors, input('capWarning', values.capWarning, html` inputmode="numeric"`), 'one cap_near alert per window at this share; empty: none')}
</div>
<fieldset id="field-caps"${errors.some((e) => e.path.startsWith('caps')) ? html` class="invalid"` : ''}><legend>Caps (leads per window; empty: no cap)</legend>
<div class="grid">${CAP_WINDOWS.map((w) => field(`caps.${w}`, w, errors, input(`caps.${w}`, values.caps[w] ?? '', html` inputmode="numeric"`)))}</div>
</fieldset>
${field('schedule', 'Schedule (JSON)', errors, html`<textarea id="schedule" name="schedule" rows="8" spellcheck="false"${describe(errors, 'schedule')}>${values.schedule}</textarea>`, html`e.g. <code>{"hours": {"mon": [["08:00", "20:00"]], "tue": [{"from": "08:00", "to": "20:00", "cap": 50}]}, "holidays": ["2026-12-25"], "outside": "skip"}</code>; a day not listed is closed; empty: always open`)}
${field('sourceCaps', 'Caps per source (JSON)', errors, html`<textarea id="sourceCaps" name="sourceCaps" rows="4" spellcheck="false"${describe(errors, 'sourceCaps')}>${values.sourceCaps}</textarea>`, html`e.g. <code>{"src_…": {"daily": 20}}</code>; empty: none`)}
<div class="cols">
${field('duplicateWindow', 'Duplicate window', errors, input('duplicateWindow', values.duplicateWindow, html` placeholder="30d"`), 'a lead with an email or phone this buyer took within it is skipped ("0s": no check); empty keeps the stored one')}
${field('returnWindow', 'Return window', errors, input('returnWindow', values.returnWindow, html` placeholder="7d"`), 'how long after a delivery the buyer may return the lead; empty keeps the stored one')}
</div>
<div class="actions"><button type="submit" id="save">Save settings</button> <a href="${options.cancel}">Cancel</a></div>
</form>`;
}
