/**
 * The dispute pages as HTML: login, search, search results, one lead's timeline (and its print
 * view), errors. Everything that comes from data goes through the `html` tag (escaped).
 */
import type { LeadDoc, ProviderEventDoc } from '../../../shared/store';
import { EXPIRED } from '../pii';
import type { ReadEntry } from '../read';
import type { LeadRecord } from './data';
import { htmlDocument } from '../../../shared/http/pages/document';
import { html, iso, time, type Html, type Part } from '../../../shared/http/pages/html';
import { STYLE } from './style';

// ---- layout ----------------------------------------------------------------------------------

export function layout(options: { title: string; body: Part; nav?: boolean; print?: boolean; q?: string }): string {
  const nav = options.nav
    ? html`<header class="nav">
  <a href="/">Delivery log · disputes</a>
  <form class="search" method="get" action="/" role="search"><input type="search" name="q" value="${options.q ?? ''}" placeholder="lead id, email or phone" aria-label="Search by lead id, email or phone"><button type="submit">Search</button></form>
  <form method="post" action="/logout"><button class="link" type="submit" id="sign-out">Sign out</button></form>
</header>`
    : '';
  return htmlDocument({ title: options.title, style: STYLE, ...(options.print ? { bodyClass: 'print' } : {}), body: html`${nav}
<main>
${options.body}
</main>` });
}

export function errorPage(title: string, message: Part, options: { nav?: boolean } = {}): string {
  return layout({ title, nav: options.nav ?? true, body: html`<div class="card"><h1>${title}</h1><p>${message}</p><p><a href="/">Search for a lead</a></p></div>` });
}

export function loginPage(options: { next: string; error?: string; action?: string }): string {
  return layout({
    title: 'Sign in · delivery log',
    body: html`<div class="card login">
<h1>Delivery log · disputes</h1>
<p class="notice">Sign in with the log service’s admin token (<code>ADMIN_TOKEN</code>). The session lasts 12 hours.</p>
${options.error ? html`<p class="error" role="alert">${options.error}</p>` : ''}
<form method="post" action="${options.action ?? '/login'}">
<input type="hidden" name="next" value="${options.next}">
<label for="token">Admin token</label>
<input id="token" type="password" name="token" autocomplete="current-password" required autofocus>
<button type="submit">Sign in</button>
</form>
</div>`,
  });
}

// ---- search ----------------------------------------------------------------------------------

const leadHref = (leadId: string) => `/leads/${encodeURIComponent(leadId)}`;

export function searchPage(options: { q?: string; message?: Part; results?: LeadDoc[]; buyers?: Map<string, string> }): string {
  const results = options.results?.length
    ? html`<div class="card"><h2>${options.results.length} leads</h2>
<table><thead><tr><th>Lead</th><th>Source</th><th>Status</th><th>Buyer</th><th>Received</th></tr></thead><tbody>
${options.results.map((l) => html`<tr><td><a href="${leadHref(l._id)}"><code>${l._id}</code></a></td><td><code>${l.sourceId}</code></td><td><span class="badge ${l.status}">${l.status}</span></td><td>${l.buyerId ? buyerLabel(l.buyerId, options.buyers) : '—'}</td><td>${time(l.receivedAt)}</td></tr>`)}
</tbody></table></div>`
    : '';
  return layout({
    title: 'Find a lead · delivery log',
    nav: true,
    q: options.q ?? '',
    body: html`<h1>Find a lead</h1>
<div class="card">
<form method="get" action="/">
<input type="search" name="q" value="${options.q ?? ''}" placeholder="ld_…, someone@example.com or +1 555 010 4477" aria-label="lead id, email or phone" style="width:60%" autofocus>
<button type="submit">Search</button>
</form>
<p class="notice">A lead id (<code>ld_…</code>), or the email or phone number as the source sent it. Email and phone are matched through keyed hashes: no clear text is searched or stored for lookup. Leads whose personal data expired can only be found by id.</p>
</div>
${options.message ? html`<div class="card" role="status"><p>${options.message}</p></div>` : ''}
${results}`,
  });
}

