/**
 * Replay: histories of real runs replay against the current workflow code without
 * nondeterminism. Fresh histories come from the scenarios below; histories recorded by earlier
 * versions live in test/workflows/histories/*.bin, protobuf-encoded (refresh with RECORD_HISTORIES=1).
 */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import { temporal } from '@temporalio/proto';
import { startFakeBuyer, type FakeBuyer } from '../fakes/buyer';
import { startSystem, workflowBundle, type TestSystem } from '../support/system';
import { leadWorkflowId } from '../../shared/delivery';

const HISTORIES = path.join(__dirname, 'histories');

describe('workflow replay', function () {
  let system: TestSystem;
  let buyer: FakeBuyer;
  let failing: FakeBuyer;

  before(async function () {
    this.timeout(180_000);
    system = await startSystem();
    buyer = await startFakeBuyer();
    failing = await startFakeBuyer({ steps: [{ status: 404 }] });
  });
  after(async () => {
    await buyer?.close();
    await failing?.close();
    await system?.stop();
  });

  async function scenario(name: string, steps: Parameters<FakeBuyer['script']>[0], twoBuyers = false) {
    const source = await system.createSource(name);
    const buyers: string[] = [];
    if (twoBuyers) {
      const first = await system.createBuyer({ name: 'first' });
      await system.addEndpoint(first, { kind: 'webhook', url: failing.url });
      buyers.push(first);
    }
    const main = await system.createBuyer({ name: 'main' });
    await system.addEndpoint(main, { kind: 'webhook', url: buyer.url, backoff: ['1s', '1s'] });
    await system.addEndpoint(main, { kind: 'webhook', url: buyer.url, role: 'notify', backoff: ['1s'] });
    buyers.push(main);
    await system.setWaterfall(source.id, buyers);
    buyer.script(steps);
    const res = await system.postLead(source.apiKey, { email: `${name}@example.com`, first_name: 'Replay' });
    const leadId = String(res.body.leadId);
    const handle = system.client.workflow.getHandle(leadWorkflowId(leadId));
    await handle.result();
    return { name, history: await handle.fetchHistory() };
  }

  it('When histories of delivered, retried, failed and failed-over leads are replayed, then none is nondeterministic', async function () {
    this.timeout(120_000);
    const runs = [
      await scenario('first-try', [{ status: 200 }]),
      await scenario('retried', [{ status: 503 }, { status: 200 }]),
      await scenario('failed', [{ status: 400 }]),
      await scenario('failover', [{ status: 200 }], true),
    ];
    if (process.env.RECORD_HISTORIES) {
      mkdirSync(HISTORIES, { recursive: true });
      for (const run of runs) writeFileSync(path.join(HISTORIES, `${run.name}.bin`), temporal.api.history.v1.History.encode(run.history).finish());
    }
    const stored = readdirSync(HISTORIES).filter((f) => f.endsWith('.bin')).map((file) => ({
      name: `stored ${file}`,
      history: temporal.api.history.v1.History.decode(readFileSync(path.join(HISTORIES, file))),
    }));
    const all = [...runs, ...stored];
    const results = Worker.runReplayHistories({ workflowBundle: await workflowBundle() }, all.map((r, i) => ({ workflowId: `${r.name}-${i}`, history: r.history })));
    let replayed = 0;
    for await (const result of results) {
      assert.equal(result.error, undefined, `${result.workflowId}: ${String(result.error)}`);
      replayed++;
    }
    assert.equal(replayed, all.length);
    assert.ok(runs.every((r) => (r.history.events?.length ?? 0) > 5));
  });
});
