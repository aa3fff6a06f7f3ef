/**
 * breaker: one long-lived workflow per endpoint (id `breaker-<endpointId>`), an entity fed by
 * the delivery activities' outcome reports (signal-with-start). Routing reads the state it
 * publishes (activity `publishBreaker` → `breakerstates`), operators read it by query, and the
 * half-open probe is claimed by update. On opening it pauses the buyer (accept endpoints only)
 * and alerts operators at once; on closing it resumes the buyer and alerts "recovered" — both
 * through activities. State, counts and last error show in the UI (current details,
 * BreakerState search attribute). It continues as new when history grows and at least once a
 * day (`runMaxMs`), so it stays small forever and running breakers pick up new code.
 */
import {
  allHandlersFinished,
  ApplicationFailure,
  condition,
  continueAsNew,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { BreakerActivities } from '../activities/breaker';
import { BreakerMachine, type BreakerEvent, type BreakerSnapshot } from '../shared/breaker';
import { formatDuration } from '../shared/durations';
import { SA } from '../shared/search-attributes';
import { breakerStateQuery, claimProbeUpdate, operatorUpdate, outcomeSignal, type BreakerOperatorCommand } from './messages';

/** Continue as new after this many messages even if the server does not suggest it yet. */
const MESSAGES_PER_RUN = 500;
/** ... and after this long, so a breaker that is rarely fed still moves to new code (default one day). */
const DEFAULT_RUN_MAX_MS = 86_400_000;
const PATCH_PERIODIC_CAN = 'breaker-periodic-continue-as-new';

export async function breaker(snapshot: BreakerSnapshot): Promise<void> {
  const machine = new BreakerMachine(snapshot);
  const acts = proxyActivities<BreakerActivities>({
    startToCloseTimeout: '30s',
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' },
  });
  const pending: BreakerEvent[] = [];
  let messages = 0;
  let published: { state?: string; failing?: boolean } = {};
  const failing = () => machine.s.consecutiveFailures > 0;
  const unpublished = () => published.state !== machine.s.state || published.failing !== failing();

  const apply = (events: BreakerEvent[]) => {
    pending.push(...events);
    show();
  };
  const show = () => {
    const s = machine.s;
    upsertSearchAttributes([
      { key: SA.BreakerState, value: s.state },
      { key: SA.EndpointId, value: s.endpointId },
      { key: SA.BuyerId, value: s.buyerId },
    ]);
    setCurrentDetails(
      [
        `**${s.state}**${s.forced ? ' (forced by an operator)' : ''} — ${s.consecutiveFailures}/${s.threshold} consecutive failures, ${s.trips} trip(s)`,
        s.halfOpenAt ? `half-open at ${new Date(s.halfOpenAt).toISOString()}` : '',
        s.lastError ? `last error: ${s.lastError.code} (${s.lastError.reason}) at ${new Date(s.lastError.at).toISOString()}` : '',
        `totals: ${s.counts.successes} successes, ${s.counts.failures} failures, opened ${s.counts.opened} time(s)`,
      ].filter(Boolean).join('\n'),
    );
  };

  setHandler(breakerStateQuery, () => machine.s);
  setHandler(outcomeSignal, (report) => {
    messages++;
    apply(machine.report(report, Date.now()));
  });
  setHandler(
    claimProbeUpdate,
    ({ leadId }) => {
      messages++;
      const granted = machine.claimProbe(leadId, Date.now());
      show();
      return { granted, state: machine.s.state };
    },
  );
  setHandler(
    operatorUpdate,
    (command) => {
      messages++;
      apply(command.action === 'reset' ? machine.operatorReset(`reset by ${command.by}: ${command.reason}`) : machine.operatorOpen(Date.now(), `opened by ${command.by}: ${command.reason}`));
      return { ...machine.s };
    },
    {
      validator: (command: BreakerOperatorCommand) => {
        const action: string = command.action;
        if (action !== 'reset' && action !== 'open') throw ApplicationFailure.nonRetryable(`unknown action ${action}`, 'InvalidCommand');
      },
    },
  );

  show();
  for (;;) {
    const s = machine.s;
    const periodic = patched(PATCH_PERIODIC_CAN);
    const runEndsAt = workflowInfo().runStartTime.getTime() + (s.runMaxMs ?? DEFAULT_RUN_MAX_MS);
    const coolDownMs = s.state === 'open' && s.halfOpenAt !== undefined ? Math.max(0, s.halfOpenAt - Date.now()) : undefined;
    const waitMs = periodic ? Math.min(coolDownMs ?? Infinity, Math.max(0, runEndsAt - Date.now())) : coolDownMs;
    const woke = await (waitMs === undefined
      ? condition(() => pending.length > 0 || unpublished() || messages >= MESSAGES_PER_RUN || workflowInfo().continueAsNewSuggested).then(() => true)
      : condition(() => pending.length > 0 || unpublished() || messages >= MESSAGES_PER_RUN || (periodic && workflowInfo().continueAsNewSuggested), waitMs));
    if (!woke) apply(machine.tick(Date.now()));
    // First the routing projection (new leads route around an open breaker at once), then
    // the side effects in order: pause and alert on opening, resume and alert on closing.
    while (unpublished()) {
      const next = { state: machine.s.state, failing: failing() };
      await acts.publishBreaker({ endpointId: s.endpointId, buyerId: s.buyerId, ...next, at: Date.now() });
      published = next;
    }
    while (pending.length) {
      const event = pending.shift()!;
      if (event.type === 'opened') {
        await acts.breakerOpened({ endpointId: s.endpointId, buyerId: s.buyerId, reason: event.reason, coolDown: formatDuration(event.coolDownMs ?? 0), forced: !!machine.s.forced, at: Date.now() });
      } else if (event.type === 'closed') {
        await acts.breakerClosed({ endpointId: s.endpointId, buyerId: s.buyerId, reason: event.reason, at: Date.now() });
      }
    }
    if (messages >= MESSAGES_PER_RUN || workflowInfo().continueAsNewSuggested || (periodic && Date.now() >= runEndsAt)) {
      await condition(allHandlersFinished);
      if (pending.length === 0) return continueAsNew<typeof breaker>({ ...machine.s });
    }
  }
}
