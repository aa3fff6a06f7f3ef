/**
 * The console's Buyers section: the list (state, breakers, last success, failing endpoints, caps
 * used now, hours, returns pending) with a form to add a buyer; a buyer's page (settings, usage,
 * returns, its endpoints with their masked settings and breakers) with its actions — pause /
 * resume the buyer, reset / open an endpoint's breaker, archive an endpoint — each confirmed first
 * and then redirected back with a fixed flash message; the settings form; the endpoint forms
 * (endpoint-form.ts) with the mapping preview beside an edit.
 *
 *   GET  /console/buyers                                       list, add form
 *   POST /console/buyers                                       add (admin.buyers.create)
 *   GET  /console/buyers/:buyerId                              a buyer's page
 *   GET  /console/buyers/:buyerId/settings, POST the same      settings (admin.buyers.update)
 *   POST /console/buyers/:buyerId/pause | /resume              operator.breakers.pauseBuyer / resumeBuyer
 *   GET  /console/buyers/:buyerId/endpoints/new?kind=…         add an endpoint (a kind chooser without kind)
 *   POST /console/buyers/:buyerId/endpoints                    admin.endpoints.create (secrets generated shown once; one-time form token)
 *   GET  /console/buyers/:buyerId/endpoints/:endpointId/edit   edit form + mapping preview
 *   POST /console/buyers/:buyerId/endpoints/:endpointId        admin.endpoints.update
 *   POST /console/buyers/:buyerId/endpoints/:endpointId/breaker/reset | /open   operator.breakers.command
 *   POST /console/buyers/:buyerId/endpoints/:endpointId/archive                 admin.endpoints.archive
 *
 * Every action goes through the use cases of the admin and operator APIs; nothing here writes to
 * the store. Reads for the list are one query per collection for all buyers (endpoints, published
 * breaker states) and, per buyer, one indexed query each for its last success, its pending
 * returns and each capped window's usage.
 */
import { Router, type Request, type Response } from 'express';
import { breakerWorkflowId } from '../../../shared/breaker';
import { capacityKeys, formatOpening, scheduleState, type Schedule } from '../../../shared/buyer-controls';
import { errorMessage, type FieldError } from '../../../shared/errors';
import { html, time, type Html, type Part } from '../../../shared/http/pages/html';
import { idParam, parseBody } from '../../../shared/http/validate';
import type { BreakerStateDoc, EndpointDoc, LogEntryDoc } from '../../../shared/store';
import type { BuyerView } from '../admin/buyers';
import { reasonBody } from '../operator/breakers';
import { scheduleJson, settingsBody, settingsForm, settingsFromBody, settingsFromView } from './buyer-settings';
import {
  createdBody,
  emptyValues,
  endpointBody,
  endpointForm,
  kindSettingsOf,
  previewPanel,
  valuesFromBody,
  valuesFromView,
  type EndpointPreview,
  type EndpointView,
  type KindInfo,
} from './endpoint-form';
import { formBody, sendRefusal, text, tryUseCase } from './form-input';
import type { ConsoleContext } from './index';
import { confirmPage, fieldError, layout, leadLinks, otherErrors, workflowHref } from './layout';
import { newFormToken, spendOnce } from './once';

/** The flash messages an action's redirect may ask for (`?done=<key>`): a fixed set. */
export const DONE_MESSAGES: Readonly<Record<string, string>> = {
  created: 'Buyer added. Give it endpoints, then put it in a source’s waterfall.',
  settings: 'Settings saved.',
  paused: 'Buyer paused: it takes no leads until resumed.',
  resumed: 'Buyer resumed; its tripped breakers were reset.',
  'breaker-reset': 'Breaker reset: its workflow applied it and the endpoint takes deliveries again.',
  'breaker-open': 'Breaker opened: its workflow applied it; nothing is sent to the endpoint until it is reset.',
  'endpoint-archived': 'Endpoint archived.',
  'endpoint-saved': 'Endpoint saved.',
};

export function doneMessage(done: unknown): string | undefined {
  return typeof done === 'string' && Object.hasOwn(DONE_MESSAGES, done) ? DONE_MESSAGES[done] : undefined;
}

const BREAKER_ACTIONS = ['reset', 'open'] as const;
type BreakerAction = (typeof BREAKER_ACTIONS)[number];

type BreakerRead = Awaited<ReturnType<ConsoleContext['operator']['breakers']['get']>>;
/** An endpoint's breaker on the buyer's page: its workflow's answer, or the published state when it did not answer. */
type BreakerShown = { from: 'workflow'; breaker: BreakerRead } | { from: 'published'; state: BreakerStateDoc['state']; failing: boolean; error?: string };

const buyerHref = (buyerId: string) => `/console/buyers/${encodeURIComponent(buyerId)}`;
const endpointHref = (buyerId: string, endpointId: string) => `${buyerHref(buyerId)}/endpoints/${encodeURIComponent(endpointId)}`;