// ---- one lead --------------------------------------------------------------------------------

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const rec = (v: unknown): Record<string, unknown> | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined);

function text(v: unknown): string {
  if (v === undefined) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  return JSON.stringify(v);
}

function isRemoved(v: unknown): v is string {
  return typeof v === 'string' && (v === EXPIRED || v.startsWith('[personal data removed') || v.startsWith('[unreadable'));
}

function removed(v: string): Html {
  return html`<span class="removed">${v}</span>`;
}

function buyerLabel(buyerId: string, names?: Map<string, string>): Html {
  const name = names?.get(buyerId);
  return name ? html`${name} <code>${buyerId}</code>` : html`<code>${buyerId}</code>`;
}

function endpointLabel(endpointId: string, record: LeadRecord): Html {
  const info = record.endpoints.get(endpointId);
  return info?.name ? html`${info.name} <code>${endpointId}</code>` : html`<code>${endpointId}</code>`;
}

/** Nested objects (consent, custom) flattened to dotted keys. */
function flatten(value: Record<string, unknown>, prefix = ''): Array<[string, unknown]> {
  const out: Array<[string, unknown]> = [];
  for (const [key, v] of Object.entries(value)) {
    const r = rec(v);
    if (r && Object.keys(r).length) out.push(...flatten(r, `${prefix}${key}.`));
    else out.push([`${prefix}${key}`, v]);
  }
  return out;
}

function fieldsTable(value: unknown): Html {
  if (isRemoved(value)) return removed(value);
  const r = rec(value);
  if (!r) return html`<pre>${text(value)}</pre>`;
  const rows = flatten(r);
  if (!rows.length) return html`<span class="notice">(no fields)</span>`;
  return html`<table class="kv fields">${rows.map(([k, v]) => html`<tr><th><code>${k}</code></th><td class="mono">${text(v)}</td></tr>`)}</table>`;
}

function headersTable(value: unknown): Html {
  const r = rec(value);
  if (!r || !Object.keys(r).length) return html`<span class="notice">(none recorded)</span>`;
  return html`<table class="kv headers">${Object.entries(r).map(([k, v]) => html`<tr><th><code>${k}</code></th><td class="mono">${text(v)}</td></tr>`)}</table>`;
}

function bodyBlock(value: unknown, bytes?: number): Html {
  if (value === undefined || value === '') return html`<span class="notice">(empty body)</span>`;
  if (isRemoved(value)) return removed(value);
  const body = text(value);
  const cut = bytes !== undefined && bytes > Buffer.byteLength(body) ? html`<div class="notice">excerpt: ${Buffer.byteLength(body)} of ${bytes} bytes</div>` : '';
  return html`<pre>${body}</pre>${cut}`;
}

function entryFoot(entry: ReadEntry): Html {
  return html`<div class="seq">entry ${entry.seq} · <span class="mono">${entry.entryId}</span> · sha256 <span class="mono">${entry.hash}</span></div>`;
}

function intakeItem(entry: ReadEntry, record: LeadRecord): Html {
  const d = entry.data;
  return html`<li class="intake" id="e${entry.seq}" data-type="intake">
<div class="entry-head"><span class="badge intake">intake</span><strong>Lead received</strong><span>from <code>${str(d.sourceId) ?? entry.sourceId}</code>${record.sourceName ? html` (${record.sourceName})` : ''}</span><span class="when">${time(entry.at)}</span></div>
<table class="kv">
<tr><th>Received at</th><td>${time(entry.at)}</td></tr>
<tr><th>Source</th><td><code>${str(d.sourceId) ?? entry.sourceId}</code>${record.sourceName ? html` ${record.sourceName}` : ''}</td></tr>
${str(d.clientId) ? html`<tr><th>Source’s own id</th><td><code>${str(d.clientId)}</code></td></tr>` : ''}
<tr><th>Fields as received</th><td>${fieldsTable(d.lead)}</td></tr>
</table>
${entryFoot(entry)}
</li>`;
}

