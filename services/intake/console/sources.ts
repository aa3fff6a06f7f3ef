/**
 * The console's sources: the list (archived ones hidden), a form to create one, and each source's
 * page: its settings, its waterfall with the buyers' names and an editor (move a buyer up or down,
 * add a live buyer, remove one: each posts the whole new order), and its keys (rotate: a new key
 * beside the others; revoke). A new key (a new source's first, or a rotation's) is shown on the
 * result page of that action only, with a warning: only its hash is stored, so it is never shown
 * again; that page answers the confirmed post (no redirect), so those two confirmations carry a
 * one-time token (once.ts) and a reload of the page is refused rather than run again. Every action
 * goes through the admin use cases (services/intake/admin/sources.ts) after a confirmation step.
 *
 *   GET  /console/sources                          list, create form
 *   POST /console/sources                          create (confirm, then the key once)
 *   GET  /console/sources/:sourceId                settings, waterfall editor, keys
 *   POST /console/sources/:sourceId/waterfall      new order (`buyers`, `from` = the order it was made from)
 *   POST /console/sources/:sourceId/keys           rotate (a new key, shown once)
 *   POST /console/sources/:sourceId/keys/:keyId/revoke
 */
import { Router, type Request, type Response } from 'express';
import { ConflictError, NotFoundError, ValidationError, type FieldError } from '../../../shared/errors';
import { html, time, type Html } from '../../../shared/http/pages/html';
import { idParam } from '../../../shared/http/validate';
import { SAFE_ID_RE } from '../../../shared/ids';
import type { BuyerDoc } from '../../../shared/store';
import type { SourceView } from '../admin/sources';
import type { ConsoleContext } from './index';
import { confirmPage, errorPage, fieldError, formList, formText, layout, otherErrors } from './layout';
import { newFormToken, spendOnce } from './once';

/** The create form's fields (API paths), in the form's order. */
const CREATE_FIELDS = [
  ['name', 'Name', 'e.g. Web forms', 'required'],
  ['freshness', 'Freshness', '10m (default): how long one buyer may hold a lead', ''],
  ['duplicateWindow', 'Duplicate window', '60s (default); "0s" turns it off', ''],
  ['retention', 'PII retention', 'the service default (PII_RETENTION)', ''],
] as const;
type CreateField = (typeof CREATE_FIELDS)[number][0];

/** Fixed notices after a redirect (the query names one; no text travels in the URL). */
const FLASH: Record<string, string> = {
  waterfall: 'The waterfall is saved. New leads follow it at once; leads on their way keep the plan they loaded.',
  revoked: 'The key is revoked: it no longer authenticates (at once here, within the key cache’s 5 s on other intake processes).',
};

type BuyerName = Pick<BuyerDoc, '_id' | 'name' | 'paused' | 'archivedAt'>;

/** A buyer as a link to its console page, with its state when it is not plainly live. */
function buyerLabel(buyerId: string, buyer: BuyerName | undefined): Html {
  return html`<a href="/console/buyers/${buyerId}">${buyer?.name ?? buyerId}</a>${buyer?.archivedAt ? html` <span class="badge bad">archived</span>` : buyer?.paused ? html` <span class="badge paused">paused</span>` : ''}${buyer ? '' : html` <span class="badge bad">unknown</span>`}`;
}

function keysCell(source: SourceView): string {
  const active = source.keys.filter((k) => !('revokedAt' in k)).length;
  return `${active} active${source.keys.length > active ? ` (${source.keys.length - active} revoked)` : ''}`;
}