/** A badge; `classes`: its colour (a state name such as open, paused, active) and any other class. */
function badge(classes: string, label: Part = classes, attrs: Html = html``): Html {
  return html`<span class="badge ${classes}"${attrs}>${label}</span>`;
}

function buyerStateBadge(view: Pick<BuyerView, 'paused' | 'archivedAt'> & { pause?: BuyerView['pause'] }): Html {
  if (view.archivedAt) return badge('archived', 'archived', html` data-buyer-state="archived"`);
  if (!view.paused) return badge('active', 'active', html` data-buyer-state="active"`);
  return html`${badge('paused', 'paused', html` data-buyer-state="paused"`)}${view.pause ? html` <span class="muted">by ${view.pause.by}${view.pause.endpointId ? html` (breaker of <code>${view.pause.endpointId}</code>)` : ''}: ${view.pause.reason}, ${time(view.pause.at)}</span>` : ''}`;
}

/** "open until 20:00 CST", "closed (opens Mon 08:00 CST)", "always open". */
function hoursNow(schedule: Schedule | undefined, timeZone: string, now: number): Html {
  if (!schedule) return html`<span class="badge ok">always open</span>`;
  const state = scheduleState(schedule, timeZone, now);
  if (state.open) return html`<span class="badge ok">open</span>${state.closesAt !== undefined ? html` <span class="muted">until ${formatOpening(state.closesAt, timeZone, now)}</span>` : ''}`;
  return html`<span class="badge warn">closed</span> <span class="muted">${state.nextOpenAt !== undefined ? `opens ${formatOpening(state.nextOpenAt, timeZone, now)}` : 'nothing opens within 14 days'}</span>`;
}

/** Caps with what is used of each window now ("daily 3 / 10"). */
function capsUsed(usage: Readonly<Record<string, number>>, limits: ReadonlyArray<{ window: string; limit: number }>): Html {
  if (!limits.length) return html`<span class="muted">no caps</span>`;
  return html`${limits.map((l, i) => html`${i ? html`<br>` : ''}<span class="mono" data-cap="${l.window}">${l.window} ${usage[l.window] ?? 0} / ${l.limit}</span>`)}`;
}