function attemptItem(entry: ReadEntry, record: LeadRecord, names: Map<string, string>, previous?: ReadEntry): Html {
  const d = entry.data;
  const outcome = str(d.outcome) ?? 'unknown';
  const endpointId = str(d.endpointId) ?? '?';
  const buyerId = str(d.buyerId);
  const startedAt = num(d.startedAt);
  const finishedAt = num(d.finishedAt);
  const latency = num(d.latencyMs) ?? (startedAt !== undefined && finishedAt !== undefined ? finishedAt - startedAt : undefined);
  const request = d.request;
  const req = rec(request);
  const res = rec(d.response);
  const status = num(res?.status);
  const retryAfter = num(d.retryAfterMs);
  const previousEnd = num(previous?.data.finishedAt);
  const waited = startedAt !== undefined && previousEnd !== undefined ? startedAt - previousEnd : undefined;
  return html`<li class="attempt ${outcome}" id="e${entry.seq}" data-type="attempt" data-outcome="${outcome}" data-attempt="${num(d.attempt) ?? ''}">
<div class="entry-head"><span class="badge ${outcome}">${outcome}</span><strong>Attempt ${num(d.attempt) ?? '?'} · ${str(d.kind) ?? '?'} ${status !== undefined ? html`· HTTP ${status}` : ''}</strong><span>${endpointLabel(endpointId, record)}${buyerId ? html` · buyer ${buyerLabel(buyerId, names)}` : ''}</span><span class="when">${time(startedAt ?? entry.at)}</span></div>
<table class="kv">
<tr><th>Endpoint</th><td>${endpointLabel(endpointId, record)} · kind <code>${str(d.kind) ?? '?'}</code> · role <code>${str(d.role) ?? '?'}</code></td></tr>
${buyerId ? html`<tr><th>Buyer</th><td>${buyerLabel(buyerId, names)}</td></tr>` : ''}
<tr><th>Started</th><td class="started">${time(startedAt)}</td></tr>
<tr><th>Finished</th><td class="finished">${time(finishedAt)}</td></tr>
<tr><th>Latency</th><td>${latency !== undefined ? `${latency} ms` : '—'}</td></tr>
${waited !== undefined ? html`<tr><th>Waited</th><td>${waited} ms after attempt ${num(previous?.data.attempt) ?? '?'} ended (backoff)</td></tr>` : ''}
<tr><th>Outcome</th><td><span class="badge ${outcome}">${outcome}</span> <code>${str(d.code) ?? ''}</code> — ${str(d.reason) ?? ''}</td></tr>
${retryAfter !== undefined ? html`<tr><th>Retry-After</th><td>${retryAfter} ms</td></tr>` : ''}
${d.error !== undefined ? html`<tr><th>Error</th><td>${isRemoved(d.error) ? removed(d.error) : html`<span class="mono">${text(d.error)}</span>`}</td></tr>` : ''}
${str(d.attemptId) ? html`<tr><th>Attempt id</th><td><code>${str(d.attemptId)}</code>${num(d.execution) !== undefined && num(d.execution)! > 1 ? html` · execution ${num(d.execution)}` : ''}</td></tr>` : ''}
${rec(d.readBack) ? html`<tr><th>Read back</th><td class="read-back">${rec(d.readBack)!.found ? 'found' : 'not found'}: ${str(rec(d.readBack)!.detail) ?? ''}${str(rec(d.readBack)!.messageId) ? html` · id <code>${str(rec(d.readBack)!.messageId)}</code>` : ''}</td></tr>` : ''}
${outcome === 'unknown' ? html`<tr><th>Note</th><td class="notice">ambiguous: the request may have reached the buyer; the lead stayed with this buyer and the same endpoint was retried with the same idempotency key</td></tr>` : ''}
</table>
<div class="cols">
<div class="request"><h3>Request as sent (secrets masked)</h3>
${isRemoved(request) ? removed(request) : req ? html`<div class="mono">${str(req.method) ?? ''} ${str(req.url) ?? ''}</div>${headersTable(req.headers)}${bodyBlock(req.body)}` : html`<span class="notice">(no request was made)</span>`}
</div>
<div class="response"><h3>Buyer’s answer</h3>
${res ? html`<div>${status !== undefined ? html`status <strong>${status}</strong>` : html`<span class="notice">no HTTP status</span>`}${str(res.messageId) ? html` · message id <code>${str(res.messageId)}</code>` : ''}</div>${headersTable(res.headers)}${bodyBlock(res.body, num(res.bodyBytes))}` : html`<span class="notice">(no answer: ${str(d.reason) ?? str(d.code) ?? 'none'})</span>`}
</div>
</div>
${entryFoot(entry)}
</li>`;
}

