/**
 * The chaos suite's verdict: pure checks of the promise over what the run observed — what each
 * lead source was told, what each buyer received and did, what the system says about each lead
 * (its state, its attempt records, its chain) and what Temporal says about its workflows. Each
 * invariant counts what it checked and lists every violation. Unit-tested on its own
 * (test/unit/chaos-check.test.ts).
 */

/** One request as the buyer saw it, and what the buyer did with it. */
export interface BuyerRequest {
  buyerId: string;
  endpointId: string;
  leadId: string;
  /** The idempotency key the request carried (webhook-id). */
  key: string;
  receivedAt: number;
  /** answered: the buyer sent this status (even if we had stopped waiting); reset: read, then cut the connection. */
  action: { kind: 'answered'; status: number; at: number } | { kind: 'reset'; at: number };
}

/** An attempt record from the delivery log. */
export interface RecordedAttempt {
  leadId: string;
  buyerId: string;
  endpointId: string;
  attempt: number;
  execution?: number;
  startedAt: number;
  finishedAt: number;
  outcome: string;
  code: string;
  status?: number;
}

/** What the source was told about a lead it posted (it retries 5xx and timeouts with the same id). */
export interface PostedLead {
  clientId: string;
  sourceId: string;
  /** The lead id from a 2xx answer; absent if the source gave up. */
  leadId?: string;
  answers: number[];
  /** Times the request failed without an HTTP answer (timeout, refused). */
  networkErrors: number;
  postedAt: number;
  acceptedAt?: number;
}

/** What the system says about a lead at the end. */
export interface LeadOutcome {
  leadId: string;
  /** From the lead's workflow (GET /v1/leads/:id). */
  status: string;
  buyerId?: string;
  heldBy?: string;
  reasonCode?: string;
  /** From the store's summary row. */
  summaryStatus?: string;
  chainOk: boolean;
  chainReason?: string;
  terminalAt?: number;
  journalPending?: number;
}

export interface Observations {
  posted: PostedLead[];
  requests: BuyerRequest[];
  attempts: RecordedAttempt[];
  outcomes: Map<string, LeadOutcome>;
  /** Leads a source gave up on that nonetheless exist in the system (should be none). */
  strayLeads: string[];
  /** Workflow executions Temporal reports as Failed, Terminated or TimedOut. */
  badWorkflows: Array<{ workflowId: string; status: string }>;
  /** Drain deadline: a lead not terminal by then did not end "in time". */
  drainedBy: number;
}

export interface InvariantResult {
  name: string;
  checked: number;
  violations: string[];
}

export interface Verdict {
  invariants: InvariantResult[];
  figures: Record<string, number | string>;
  ok: boolean;
}

const TERMINAL = new Set(['delivered', 'dead_lettered', 'discarded']);
/** Clock slack between the buyer's receive time and our record's window (same machine: small). */
const WINDOW_SLACK_MS = 1_000;

function received(request: BuyerRequest): boolean {
  return request.action.kind === 'reset' || (request.action.status >= 200 && request.action.status < 300);
}

/** Whether a record can stand for a request: its time window covers it and its answer agrees. */
export function compatible(record: RecordedAttempt, request: BuyerRequest): boolean {
  if (record.leadId !== request.leadId || record.endpointId !== request.endpointId) return false;
  if (request.receivedAt < record.startedAt - WINDOW_SLACK_MS || request.receivedAt > record.finishedAt + WINDOW_SLACK_MS) return false;
  if (record.outcome === 'unknown') return true; // we never saw the answer (timeout, reset, lost worker)
  if (request.action.kind === 'reset') return false;
  return record.status === request.action.status;
}

/**
 * Every request a buyer received is matched to a distinct attempt record (earliest compatible
 * first, requests in arrival order). Unmatched requests are violations; records matched twice
 * cannot happen by construction; records left over are counted (attempts that reached nobody:
 * refused connections, DNS, our deferrals).
 */
export function matchRequests(requests: BuyerRequest[], attempts: RecordedAttempt[]): { unmatched: BuyerRequest[]; spareRecords: number } {
  const byEndpoint = new Map<string, RecordedAttempt[]>();
  for (const a of attempts) {
    const key = `${a.leadId} ${a.endpointId}`;
    const list = byEndpoint.get(key) ?? [];
    list.push(a);
    byEndpoint.set(key, list);
  }
  for (const list of byEndpoint.values()) list.sort((x, y) => x.startedAt - y.startedAt || x.attempt - y.attempt || (x.execution ?? 1) - (y.execution ?? 1));
  const used = new Set<RecordedAttempt>();
  const unmatched: BuyerRequest[] = [];
  for (const request of [...requests].sort((x, y) => x.receivedAt - y.receivedAt)) {
    const candidates = byEndpoint.get(`${request.leadId} ${request.endpointId}`) ?? [];
    // Prefer a record with a definite answer over an "unknown" one when both fit.
    const fit = candidates.filter((r) => !used.has(r) && compatible(r, request));
    const pick = fit.find((r) => r.outcome !== 'unknown') ?? fit[0];
    if (pick) used.add(pick);
    else unmatched.push(request);
  }
  return { unmatched, spareRecords: attempts.length - used.size };
}

