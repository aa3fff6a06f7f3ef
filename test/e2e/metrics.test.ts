/**
 * Prometheus metrics through the whole system: after a lead is delivered, the log service's
 * /metrics counts its attempt (by kind, outcome and code) and times the journal write, and
 * intake's /metrics counts the accepted post and a refused one by reason. Labels carry ids and
 * codes, never lead data.
 */
import assert from 'node:assert/strict';
import { startFakeBuyer, type FakeBuyer } from '../fakes/buyer';
import { startSystem, type TestSystem } from '../support/system';

/** The value of one sample line `name{labels} value` whose labels include all of `labels`. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const [, body, value] = /^[^{]+\{(.*)\} (\S+)$/.exec(line) ?? [];
    if (body === undefined || value === undefined) continue;
    if (Object.entries(labels).every(([k, v]) => body.includes(`${k}="${v}"`))) return Number(value);
  }
  return undefined;
}

async function scrape(url: string): Promise<string> {
  const res = await fetch(`${url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  return res.text();
}

describe('metrics', function () {
  let system: TestSystem;
  let buyer: FakeBuyer;

  before(async function () {
    this.timeout(180_000);
    system = await startSystem();
    buyer = await startFakeBuyer();
  });
  after(async () => {
    await buyer?.close();
    await system?.stop();
  });

  it('When a lead is delivered, then the log service counts its attempt by kind, outcome and code, and intake counts the accepted and the refused post', async function () {
    this.timeout(60_000);
    const { source } = await system.route([{ kind: 'webhook', url: buyer.url }]);
    const res = await system.postLead(source.apiKey, { email: 'metrics.person@example.com', first_name: 'Metric' });
    assert.equal(res.status, 202);
    const leadId = String(res.body.leadId);
    await system.waitForLead(leadId, (v) => v.status === 'delivered');
    const bad = await system.postLead(source.apiKey, { email: 'not-an-email' });
    assert.equal(bad.status, 400);

    // The journal write of the delivered status may land just after the lead reads delivered.
    let log = '';
    for (let i = 0; i < 50; i++) {
      log = await scrape(system.logUrl);
      if ((sample(log, 'delivery_attempts_total', { kind: 'webhook', outcome: 'success', code: 'ok' }) ?? 0) >= 1) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(sample(log, 'delivery_attempts_total', { kind: 'webhook', outcome: 'success', code: 'ok' }), 1, 'one attempt on record');
    assert.equal(sample(log, 'delivery_attempt_duration_seconds_count', { kind: 'webhook' }), 1);
    assert.ok((sample(log, 'journal_write_duration_seconds_count', { result: 'ok' }) ?? 0) >= 1, 'journal writes timed');
    assert.equal(sample(log, 'dead_letters_open', { reason: 'all_failed' }), 0);
    assert.equal(sample(log, 'endpoint_breakers', { state: 'open' }), 0);
    assert.ok(!log.includes('metrics.person'), 'no lead data in the metrics');

    const intake = await scrape(system.intakeUrl);
    assert.equal(sample(intake, 'leads_accepted_total', { source: source.id }), 1);
    assert.equal(sample(intake, 'leads_rejected_total', { source: source.id, reason: 'validation_failed' }), 1);
    assert.equal(sample(intake, 'lead_intake_duration_seconds_count', { outcome: 'accepted' }), 1);
  });

  it("When an operator opens an endpoint's breaker, then the log service's gauge shows that endpoint open and the open-breaker count rises", async function () {
    this.timeout(60_000);
    const { buyerId, endpoints } = await system.route([{ kind: 'webhook', url: buyer.url }]);
    const endpointId = endpoints[0]!.id;
    const opened = await system.admin<{ state: string }>('POST', `/endpoints/${endpointId}/breaker/open`, { reason: 'metrics test' });
    assert.equal(opened.status, 200, JSON.stringify(opened.body));
    let log = '';
    for (let i = 0; i < 50; i++) {
      log = await scrape(system.logUrl);
      if (sample(log, 'endpoint_breaker_state', { endpoint: endpointId, state: 'open' }) === 1) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(sample(log, 'endpoint_breaker_state', { buyer: buyerId, endpoint: endpointId, state: 'open' }), 1);
    assert.equal(sample(log, 'endpoint_breaker_state', { buyer: buyerId, endpoint: endpointId, state: 'closed' }), 0);
    assert.ok((sample(log, 'endpoint_breakers', { state: 'open' }) ?? 0) >= 1);
  });
});
