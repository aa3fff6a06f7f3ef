/**
 * The Sheets kind's Google quota across workers: two batchers (two worker processes' worth, each with
 * its own in-process pacing) writing for one service account share the store's send slots
 * (activities/throttle.ts), so Google's fake sees no window over the quota; without the shared
 * slots the same load is refused with 429 (the check is not vacuous).
 */
import assert from 'node:assert/strict';
import type { Connection } from 'mongoose';
import { createThrottle } from '../../activities/throttle';
import { QuotaLimiter, SheetsBatcher, accountOf, type QuotaLimits } from '../../activities/sheets';
import { connectStore, type Models } from '../../shared/store';
import { newServiceAccount, startGoogleSheetsFake, type SheetsFake } from '../fakes/google-sheets';
import { sharedInfra } from '../support/infra';

describe('sheets quota shared by workers (store send slots)', function () {
  this.timeout(90_000);
  let fake: SheetsFake;
  let models: Models;
  let connection: Connection;
  const sa = newServiceAccount({ name: 'shared', projectId: 'shared-project' });
  // Google's rule at a test's scale: 5 reads (and 5 writes) per service account in any 5 s.
  const limits: QuotaLimits = { perAccount: 5, perProject: 100, windowMs: 5_200 };

  before(async function () {
    this.timeout(120_000);
    const { mongoBase } = await sharedInfra();
    ({ connection, models } = await connectStore(`${mongoBase}/t_sheets_quota_${Date.now()}`));
    fake = await startGoogleSheetsFake({ quota: { perAccount: 5, perProject: 100, windowMs: 5_000 } });
    fake.registerServiceAccount(sa);
  });
  after(async () => {
    await fake?.close();
    await connection?.dropDatabase().catch(() => undefined);
    await connection?.close();
  });

  /** Two "workers" each writing one row every 150 ms to their own spreadsheets for `ms`. */
  async function load(prefix: string, shared: boolean, ms: number) {
    const workers = [0, 1].map(() => new SheetsBatcher(fake.rootUrl, new QuotaLimiter(limits), { windowMs: 50, maxRows: 100 }, undefined, shared ? { throttle: createThrottle(models), limits } : undefined));
    const account = accountOf(sa.key);
    const answers: Array<Promise<unknown>> = [];
    const end = Date.now() + ms;
    for (let i = 0; Date.now() < end; i++) {
      const w = i % 2;
      const spreadsheetId = `${prefix}_${w}_${i % 6}`;
      if (i < 12) fake.createSpreadsheet(spreadsheetId, { tabs: ['Leads'], sharedWith: [sa.key.client_email] });
      answers.push(workers[w]!.submit({ spreadsheetId, sheet: 'Leads', leadId: `ld_${prefix}_${i}`, columns: ['lead_id', 'n'], cells: [`ld_${prefix}_${i}`, i], account }, { signal: new AbortController().signal, timeoutMs: 30_000 }).catch((e: unknown) => e));
      await new Promise((r) => setTimeout(r, 150));
    }
    return Promise.all(answers);
  }

  it('When two workers write for one service account with the shared slots, then Google never counts more than its quota in any window and every row is written', async () => {
    const before = fake.quotaViolations.length;
    const answers = await load('with', true, 8_000);
    assert.deepEqual(fake.quotaViolations.slice(before), []);
    const failed = answers.filter((a) => (a as { status?: number }).status !== 200);
    assert.deepEqual(failed, []);
    assert.ok(answers.length >= 40, `${answers.length} rows`);
  });

  it('When the same two workers pace only in their own process, then Google refuses the excess (the check above is not vacuous)', async () => {
    const before = fake.quotaViolations.length;
    await load('without', false, 8_000);
    assert.ok(fake.quotaViolations.length > before, 'two processes pacing apart exceed the quota');
  });
});