export function buyerRoutes(ctx: ConsoleContext): Router {
  const router = Router();
  const { models, signIn, admin, operator, links } = ctx;
  const get = [signIn.htmlHeaders, signIn.requireAccess] as const;

  /** A page whose use cases may refuse (not found, archived, unavailable): the refusal as a page. */
  const handle = (back: (req: Request) => string, handler: (req: Request, res: Response) => Promise<void>) =>
    signIn.page(async (req, res) => {
      try {
        await handler(req, res);
      } catch (error) {
        if (!sendRefusal(ctx, res, error, back(req))) throw error;
      }
    });
  const toList = () => '/console/buyers';
  const toBuyer = (req: Request) => (typeof req.params.buyerId === 'string' ? buyerHref(req.params.buyerId) : '/console/buyers');
  const buyerIdOf = (req: Request) => idParam(req, 'buyerId', 'Buyer');
  const endpointIdOf = (req: Request) => idParam(req, 'endpointId', 'Endpoint');
  const kinds = (): KindInfo[] => admin.endpoints.kinds();

  // ---- the list ------------------------------------------------------------------------------

  async function listPage(options: { archived: boolean; errors?: FieldError[]; values?: { name: string; accept: string }; flash?: string | undefined }): Promise<string> {
    const now = Date.now();
    const buyers = await admin.buyers.list(options.archived ? { archived: 'true' } : {});
    const ids = buyers.map((b) => b.id);
    const endpoints = ids.length
      ? await models.Endpoint.find({ buyerId: { $in: ids }, archivedAt: { $exists: false } }, { buyerId: 1, kind: 1, role: 1, name: 1 }).sort({ createdAt: 1 }).lean<Array<Pick<EndpointDoc, '_id' | 'buyerId' | 'kind' | 'role' | 'name'>>>()
      : [];
    const breakers = endpoints.length ? await models.BreakerState.find({ _id: { $in: endpoints.map((e) => e._id) } }).lean<BreakerStateDoc[]>() : [];
    const breakerOf = new Map(breakers.map((b) => [b._id, b]));
    const rows = await Promise.all(
      buyers.map(async (buyer) => {
        const windows = capacityKeys({ timeZone: buyer.timeZone, caps: buyer.caps, ...(buyer.schedule ? { schedule: buyer.schedule } : {}) }, now);
        const [lastSuccess, pendingReturns, used] = await Promise.all([
          // The buyer's latest attempt that succeeded: the {type, buyerId, at, _id} index walked backwards.
          models.LogEntry.findOne({ type: 'attempt', buyerId: buyer.id, outcome: 'success' }, { at: 1, leadId: 1, endpointId: 1 })
            .sort({ at: -1, _id: -1 })
            .hint({ type: 1, buyerId: 1, at: 1, _id: 1 })
            .lean<Pick<LogEntryDoc, 'at' | 'leadId' | 'endpointId'>>(),
          models.Lead.countDocuments({ buyerId: buyer.id, returnStatus: 'pending' }),
          Promise.all(windows.map((w) => models.BuyerUsage.countDocuments({ buyerId: buyer.id, key: w.key, slot: { $gt: 0 } }))),
        ]);
        const usage = Object.fromEntries(windows.map((w, i) => [w.window, used[i] ?? 0]));
        return { buyer, lastSuccess, pendingReturns, usage, windows, endpoints: endpoints.filter((e) => e.buyerId === buyer.id) };
      }),
    );
    const values = options.values ?? { name: '', accept: 'all' };
    const errors = options.errors ?? [];
    const nameInvalid = errors.some((e) => e.path === 'name');
    const body = html`<h1>Buyers</h1>
<p class="muted">Breakers as published by their workflows (absent: closed); “failing” = at least one failure since the endpoint’s last success (the count is on the buyer’s page). Caps: leads taken in each window now. Times are UTC.
${options.archived ? html`<a href="/console/buyers">Hide archived buyers</a>` : html`<a href="/console/buyers?archived=true">Show archived buyers</a>`}</p>
<table id="buyers"><tr><th>buyer</th><th>state</th><th>endpoints · breakers</th><th>last success</th><th>caps used now</th><th>hours now</th><th>returns pending</th></tr>
${rows.map((r) => html`<tr data-buyer="${r.buyer.id}"><td><a href="${buyerHref(r.buyer.id)}">${r.buyer.name}</a><br><code class="muted">${r.buyer.id}</code></td>
<td>${buyerStateBadge(r.buyer)}</td>
<td>${r.endpoints.length ? r.endpoints.map((e) => {
      const b = breakerOf.get(e._id);
      const state = b?.state ?? 'closed';
      return html`<div data-endpoint="${e._id}"><span class="mono">${e.name ?? e._id}</span> <span class="muted">${e.kind}${e.role === 'notify' ? ', notify' : ''}</span> ${badge(state, state.replace('_', '-'), html` data-breaker="${state}"`)}${b?.failing ? html` ${badge('warn', 'failing', html` data-failing="true"`)}` : ''}</div>`;
    }) : html`<span class="muted">none</span>`}</td>
<td>${r.lastSuccess ? html`${time(r.lastSuccess.at)}<br><span class="muted">${leadLinks(links, r.lastSuccess.leadId)}</span>` : html`<span class="muted">never</span>`}</td>
<td>${capsUsed(r.usage, r.windows)}</td>
<td>${hoursNow(r.buyer.schedule, r.buyer.timeZone, now)}</td>
<td>${r.pendingReturns ? html`<strong data-returns-pending="${r.pendingReturns}">${r.pendingReturns}</strong>` : html`<span class="muted" data-returns-pending="0">0</span>`}</td></tr>`)}
</table>
${rows.length ? '' : html`<p class="muted">No buyers yet.</p>`}
<h2>Add a buyer</h2>
<form method="post" action="/console/buyers" class="card" id="add-buyer" novalidate>
${otherErrors(errors, ['name', 'accept'])}
<div class="cols">
<div class="field${nameInvalid ? ' invalid' : ''}" id="field-name"><label for="name">Name</label><input type="text" id="name" name="name" value="${values.name}"${nameInvalid ? html` aria-invalid="true" aria-describedby="error-name"` : ''}>${fieldError(errors, 'name')}</div>
<div class="field" id="field-accept"><label for="accept">Accept rule</label><select id="accept" name="accept">${[['all', 'all: every accept endpoint must take the lead'], ['any', 'any: one accept endpoint is enough']].map(([v, l]) => html`<option value="${v}"${v === values.accept ? html` selected` : ''}>${l}</option>`)}</select>${fieldError(errors, 'accept')}</div>
</div>
<p class="muted">Caps, hours and windows are on the buyer’s settings page once it exists.</p>
<div class="actions"><button type="submit" id="add-buyer-submit">Add buyer</button></div>
</form>`;
    return layout({ title: 'Buyers', active: 'buyers', body, ...(options.flash ? { flash: options.flash } : {}) });
  }

  router.get('/buyers', ...get, handle(toList, async (req, res) => {
    signIn.sendHtml(res, 200, await listPage({ archived: req.query.archived === 'true', flash: doneMessage(req.query.done) }));
  }));

  router.post('/buyers', ...signIn.formPost(), handle(toList, async (req, res) => {
    const body = formBody(req);
    const values = { name: body.name ?? '', accept: text(body, 'accept') || 'all' };
    const result = await tryUseCase(() => admin.buyers.create({ name: text(body, 'name'), accept: values.accept }));
    if (!result.ok) return signIn.sendHtml(res, 400, await listPage({ archived: false, errors: result.errors, values }));
    res.redirect(303, `${buyerHref(result.value.id)}?done=created`);
  }));

  // ---- a buyer's page ------------------------------------------------------------------------

  async function breakerOf(endpoint: EndpointView): Promise<BreakerShown> {
    try {
      return { from: 'workflow', breaker: await operator.breakers.get(endpoint.id) };
    } catch (error) {
      const doc = await models.BreakerState.findById(endpoint.id).lean<BreakerStateDoc>();
      return { from: 'published', state: doc?.state ?? 'closed', failing: doc?.failing ?? false, error: errorMessage(error) };
    }
  }

  function breakerCell(endpoint: EndpointView, shown: BreakerShown): Html {
    const state = shown.from === 'workflow' ? shown.breaker.state : shown.state;
    const stateBadge = badge(`${state} breaker-state`, state.replace('_', '-'), html` data-breaker="${state}"`);
    const link = html`<a href="${workflowHref(links, breakerWorkflowId(endpoint.id))}" class="muted" title="the breaker's workflow in the Temporal UI">(workflow)</a>`;
    if (shown.from === 'published') {
      return html`<div class="breaker">${stateBadge}${shown.failing ? html` ${badge('warn', 'failing')}` : ''} ${link}<div class="muted">as published; the breaker’s workflow did not answer (${shown.error ?? 'unknown'}).</div></div>`;
    }
    const b = shown.breaker;
    return html`<div class="breaker">${stateBadge}${b.forced ? html` ${badge('bad', 'forced open')}` : ''} ${link}
<table class="kv">
<tr><th>consecutive failures</th><td id="streak-${endpoint.id}">${b.consecutiveFailures} of ${b.threshold}</td></tr>
<tr><th>trips since closed</th><td>${b.trips}</td></tr>
${b.openedAt ? html`<tr><th>opened</th><td>${time(new Date(b.openedAt))}</td></tr>` : ''}
${b.halfOpenAt ? html`<tr><th>half-open at</th><td>${time(new Date(b.halfOpenAt))}</td></tr>` : ''}
${b.lastError ? html`<tr><th>last error</th><td><code>${b.lastError.code}</code> ${b.lastError.reason} <span class="muted">${time(new Date(b.lastError.at))}${b.lastError.leadId ? html` · ${leadLinks(links, b.lastError.leadId)}` : ''}</span></td></tr>` : ''}
<tr><th>totals</th><td>${b.counts.successes} successes, ${b.counts.failures} failures, opened ${b.counts.opened} times</td></tr>
</table></div>`;
  }

  function settingValue(value: unknown): Html {
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return html`<code>${String(value)}</code>`;
    return html`<pre>${JSON.stringify(value, null, 2)}</pre>`;
  }

  function endpointCard(buyer: BuyerView, endpoint: EndpointView, shown: BreakerShown, errors: FieldError[], errorsFor: string | undefined): Html {
    const settings = kindSettingsOf(endpoint);
    const live = !endpoint.archivedAt && !buyer.archivedAt;
    const href = endpointHref(buyer.id, endpoint.id);
    const mine = errorsFor === endpoint.id ? errors : [];
    return html`<div class="card endpoint" id="endpoint-${endpoint.id}" data-endpoint="${endpoint.id}">
<h3>${endpoint.name ?? endpoint.kind} <code class="muted">${endpoint.id}</code> ${badge('skip', endpoint.kind)} ${badge(endpoint.role === 'accept' ? 'info' : 'skip', endpoint.role)}${endpoint.archivedAt ? html` ${badge('archived', 'archived')}` : ''}</h3>
<div class="cols"><div>
<table class="kv">
${Object.entries(settings).map(([k, v]) => html`<tr><th>${k}</th><td>${settingValue(v)}</td></tr>`)}
<tr><th>mapping</th><td>${endpoint.mapping ? settingValue(endpoint.mapping) : html`<span class="muted">none: the lead’s fields as they are</span>`}</td></tr>
<tr><th>backoff</th><td><code>${endpoint.backoff.join(', ')}</code></td></tr>
<tr><th>timeout</th><td><code>${endpoint.timeoutMs} ms</code></td></tr>
<tr><th>breaker settings</th><td>threshold <code>${endpoint.breaker.threshold}</code>, cool-down <code>${endpoint.breaker.coolDown}</code></td></tr>
<tr><th>throttle</th><td>${endpoint.throttle ? html`${endpoint.throttle.perSecond !== undefined ? html`<code>${endpoint.throttle.perSecond}/s</code> ` : ''}${endpoint.throttle.perMinute !== undefined ? html`<code>${endpoint.throttle.perMinute}/min</code>` : ''}` : html`<span class="muted">none</span>`}</td></tr>
<tr><th>version</th><td>${endpoint.version} · saved ${time(endpoint.updatedAt)}</td></tr>
</table></div>
<div><h4>Breaker</h4>${breakerCell(endpoint, shown)}</div></div>
${live ? html`<div class="actions">
<a href="${href}/edit">Edit, mapping preview</a>
${BREAKER_ACTIONS.map((action) => html`<form method="post" action="${href}/breaker/${action}" class="actions"><input type="text" name="reason" placeholder="reason (optional)" aria-label="reason" maxlength="500"><button type="submit" class="${action === 'open' ? 'danger' : 'secondary'}" id="breaker-${action}-${endpoint.id}">${action === 'reset' ? 'Reset breaker' : 'Open breaker'}</button></form>`)}
<form method="post" action="${href}/archive"><button type="submit" class="danger" id="archive-${endpoint.id}">Archive endpoint</button></form>
</div>${otherErrors(mine, [])}` : ''}
</div>`;
  }

  async function buyerPage(buyerId: string, options: { flash?: string | undefined; errors?: FieldError[]; errorsFor?: string; status?: number } = {}): Promise<{ status: number; page: string }> {
    const now = Date.now();
    const buyer = await admin.buyers.get(buyerId);
    const endpoints = await admin.endpoints.list(buyerId, buyer.archivedAt ? { archived: 'true' } : {});
    const breakers = await Promise.all(endpoints.map((e) => breakerOf(e)));
    const errors = options.errors ?? [];
    const windows = capacityKeys({ timeZone: buyer.timeZone, caps: buyer.caps, ...(buyer.schedule ? { schedule: buyer.schedule } : {}) }, now);
    const usage = (buyer.usage ?? {}) as Record<string, number>;
    const live = !buyer.archivedAt;
    const href = buyerHref(buyer.id);
    const pauseErrors = options.errorsFor === 'pause' ? errors : [];
    const sourceCaps = Object.entries(buyer.sourceCaps);
    const returns = buyer.returns;
    const activeKeys = buyer.keys.filter((k) => !('revokedAt' in k)).length;
    const body = html`<p><a href="/console/buyers">← Buyers</a></p>
<h1 id="buyer-name">${buyer.name}</h1>
<p><code>${buyer.id}</code> · <span id="buyer-state">${buyerStateBadge(buyer)}</span></p>
${live ? html`<div class="card actions" id="buyer-actions">
${buyer.paused
  ? html`<form method="post" action="${href}/resume" class="actions"><input type="text" name="reason" placeholder="reason (optional)" aria-label="reason for resuming" maxlength="500"><button type="submit" id="resume">Resume buyer</button></form>`
  : html`<form method="post" action="${href}/pause" class="actions"><div class="field${pauseErrors.length ? ' invalid' : ''}" id="field-reason"><input type="text" id="reason" name="reason" placeholder="reason (required)" aria-label="reason for pausing" maxlength="500"${pauseErrors.length ? html` aria-invalid="true" aria-describedby="error-reason"` : ''}>${fieldError(pauseErrors, 'reason')}</div><button type="submit" class="danger" id="pause">Pause buyer</button></form>`}
<a href="${href}/settings" id="edit-settings">Edit settings</a>
<span>Add an endpoint: ${kinds().map((k, i) => html`${i ? ' · ' : ''}<a href="${href}/endpoints/new?kind=${encodeURIComponent(k.kind)}" id="add-${k.kind}" title="${k.description}">${k.kind}</a>`)}</span>
</div>` : html`<p class="notice">Archived ${time(buyer.archivedAt)}: read only.</p>`}
<h2>Settings</h2>
<table class="kv card" id="settings">
<tr><th>accept rule</th><td><code>${buyer.accept}</code> ${buyer.accept === 'all' ? '(every accept endpoint must take the lead)' : '(one accept endpoint is enough)'}</td></tr>
<tr><th>time zone</th><td><code>${buyer.timeZone}</code></td></tr>
<tr><th>caps (used now / limit)</th><td>${capsUsed(usage, windows)}</td></tr>
${sourceCaps.length ? html`<tr><th>caps per source</th><td>${sourceCaps.map(([sourceId, caps]) => html`<div><a href="/console/sources/${sourceId}"><code>${sourceId}</code></a>: ${Object.entries(caps).map(([w, limit]) => html`<span class="mono">${w} ${buyer.usage?.bySource?.[sourceId]?.[w as keyof typeof caps] ?? 0} / ${limit}</span> `)}</div>`)}</td></tr>` : ''}
<tr><th>cap warning</th><td>${buyer.capWarning !== undefined ? html`<code>${buyer.capWarning} %</code>` : html`<span class="muted">none</span>`}</td></tr>
<tr><th>hours now</th><td id="hours-now">${hoursNow(buyer.schedule, buyer.timeZone, now)}</td></tr>
<tr><th>schedule</th><td>${buyer.schedule ? html`<pre>${scheduleJson(buyer.schedule)}</pre>` : html`<span class="muted">none: always open</span>`}</td></tr>
<tr><th>duplicate window</th><td><code>${buyer.duplicateWindow}</code></td></tr>
<tr><th>return window</th><td><code>${buyer.returnWindow}</code></td></tr>
<tr><th>returns</th><td id="returns">${returns ? html`pending <strong>${returns.pending}</strong>, approved ${returns.approved}, denied ${returns.denied}, expired ${returns.expired}` : '—'}</td></tr>
<tr><th>buyer API keys</th><td>${activeKeys} active</td></tr>
<tr><th>created · updated</th><td>${time(buyer.createdAt)} · ${time(buyer.updatedAt)}</td></tr>
</table>
<h2>Endpoints</h2>
${endpoints.length ? endpoints.map((e, i) => endpointCard(buyer, e, breakers[i]!, errors, options.errorsFor)) : html`<p class="muted" id="no-endpoints">No endpoints: the buyer cannot take leads yet.</p>`}`;
    return { status: options.status ?? 200, page: layout({ title: buyer.name, active: 'buyers', body, ...(options.flash ? { flash: options.flash } : {}) }) };
  }

  router.get('/buyers/:buyerId', ...get, handle(toList, async (req, res) => {
    const { status, page } = await buyerPage(buyerIdOf(req), { flash: doneMessage(req.query.done) });
    signIn.sendHtml(res, status, page);
  }));

  // ---- settings ------------------------------------------------------------------------------

  function settingsPage(buyer: BuyerView, values: ReturnType<typeof settingsFromView>, errors: FieldError[]): string {
    const href = buyerHref(buyer.id);
    return layout({
      title: `Settings · ${buyer.name}`,
      active: 'buyers',
      body: html`<p><a href="${href}">← ${buyer.name}</a></p><h1>Settings of ${buyer.name}</h1>
<div class="card">${settingsForm({ action: `${href}/settings`, values, errors, cancel: href })}</div>`,
    });
  }

  router.get('/buyers/:buyerId/settings', ...get, handle(toBuyer, async (req, res) => {
    const buyer = await admin.buyers.get(buyerIdOf(req));
    signIn.sendHtml(res, 200, settingsPage(buyer, settingsFromView(buyer), []));
  }));

  router.post('/buyers/:buyerId/settings', ...signIn.formPost(), handle(toBuyer, async (req, res) => {
    const buyerId = buyerIdOf(req);
    const form = formBody(req);
    const decoded = settingsBody(form);
    const result = decoded.errors.length ? { ok: false as const, errors: decoded.errors } : await tryUseCase(() => admin.buyers.update(buyerId, decoded.body));
    if (!result.ok) return signIn.sendHtml(res, 400, settingsPage(await admin.buyers.get(buyerId), settingsFromBody(form), result.errors));
    res.redirect(303, `${buyerHref(buyerId)}?done=settings`);
  }));

  // ---- pause / resume ------------------------------------------------------------------------

  router.post('/buyers/:buyerId/pause', ...signIn.formPost(), handle(toBuyer, async (req, res) => {
    const buyerId = buyerIdOf(req);
    const form = formBody(req);
    const reason = text(form, 'reason');
    // The use case's own schema, before asking: a pause needs a reason.
    const checked = await tryUseCase(() => Promise.resolve(parseBody(reasonBody, { reason })));
    if (!checked.ok) {
      const { status, page } = await buyerPage(buyerId, { errors: checked.errors, errorsFor: 'pause', status: 400 });
      return signIn.sendHtml(res, status, page);
    }
    if (form.confirm !== 'yes') {
      const buyer = await admin.buyers.get(buyerId);
      return signIn.sendHtml(res, 200, confirmPage({
        title: `Pause ${buyer.name}?`,
        what: html`The buyer takes no leads until an operator resumes it: each waterfall passes it by (on record as paused) and leads go to the next buyer. Reason on record: “${reason}”.`,
        action: `${buyerHref(buyerId)}/pause`, fields: { reason }, button: 'Pause buyer', back: buyerHref(buyerId), danger: true,
      }));
    }
    await operator.breakers.pauseBuyer(buyerId, { reason });
    res.redirect(303, `${buyerHref(buyerId)}?done=paused`);
  }));

  router.post('/buyers/:buyerId/resume', ...signIn.formPost(), handle(toBuyer, async (req, res) => {
    const buyerId = buyerIdOf(req);
    const form = formBody(req);
    const reason = text(form, 'reason');
    if (form.confirm !== 'yes') {
      const buyer = await admin.buyers.get(buyerId);
      return signIn.sendHtml(res, 200, confirmPage({
        title: `Resume ${buyer.name}?`,
        what: html`The buyer takes leads again, and every breaker of its endpoints that is not closed is reset (each acknowledged by its workflow).${buyer.pause ? html` It was paused by ${buyer.pause.by}: “${buyer.pause.reason}”.` : ''}`,
        action: `${buyerHref(buyerId)}/resume`, fields: { reason }, button: 'Resume buyer', back: buyerHref(buyerId),
      }));
    }
    await operator.breakers.resumeBuyer(buyerId, reason ? { reason } : {});
    res.redirect(303, `${buyerHref(buyerId)}?done=resumed`);
  }));

  // ---- breakers, archive ---------------------------------------------------------------------

  for (const action of BREAKER_ACTIONS) {
    router.post(`/buyers/:buyerId/endpoints/:endpointId/breaker/${action}`, ...signIn.formPost(), handle(toBuyer, async (req, res) => {
      const buyerId = buyerIdOf(req);
      // The endpoint must be this buyer's (404 otherwise).
      const endpoint = await admin.endpoints.get(buyerId, endpointIdOf(req));
      const form = formBody(req);
      const reason = text(form, 'reason');
      if (form.confirm !== 'yes') {
        const shown = await breakerOf(endpoint);
        const state = shown.from === 'workflow' ? shown.breaker.state : shown.state;
        return signIn.sendHtml(res, 200, confirmPage({
          title: action === 'reset' ? 'Reset this breaker?' : 'Open this breaker?',
          what: breakerQuestion(action, endpoint, state, reason),
          action: `${endpointHref(buyerId, endpoint.id)}/breaker/${action}`, fields: { reason }, button: action === 'reset' ? 'Reset breaker' : 'Open breaker', back: buyerHref(buyerId), danger: action === 'open',
        }));
      }
      await operator.breakers.command(endpoint.id, action, reason ? { reason } : {});
      res.redirect(303, `${buyerHref(buyerId)}?done=breaker-${action}#endpoint-${endpoint.id}`);
    }));
  }

  router.post('/buyers/:buyerId/endpoints/:endpointId/archive', ...signIn.formPost(), handle(toBuyer, async (req, res) => {
    const buyerId = buyerIdOf(req);
    const endpoint = await admin.endpoints.get(buyerId, endpointIdOf(req));
    if (formBody(req).confirm !== 'yes') {
      return signIn.sendHtml(res, 200, confirmPage({
        title: 'Archive this endpoint?',
        what: html`Endpoint <code>${endpoint.id}</code> (${endpoint.name ?? endpoint.kind}) takes no more deliveries: routing skips it and an attempt already on its way sends nothing. It stays readable for the delivery log and cannot be changed or brought back (add a new endpoint instead).`,
        action: `${endpointHref(buyerId, endpoint.id)}/archive`, fields: {}, button: 'Archive endpoint', back: buyerHref(buyerId), danger: true,
      }));
    }
    await admin.endpoints.archive(buyerId, endpoint.id);
    res.redirect(303, `${buyerHref(buyerId)}?done=endpoint-archived`);
  }));

  // ---- endpoints: add, edit ------------------------------------------------------------------

  function endpointPage(options: { buyer: BuyerView; title: string; form: Html; preview?: Html; flash?: string | undefined }): string {
    const href = buyerHref(options.buyer.id);
    return layout({
      title: `${options.title} · ${options.buyer.name}`,
      active: 'buyers',
      ...(options.flash ? { flash: options.flash } : {}),
      body: html`<p><a href="${href}">← ${options.buyer.name}</a></p><h1>${options.title}</h1>
${options.preview ? html`<div class="cols"><div class="card">${options.form}</div><div>${options.preview}</div></div>` : html`<div class="card">${options.form}</div>`}`,
    });
  }

  function kindChooser(buyer: BuyerView, unknown?: string): string {
    const href = buyerHref(buyer.id);
    return layout({
      title: `Add an endpoint · ${buyer.name}`,
      active: 'buyers',
      body: html`<p><a href="${href}">← ${buyer.name}</a></p><h1>Add an endpoint to ${buyer.name}</h1>
${unknown !== undefined ? html`<p class="error" role="alert">There is no kind “${unknown}”: choose one of these.</p>` : ''}
<ul id="kinds">${kinds().map((k) => html`<li><a href="${href}/endpoints/new?kind=${encodeURIComponent(k.kind)}">${k.kind}</a> — ${k.description}${k.kind === 'webhook' ? '' : html` <span class="muted">(settings as JSON)</span>`}</li>`)}</ul>`,
    });
  }

  router.get('/buyers/:buyerId/endpoints/new', ...get, handle(toBuyer, async (req, res) => {
    const buyer = await admin.buyers.get(buyerIdOf(req));
    const kindName = typeof req.query.kind === 'string' ? req.query.kind : undefined;
    const kind = kinds().find((k) => k.kind === kindName);
    if (!kind) return signIn.sendHtml(res, kindName === undefined ? 200 : 404, kindChooser(buyer, kindName));
    const form = endpointForm({ kind, mode: 'create', action: `${buyerHref(buyer.id)}/endpoints`, values: emptyValues('create'), errors: [], cancel: buyerHref(buyer.id), once: newFormToken() });
    signIn.sendHtml(res, 200, endpointPage({ buyer, title: `Add a ${kind.kind} endpoint`, form }));
  }));

  router.post('/buyers/:buyerId/endpoints', ...signIn.formPost(), handle(toBuyer, async (req, res) => {
    const buyerId = buyerIdOf(req);
    const form = formBody(req);
    const kind = kinds().find((k) => k.kind === text(form, 'kind'));
    const buyer = await admin.buyers.get(buyerId);
    if (!kind) return signIn.sendHtml(res, 400, kindChooser(buyer, text(form, 'kind')));
    const decoded = endpointBody(kind, form, 'create');
    const refused = (errors: FieldError[]) => {
      // Shown again with a fresh token: the next post of the corrected form is a new one.
      const again = endpointForm({ kind, mode: 'create', action: `${buyerHref(buyerId)}/endpoints`, values: valuesFromBody(form, 'create', kind), errors, cancel: buyerHref(buyerId), once: newFormToken() });
      signIn.sendHtml(res, 400, endpointPage({ buyer, title: `Add a ${kind.kind} endpoint`, form: again }));
    };
    if (decoded.errors.length) return refused(decoded.errors);
    const then = 'The endpoint was added by the first post; a signing secret generated for it was shown on that page only. The buyer’s page lists its endpoints.';
    if (!(await spendOnce(ctx, req, res, { action: `buyer:${buyerId}:endpoint`, back: buyerHref(buyerId), active: 'buyers', then }))) return;
    const result = await tryUseCase(() => admin.endpoints.create(buyerId, decoded.body));
    if (!result.ok) return refused(result.errors);
    // Secrets generated for it (the webhook's signing secret) are in the answer in clear, this once.
    const given = new Set(Object.keys(decoded.body));
    const generated = Object.fromEntries(kind.secrets.filter((k) => !given.has(k) && result.value[k] !== undefined).map((k) => [k, result.value[k]]));
    const view = result.value;
    signIn.sendHtml(res, 200, layout({
      title: 'Endpoint added',
      active: 'buyers',
      body: createdBody({ view, generated, buyerHref: `${buyerHref(buyerId)}#endpoint-${view.id}`, editHref: `${endpointHref(buyerId, view.id)}/edit` }),
    }));
  }));

  async function previewOf(buyerId: string, endpointId: string): Promise<EndpointPreview | { error: string }> {
    try {
      return await admin.endpoints.preview(buyerId, endpointId, {});
    } catch (error) {
      return { error: `The sample lead cannot be mapped: ${errorMessage(error)}` };
    }
  }

  async function editPage(buyerId: string, endpointId: string, values: ((view: EndpointView, kind: KindInfo) => ReturnType<typeof emptyValues>) | undefined, errors: FieldError[], flash?: string): Promise<string> {
    const buyer = await admin.buyers.get(buyerId);
    const current = await admin.endpoints.get(buyerId, endpointId);
    const kind = kinds().find((k) => k.kind === current.kind) ?? { kind: current.kind, description: '', secrets: [] };
    if (current.archivedAt) {
      return endpointPage({ buyer, title: `Endpoint ${current.id}`, form: html`<p class="notice">Archived ${time(current.archivedAt)}: it cannot be changed.</p>` });
    }
    const form = endpointForm({ kind, mode: 'edit', action: endpointHref(buyerId, endpointId), values: (values ?? valuesFromView)(current, kind), errors, current, cancel: buyerHref(buyerId) });
    return endpointPage({ buyer, title: `Edit ${current.name ?? current.kind} endpoint ${current.id}`, form, preview: previewPanel(await previewOf(buyerId, endpointId)), flash });
  }

  router.get('/buyers/:buyerId/endpoints/:endpointId/edit', ...get, handle(toBuyer, async (req, res) => {
    signIn.sendHtml(res, 200, await editPage(buyerIdOf(req), endpointIdOf(req), undefined, [], doneMessage(req.query.done)));
  }));

  router.post('/buyers/:buyerId/endpoints/:endpointId', ...signIn.formPost(), handle(toBuyer, async (req, res) => {
    const buyerId = buyerIdOf(req);
    const endpointId = endpointIdOf(req);
    const form = formBody(req);
    const current = await admin.endpoints.get(buyerId, endpointId);
    const kind = kinds().find((k) => k.kind === current.kind) ?? { kind: current.kind, description: '', secrets: [] };
    const decoded = endpointBody(kind, form, 'edit');
    const result = decoded.errors.length ? { ok: false as const, errors: decoded.errors } : await tryUseCase(() => admin.endpoints.update(buyerId, endpointId, decoded.body));
    if (!result.ok) return signIn.sendHtml(res, 400, await editPage(buyerId, endpointId, () => valuesFromBody(form, 'edit', kind), result.errors));
    res.redirect(303, `${endpointHref(buyerId, endpointId)}/edit?done=endpoint-saved`);
  }));

  return router;
}

function breakerQuestion(action: BreakerAction, endpoint: EndpointView, state: string, reason: string): Html {
  const which = html`the breaker of endpoint <code>${endpoint.id}</code> (${endpoint.name ?? endpoint.kind}, ${endpoint.role}), now <strong>${state.replace('_', '-')}</strong>`;
  const why = reason ? html` Reason on record: “${reason}”.` : '';
  if (action === 'reset') {
    return html`This closes ${which}: deliveries go to the endpoint again, its failure streak starts from zero, and if the breaker had paused the buyer, the buyer is resumed.${why}`;
  }
  return html`This forces open ${which}: no request is sent to the endpoint until an operator resets it (no cool-down, no probe)${endpoint.role === 'accept' ? ', and the buyer is paused (unless an operator paused it already)' : '; the buyer keeps taking leads at its other endpoints'}.${why}`;
}