export function judge(obs: Observations): Verdict {
  const invariants: InvariantResult[] = [];
  const accepted = obs.posted.filter((p) => p.leadId);

  // 1. accepted ⇔ exactly one terminal state, reached in time (and the store agrees).
  const terminal: InvariantResult = { name: 'accepted lead ends in exactly one terminal state, in time', checked: 0, violations: [] };
  for (const p of accepted) {
    terminal.checked++;
    const o = obs.outcomes.get(p.leadId!);
    if (!o) terminal.violations.push(`${p.leadId}: no state found`);
    else if (!TERMINAL.has(o.status)) terminal.violations.push(`${p.leadId}: ${o.status} at the drain deadline`);
    else if (o.summaryStatus !== undefined && o.summaryStatus !== o.status) terminal.violations.push(`${p.leadId}: workflow says ${o.status}, the delivery log's summary ${o.summaryStatus}`);
    else if (o.terminalAt !== undefined && o.terminalAt > obs.drainedBy) terminal.violations.push(`${p.leadId}: terminal only after the drain deadline`);
  }
  for (const stray of obs.strayLeads) terminal.violations.push(`${stray}: the source was never told it was accepted, yet it exists`);
  terminal.checked += obs.posted.length - accepted.length;
  invariants.push(terminal);

  // 2. no lead received (2xx or ambiguous) by two buyers; the buyer on record is the one that has it.
  const oneBuyer: InvariantResult = { name: 'no lead received by two buyers; the buyer on record has it', checked: 0, violations: [] };
  const receivedBy = new Map<string, Set<string>>();
  for (const r of obs.requests) {
    if (!received(r)) continue;
    const set = receivedBy.get(r.leadId) ?? new Set<string>();
    set.add(r.buyerId);
    receivedBy.set(r.leadId, set);
  }
  for (const [leadId, o] of obs.outcomes) {
    oneBuyer.checked++;
    const buyers = [...(receivedBy.get(leadId) ?? [])];
    if (buyers.length > 1) oneBuyer.violations.push(`${leadId}: received by ${buyers.join(' and ')}`);
    else if (o.status === 'delivered' && (buyers.length !== 1 || buyers[0] !== o.buyerId)) oneBuyer.violations.push(`${leadId}: delivered to ${o.buyerId ?? '?'} but received by [${buyers.join(', ')}]`);
    else if (o.status !== 'delivered' && buyers.length === 1 && o.heldBy !== buyers[0]) {
      const seenThere = obs.requests.filter((r) => r.leadId === leadId && received(r)).map((r) => `${r.endpointId} ${r.action.kind === 'reset' ? 'reset' : r.action.status}@${r.receivedAt}`);
      const recorded = obs.attempts.filter((a) => a.leadId === leadId && a.buyerId === buyers[0]).map((a) => `${a.endpointId} #${a.attempt}.${a.execution ?? 1} ${a.outcome}/${a.code}@${a.startedAt}-${a.finishedAt}`);
      oneBuyer.violations.push(`${leadId}: ${o.status} but ${buyers[0]} has it and it is not held by that buyer (held by ${o.heldBy ?? 'nobody'}); buyer saw [${seenThere.join('; ')}], records [${recorded.join('; ')}]`);
    }
  }
  invariants.push(oneBuyer);

  // 3. every request a buyer received is on record with its answer; none recorded twice.
  const { unmatched, spareRecords } = matchRequests(obs.requests, obs.attempts);
  invariants.push({
    name: 'every request a buyer received has an attempt record with its answer',
    checked: obs.requests.length,
    violations: unmatched.map((r) => `${r.leadId} at ${r.endpointId} (${r.buyerId}), received ${new Date(r.receivedAt).toISOString()}, ${r.action.kind === 'reset' ? 'reset' : `answered ${r.action.status}`}: no record`),
  });

  // 4. every chain verifies.
  const chains: InvariantResult = { name: "every lead's hash chain verifies", checked: 0, violations: [] };
  for (const [leadId, o] of obs.outcomes) {
    chains.checked++;
    if (!o.chainOk) chains.violations.push(`${leadId}: ${o.chainReason ?? 'broken'}`);
  }
  invariants.push(chains);

  // 5. no workflow Failed, Terminated or TimedOut.
  invariants.push({ name: 'no workflow failed, terminated or timed out', checked: obs.outcomes.size, violations: obs.badWorkflows.map((w) => `${w.workflowId}: ${w.status}`) });

  // 6. intake never answered 500.
  const answers = obs.posted.flatMap((p) => p.answers);
  invariants.push({ name: 'intake never answered 500', checked: answers.length, violations: obs.posted.filter((p) => p.answers.includes(500)).map((p) => `${p.clientId}: answers ${p.answers.join(',')}`) });

  // Figures.
  const afterSuccess = duplicatesAfterSuccess(obs.requests);
  const statuses = [...obs.outcomes.values()];
  const reasons = new Map<string, number>();
  for (const o of statuses) if (o.status === 'dead_lettered') reasons.set(o.reasonCode ?? '?', (reasons.get(o.reasonCode ?? '?') ?? 0) + 1);
  const figures: Record<string, number | string> = {
    'leads posted': obs.posted.length,
    'leads accepted': accepted.length,
    'sources gave up (never accepted)': obs.posted.length - accepted.length,
    'intake answers 503': answers.filter((a) => a === 503).length,
    'intake network errors (retried)': obs.posted.reduce((n, p) => n + p.networkErrors, 0),
    delivered: statuses.filter((o) => o.status === 'delivered').length,
    'dead-lettered': statuses.filter((o) => o.status === 'dead_lettered').length,
    'dead-letter reasons': [...reasons].map(([k, n]) => `${k} ${n}`).join(', ') || '-',
    discarded: statuses.filter((o) => o.status === 'discarded').length,
    'requests received by buyers': obs.requests.length,
    'attempt records': obs.attempts.length,
    'attempts unknown (ambiguous)': obs.attempts.filter((a) => a.outcome === 'unknown').length,
    'executions lost with a worker (interrupted)': obs.attempts.filter((a) => a.code === 'interrupted').length,
    'records that reached no buyer (refused, DNS, before send)': spareRecords,
    'repeat requests after a 2xx (same key)': afterSuccess.sameKey,
    'repeat requests after a 2xx (other key)': afterSuccess.otherKey,
  };
  return { invariants, figures, ok: invariants.every((i) => i.violations.length === 0) && afterSuccess.otherKey === 0 };
}

