/**
 * The console's dead letters: the list by filter (source, a buyer tried, reason, dead-lettered
 * before / after), newest first, paged with the list's keyset cursor; rows selected by checkbox
 * are redelivered (through each lead's own routing, or to one buyer) or discarded with a reason,
 * after a confirmation page naming every lead, and the result page says what became of each one.
 * "Redeliver all matching" starts a bulk redelivery of the filter, followed on its progress page.
 * Everything goes through the operator use cases (services/intake/operator/dead-letters.ts): each
 * decision is an Update on the lead's workflow, journaled as the operator's.
 *
 *   GET  /console/dead-letters?sourceId=&buyerId=&reason=&olderThan=&newerThan=&cursor=
 *   POST /console/dead-letters/actions     leadId… + action (redeliver | redeliver_to + buyerId | discard + reason)
 *   POST /console/dead-letters/bulk        the filter + toBuyerId?  → /console/bulk/:bulkId
 *   GET  /console/bulk/:bulkId             progress (reloads itself every 2 s while running)
 */
import { Router, type Request } from 'express';
import { DEAD_LETTER_REASONS } from '../../../shared/delivery';
import { ConflictError, NotFoundError, ValidationError, type AppError, type FieldError } from '../../../shared/errors';
import { tryParseDuration } from '../../../shared/durations';
import { html, time, type Html, type Part } from '../../../shared/http/pages/html';
import { idParam } from '../../../shared/http/validate';
import { SAFE_ID_RE } from '../../../shared/ids';
import type { BuyerDoc, LogEntryDoc, SourceDoc } from '../../../shared/store';
import type { ConsoleContext } from './index';
import { confirmPage, errorPage, fieldError, formList, formText, layout, leadLinks, otherErrors, workflowHref } from './layout';

/** The list's filter fields, as the use case's query names them. */
const FILTER_FIELDS = ['sourceId', 'buyerId', 'reason', 'olderThan', 'newerThan'] as const;
type FilterField = (typeof FILTER_FIELDS)[number];
type Filter = Partial<Record<FilterField, string>>;
/** Reasons whose lead is held by a buyer (the waterfall stopped there). */
const HELD_REASONS = new Set(['partial_at_buyer', 'ambiguous_at_buyer']);
/** Leads one action may name (a page shows 100). */
export const MAX_SELECTED = 500;
/** Dead letters counted for the bulk's confirmation at most. */
const BULK_COUNT_LIMIT = 500;
const ACTIONS = ['redeliver', 'redeliver_to', 'discard'] as const;
type Action = (typeof ACTIONS)[number];

type Named = { _id: string; name: string; archivedAt?: Date };
type Outcome = { leadId: string; ok: boolean; message: string };

const filterQuery = (filter: Filter, extra: Record<string, string> = {}) => {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries({ ...filter, ...extra })) if (v) params.set(k, v);
  const text = params.toString();
  return text ? `?${text}` : '';
};

/** The list's address to come back to (only a dead-letter list of this console). */
function backTo(value: string): string {
  return value.length <= 2000 && /^\/console\/dead-letters(\?[^\s\\]*)?$/.test(value) ? value : '/console/dead-letters';
}

/** A use case's refusal in words (a validation error's fields, a 404's or 409's message). */
function refusalText(error: AppError): string {
  return error instanceof ValidationError ? error.fields.map((f) => `${f.path}: ${f.message}`).join('; ') : error.message;
}

