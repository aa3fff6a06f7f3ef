/**
 * Stuck leads: a lead that is not terminal after its horizon, or whose workflow never got going.
 * Each lead workflow publishes its horizon as the LeadExpectedBy search attribute (freshness ×
 * buyers + slack when it starts a walk; the rest of the holding buyer's schedule when a buyer
 * holds it). Visibility finds the ones past it; each is described (bounded) for what Temporal
 * knows: a workflow task failing again and again, the pending activities. The admin API lists
 * them (GET /v1/admin/leads?state=stuck) and a schedule alerts once per lead and horizon.
 * Dead-lettered leads are not stuck: they wait for an operator on purpose.
 */
import type { Client } from '@temporalio/client';
import { SA } from '../shared/search-attributes';
import type { SendAlert } from './alerts';
import type { Logger } from '../shared/logger';

export interface StuckLead {
  leadId: string;
  workflowId: string;
  status: string;
  startedAt: string;
  /** The lead's horizon; absent for a lead whose workflow never recorded one (it never got going). */
  expectedBy?: string;
  why: 'past_horizon' | 'not_started' | 'workflow_task_failing';
  /** What Temporal says about the run (from describe). */
  workflowTask?: { attempt: number; state: string };
  pendingActivities?: Array<{ activityType: string; attempt: number; lastFailure?: string }>;
}

export interface StuckOptions {
  /** A lead still `accepted` (its workflow never recorded progress) this long after its start is stuck. */
  notStartedAfterMs: number;
  /** At most this many are listed and described. */
  limit?: number;
}

const quote = (iso: string) => `"${iso}"`;
/** At most this many listed leads are described (each one call to Temporal). */
const DESCRIBED = 50;
const DESCRIBE_CONCURRENCY = 10;
const LIST_DEADLINE_MS = 10_000;
const DESCRIBE_DEADLINE_MS = 2_000;

export async function findStuckLeads(client: Client, options: StuckOptions & { now?: number }): Promise<StuckLead[]> {
  const now = options.now ?? Date.now();
  const limit = options.limit ?? 100;
  const nowIso = new Date(now).toISOString();
  const notStartedIso = new Date(now - options.notStartedAfterMs).toISOString();
  const query =
    `WorkflowType = 'deliverLead' AND ExecutionStatus = 'Running' AND (` +
    `(LeadStatus IN ('accepted', 'delivering') AND LeadExpectedBy < ${quote(nowIso)}) OR ` +
    `(LeadStatus = 'accepted' AND StartTime < ${quote(notStartedIso)}))`;
  const found: StuckLead[] = [];
  // One deadline for the listing (a few pages of visibility), then one per describe. The raw call,
  // not client.workflow.list: that one decodes every execution's memo with our payload codec, and a
  // memo sealed with a key no longer in the ring (or by another deployment on the namespace) would
  // fail the whole listing. Only search attributes are read here, and they are never encrypted.
  await client.connection.withDeadline(Date.now() + LIST_DEADLINE_MS, async () => {
    let nextPageToken: Uint8Array | undefined;
    do {
      const page = await client.workflowService.listWorkflowExecutions({
        namespace: client.options.namespace,
        query,
        pageSize: Math.min(limit - found.length, 100),
        ...(nextPageToken ? { nextPageToken } : {}),
      });
      for (const execution of page.executions ?? []) {
        const fields = execution.searchAttributes?.indexedFields ?? {};
        const workflowId = execution.execution?.workflowId ?? '';
        const status = searchAttributeString(fields[SA.LeadStatus.name]) ?? 'unknown';
        const expectedByIso = searchAttributeString(fields[SA.LeadExpectedBy.name]);
        const expectedBy = expectedByIso ? new Date(expectedByIso) : undefined;
        const validExpectedBy = expectedBy && !Number.isNaN(expectedBy.getTime()) ? expectedBy : undefined;
        found.push({
          leadId: searchAttributeString(fields[SA.LeadId.name]) ?? workflowId.replace(/^lead-/, ''),
          workflowId,
          status,
          startedAt: timestampIso(execution.startTime),
          ...(validExpectedBy ? { expectedBy: validExpectedBy.toISOString() } : {}),
          why: validExpectedBy && validExpectedBy.getTime() < now ? 'past_horizon' : 'not_started',
        });
        if (found.length >= limit) break;
      }
      nextPageToken = page.nextPageToken?.length ? page.nextPageToken : undefined;
    } while (nextPageToken && found.length < limit);
  });
  // What Temporal knows about each (bounded: the first DESCRIBED, a few at a time, each call with its
  // own deadline): a workflow task failing over and over is the usual cause.
  const described = found.slice(0, DESCRIBED);
  for (let i = 0; i < described.length; i += DESCRIBE_CONCURRENCY) {
    await Promise.all(described.slice(i, i + DESCRIBE_CONCURRENCY).map((lead) => describeInto(client, lead)));
  }
  return found;
}