/** A buyer seeing a lead again after it answered 2xx: a figure (it can drop it by key), with the key checked. */
export function duplicatesAfterSuccess(requests: BuyerRequest[]): { sameKey: number; otherKey: number } {
  const firstSuccess = new Map<string, BuyerRequest>();
  let sameKey = 0;
  let otherKey = 0;
  for (const r of [...requests].sort((x, y) => x.receivedAt - y.receivedAt)) {
    const id = `${r.leadId} ${r.endpointId}`;
    const ok = firstSuccess.get(id);
    if (ok) {
      if (ok.key === r.key) sameKey++;
      else otherKey++;
    } else if (r.action.kind === 'answered' && r.action.status >= 200 && r.action.status < 300) {
      firstSuccess.set(id, r);
    }
  }
  return { sameKey, otherKey };
}

/** The table the program prints. */
export function formatVerdict(verdict: Verdict, faults: Record<string, number>, meta: Record<string, string | number>): string {
  const lines: string[] = [];
  const row = (cells: Array<string | number>) => `| ${cells.join(' | ')} |`;
  lines.push(row(['run', 'value']), row(['---', '---']));
  for (const [k, v] of Object.entries(meta)) lines.push(row([k, v]));
  lines.push('', row(['fault injected', 'count']), row(['---', '---']));
  for (const [k, v] of Object.entries(faults)) lines.push(row([k, v]));
  lines.push('', row(['figure', 'value']), row(['---', '---']));
  for (const [k, v] of Object.entries(verdict.figures)) lines.push(row([k, v]));
  lines.push('', row(['invariant', 'checked', 'violations']), row(['---', '---', '---']));
  for (const i of verdict.invariants) lines.push(row([i.name, i.checked, i.violations.length]));
  const shown = verdict.invariants.flatMap((i) => i.violations.slice(0, 10).map((v) => `  - [${i.name}] ${v}`));
  if (shown.length) lines.push('', 'violations (first 10 per invariant):', ...shown);
  lines.push('', verdict.ok ? 'VERDICT: the promise held' : 'VERDICT: the promise was broken');
  return lines.join('\n');
}