function decisionItem(entry: ReadEntry, record: LeadRecord, names: Map<string, string>): Html {
  const d = entry.data;
  const decision = str(d.decision) ?? 'decision';
  const buyerId = str(d.buyerId);
  const endpointId = str(d.endpointId);
  return html`<li class="decision d-${decision}" id="e${entry.seq}" data-type="decision" data-decision="${decision}">
<div class="entry-head"><span class="badge ${decision}">${decision}</span><strong>${str(d.reason) ?? ''}</strong>${buyerId ? html`<span>buyer ${buyerLabel(buyerId, names)}</span>` : ''}${endpointId ? html`<span>endpoint ${endpointLabel(endpointId, record)}</span>` : ''}<span class="when">${time(entry.at)}</span></div>
${entryFoot(entry)}
</li>`;
}

function correctionItem(entry: ReadEntry): Html {
  const d = entry.data;
  return html`<li class="correction" id="e${entry.seq}" data-type="correction">
<div class="entry-head"><span class="badge">correction</span><strong>Fields corrected by ${str(d.by) ?? '?'}</strong><span class="when">${time(entry.at)}</span></div>
${fieldsTable(d.fields)}
${entryFoot(entry)}
</li>`;
}

function statusItem(entry: ReadEntry, names: Map<string, string>): Html {
  const d = entry.data;
  const status = str(d.status) ?? '?';
  const tried = Array.isArray(d.buyersTried) ? d.buyersTried.filter((b): b is string => typeof b === 'string') : [];
  return html`<li class="status s-${status}" id="e${entry.seq}" data-type="status" data-status="${status}">
<div class="entry-head"><span class="badge ${status}">status</span><strong>Status: ${status}</strong>${str(d.buyerId) ? html`<span>buyer ${buyerLabel(str(d.buyerId)!, names)}</span>` : ''}${str(d.reasonCode) ? html`<span><code>${str(d.reasonCode)}</code></span>` : ''}<span class="when">${time(entry.at)}</span></div>
${str(d.reason) ? html`<div>${str(d.reason)}</div>` : ''}
${tried.length ? html`<div>buyers tried: ${tried.map((b, i) => html`${i ? ', ' : ''}${buyerLabel(b, names)}`)}</div>` : ''}
${entryFoot(entry)}
</li>`;
}

/** A buyer's return of the lead: status, reason, and its note (PII: shown opened, or as removed). */
function returnItem(entry: ReadEntry, names: Map<string, string>): Html {
  const d = entry.data;
  const status = str(d.status) ?? '?';
  const buyerId = str(d.buyerId);
  const note = d.note;
  return html`<li class="return r-${status}" id="e${entry.seq}" data-type="return" data-status="${status}" data-reason="${str(d.reason) ?? ''}">
<div class="entry-head"><span class="badge ${status}">return</span><strong>Returned by the buyer: ${str(d.reason) ?? '?'}</strong>${buyerId ? html`<span>buyer ${buyerLabel(buyerId, names)}</span>` : ''}<span class="badge ${status}">${status}</span><span class="when">${time(entry.at)}</span></div>
<table class="kv">
<tr><th>Return</th><td><code>${str(d.returnId) ?? ''}</code></td></tr>
<tr><th>Reason</th><td><code>${str(d.reason) ?? ''}</code></td></tr>
<tr><th>Status on request</th><td><span class="badge ${status}">${status}</span>${status === 'approved' ? html` <span class="notice">(an auto-approved reason)</span>` : status === 'pending' ? html` <span class="notice">(an operator decides)</span>` : ''}</td></tr>
${note !== undefined ? html`<tr><th>Buyer’s note</th><td class="return-note">${isRemoved(note) ? removed(note) : html`<span class="mono">${text(note)}</span>`}</td></tr>` : ''}
${str(d.noteDropped) ? html`<tr><th>Buyer’s note</th><td class="return-note">${removed(`[not kept: the lead’s personal data had expired (${str(d.noteDropped)})]`)}</td></tr>` : ''}
</table>
${entryFoot(entry)}
</li>`;
}