export function sourcesRoutes(ctx: ConsoleContext): Router {
  const router = Router();
  const { admin, models, signIn } = ctx;

  const buyerNames = async (ids: readonly string[]): Promise<Map<string, BuyerName>> =>
    new Map((await models.Buyer.find({ _id: { $in: [...new Set(ids)] } }, { name: 1, paused: 1, archivedAt: 1 }).lean<BuyerName[]>()).map((b) => [b._id, b]));

  /** A use case's 404 / 409 as a page; anything else is the page handler's (500). */
  function sendRefusal(res: Response, error: unknown, back: string): void {
    if (error instanceof NotFoundError) return signIn.sendHtml(res, 404, errorPage('Not found', error.message));
    if (error instanceof ConflictError) {
      return signIn.sendHtml(res, 409, layout({ title: 'Not done', active: 'sources', body: html`<div class="card"><h1>Not done</h1><p class="error" role="alert" id="refusal">${error.message}</p><p>Nothing was changed. <a href="${back}">Back</a></p></div>` }));
    }
    throw error;
  }

  // ---- list and create ----------------------------------------------------------------------

  function listPage(sources: SourceView[], form: { values?: Partial<Record<CreateField, string>>; errors?: FieldError[] } = {}): string {
    const values = form.values ?? {};
    const shown = CREATE_FIELDS.map(([path]) => path);
    const body = html`<h1>Sources</h1>
<table id="sources-list"><tr><th>name</th><th>id</th><th>keys</th><th>waterfall</th><th>freshness</th><th>duplicate window</th><th>created</th></tr>
${sources.map((s) => html`<tr data-source="${s.id}"><td><a href="/console/sources/${s.id}">${s.name}</a></td><td><code>${s.id}</code></td><td>${keysCell(s)}</td><td>${s.waterfall.length} buyer${s.waterfall.length === 1 ? '' : 's'}</td><td>${s.freshness}</td><td>${s.duplicateWindow}</td><td>${time(s.createdAt)}</td></tr>`)}
</table>
${sources.length ? '' : html`<p class="muted">No source yet.</p>`}
<p class="muted">Archived sources are not listed (their keys no longer authenticate; their leads stay in the delivery log).</p>
<h2 id="create">New source</h2>
<div class="card">
<form method="post" action="/console/sources" id="create-source">
${otherErrors(form.errors, shown)}
${CREATE_FIELDS.map(([path, label, hint, required]) => {
  const invalid = (form.errors ?? []).some((e) => e.path === path || e.path.startsWith(`${path}.`));
  return html`<div class="field${invalid ? ' invalid' : ''}"><label for="source-${path}">${label}</label><input id="source-${path}" name="${path}" value="${values[path] ?? ''}" placeholder="${hint}"${required ? html` required` : ''}>${fieldError(form.errors, path)}</div>`;
})}
<p class="muted">The source’s API key is shown once, on the next page after you confirm. Its waterfall starts empty: set it on the source’s page.</p>
<button type="submit">Create source…</button>
</form>
</div>`;
    return layout({ title: 'Sources', active: 'sources', body });
  }

  router.get('/sources', signIn.htmlHeaders, signIn.requireAccess, signIn.page(async (_req, res) => {
    signIn.sendHtml(res, 200, listPage(await admin.sources.list()));
  }));

  router.post('/sources', ...signIn.formPost(), signIn.page(async (req, res) => {
    const values = Object.fromEntries(CREATE_FIELDS.map(([path]) => [path, formText(req.body, path)])) as Record<CreateField, string>;
    const input = Object.fromEntries(Object.entries(values).filter(([, v]) => v !== ''));
    if (formText(req.body, 'confirm') !== 'yes') {
      const what = html`Create the source <strong>${values.name || '(no name)'}</strong>${CREATE_FIELDS.slice(1).map(([path, label]) => (values[path] ? html`, ${label.toLowerCase()} <code>${values[path]}</code>` : ''))}, with a new API key?`;
      return signIn.sendHtml(res, 200, confirmPage({ title: 'Create a source', what, action: '/console/sources', fields: values, button: 'Create the source', back: '/console/sources', once: newFormToken() }));
    }
    if (!(await spendOnce(ctx, req, res, { action: 'source:create', back: '/console/sources', active: 'sources', then: 'The source was created by the first post, and its key shown on that page only: it cannot be shown again. If it was not copied, add a new key on the source’s page.' }))) return;
    let created: Awaited<ReturnType<typeof admin.sources.create>>;
    try {
      created = await admin.sources.create(input);
    } catch (error) {
      if (error instanceof ValidationError) return signIn.sendHtml(res, 400, listPage(await admin.sources.list(), { values, errors: error.fields }));
      return sendRefusal(res, error, '/console/sources');
    }
    signIn.sendHtml(res, 200, keyPage({ title: `Source ${created.name} created`, sourceId: created.id, keyId: created.keys[0]?.keyId ?? '', apiKey: created.apiKey, intro: html`The source <strong>${created.name}</strong> (<code>${created.id}</code>) is created. Its API key:` }));
  }));

  /** The one page that ever shows a key (the store keeps only its hash). */
  function keyPage(options: { title: string; sourceId: string; keyId: string; apiKey: string; intro: Html }): string {
    return layout({
      title: options.title,
      active: 'sources',
      body: html`<div class="card"><h1>${options.title}</h1>
<p>${options.intro}</p>
<code class="shown-once" id="new-key">${options.apiKey}</code>
<p class="warning" role="alert" id="key-warning"><strong>Copy it now: it is shown this once.</strong> Only its hash is stored; no page or API can show it again. If it is lost, rotate the key and revoke this one (<code>${options.keyId}</code>).</p>
<p>The source sends leads with <code>Authorization: Bearer &lt;key&gt;</code> to <code>POST /v1/leads</code>.</p>
<p><a href="/console/sources/${options.sourceId}" id="to-source">Go to the source</a></p></div>`,
    });
  }

  // ---- one source ---------------------------------------------------------------------------

  async function sourcePage(sourceId: string, options: { flash?: string; errors?: FieldError[] } = {}): Promise<string> {
    const source = await admin.sources.get(sourceId);
    const live = (await admin.buyers.list()).map((b) => ({ id: b.id, name: b.name }));
    const names = await buyerNames(source.waterfall);
    const order = source.waterfall;
    const from = order.join(',');
    const editable = !source.archivedAt;
    /** A form posting a new order (the current one it was made from travels with it). */
    const orderForm = (buyers: readonly string[], button: Html | string, attrs: { id: string; className?: string; title: string }) =>
      html`<form method="post" action="/console/sources/${source.id}/waterfall"><input type="hidden" name="from" value="${from}">${buyers.map((b) => html`<input type="hidden" name="buyers" value="${b}">`)}<button type="submit" class="small ${attrs.className ?? 'secondary'}" id="${attrs.id}" title="${attrs.title}">${button}</button></form>`;
    const swap = (i: number, j: number) => order.map((b, k) => (k === i ? order[j]! : k === j ? order[i]! : b));
    const addable = live.filter((b) => !order.includes(b.id));
    const rows = order.map((buyerId, i) => html`<tr data-buyer="${buyerId}"><td>${i + 1}</td><td>${buyerLabel(buyerId, names.get(buyerId))}</td><td><code>${buyerId}</code></td>
<td>${editable ? html`<div class="actions">${i > 0 ? orderForm(swap(i, i - 1), '↑ up', { id: `up-${buyerId}`, title: `move ${buyerId} up` }) : ''}${i < order.length - 1 ? orderForm(swap(i, i + 1), '↓ down', { id: `down-${buyerId}`, title: `move ${buyerId} down` }) : ''}${orderForm(order.filter((b) => b !== buyerId), 'remove', { id: `remove-${buyerId}`, className: 'danger', title: `remove ${buyerId} from the waterfall` })}</div>` : ''}</td></tr>`);
    const keys = source.keys.map((k) => html`<tr data-key="${k.keyId}"><td><code>${k.keyId}</code></td><td>${time(k.createdAt)}</td><td>${'revokedAt' in k ? html`<span class="badge bad">revoked</span> ${time(k.revokedAt)}` : html`<span class="badge active">active</span>`}</td>
<td>${editable && !('revokedAt' in k) ? html`<form method="post" action="/console/sources/${source.id}/keys/${k.keyId}/revoke"><button type="submit" class="small danger" id="revoke-${k.keyId}">Revoke…</button></form>` : ''}</td></tr>`);
    const body = html`<p><a href="/console/sources">Sources</a> ›</p>
<h1>${source.name}</h1>
${source.archivedAt ? html`<p class="error" role="alert">Archived ${time(source.archivedAt)}: its keys no longer authenticate and it cannot be changed.</p>` : ''}
<table class="kv" id="settings">
<tr><th>id</th><td><code>${source.id}</code></td></tr>
<tr><th>freshness</th><td>${source.freshness} <span class="muted">(how long one buyer may hold a lead before the waterfall moves on)</span></td></tr>
<tr><th>duplicate window</th><td>${source.duplicateWindow} <span class="muted">(identical payloads without an id within it are repeats; "0s" = off)</span></td></tr>
<tr><th>PII retention</th><td>${'retention' in source ? source.retention : html`<span class="muted">the service default</span>`}</td></tr>
<tr><th>created</th><td>${time(source.createdAt)}</td></tr>
<tr><th>updated</th><td>${time(source.updatedAt)}</td></tr>
<tr><th>dead letters</th><td><a href="/console/dead-letters?sourceId=${source.id}">this source’s dead letters</a></td></tr>
</table>
<h2 id="waterfall-title">Waterfall</h2>
<p class="muted">Buyers are offered each lead in this order; the first that takes it keeps it.</p>
${otherErrors(options.errors, [])}
<table id="waterfall"><tr><th>#</th><th>buyer</th><th>id</th><th></th></tr>${rows}</table>
${order.length ? '' : html`<p class="warning" id="empty-waterfall">The waterfall is empty: every lead of this source is dead-lettered (<code>no_buyers</code>).</p>`}
${editable ? html`<form method="post" action="/console/sources/${source.id}/waterfall" class="actions" id="add-buyer-form"><input type="hidden" name="from" value="${from}">${order.map((b) => html`<input type="hidden" name="buyers" value="${b}">`)}
<label for="add-buyer">Add a buyer at the end</label> <select id="add-buyer" name="add" required><option value="">choose a live buyer…</option>${addable.map((b) => html`<option value="${b.id}">${b.name} (${b.id})</option>`)}</select> <button type="submit" id="add-buyer-submit">Add…</button></form>` : ''}
<h2>API keys</h2>
<table id="keys"><tr><th>key id</th><th>created</th><th>state</th><th></th></tr>${keys}</table>
<p class="muted">A key is shown only once, when it is made. Rotate by adding a new key, switching the source over, then revoking the old one.</p>
${editable ? html`<form method="post" action="/console/sources/${source.id}/keys"><button type="submit" id="rotate">Add a new key (rotate)…</button></form>` : ''}`;
    return layout({ title: source.name, active: 'sources', body, ...(options.flash ? { flash: options.flash } : {}) });
  }

  const sourceIdOf = (req: Request) => idParam(req, 'sourceId', 'Source');

  router.get('/sources/:sourceId', signIn.htmlHeaders, signIn.requireAccess, signIn.page(async (req, res) => {
    const flash = typeof req.query.done === 'string' ? FLASH[req.query.done] : undefined;
    try {
      signIn.sendHtml(res, 200, await sourcePage(sourceIdOf(req), flash ? { flash } : {}));
    } catch (error) {
      sendRefusal(res, error, '/console/sources');
    }
  }));

  router.post('/sources/:sourceId/waterfall', ...signIn.formPost(), signIn.page(async (req, res) => {
    let sourceId: string;
    try {
      sourceId = sourceIdOf(req);
    } catch (error) {
      return sendRefusal(res, error, '/console/sources');
    }
    const back = `/console/sources/${sourceId}`;
    const add = formText(req.body, 'add');
    const buyers = [...formList(req.body, 'buyers'), ...(add ? [add] : [])];
    const from = formText(req.body, 'from');
    if (buyers.some((b) => !SAFE_ID_RE.test(b)) || !from.split(',').every((b) => b === '' || SAFE_ID_RE.test(b))) {
      return signIn.sendHtml(res, 400, errorPage('Not done', 'The form carried something that is not a buyer id. Nothing was changed.'));
    }
    let current: string[];
    try {
      current = (await admin.sources.getWaterfall(sourceId)).buyers;
    } catch (error) {
      return sendRefusal(res, error, '/console/sources');
    }
    // The order was made from what the page showed; if someone changed it since, do not overwrite that.
    if (current.join(',') !== from) {
      return sendRefusal(res, new ConflictError('concurrent_change', 'The waterfall changed since the page was shown (another operator or the API). Reload the source’s page and make the change again.'), back);
    }
    const names = await buyerNames([...current, ...buyers]);
    const list = (ids: readonly string[], id: string) => (ids.length ? html`<ol id="${id}">${ids.map((b) => html`<li>${names.get(b)?.name ?? b} <code>${b}</code></li>`)}</ol>` : html`<p id="${id}" class="warning">empty: every lead of this source will be dead-lettered (<code>no_buyers</code>)</p>`);
    if (formText(req.body, 'confirm') !== 'yes') {
      return signIn.sendHtml(res, 200, confirmPage({
        title: 'Change the waterfall',
        what: 'New leads of this source will be offered to the buyers in the new order. Leads already on their way keep the plan they loaded.',
        details: html`<div class="cols"><div><h2>Now</h2>${list(current, 'current-order')}</div><div><h2>After</h2>${list(buyers, 'new-order')}</div></div>`,
        action: `/console/sources/${sourceId}/waterfall`,
        fields: { from, buyers },
        button: 'Save the waterfall',
        back,
      }));
    }
    try {
      await admin.sources.setWaterfall(sourceId, { buyers });
    } catch (error) {
      if (error instanceof ValidationError) {
        // The rows' errors are by position in the order sent: map them onto the buyers' names.
        const fields = error.fields.map((e) => {
          const index = /^buyers\.(\d+)$/.exec(e.path)?.[1];
          return index === undefined ? e : { path: 'buyers', message: `${names.get(buyers[Number(index)] ?? '')?.name ?? buyers[Number(index)] ?? 'a buyer'}: ${e.message}` };
        });
        return signIn.sendHtml(res, 400, await sourcePage(sourceId, { errors: fields }));
      }
      return sendRefusal(res, error, back);
    }
    res.redirect(303, `${back}?done=waterfall`);
  }));

  router.post('/sources/:sourceId/keys', ...signIn.formPost(), signIn.page(async (req, res) => {
    let source: SourceView;
    try {
      source = await admin.sources.get(sourceIdOf(req));
    } catch (error) {
      return sendRefusal(res, error, '/console/sources');
    }
    const back = `/console/sources/${source.id}`;
    if (formText(req.body, 'confirm') !== 'yes') {
      return signIn.sendHtml(res, 200, confirmPage({
        title: 'Add a new key',
        what: html`Add a new API key to <strong>${source.name}</strong>? The current keys stay valid until you revoke them. The new key is shown once, on the next page.`,
        action: `/console/sources/${source.id}/keys`,
        fields: {},
        button: 'Add the key',
        back,
        once: newFormToken(),
      }));
    }
    if (!(await spendOnce(ctx, req, res, { action: `source:${source.id}:key`, back, active: 'sources', then: 'The key was added by the first post and shown on that page only: it cannot be shown again. If it was not copied, add another and revoke the lost one.' }))) return;
    let key: { keyId: string; apiKey: string };
    try {
      key = await admin.sources.addKey(source.id);
    } catch (error) {
      return sendRefusal(res, error, back);
    }
    signIn.sendHtml(res, 200, keyPage({ title: 'New API key', sourceId: source.id, keyId: key.keyId, apiKey: key.apiKey, intro: html`A new key for <strong>${source.name}</strong> (key id <code>${key.keyId}</code>). The older keys still work until revoked:` }));
  }));

  router.post('/sources/:sourceId/keys/:keyId/revoke', ...signIn.formPost(), signIn.page(async (req, res) => {
    let source: SourceView;
    let keyId: string;
    try {
      source = await admin.sources.get(sourceIdOf(req));
      keyId = idParam(req, 'keyId', 'Key');
    } catch (error) {
      return sendRefusal(res, error, '/console/sources');
    }
    const back = `/console/sources/${source.id}`;
    if (formText(req.body, 'confirm') !== 'yes') {
      const others = source.keys.filter((k) => k.keyId !== keyId && !('revokedAt' in k)).length;
      return signIn.sendHtml(res, 200, confirmPage({
        title: 'Revoke a key',
        what: html`Revoke the key <code>${keyId}</code> of <strong>${source.name}</strong>? Leads sent with it are refused (401) from then on.${others ? '' : html` <strong>It is the source’s last active key:</strong> the source cannot send leads until a new key is added.`}`,
        action: `/console/sources/${source.id}/keys/${keyId}/revoke`,
        fields: {},
        button: 'Revoke the key',
        back,
        danger: true,
      }));
    }
    try {
      await admin.sources.revokeKey(source.id, keyId);
    } catch (error) {
      return sendRefusal(res, error, back);
    }
    res.redirect(303, `${back}?done=revoked`);
  }));

  return router;
}