/** A Keyword or Datetime search attribute as Temporal stores it (a json/plain payload; a one-element list for some servers). */
function searchAttributeString(payload: { data?: Uint8Array | null } | undefined): string | undefined {
  if (!payload?.data?.length) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(payload.data).toString('utf8'));
    const one = Array.isArray(value) ? (value as unknown[])[0] : value;
    return typeof one === 'string' ? one : undefined;
  } catch {
    return undefined;
  }
}

function timestampIso(ts: { seconds?: { toString(): string } | number | null; nanos?: number | null } | null | undefined): string {
  if (!ts) return new Date(0).toISOString();
  return new Date(Number(ts.seconds?.toString() ?? 0) * 1000 + Math.floor((ts.nanos ?? 0) / 1e6)).toISOString();
}

async function describeInto(client: Client, lead: StuckLead): Promise<void> {
  try {
    // Raw, like the listing: nothing here needs a decoded memo.
    const raw = await client.connection.withDeadline(Date.now() + DESCRIBE_DEADLINE_MS, () =>
      client.workflowService.describeWorkflowExecution({ namespace: client.options.namespace, execution: { workflowId: lead.workflowId } }),
    );
    const task = raw.pendingWorkflowTask;
    if (task) {
      lead.workflowTask = { attempt: task.attempt ?? 1, state: String(task.state ?? '') };
      if ((task.attempt ?? 1) > 1) lead.why = 'workflow_task_failing';
    }
    const activities = raw.pendingActivities ?? [];
    if (activities.length) {
      lead.pendingActivities = activities.map((a) => ({
        activityType: a.activityType?.name ?? '?',
        attempt: a.attempt ?? 1,
        ...(a.lastFailure?.message ? { lastFailure: a.lastFailure.message.slice(0, 300) } : {}),
      }));
    }
  } catch {
    // Described best effort: the listing stands on visibility alone.
  }
}

/** The sweep a schedule runs: one alert per stuck lead and horizon (a moved horizon alerts again). */
export function createStuckLeadActivities(deps: { client?: Client; sendAlert: SendAlert; logger: Logger; notStartedAfterMs: number }) {
  async function sweepStuckLeads(input: { limit?: number } = {}): Promise<{ stuck: number; alerted: number }> {
    if (!deps.client) return { stuck: 0, alerted: 0 };
    const sweepStart = Date.now();
    const stuck = await findStuckLeads(deps.client, { notStartedAfterMs: deps.notStartedAfterMs, limit: input.limit ?? 100 });
    let alerted = 0;
    for (const lead of stuck) {
      const alert = await deps.sendAlert({
        type: 'stuck_lead',
        dedupeKey: `stuck_${lead.leadId}_${lead.expectedBy ?? 'none'}`,
        title: `Lead ${lead.leadId} is stuck (${lead.why.replace(/_/g, ' ')})`,
        message:
          `Status ${lead.status}, started ${lead.startedAt}${lead.expectedBy ? `, expected to be terminal by ${lead.expectedBy}` : ''}` +
          `${lead.workflowTask ? `; workflow task attempt ${lead.workflowTask.attempt}` : ''}` +
          `${lead.pendingActivities?.length ? `; pending: ${lead.pendingActivities.map((a) => `${a.activityType} (attempt ${a.attempt}${a.lastFailure ? `, last failure: ${a.lastFailure}` : ''})`).join(', ')}` : ''}. ` +
          `See GET /v1/admin/leads?state=stuck and the workflow ${lead.workflowId} in the Temporal UI.`,
      });
      if (alert.at.getTime() >= sweepStart) alerted++; // an alert raised by an earlier sweep is not raised again
    }
    if (stuck.length) deps.logger.warn({ stuck: stuck.length }, 'stuck leads found');
    return { stuck: stuck.length, alerted };
  }
  return { sweepStuckLeads };
}

export type StuckLeadActivities = ReturnType<typeof createStuckLeadActivities>;