function returnDecisionItem(entry: ReadEntry, names: Map<string, string>): Html {
  const d = entry.data;
  const status = str(d.status) ?? '?';
  const buyerId = str(d.buyerId);
  return html`<li class="return r-${status}" id="e${entry.seq}" data-type="return_decision" data-status="${status}">
<div class="entry-head"><span class="badge ${status}">return ${status}</span><strong>Return <code>${str(d.returnId) ?? ''}</code> ${status} by ${str(d.by) ?? '?'}</strong>${buyerId ? html`<span>buyer ${buyerLabel(buyerId, names)}</span>` : ''}<span class="when">${time(entry.at)}</span></div>
${str(d.reason) ? html`<div>${str(d.reason)}</div>` : ''}
${entryFoot(entry)}
</li>`;
}

function eventItem(event: ProviderEventDoc, record: LeadRecord, piiRemoved: boolean): Html {
  const rows = Object.entries(event.data ?? {}).filter(([, v]) => v !== undefined && v !== null && v !== '');
  return html`<li class="event" data-type="event" data-provider="${event.provider}">
<div class="entry-head"><span class="badge event">${event.provider}</span><strong>${event.provider}: ${event.type}</strong><span>message <code>${event.messageId}</code></span>${event.endpointId ? html`<span>endpoint ${endpointLabel(event.endpointId, record)}</span>` : ''}<span class="when">${time(event.at)}</span></div>
${event.attemptId ? html`<div>about attempt <code>${event.attemptId}</code></div>` : ''}
${piiRemoved ? removed(EXPIRED) : rows.length ? html`<table class="kv">${rows.map(([k, v]) => html`<tr><th><code>${k}</code></th><td class="mono">${text(v).slice(0, 500)}</td></tr>`)}</table>` : ''}
</li>`;
}

type Item = { type: 'entry'; entry: ReadEntry } | { type: 'event'; event: ProviderEventDoc };

/** Journal entries in their order; provider events slotted in at their times. */
function mergeTimeline(record: LeadRecord): Item[] {
  const items: Item[] = [];
  const events = [...record.events];
  for (const entry of record.entries) {
    const at = entry.type === 'attempt' ? num(entry.data.startedAt) ?? entry.at : entry.at;
    while (events.length && events[0]!.at.getTime() < at) items.push({ type: 'event', event: events.shift()! });
    items.push({ type: 'entry', entry });
  }
  for (const event of events) items.push({ type: 'event', event });
  return items;
}

export interface LeadPageOptions {
  print: boolean;
  origin: string;
  now: number;
}

