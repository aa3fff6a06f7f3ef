/**
 * The console's look: one layout (navigation, the signed-in operator's sign-out), the login and
 * error pages, the form helpers every page uses (a field's error beside the field, a confirmation
 * step before an action), and the links out (a lead's dispute page, a workflow in the Temporal UI).
 * Everything from data goes through the `html` tag (escaped); nothing here runs script.
 */
import { htmlDocument } from '../../../shared/http/pages/document';
import { html, type Html, type Part } from '../../../shared/http/pages/html';
import type { FieldError } from '../../../shared/errors';

export interface ConsoleLinks {
  /** Base URL of the log service (its dispute pages), e.g. http://127.0.0.1:8081. */
  logUrl: string;
  /** Base URL of the Temporal Web UI, e.g. http://127.0.0.1:8233. */
  temporalUiUrl: string;
  namespace: string;
}

export const NAV = [
  ['overview', '/console', 'Overview'],
  ['buyers', '/console/buyers', 'Buyers'],
  ['sources', '/console/sources', 'Sources'],
  ['dead-letters', '/console/dead-letters', 'Dead letters'],
  ['alerts', '/console/alerts', 'Alerts'],
] as const;
export type Section = (typeof NAV)[number][0];

export const CONSOLE_STYLE = `
header.nav { display:flex; gap:18px; align-items:center; padding:10px 24px; background:#1d2430; color:#fff; }
header.nav a { color:#cfd6e2; text-decoration:none; font-weight:600; }
header.nav a.active, header.nav a:hover { color:#fff; }
header.nav .brand { color:#fff; margin-right:12px; }
header.nav form { margin:0 0 0 auto; }
main { max-width:1200px; margin:0 auto; padding:20px 24px 48px; }
h1 { font-size:20px; margin:4px 0 12px; }
h2 { font-size:16px; margin:24px 0 8px; }
input, button, select, textarea { font:inherit; padding:5px 9px; border:1px solid var(--line); border-radius:4px; background:#fff; }
textarea { width:100%; min-height:6em; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size:12.5px; }
button { background:#2c3a4f; color:#fff; border-color:#2c3a4f; cursor:pointer; }
button.secondary { background:#fff; color:var(--fg); border-color:var(--line); }
button.danger { background:var(--bad); border-color:var(--bad); }
button.link { background:none; border:none; color:#fff; padding:0; text-decoration:underline; }
.card { background:var(--card); border:1px solid var(--line); border-radius:6px; padding:14px 16px; margin:10px 0; }
.login { max-width:420px; margin:60px auto; }
.login input { width:100%; margin:6px 0 12px; }
.error, .alarm { color:var(--bad); background:var(--bad-bg); border:1px solid #f3c3bd; border-radius:4px; padding:8px 10px; }
.flash { color:var(--ok); background:var(--ok-bg); border:1px solid #b9e0c6; border-radius:4px; padding:8px 10px; }
.notice, .muted { color:var(--muted); }
.field-error { color:var(--bad); font-size:12.5px; margin-top:2px; }
.field { margin:8px 0; } .field label { display:block; font-weight:600; margin-bottom:2px; }
.field.invalid input, .field.invalid select, .field.invalid textarea { border-color:var(--bad); background:var(--bad-bg); }
table { border-collapse:collapse; width:100%; }
th, td { text-align:left; vertical-align:top; padding:5px 8px; border-bottom:1px solid var(--line); }
th { color:var(--muted); font-weight:600; white-space:nowrap; }
table.kv th { width:200px; }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600; background:var(--skip-bg); color:var(--skip); }
.badge.ok, .badge.closed, .badge.active, .badge.delivered, .badge.success { background:var(--ok-bg); color:var(--ok); }
.badge.warn, .badge.half_open, .badge.transient, .badge.pending { background:var(--warn-bg); color:var(--warn); }
.badge.bad, .badge.open, .badge.paused, .badge.permanent, .badge.dead_lettered { background:var(--bad-bg); color:var(--bad); }
.badge.unknown { background:#ece4f7; color:#5b2c91; }
.grid { display:grid; grid-template-columns:repeat(auto-fit, minmax(220px, 1fr)); gap:12px; }
.stat { font-size:24px; font-weight:700; }
.cols { display:grid; grid-template-columns:1fr 1fr; gap:16px; }
.actions { display:flex; gap:8px; flex-wrap:wrap; align-items:center; }
.actions form { margin:0; }
@media (max-width: 900px) { .cols { grid-template-columns:1fr; } }
.warning { color:var(--warn); background:var(--warn-bg); border:1px solid #f0d9a6; border-radius:4px; padding:8px 10px; }
.shown-once { display:block; font-size:15px; padding:8px 10px; margin:8px 0; background:#fff; border:2px dashed var(--warn); border-radius:4px; word-break:break-all; user-select:all; }
.filters { display:flex; gap:12px; flex-wrap:wrap; align-items:flex-end; }
.filters .field { margin:0; }
button.small { padding:1px 7px; font-size:12.5px; }
.actions + .actions { margin-top:8px; }
fieldset { border:1px solid var(--line); border-radius:4px; margin:10px 0; padding:6px 12px 10px; }
fieldset.invalid { border-color:var(--bad); }
legend { font-weight:600; padding:0 4px; }
.field input[type=text], .field input[type=password], .field select { width:100%; max-width:560px; }
h3 { font-size:15px; margin:2px 0 8px; } h4 { font-size:14px; margin:4px 0; }
.badge.info { background:var(--info-bg); color:var(--info); }
`;

