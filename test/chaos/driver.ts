/**
 * The chaos suite's lead sources and observers, over the documented HTTP API only: sources post
 * leads at a steady rate and retry 5xx, 429 and network failures with the same id (as a careful
 * lead source does); at the end the observer reads each lead's state, attempt records, chain and
 * summary back through the intake and log services.
 */
import { phoneFor } from '../fakes/person';
import type { LeadOutcome, PostedLead, RecordedAttempt } from './check';

export interface Endpoints {
  intakeUrl: string;
  logUrl: string;
  adminToken: string;
}

const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function call(method: string, url: string, token: string, body?: unknown, timeoutMs = 10_000): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    parsed = { text };
  }
  return { status: response.status, body: parsed };
}

/** Admin calls during setup, retried while the system settles. */
export async function admin(api: Endpoints, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  for (let i = 0; ; i++) {
    try {
      const res = await call(method, `${api.intakeUrl}/v1/admin${path}`, api.adminToken, body);
      if (res.status < 300) return res.body;
      if (res.status < 500 || i >= 10) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
    } catch (error) {
      if (i >= 10) throw error;
    }
    await sleep(1_000);
  }
}

/** One lead source posting one lead until it is accepted or the give-up time passes. */
export async function postLead(api: Endpoints, source: { id: string; apiKey: string }, clientId: string, giveUpMs: number): Promise<PostedLead> {
  const posted: PostedLead = { clientId, sourceId: source.id, answers: [], networkErrors: 0, postedAt: Date.now() };
  const body = { id: clientId, first_name: 'Chaos', last_name: 'Monkey', email: `${clientId}@example.com`, phone: phoneFor(clientId) };
  for (let retry = 0; Date.now() - posted.postedAt < giveUpMs; retry++) {
    try {
      const res = await call('POST', `${api.intakeUrl}/v1/leads`, source.apiKey, body, 8_000);
      posted.answers.push(res.status);
      if (res.status === 200 || res.status === 202) {
        posted.leadId = String(res.body.leadId);
        posted.acceptedAt = Date.now();
        return posted;
      }
      if (res.status < 500 && res.status !== 429) return posted; // a 4xx: the source's own fault, it stops
    } catch {
      posted.networkErrors++;
    }
    await sleep(Math.min(1_000 * 2 ** retry, 8_000));
  }
  return posted;
}

/** Waits until each lead is terminal with its journal written (or the deadline passes); returns what was seen. */
export async function drain(api: Endpoints, leadIds: string[], deadline: number, onProgress?: (done: number, total: number) => void): Promise<Map<string, { view: Record<string, unknown>; terminalAt?: number }>> {
  const seen = new Map<string, { view: Record<string, unknown>; terminalAt?: number }>();
  const pending = new Set(leadIds);
  while (pending.size && Date.now() < deadline) {
    const batch = [...pending].slice(0, 50);
    await Promise.all(
      batch.map(async (leadId) => {
        try {
          const res = await call('GET', `${api.intakeUrl}/v1/leads/${leadId}`, api.adminToken, undefined, 5_000);
          if (res.status !== 200) return;
          const status = String(res.body.status);
          const journal = res.body.journal as { pending?: number } | undefined;
          const prior = seen.get(leadId);
          const terminal = ['delivered', 'dead_lettered', 'discarded'].includes(status);
          const notifyPending = (res.body.notify as { pending?: number } | undefined)?.pending ?? 0;
          seen.set(leadId, { view: res.body, ...(terminal ? { terminalAt: prior?.terminalAt ?? Date.now() } : {}) });
          if (terminal && (journal?.pending ?? 0) === 0 && notifyPending === 0) pending.delete(leadId);
        } catch {
          // The system may be recovering from the last fault: ask again.
        }
      }),
    );
    onProgress?.(leadIds.length - pending.size, leadIds.length);
    if (pending.size) await sleep(1_000);
  }
  return seen;
}

/** Reads back what the system says about one lead: attempts, chain, the store's summary. */
export async function observeLead(api: Endpoints, leadId: string, seen: { view: Record<string, unknown>; terminalAt?: number } | undefined): Promise<{ outcome: LeadOutcome; attempts: RecordedAttempt[] }> {
  const get = async (url: string) => {
    for (let i = 0; ; i++) {
      try {
        const res = await call('GET', url, api.adminToken, undefined, 10_000);
        if (res.status === 200 || i >= 5) return res;
      } catch (error) {
        if (i >= 5) throw error;
      }
      await sleep(1_000);
    }
  };
  const [attemptsRes, verifyRes, lookupRes] = await Promise.all([
    get(`${api.logUrl}/v1/leads/${leadId}/attempts`),
    get(`${api.logUrl}/v1/leads/${leadId}/verify`),
    get(`${api.logUrl}/v1/lookup?leadId=${leadId}`),
  ]);
  const items = (attemptsRes.body.items as Array<Record<string, unknown>> | undefined) ?? [];
  const attempts: RecordedAttempt[] = items.map((a) => ({
    leadId,
    buyerId: String(a.buyerId),
    endpointId: String(a.endpointId),
    attempt: Number(a.attempt),
    ...(a.execution !== undefined ? { execution: Number(a.execution) } : {}),
    startedAt: Number(a.startedAt),
    finishedAt: Number(a.finishedAt),
    outcome: String(a.outcome),
    code: String(a.code),
    ...((a.response as { status?: number } | undefined)?.status !== undefined ? { status: (a.response as { status: number }).status } : {}),
  }));
  const view = seen?.view ?? {};
  const summary = ((lookupRes.body.items as Array<{ status?: string }> | undefined) ?? [])[0];
  const chain = verifyRes.body as { ok?: boolean; brokenAt?: { reason?: string } };
  const outcome: LeadOutcome = {
    leadId,
    status: text(view.status) ?? 'unknown',
    ...(text(view.buyerId) ? { buyerId: text(view.buyerId)! } : {}),
    ...(text(view.heldBy) ? { heldBy: text(view.heldBy)! } : {}),
    ...(text(view.reasonCode) ? { reasonCode: text(view.reasonCode)! } : {}),
    ...(summary?.status ? { summaryStatus: summary.status } : {}),
    chainOk: chain.ok === true,
    ...(chain.ok ? {} : { chainReason: chain.brokenAt?.reason ?? `verify answered ${verifyRes.status}` }),
    ...(seen?.terminalAt ? { terminalAt: seen.terminalAt } : {}),
  };
  return { outcome, attempts };
}

/** Does the system know a lead the source was never told it accepted? */
export async function exists(api: Endpoints, leadId: string): Promise<boolean> {
  const res = await call('GET', `${api.intakeUrl}/v1/leads/${leadId}`, api.adminToken, undefined, 10_000).catch(() => undefined);
  return res?.status === 200;
}