export function leadPage(record: LeadRecord, options: LeadPageOptions): string {
  const { leadId, entries, summary, chain } = record;
  const names = record.buyers;
  const intake = entries.find((e) => e.type === 'intake');
  const attempts = entries.filter((e) => e.type === 'attempt');
  const lastStatus = [...entries].reverse().find((e) => e.type === 'status');
  const status = summary?.status ?? str(lastStatus?.data.status) ?? 'unknown';
  const buyerId = summary?.buyerId ?? str(lastStatus?.data.buyerId);
  const accepted = [...entries].reverse().find((e) => e.type === 'decision' && e.data.decision === 'accepted' && (!buyerId || e.data.buyerId === buyerId));
  const winning = buyerId ? [...attempts].reverse().find((e) => e.data.buyerId === buyerId && e.data.outcome === 'success' && e.data.role !== 'notify') : undefined;
  const piiRemoved = intake !== undefined && isRemoved(intake.data.lead);
  const counts = { success: 0, unknown: 0, transient: 0, permanent: 0 } as Record<string, number>;
  const heldBy = status === 'dead_lettered' ? str(lastStatus?.data.heldBy) : undefined;
  for (const a of attempts) counts[str(a.data.outcome) ?? 'other'] = (counts[str(a.data.outcome) ?? 'other'] ?? 0) + 1;
  const endpointCount = new Set(attempts.map((a) => str(a.data.endpointId))).size;
  const reason = summary?.reason ?? str(lastStatus?.data.reason);
  const receiptUrl = `${options.origin}/leads/${encodeURIComponent(leadId)}/receipt.json`;
  const keysUrl = `${options.origin}/.well-known/delivery-receipt-keys.json`;
  const returned = entries.find((e) => e.type === 'return');
  const returnDecision = [...entries].reverse().find((e) => e.type === 'return_decision');
  const returnStatus = str((returnDecision ?? returned)?.data.status) ?? '?';

  const chainLine = chain.ok
    ? html`<span class="chain ok" data-chain="ok">verified: ${chain.records} records, head <span class="mono">${chain.head ?? ''}</span></span>`
    : html`<span class="chain broken" data-chain="broken">BROKEN at entry ${chain.brokenAt?.seq ?? '?'} (<span class="mono">${chain.brokenAt?.entryId ?? ''}</span>): ${chain.brokenAt?.reason ?? ''} — ${chain.records} records</span>`;

  const summaryCard = html`<div class="card summary">
<table class="kv">
<tr><th>Lead</th><td><code>${leadId}</code>${summary?.clientId ? html` · source’s id <code>${summary.clientId}</code>` : ''}</td></tr>
<tr><th>Source</th><td><code>${summary?.sourceId ?? intake?.sourceId ?? ''}</code>${record.sourceName ? html` ${record.sourceName}` : ''}</td></tr>
<tr><th>Received at</th><td>${time(intake?.at ?? summary?.receivedAt)}</td></tr>
<tr><th>Final status</th><td><span class="badge ${status}" id="final-status">${status}</span>${summary?.reasonCode ? html` <code>${summary.reasonCode}</code>` : ''}${reason ? html` — ${reason}` : ''} <span class="notice">(as of ${iso(summary?.updatedAt ?? lastStatus?.at)})</span></td></tr>
<tr><th>Taken by</th><td>${buyerId && status === 'delivered' ? html`${buyerLabel(buyerId, names)} · accepted at ${time(accepted?.at)}${winning ? html` · the buyer answered ${num(rec(winning.data.response)?.status) !== undefined ? html`HTTP ${num(rec(winning.data.response)?.status)}` : str(winning.data.code)} at ${time(num(winning.data.finishedAt))} (attempt ${num(winning.data.attempt) ?? '?'}, ${endpointLabel(str(winning.data.endpointId) ?? '?', record)})` : ''}` : html`<span class="notice">no buyer took this lead</span>`}</td></tr>
${heldBy ? html`<tr><th>Held by</th><td id="held-by">${buyerLabel(heldBy, names)} <span class="notice">(has or may have received the lead; it is not offered to another buyer unless an operator says so)</span></td></tr>` : ''}
${returned ? html`<tr><th>Returned</th><td id="return-status"><span class="badge ${returnStatus}">${returnStatus}</span> <code>${str(returned.data.reason) ?? ''}</code> · return <code>${str(returned.data.returnId) ?? ''}</code> requested ${time(returned.at)}${returnDecision ? html` · ${returnStatus} by ${str(returnDecision.data.by) ?? '?'} at ${time(returnDecision.at)}` : ''}</td></tr>` : ''}
<tr><th>Attempts</th><td>${attempts.length} at ${endpointCount} endpoint${endpointCount === 1 ? '' : 's'}: ${Object.entries(counts).filter(([, n]) => n > 0).map(([k, n], i) => html`${i ? ', ' : ''}${n} ${k}`)}</td></tr>
<tr><th>Hash chain</th><td>${chainLine}</td></tr>
<tr><th>Signed receipt</th><td>${chain.ok
    ? html`<a class="no-print" href="/leads/${encodeURIComponent(leadId)}/receipt.json" id="receipt-link">receipt.json</a> <a class="no-print" href="/leads/${encodeURIComponent(leadId)}/receipt.json" download="receipt-${leadId}.json">(download)</a>
<span class="print-only">Ed25519-signed receipt of this record, verifiable with the public keys at <span class="mono">${keysUrl}</span></span>
<div class="notice">Verify it offline (Node.js only, no dependencies):</div>
<pre><span class="no-print">curl -H "Authorization: Bearer $ADMIN_TOKEN" -o receipt.json ${receiptUrl}
</span>node scripts/verify-receipt.mjs receipt.json ${keysUrl}</pre>`
    : html`<span class="bad">no receipt: the chain does not verify</span>`}</td></tr>
<tr><th>Personal data</th><td>${record.key?.shreddedAt ? html`<span class="removed">removed at ${iso(record.key.shreddedAt)} (retention expired); hashes, outcomes and receipts still verify</span>` : piiRemoved ? removed(EXPIRED) : record.key?.expiresAt ? html`kept until ${time(record.key.expiresAt)}` : '—'}</td></tr>
</table>
</div>`;

  const lastAttempt = new Map<string, ReadEntry>();
  const timeline = mergeTimeline(record).map((item) => {
    if (item.type === 'event') return eventItem(item.event, record, piiRemoved);
    const entry = item.entry;
    switch (entry.type) {
      case 'intake':
        return intakeItem(entry, record);
      case 'attempt': {
        const endpointId = str(entry.data.endpointId) ?? '';
        const previous = lastAttempt.get(endpointId);
        lastAttempt.set(endpointId, entry);
        return attemptItem(entry, record, names, previous);
      }
      case 'decision':
        return decisionItem(entry, record, names);
      case 'correction':
        return correctionItem(entry);
      case 'status':
        return statusItem(entry, names);
      case 'return':
        return returnItem(entry, names);
      case 'return_decision':
        return returnDecisionItem(entry, names);
      default:
        return html`<li id="e${entry.seq}" data-type="${entry.type}"><div class="entry-head"><span class="badge">${entry.type}</span><span class="when">${time(entry.at)}</span></div><pre>${JSON.stringify(entry.data, null, 2)}</pre>${entryFoot(entry)}</li>`;
    }
  });

  const finalCard = html`<div class="card final" id="final-state"><strong>Final state:</strong> <span class="badge ${status}">${status}</span>${buyerId && status === 'delivered' ? html` — taken by ${buyerLabel(buyerId, names)} at ${time(accepted?.at)}` : ''}${reason ? html` — ${reason}` : ''} <span class="notice">(last journal entry ${time(entries[entries.length - 1]?.at)})</span></div>`;

  return layout({
    title: `Lead ${leadId} · delivery log`,
    nav: true,
    print: options.print,
    body: html`<div class="print-only"><strong>Delivery record of lead <code>${leadId}</code></strong> — generated ${iso(options.now)} from the delivery log (${options.origin}). All times are UTC with milliseconds.</div>
${options.print ? html`<p class="print-hint notice">Print view: use your browser’s Print (Ctrl+P / ⌘P) to save it as a PDF. <a href="/leads/${encodeURIComponent(leadId)}">Back to the full page</a></p>` : ''}
<h1>Lead <code>${leadId}</code></h1>
<p class="no-print"><a href="/leads/${encodeURIComponent(leadId)}?print=1" id="print-link">Print view</a> · <a href="/">New search</a> · all times UTC, ms</p>
${summaryCard}
<h2>Timeline</h2>
<ol class="timeline">
${timeline}
</ol>
${finalCard}`,
  });
}
