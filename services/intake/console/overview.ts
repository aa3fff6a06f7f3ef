/**
 * The console's overview: what is wrong first (open breakers, paused buyers, in red), then leads
 * accepted / delivered / dead-lettered in the last hour and day per source, attempts by outcome class
 * in the last hour, the oldest lead still on its way, and a chart of deliveries and failures per
 * minute over the last hour (inline SVG drawn here). Read-only; every count is one indexed query.
 */
import { Router } from 'express';
import type { BreakerStateDoc, BuyerDoc, LeadDoc, SourceDoc } from '../../../shared/store';
import { html, iso, time, type Html } from '../../../shared/http/pages/html';
import type { ConsoleContext } from './index';
import { layout, leadLinks } from './layout';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Attempts read for the chart at most (one hour's worth at 14 a second). */
export const CHART_MAX_ATTEMPTS = 50_000;

export interface MinuteBucket {
  /** Start of the minute (ms). */
  at: number;
  delivered: number;
  failed: number;
}

/** Attempts of the last hour per minute: successes, and every other outcome as a failure (pure). */
export function bucketByMinute(attempts: ReadonlyArray<{ at: Date | number; outcome?: string }>, now: number, minutes = 60): MinuteBucket[] {
  const end = Math.floor(now / 60_000) * 60_000 + 60_000;
  const start = end - minutes * 60_000;
  const buckets: MinuteBucket[] = Array.from({ length: minutes }, (_, i) => ({ at: start + i * 60_000, delivered: 0, failed: 0 }));
  for (const a of attempts) {
    const t = a.at instanceof Date ? a.at.getTime() : a.at;
    if (t < start || t >= end) continue;
    const bucket = buckets[Math.floor((t - start) / 60_000)]!;
    if (a.outcome === 'success') bucket.delivered++;
    else bucket.failed++;
  }
  return buckets;
}

/** Bars of deliveries (green) with failures (red) on top, one per minute, drawn as inline SVG. */
export function minuteChart(buckets: readonly MinuteBucket[]): Html {
  const width = 720;
  const height = 160;
  const pad = 24;
  const max = Math.max(1, ...buckets.map((b) => b.delivered + b.failed));
  const barWidth = (width - pad) / buckets.length;
  const scale = (n: number) => (n / max) * (height - pad);
  const bars = buckets.map((b, i) => {
    const x = pad + i * barWidth;
    const ok = scale(b.delivered);
    const bad = scale(b.failed);
    const label = `${iso(b.at).slice(11, 16)} UTC: ${b.delivered} delivered, ${b.failed} failed`;
    return html`<g><title>${label}</title><rect x="${x.toFixed(1)}" y="${(height - pad - ok).toFixed(1)}" width="${Math.max(1, barWidth - 1).toFixed(1)}" height="${ok.toFixed(1)}" fill="#1f7a3a"></rect><rect x="${x.toFixed(1)}" y="${(height - pad - ok - bad).toFixed(1)}" width="${Math.max(1, barWidth - 1).toFixed(1)}" height="${bad.toFixed(1)}" fill="#b42318"></rect></g>`;
  });
  const first = buckets[0];
  const last = buckets[buckets.length - 1];
  return html`<svg id="chart" role="img" aria-label="Deliveries and failures per minute, last hour" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" xmlns="http://www.w3.org/2000/svg">
<line x1="${pad}" y1="${height - pad}" x2="${width}" y2="${height - pad}" stroke="#d8dde5"></line>
<text x="0" y="12" font-size="11" fill="#5b6472">${max}</text><text x="0" y="${height - pad}" font-size="11" fill="#5b6472">0</text>
${bars}
<text x="${pad}" y="${height - 6}" font-size="11" fill="#5b6472">${first ? iso(first.at).slice(11, 16) : ''} UTC</text>
<text x="${width - 60}" y="${height - 6}" font-size="11" fill="#5b6472">${last ? iso(last.at + 60_000).slice(11, 16) : ''} UTC</text>
</svg>`;
}

interface SourceRow {
  source: Pick<SourceDoc, '_id' | 'name'>;
  hour: { accepted: number; delivered: number; deadLettered: number };
  day: { accepted: number; delivered: number; deadLettered: number };
}

export function overviewRoutes(ctx: ConsoleContext): Router {
  const router = Router();
  const { models, signIn, links } = ctx;

  async function countsSince(sourceId: string | undefined, since: Date) {
    const scope = sourceId ? { sourceId } : {};
    const [accepted, delivered, deadLettered] = await Promise.all([
      models.Lead.countDocuments({ ...scope, receivedAt: { $gte: since } }),
      models.Lead.countDocuments({ ...scope, status: 'delivered', updatedAt: { $gte: since } }),
      models.Lead.countDocuments({ ...scope, status: 'dead_lettered', deadLetteredAt: { $gte: since } }),
    ]);
    return { accepted, delivered, deadLettered };
  }

  router.get('/', signIn.htmlHeaders, signIn.requireAccess, signIn.page(async (_req, res) => {
    const now = Date.now();
    const hourAgo = new Date(now - HOUR);
    const dayAgo = new Date(now - DAY);
    const [sources, open, halfOpen, paused, oldestDelivering, oldestAccepted, attempts] = await Promise.all([
      models.Source.find({ archivedAt: { $exists: false } }, { name: 1 }).sort({ createdAt: 1 }).limit(200).lean<Array<Pick<SourceDoc, '_id' | 'name'>>>(),
      models.BreakerState.find({ state: 'open' }).lean<BreakerStateDoc[]>(),
      models.BreakerState.find({ state: 'half_open' }).lean<BreakerStateDoc[]>(),
      models.Buyer.find({ paused: true, archivedAt: { $exists: false } }, { name: 1, pause: 1 }).lean<Array<Pick<BuyerDoc, '_id' | 'name' | 'pause'>>>(),
      models.Lead.find({ status: 'delivering' }, { receivedAt: 1, sourceId: 1, buyerId: 1 }).sort({ receivedAt: 1 }).limit(1).lean<LeadDoc[]>(),
      models.Lead.find({ status: 'accepted' }, { receivedAt: 1, sourceId: 1 }).sort({ receivedAt: 1 }).limit(1).lean<LeadDoc[]>(),
      models.LogEntry.find({ type: 'attempt', at: { $gte: new Date(Math.floor(now / 60_000) * 60_000 - 59 * 60_000) } }, { at: 1, outcome: 1, _id: 0 }).limit(CHART_MAX_ATTEMPTS).lean<Array<{ at: Date; outcome?: string }>>(),
    ]);
    const rows: SourceRow[] = [];
    for (const source of sources) rows.push({ source, hour: await countsSince(source._id, hourAgo), day: await countsSince(source._id, dayAgo) });
    const buckets = bucketByMinute(attempts, now);
    const byOutcome = new Map<string, number>();
    for (const a of attempts) if (a.at.getTime() >= hourAgo.getTime()) byOutcome.set(a.outcome ?? 'unknown', (byOutcome.get(a.outcome ?? 'unknown') ?? 0) + 1);
    const oldest = [...oldestDelivering, ...oldestAccepted].sort((a, b) => a.receivedAt.getTime() - b.receivedAt.getTime())[0];
    const buyerNames = new Map((await models.Buyer.find({ _id: { $in: [...new Set([...open, ...halfOpen].map((b) => b.buyerId))] } }, { name: 1 }).lean<Array<Pick<BuyerDoc, '_id' | 'name'>>>()).map((b) => [b._id, b.name]));
    const total = (pick: (r: SourceRow) => number) => rows.reduce((sum, r) => sum + pick(r), 0);

    const alarms: Html[] = [
      ...open.map((b) => html`<li>Breaker <strong>open</strong> at <a href="/console/buyers/${b.buyerId}">${buyerNames.get(b.buyerId) ?? b.buyerId}</a> · endpoint <code>${b._id}</code> since ${time(b.updatedAt)}</li>`),
      ...halfOpen.map((b) => html`<li>Breaker <strong>half-open</strong> (probing) at <a href="/console/buyers/${b.buyerId}">${buyerNames.get(b.buyerId) ?? b.buyerId}</a> · endpoint <code>${b._id}</code></li>`),
      ...paused.map((b) => html`<li>Buyer <a href="/console/buyers/${b._id}">${b.name}</a> <strong>paused</strong>${b.pause ? html` by ${b.pause.by}: ${b.pause.reason}` : ''}</li>`),
    ];
    const body = html`<h1>Overview</h1>
${alarms.length ? html`<div class="alarm" id="alarms" role="alert"><strong>Needs attention</strong><ul>${alarms}</ul></div>` : html`<p class="flash" id="alarms">No breaker open, no buyer paused.</p>`}
<div class="grid">
  <div class="card"><div class="muted">Accepted, last hour / day</div><div class="stat" id="accepted">${total((r) => r.hour.accepted)} / ${total((r) => r.day.accepted)}</div></div>
  <div class="card"><div class="muted">Delivered, last hour / day</div><div class="stat" id="delivered">${total((r) => r.hour.delivered)} / ${total((r) => r.day.delivered)}</div></div>
  <div class="card"><div class="muted">Dead-lettered, last hour / day</div><div class="stat" id="dead-lettered"><a href="/console/dead-letters">${total((r) => r.hour.deadLettered)} / ${total((r) => r.day.deadLettered)}</a></div></div>
  <div class="card"><div class="muted">Oldest lead on its way</div><div id="oldest">${oldest ? html`${leadLinks(links, oldest._id)}<br>received ${time(oldest.receivedAt)} (${Math.round((now - oldest.receivedAt.getTime()) / 1000)} s ago)` : html`<span class="muted">none: every lead is delivered, dead-lettered or discarded</span>`}</div></div>
</div>
<h2>Deliveries and failures per minute, last hour</h2>
<div class="card">${minuteChart(buckets)}<div class="muted">green: attempts a buyer took; red: every other attempt (transient, permanent, unknown).${attempts.length >= CHART_MAX_ATTEMPTS ? ` Only the first ${CHART_MAX_ATTEMPTS} attempts of the hour are drawn.` : ''}</div></div>
<h2>Attempts by outcome, last hour</h2>
<table id="outcomes"><tr>${['success', 'transient', 'permanent', 'unknown'].map((o) => html`<th><span class="badge ${o}">${o}</span></th>`)}</tr><tr>${['success', 'transient', 'permanent', 'unknown'].map((o) => html`<td>${byOutcome.get(o) ?? 0}</td>`)}</tr></table>
<h2>Leads per source</h2>
<table id="sources"><tr><th>source</th><th>accepted 1 h</th><th>delivered 1 h</th><th>dead-lettered 1 h</th><th>accepted 24 h</th><th>delivered 24 h</th><th>dead-lettered 24 h</th></tr>
${rows.map((r) => html`<tr><td><a href="/console/sources/${r.source._id}">${r.source.name}</a></td><td>${r.hour.accepted}</td><td>${r.hour.delivered}</td><td>${r.hour.deadLettered}</td><td>${r.day.accepted}</td><td>${r.day.delivered}</td><td>${r.day.deadLettered}</td></tr>`)}
</table>
<p class="muted">Delivered and dead-lettered count the leads whose status changed in the window. Times are UTC. <a href="${links.temporalUiUrl}">Temporal UI</a> · <a href="${links.logUrl}">Delivery log (disputes)</a></p>`;
    signIn.sendHtml(res, 200, layout({ title: 'Overview', active: 'overview', body }));
  }));

  return router;
}
