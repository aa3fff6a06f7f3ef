/** The delivery log's attempt records as tests read them, and waiting for them. */
import { eventually, type TestSystem } from './system';

export type Attempt = Record<string, unknown> & {
  attempt: number;
  outcome: string;
  code: string;
  reason: string;
  retryAfterMs?: number;
  request: { method: string; url: string; headers: Record<string, string>; body: string };
  response?: { status?: number; messageId?: string; body?: string; headers?: Record<string, string> };
};

/** Resolves when the lead has at least `count` attempts in the delivery log. */
export function waitForAttempts(system: TestSystem, leadId: string, count: number, timeoutMs = 30_000): Promise<Attempt[]> {
  return eventually(async () => {
    const items = (await system.attempts(leadId)) as Attempt[];
    return items.length >= count ? items : undefined;
  }, timeoutMs, `${count} attempts of ${leadId}`);
}

/** [attempt number, outcome, code] per attempt: the shape most assertions compare. */
export const summary = (attempts: Attempt[]): Array<[number, string, string]> => attempts.map((a) => [a.attempt, a.outcome, a.code]);