export function layout(options: { title: string; body: Part; active?: Section; nav?: boolean; flash?: string; /** Reload every this many seconds (a page that follows a running job; no script). */ refresh?: number }): string {
  const nav = options.nav === false
    ? ''
    : html`<header class="nav">
  <a class="brand" href="/console">Lead delivery · console</a>
  ${NAV.map(([key, href, label]) => html`<a href="${href}"${key === options.active ? html` class="active" aria-current="page"` : ''}>${label}</a>`)}
  <form method="post" action="/console/logout"><button class="link" type="submit" id="sign-out">Sign out</button></form>
</header>`;
  return htmlDocument({
    title: `${options.title} · console`,
    style: CONSOLE_STYLE,
    ...(options.refresh ? { head: html`<meta http-equiv="refresh" content="${options.refresh}">` } : {}),
    body: html`${nav}
<main>
${options.flash ? html`<p class="flash" role="status" id="flash">${options.flash}</p>` : ''}
${options.body}
</main>`,
  });
}

export function errorPage(title: string, message: Part, options: { nav?: boolean } = {}): string {
  return layout({ title, nav: options.nav ?? true, body: html`<div class="card"><h1>${title}</h1><p>${message}</p><p><a href="/console">Back to the overview</a></p></div>` });
}

export function loginPage(options: { next: string; error?: string; action: string }): string {
  return layout({
    title: 'Sign in',
    nav: false,
    body: html`<div class="card login">
<h1>Lead delivery · console</h1>
<p class="notice">Sign in with the admin token (<code>ADMIN_TOKEN</code>). The session lasts 12 hours and also opens the delivery log’s dispute pages on this host.</p>
${options.error ? html`<p class="error" role="alert">${options.error}</p>` : ''}
<form method="post" action="${options.action}">
<input type="hidden" name="next" value="${options.next}">
<label for="token">Admin token</label>
<input id="token" type="password" name="token" autocomplete="current-password" required autofocus>
<button type="submit">Sign in</button>
</form>
</div>`,
  });
}

// ---- forms ------------------------------------------------------------------------------------

/** The error of one field (by its API path, e.g. "url" or "throttle.perSecond"), shown beside it. */
export function fieldError(errors: readonly FieldError[] | undefined, path: string): Html {
  const mine = (errors ?? []).filter((e) => e.path === path || e.path.startsWith(`${path}.`));
  return mine.length ? html`<div class="field-error" id="error-${path}" role="alert">${mine.map((e) => html`<div>${e.path === path ? '' : `${e.path}: `}${e.message}</div>`)}</div>` : html``;
}

/** Errors whose field no input of the form shows (listed at the top of the form). */
export function otherErrors(errors: readonly FieldError[] | undefined, shown: readonly string[]): Html {
  const rest = (errors ?? []).filter((e) => !shown.some((p) => e.path === p || e.path.startsWith(`${p}.`)));
  return rest.length ? html`<div class="error" role="alert">${rest.map((e) => html`<div><code>${e.path}</code>: ${e.message}</div>`)}</div>` : html``;
}

/**
 * The confirmation step of an action: a page saying what will happen, with the same form posted
 * again with `confirm=yes` (hidden fields carry what was asked). Works without script.
 */
export function confirmPage(options: { title: string; what: Part; /** Block content after `what` (a list of what is affected). */ details?: Part; action: string; fields: Record<string, string | string[]>; button: string; back: string; danger?: boolean; /** A one-time form token (once.ts): the confirmed action runs once however often the form is posted. */ once?: string }): string {
  const fields = options.once ? { ...options.fields, once: options.once } : options.fields;
  const hidden = Object.entries(fields).flatMap(([name, value]) => (Array.isArray(value) ? value : [value]).map((v) => html`<input type="hidden" name="${name}" value="${v}">`));
  return layout({
    title: options.title,
    body: html`<div class="card"><h1>${options.title}</h1><p>${options.what}</p>${options.details}
<form method="post" action="${options.action}" class="actions">${hidden}<input type="hidden" name="confirm" value="yes">
<button type="submit" id="confirm"${options.danger ? html` class="danger"` : ''}>${options.button}</button> <a href="${options.back}">Cancel</a></form></div>`,
  });
}

/** A form field as one string (the first when repeated; '' when absent), trimmed. */
export function formText(body: unknown, name: string): string {
  const value: unknown = body && typeof body === 'object' ? (body as Record<string, unknown>)[name] : undefined;
  const first: unknown = Array.isArray(value) ? value[0] : value;
  return typeof first === 'string' ? first.trim() : '';
}

/** A repeated form field (checkboxes, hidden lists) as its non-empty strings, in document order. */
export function formList(body: unknown, name: string): string[] {
  const value: unknown = body && typeof body === 'object' ? (body as Record<string, unknown>)[name] : undefined;
  const all: unknown[] = Array.isArray(value) ? value : value === undefined ? [] : [value];
  return all.filter((v): v is string => typeof v === 'string' && v.trim() !== '').map((v) => v.trim());
}

// ---- links out --------------------------------------------------------------------------------

export function disputeHref(links: ConsoleLinks, leadId: string): string {
  return `${links.logUrl.replace(/\/$/, '')}/leads/${encodeURIComponent(leadId)}`;
}

export function workflowHref(links: ConsoleLinks, workflowId: string): string {
  return `${links.temporalUiUrl.replace(/\/$/, '')}/namespaces/${encodeURIComponent(links.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

/** A lead id with its two links: the dispute page and the workflow in the Temporal UI. */
export function leadLinks(links: ConsoleLinks, leadId: string): Html {
  return html`<a href="${disputeHref(links, leadId)}" class="mono">${leadId}</a> <a href="${workflowHref(links, `lead-${leadId}`)}" class="muted" title="the lead's workflow in the Temporal UI">(workflow)</a>`;
}