export function deadLetterRoutes(ctx: ConsoleContext): Router {
  const router = Router();
  const { models, operator, signIn, links, logger } = ctx;

  /** Names of these sources / buyers (whatever their state: old dead letters name archived ones). */
  const namesOf = async (model: 'Source' | 'Buyer', ids: readonly string[]): Promise<Map<string, Named>> => {
    const unique = [...new Set(ids)];
    if (!unique.length) return new Map();
    const docs = model === 'Source'
      ? await models.Source.find({ _id: { $in: unique } }, { name: 1, archivedAt: 1 }).lean<Array<Pick<SourceDoc, '_id' | 'name' | 'archivedAt'>>>()
      : await models.Buyer.find({ _id: { $in: unique } }, { name: 1, archivedAt: 1 }).lean<Array<Pick<BuyerDoc, '_id' | 'name' | 'archivedAt'>>>();
    return new Map(docs.map((d) => [d._id, d]));
  };
  /** The choices of the selects (sorted by name; at most 1000 each). */
  const choices = async () => {
    const [sources, buyers] = await Promise.all([
      models.Source.find({}, { name: 1, archivedAt: 1 }).sort({ name: 1 }).limit(1000).lean<Array<Pick<SourceDoc, '_id' | 'name' | 'archivedAt'>>>(),
      models.Buyer.find({}, { name: 1, archivedAt: 1 }).sort({ name: 1 }).limit(1000).lean<Array<Pick<BuyerDoc, '_id' | 'name' | 'archivedAt'>>>(),
    ]);
    return { sources, buyers };
  };
  /** Which buyer holds each held lead: its last dead-lettered status entry names it (heldBy). */
  const holders = async (leadIds: readonly string[]): Promise<Map<string, string>> => {
    if (!leadIds.length) return new Map();
    const entries = await models.LogEntry.find({ leadId: { $in: [...leadIds] }, type: 'status', 'data.status': 'dead_lettered' }, { leadId: 1, seq: 1, 'data.heldBy': 1 }).sort({ seq: 1 }).lean<Array<Pick<LogEntryDoc, 'leadId' | 'seq' | 'data'>>>();
    const held = new Map<string, string>();
    for (const e of entries) {
      const by = e.data.heldBy;
      if (typeof by === 'string') held.set(e.leadId, by);
      else held.delete(e.leadId);
    }
    return held;
  };

  const buyerLink = (buyerId: string, names: Map<string, Named>) => html`<a href="/console/buyers/${buyerId}">${names.get(buyerId)?.name ?? buyerId}</a>`;
  const sourceLink = (sourceId: string, names: Map<string, Named>) => html`<a href="/console/sources/${sourceId}">${names.get(sourceId)?.name ?? sourceId}</a>`;
  const options = (items: readonly Named[], selected: string | undefined, none: string) => {
    const known = items.some((i) => i._id === selected);
    return html`<option value="">${none}</option>${selected && !known ? html`<option value="${selected}" selected>${selected}</option>` : ''}${items.map((i) => html`<option value="${i._id}"${i._id === selected ? html` selected` : ''}>${i.name} (${i._id})${i.archivedAt ? ' · archived' : ''}</option>`)}`;
  };

  function describeFilter(filter: Filter, sources: Map<string, Named>, buyers: Map<string, Named>): Html {
    const parts: Html[] = [];
    if (filter.sourceId) parts.push(html`from source <strong>${sources.get(filter.sourceId)?.name ?? filter.sourceId}</strong>`);
    if (filter.buyerId) parts.push(html`where buyer <strong>${buyers.get(filter.buyerId)?.name ?? filter.buyerId}</strong> was tried`);
    if (filter.reason) parts.push(html`with reason <code>${filter.reason}</code>`);
    // An age ("1h") or an instant, as the use case reads them.
    if (filter.olderThan) parts.push(tryParseDuration(filter.olderThan) !== undefined ? html`dead-lettered more than <code>${filter.olderThan}</code> ago` : html`dead-lettered before <code>${filter.olderThan}</code>`);
    if (filter.newerThan) parts.push(tryParseDuration(filter.newerThan) !== undefined ? html`dead-lettered less than <code>${filter.newerThan}</code> ago` : html`dead-lettered after <code>${filter.newerThan}</code>`);
    return parts.length ? html`${parts.map((p, i) => html`${i ? ', ' : ''}${p}`)}` : html`(no filter: every dead letter)`;
  }

  // ---- the list -----------------------------------------------------------------------------

  router.get('/dead-letters', signIn.htmlHeaders, signIn.requireAccess, signIn.page(async (req, res) => {
    const query: Record<string, unknown> = {};
    for (const key of [...FILTER_FIELDS, 'cursor'] as const) {
      const value: unknown = req.query[key];
      if (value !== undefined && value !== '') query[key] = value;
    }
    const filter: Filter = Object.fromEntries(FILTER_FIELDS.flatMap((k) => (typeof query[k] === 'string' ? [[k, query[k]]] : [])));
    const cursor = typeof query.cursor === 'string' ? query.cursor : undefined;
    let page: Awaited<ReturnType<typeof operator.deadLetters.list>> | undefined;
    let errors: FieldError[] | undefined;
    try {
      page = await operator.deadLetters.list(query);
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      errors = error.fields;
    }
    const items = page?.items ?? [];
    const { sources, buyers } = await choices();
    const [sourceNames, buyerNames, held] = await Promise.all([
      namesOf('Source', items.map((i) => i.sourceId)),
      namesOf('Buyer', items.flatMap((i) => i.buyersTried)),
      holders(items.filter((i) => HELD_REASONS.has(i.reasonCode ?? '')).map((i) => i.leadId)),
    ]);
    const heldNames = await namesOf('Buyer', [...held.values()]);
    const allNames = new Map([...buyerNames, ...heldNames]);
    const selectAll = req.query.all === '1';
    const here = `/console/dead-letters${filterQuery(filter, cursor ? { cursor } : {})}`;
    const shown = FILTER_FIELDS.map((f) => `query.${f}`);
    const invalid = (f: FilterField) => ((errors ?? []).some((e) => e.path === `query.${f}`) ? ' invalid' : '');
    const liveBuyers = buyers.filter((b) => !b.archivedAt);

    const filterForm = html`<form method="get" action="/console/dead-letters" class="card" id="filter">
${otherErrors(errors, shown)}
<div class="filters">
<div class="field${invalid('sourceId')}"><label for="f-source">Source</label><select id="f-source" name="sourceId">${options(sources, filter.sourceId, 'any source')}</select>${fieldError(errors, 'query.sourceId')}</div>
<div class="field${invalid('buyerId')}"><label for="f-buyer">Buyer tried</label><select id="f-buyer" name="buyerId">${options(buyers, filter.buyerId, 'any buyer')}</select>${fieldError(errors, 'query.buyerId')}</div>
<div class="field${invalid('reason')}"><label for="f-reason">Reason</label><select id="f-reason" name="reason"><option value="">any reason</option>${DEAD_LETTER_REASONS.map((r) => html`<option value="${r}"${r === filter.reason ? html` selected` : ''}>${r}</option>`)}${filter.reason && !DEAD_LETTER_REASONS.some((r) => r === filter.reason) ? html`<option value="${filter.reason}" selected>${filter.reason}</option>` : ''}</select>${fieldError(errors, 'query.reason')}</div>
<div class="field${invalid('olderThan')}"><label for="f-older">Dead-lettered before</label><input id="f-older" name="olderThan" value="${filter.olderThan ?? ''}" placeholder="an age (1h) or an ISO time">${fieldError(errors, 'query.olderThan')}</div>
<div class="field${invalid('newerThan')}"><label for="f-newer">Dead-lettered after</label><input id="f-newer" name="newerThan" value="${filter.newerThan ?? ''}" placeholder="an age (1d) or an ISO time">${fieldError(errors, 'query.newerThan')}</div>
<div class="field"><button type="submit" id="apply-filter">Filter</button> <a href="/console/dead-letters">clear</a></div>
</div></form>`;

    const rows = items.map((item) => {
      const holder = held.get(item.leadId);
      return html`<tr data-lead="${item.leadId}">
<td><input type="checkbox" name="leadId" value="${item.leadId}" id="select-${item.leadId}" aria-label="select ${item.leadId}"${selectAll ? html` checked` : ''}></td>
<td>${leadLinks(links, item.leadId)}</td>
<td>${sourceLink(item.sourceId, sourceNames)}</td>
<td>${item.buyersTried.length ? item.buyersTried.map((b, i) => html`${i ? ', ' : ''}${buyerLink(b, allNames)}`) : html`<span class="muted">none</span>`}${holder ? html`<div>held by ${buyerLink(holder, allNames)}</div>` : ''}</td>
<td><span class="badge dead_lettered">${item.reasonCode ?? 'unknown'}</span><div class="muted">${item.reason}</div></td>
<td>${time(Date.parse(item.deadLetteredAt))}</td></tr>`;
    });

    const list = page
      ? html`<form method="post" action="/console/dead-letters/actions" id="selection">
<input type="hidden" name="back" value="${here}">
<table id="dead-letters"><tr><th><a href="${`/console/dead-letters${filterQuery(filter, { ...(cursor ? { cursor } : {}), ...(selectAll ? {} : { all: '1' }) })}`}" id="select-all" title="select every row of this page">${selectAll ? 'none' : 'all'}</a></th><th>lead</th><th>source</th><th>buyers tried / held by</th><th>reason</th><th>dead-lettered</th></tr>
${rows}</table>
${items.length ? '' : html`<p class="flash" id="none">No dead letter matches.</p>`}
<p>${cursor ? html`<a href="/console/dead-letters${filterQuery(filter)}" id="first-page">first page</a> · ` : ''}${page.next ? html`<a href="/console/dead-letters${filterQuery(filter, { cursor: page.next })}" id="next-page">next page</a>` : html`<span class="muted">no more</span>`}</p>
${items.length ? html`<div class="card"><h2>With the selected leads</h2>
<div class="actions"><button type="submit" name="action" value="redeliver" id="redeliver-waterfall">Redeliver through the waterfall…</button>
<span class="muted">a lead held by a buyer goes back to that buyer</span></div>
<div class="actions"><label for="to-buyer">Redeliver to one buyer</label> <select id="to-buyer" name="buyerId"><option value="">choose a buyer…</option>${liveBuyers.map((b) => html`<option value="${b._id}">${b.name} (${b._id})</option>`)}</select> <button type="submit" name="action" value="redeliver_to" id="redeliver-to">Redeliver to this buyer…</button></div>
<div class="actions"><label for="discard-reason">Discard, with a reason</label> <input id="discard-reason" name="reason" maxlength="500" placeholder="why it is not delivered"> <button type="submit" name="action" value="discard" class="danger" id="discard">Discard…</button></div>
</div>` : ''}
</form>
${items.length ? html`<form method="post" action="/console/dead-letters/bulk" class="card" id="bulk"><h2>Everything matching the filter</h2>
${FILTER_FIELDS.map((f) => (filter[f] ? html`<input type="hidden" name="${f}" value="${filter[f]}">` : ''))}
<div class="actions"><label for="bulk-buyer">Redeliver all matching</label> <select id="bulk-buyer" name="toBuyerId"><option value="">through each lead’s own routing</option>${liveBuyers.map((b) => html`<option value="${b._id}">to ${b.name} (${b._id})</option>`)}</select> <button type="submit" id="bulk-redeliver">Redeliver all matching…</button></div>
<p class="muted">Every page of the filter, not only this one; a workflow walks them and its progress has its own page.</p></form>` : ''}`
      : html`<p class="error" role="alert">The filter is not valid: nothing is listed.</p>`;

    const body = html`<h1>Dead letters</h1>
<p class="muted">Leads no buyer took, waiting for an operator (newest first). Times are UTC.</p>
${filterForm}
${list}`;
    signIn.sendHtml(res, errors ? 400 : 200, layout({ title: 'Dead letters', active: 'dead-letters', body }));
  }));

  // ---- actions on selected leads ------------------------------------------------------------

  const notDone = (back: string, message: Part) =>
    layout({ title: 'Not done', active: 'dead-letters', body: html`<div class="card"><h1>Not done</h1><p class="error" role="alert" id="refusal">${message}</p><p>Nothing was changed. <a href="${back}" id="back">Back to the dead letters</a></p></div>` });

  router.post('/dead-letters/actions', ...signIn.formPost(), signIn.page(async (req, res) => {
    const back = backTo(formText(req.body, 'back'));
    const leadIds = [...new Set(formList(req.body, 'leadId'))];
    const action = formText(req.body, 'action') as Action;
    const buyerId = formText(req.body, 'buyerId');
    const reason = formText(req.body, 'reason');
    if (!ACTIONS.includes(action)) return signIn.sendHtml(res, 400, notDone(back, 'Choose what to do with the selected leads.'));
    if (!leadIds.length) return signIn.sendHtml(res, 400, notDone(back, 'Select at least one lead (the checkboxes of the list).'));
    if (leadIds.length > MAX_SELECTED) return signIn.sendHtml(res, 400, notDone(back, `At most ${MAX_SELECTED} leads at a time; for more, redeliver all matching a filter.`));
    if (leadIds.some((id) => !SAFE_ID_RE.test(id)) || (buyerId && !SAFE_ID_RE.test(buyerId))) return signIn.sendHtml(res, 400, notDone(back, 'The form carried something that is not an id.'));
    if (action === 'redeliver_to' && !buyerId) return signIn.sendHtml(res, 400, notDone(back, 'Choose the buyer to redeliver to.'));
    if (action === 'discard' && !reason) return signIn.sendHtml(res, 400, notDone(back, 'Say why the leads are discarded (the reason is kept in each lead’s journal).'));
    const buyer = action === 'redeliver_to' ? (await namesOf('Buyer', [buyerId])).get(buyerId) : undefined;
    if (action === 'redeliver_to' && !buyer) return signIn.sendHtml(res, 400, notDone(back, `There is no buyer ${buyerId}.`));

    const doing = action === 'redeliver'
      ? html`Redeliver ${leadIds.length} lead${leadIds.length === 1 ? '' : 's'} through ${leadIds.length === 1 ? 'its' : 'each one’s'} own routing: the waterfall of its source, or the buyer that holds it.`
      : action === 'redeliver_to'
        ? html`Redeliver ${leadIds.length} lead${leadIds.length === 1 ? '' : 's'} to <strong>${buyer?.name ?? buyerId}</strong> (<code>${buyerId}</code>) only. A lead held by another buyer is taken from it: the journal records that override as your decision.`
        : html`Discard ${leadIds.length} lead${leadIds.length === 1 ? '' : 's'} with the reason “${reason}”. A discarded lead is never delivered; this cannot be undone.`;
    if (formText(req.body, 'confirm') !== 'yes') {
      return signIn.sendHtml(res, 200, confirmPage({
        title: action === 'discard' ? 'Discard dead letters' : 'Redeliver dead letters',
        what: doing,
        details: html`<ul id="affected">${leadIds.map((id) => html`<li>${leadLinks(links, id)}</li>`)}</ul>`,
        action: '/console/dead-letters/actions',
        fields: { back, action, leadId: leadIds, ...(action === 'redeliver_to' ? { buyerId } : {}), ...(action === 'discard' ? { reason } : {}) },
        button: action === 'discard' ? `Discard ${leadIds.length} lead${leadIds.length === 1 ? '' : 's'}` : `Redeliver ${leadIds.length} lead${leadIds.length === 1 ? '' : 's'}`,
        back,
        danger: action === 'discard',
      }));
    }

    const run = async (leadId: string): Promise<Outcome> => {
      try {
        if (action === 'discard') {
          const result = await operator.deadLetters.discard(leadId, { reason });
          return { leadId, ok: true, message: `discarded (${result.status})` };
        }
        const result = await operator.deadLetters.redeliver(leadId, action === 'redeliver_to' ? { buyerId } : {});
        return { leadId, ok: true, message: `redelivered: now ${result.status}${action === 'redeliver_to' ? ` at ${buyer?.name ?? buyerId}` : ''}` };
      } catch (error) {
        if (error instanceof ConflictError || error instanceof NotFoundError || error instanceof ValidationError) return { leadId, ok: false, message: refusalText(error) };
        logger.error({ err: error, leadId, action }, 'console: dead-letter action failed');
        return { leadId, ok: false, message: 'failed: an unexpected error (in the service’s logs). The lead may or may not have been changed: look at its page.' };
      }
    };
    // A few at a time: each is an Update that waits for its workflow's answer.
    const outcomes: Outcome[] = new Array<Outcome>(leadIds.length);
    let next = 0;
    await Promise.all(Array.from({ length: Math.min(4, leadIds.length) }, async () => {
      while (next < leadIds.length) {
        const i = next++;
        outcomes[i] = await run(leadIds[i]!);
      }
    }));
    const done = outcomes.filter((o) => o.ok).length;
    const body = html`<div class="card"><h1>${action === 'discard' ? 'Discarded' : 'Redelivered'}: ${done} of ${outcomes.length}</h1>
<p>${doing}</p>
<table id="outcomes"><tr><th>lead</th><th>outcome</th></tr>
${outcomes.map((o) => html`<tr data-lead="${o.leadId}" data-outcome="${o.ok ? 'ok' : 'refused'}"><td>${leadLinks(links, o.leadId)}</td><td><span class="badge ${o.ok ? 'ok' : 'bad'}">${o.ok ? 'ok' : 'not done'}</span> ${o.message}</td></tr>`)}
</table>
<p class="muted">Each decision is in the lead’s journal as the operator’s.</p>
<p><a href="${back}" id="back">Back to the dead letters</a></p></div>`;
    signIn.sendHtml(res, 200, layout({ title: 'Dead letters: result', active: 'dead-letters', body }));
  }));

  // ---- bulk redelivery ------------------------------------------------------------------------

  router.post('/dead-letters/bulk', ...signIn.formPost(), signIn.page(async (req, res) => {
    const filter: Filter = Object.fromEntries(FILTER_FIELDS.flatMap((k) => (formText(req.body, k) ? [[k, formText(req.body, k)]] : [])));
    const toBuyerId = formText(req.body, 'toBuyerId');
    const back = `/console/dead-letters${filterQuery(filter)}`;
    const [sources, buyers] = await Promise.all([namesOf('Source', filter.sourceId ? [filter.sourceId] : []), namesOf('Buyer', [filter.buyerId ?? '', toBuyerId].filter(Boolean))]);
    if (formText(req.body, 'confirm') !== 'yes') {
      let count: Awaited<ReturnType<typeof operator.deadLetters.list>>;
      try {
        count = await operator.deadLetters.list({ ...filter, limit: String(BULK_COUNT_LIMIT) });
      } catch (error) {
        if (error instanceof ValidationError) return signIn.sendHtml(res, 400, notDone(back, refusalText(error)));
        throw error;
      }
      return signIn.sendHtml(res, 200, confirmPage({
        title: 'Redeliver all matching',
        what: html`Redeliver every dead letter ${describeFilter(filter, sources, buyers)} ${toBuyerId ? html`to <strong>${buyers.get(toBuyerId)?.name ?? toBuyerId}</strong> only` : 'through each lead’s own routing (its source’s waterfall, or the buyer that holds it)'}: <strong id="bulk-count">${count.next ? `more than ${BULK_COUNT_LIMIT}` : count.items.length}</strong> match now. Only those dead-lettered before the bulk starts are taken; a lead resolved meanwhile is skipped.`,
        action: '/console/dead-letters/bulk',
        fields: { ...filter, ...(toBuyerId ? { toBuyerId } : {}) },
        button: 'Start the bulk redelivery',
        back,
      }));
    }
    let started: { bulkId: string };
    try {
      started = await operator.deadLetters.startBulkRedelivery({ ...filter, ...(toBuyerId ? { toBuyerId } : {}) });
    } catch (error) {
      if (error instanceof ValidationError || error instanceof ConflictError || error instanceof NotFoundError) return signIn.sendHtml(res, 400, notDone(back, refusalText(error)));
      throw error;
    }
    res.redirect(303, `/console/bulk/${encodeURIComponent(started.bulkId)}`);
  }));

  router.get('/bulk/:bulkId', signIn.htmlHeaders, signIn.requireAccess, signIn.page(async (req: Request, res) => {
    let progress: Awaited<ReturnType<typeof operator.deadLetters.bulkProgress>>;
    try {
      progress = await operator.deadLetters.bulkProgress(idParam(req, 'bulkId', 'Bulk redelivery'));
    } catch (error) {
      if (error instanceof NotFoundError) return signIn.sendHtml(res, 404, errorPage('Not found', error.message));
      throw error;
    }
    const running = progress.status === 'running';
    const skipped = Object.entries(progress.skippedByReason);
    // An older bulk's progress has no pages to report.
    const pages = 'pages' in progress && typeof progress.pages === 'number' ? progress.pages : undefined;
    const body = html`<p><a href="/console/dead-letters">Dead letters</a> ›</p>
<h1>Bulk redelivery <code>${progress.bulkId}</code></h1>
<p id="bulk-status"><span class="badge ${running ? 'pending' : 'ok'}">${progress.status}</span> ${running ? html`This page reloads every 2 s while it runs. <a href="/console/bulk/${progress.bulkId}" id="refresh">Refresh now</a>` : ''}</p>
<table class="kv" id="progress">
<tr><th>started</th><td>${time(Date.parse(progress.startedAt))}</td></tr>
<tr><th>finished</th><td>${progress.finishedAt ? time(Date.parse(progress.finishedAt)) : html`<span class="muted">not yet</span>`}</td></tr>
<tr><th>handled so far</th><td id="matched">${progress.matched}</td></tr>
<tr><th>redelivered</th><td id="redelivered">${progress.redelivered}</td></tr>
<tr><th>skipped (already resolved)</th><td id="skipped">${progress.skipped}${skipped.length ? html` <span class="muted">(${skipped.map(([r, n], i) => `${i ? ', ' : ''}${r}: ${n}`)})</span>` : ''}</td></tr>
<tr><th>failed</th><td id="failed">${progress.failed}</td></tr>
${pages !== undefined ? html`<tr><th>pages · runs</th><td>${pages} · ${progress.runs}</td></tr>` : ''}
</table>
${progress.failures.length ? html`<h2>Failures${progress.failed > progress.failures.length ? ` (the first ${progress.failures.length})` : ''}</h2><table id="failures"><tr><th>lead</th><th>error</th></tr>${progress.failures.map((f) => html`<tr><td>${leadLinks(links, f.leadId)}</td><td>${f.error}</td></tr>`)}</table>` : ''}
<p class="muted">Each redelivery is in its lead’s journal as the operator’s decision. The bulk’s workflow: <a href="${workflowHref(links, progress.bulkId)}">in the Temporal UI</a>.</p>`;
    signIn.sendHtml(res, 200, layout({ title: 'Bulk redelivery', active: 'dead-letters', body, ...(running ? { refresh: 2 } : {}) }));
  }));

  return router;
}
