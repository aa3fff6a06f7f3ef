/**
 * The console's alerts: the alerts sent, newest first (type, title, message, the buyer and
 * endpoint concerned, when, and what each channel made of it), and the alert channels configured
 * (kind, name, settings with their secrets masked). Read-only; it shows what the operator use cases
 * answer (services/intake/operator/alerts.ts). Channels are added through the admin API.
 *
 *   GET /console/alerts?type=&limit=
 */
import { Router } from 'express';
import { ValidationError, type FieldError } from '../../../shared/errors';
import { html, time, type Html } from '../../../shared/http/pages/html';
import type { BuyerDoc } from '../../../shared/store';
import { ALERT_TYPES } from '../../../shared/store/alerts';
import type { ConsoleContext } from './index';
import { fieldError, layout, otherErrors } from './layout';

/** The types the list can be filtered by (every alert type; the use case's query accepts them). */
const FILTER_TYPES = ALERT_TYPES;
const LIMITS = ['50', '100', '200', '500'] as const;
/** A channel's keys that are not its settings. */
const CHANNEL_KEYS = new Set(['id', 'kind', 'name', 'createdAt']);

const setting = (value: unknown): string => (typeof value === 'string' ? value : JSON.stringify(value) ?? '');

export function alertRoutes(ctx: ConsoleContext): Router {
  const router = Router();
  const { operator, models, signIn } = ctx;

  router.get('/alerts', signIn.htmlHeaders, signIn.requireAccess, signIn.page(async (req, res) => {
    const query: Record<string, unknown> = {};
    for (const key of ['type', 'limit'] as const) {
      const value: unknown = req.query[key];
      if (value !== undefined && value !== '') query[key] = value;
    }
    const type = typeof query.type === 'string' ? query.type : '';
    const limit = typeof query.limit === 'string' ? query.limit : '100';
    let alerts: Awaited<ReturnType<typeof operator.alerts.listAlerts>> = [];
    let errors: FieldError[] | undefined;
    try {
      alerts = await operator.alerts.listAlerts(query);
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      errors = error.fields;
    }
    const channels = await operator.alerts.listChannels();
    const channelNames = new Map(channels.map((c) => [c.id, c.name ?? c.kind]));
    const buyerIds = [...new Set(alerts.flatMap((a) => ('buyerId' in a && a.buyerId ? [a.buyerId] : [])))];
    const buyers = new Map((buyerIds.length ? await models.Buyer.find({ _id: { $in: buyerIds } }, { name: 1 }).lean<Array<Pick<BuyerDoc, '_id' | 'name'>>>() : []).map((b) => [b._id, b.name]));

    const concerns = (alert: (typeof alerts)[number]): Html => {
      const buyerId = 'buyerId' in alert ? alert.buyerId : undefined;
      const endpointId = 'endpointId' in alert ? alert.endpointId : undefined;
      return html`${buyerId ? html`<div>buyer <a href="/console/buyers/${buyerId}">${buyers.get(buyerId) ?? buyerId}</a></div>` : ''}${endpointId ? html`<div>endpoint ${buyerId ? html`<a href="/console/buyers/${buyerId}#endpoint-${endpointId}"><code>${endpointId}</code></a>` : html`<code>${endpointId}</code>`}</div>` : ''}${buyerId || endpointId ? '' : html`<span class="muted">—</span>`}`;
    };
    const deliveries = (alert: (typeof alerts)[number]): Html =>
      alert.deliveries.length
        ? html`<ul class="deliveries">${alert.deliveries.map((d) => html`<li data-channel="${d.channelId}"><span class="badge ${d.outcome}">${d.outcome}</span> ${channelNames.get(d.channelId) ?? d.channelId} <span class="muted">(${d.kind})</span> <code>${d.code}</code> ${time(d.at)}</li>`)}</ul>`
        : html`<span class="muted">no channel</span>`;

    const body = html`<h1>Alerts</h1>
<form method="get" action="/console/alerts" class="card" id="filter">
${otherErrors(errors, ['query.type', 'query.limit'])}
<div class="filters">
<div class="field${(errors ?? []).some((e) => e.path === 'query.type') ? ' invalid' : ''}"><label for="f-type">Type</label><select id="f-type" name="type"><option value="">any type</option>${FILTER_TYPES.map((t) => html`<option value="${t}"${t === type ? html` selected` : ''}>${t}</option>`)}${type && !FILTER_TYPES.some((t) => t === type) ? html`<option value="${type}" selected>${type}</option>` : ''}</select>${fieldError(errors, 'query.type')}</div>
<div class="field${(errors ?? []).some((e) => e.path === 'query.limit') ? ' invalid' : ''}"><label for="f-limit">Show</label><select id="f-limit" name="limit">${LIMITS.map((l) => html`<option value="${l}"${l === limit ? html` selected` : ''}>the latest ${l}</option>`)}${LIMITS.some((l) => l === limit) ? '' : html`<option value="${limit}" selected>${limit}</option>`}</select>${fieldError(errors, 'query.limit')}</div>
<div class="field"><button type="submit">Show</button> <a href="/console/alerts">clear</a></div>
</div></form>
<table id="alerts"><tr><th>when</th><th>type</th><th>alert</th><th>concerns</th><th>channels</th></tr>
${alerts.map((a) => html`<tr data-alert="${a.id}" data-type="${a.type}"><td>${time(a.at)}</td><td><span class="badge">${a.type}</span></td><td><strong>${a.title}</strong><div>${a.message}</div></td><td>${concerns(a)}</td><td>${deliveries(a)}</td></tr>`)}
</table>
${alerts.length ? '' : html`<p class="muted" id="no-alerts">${errors ? 'The filter is not valid: nothing is listed.' : 'No alert sent yet.'}</p>`}
<h2>Channels</h2>
<p class="muted">Every alert goes to every channel. Secrets are masked; channels are added and removed through the admin API (<code>/v1/admin/alert-channels</code>).</p>
<table id="channels"><tr><th>kind</th><th>name</th><th>id</th><th>settings</th><th>added</th></tr>
${channels.map((c) => html`<tr data-channel="${c.id}"><td>${c.kind}</td><td>${c.name ?? html`<span class="muted">—</span>`}</td><td><code>${c.id}</code></td><td>${Object.entries(c).filter(([k]) => !CHANNEL_KEYS.has(k)).map(([k, v]) => html`<div><span class="muted">${k}:</span> <code>${setting(v)}</code></div>`)}</td><td>${time(c.createdAt)}</td></tr>`)}
</table>
${channels.length ? '' : html`<p class="warning" id="no-channels">No alert channel: alerts are stored and listed here, but sent nowhere.</p>`}`;
    signIn.sendHtml(res, errors ? 400 : 200, layout({ title: 'Alerts', active: 'alerts', body }));
  }));

  return router;
}
