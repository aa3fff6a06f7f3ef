/**
 * `npm start` survives a crashed service: the system as startLocalSystem runs it (the same code as
 * `npm start`), in a temp data dir on free ports, on a fresh PostgreSQL database, with two delivery
 * workers. A worker and the intake service are killed with SIGKILL; both come back (new pids,
 * status.json counts the restarts), intake answers /readyz again, and a lead posted afterwards is
 * delivered to a fake buyer.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dropPgDatabase } from '../../deploy/local/ferretdb';
import { readStatusFile } from '../../deploy/local/supervisor';
import { startLocalSystem, type LocalSystem } from '../../deploy/local/system';
import { startFakeBuyer, type FakeBuyer } from '../fakes/buyer';
import { pgUrl, testTemporalMode } from '../support/infra';
import { rememberSecret } from '../support/secrets';
import { eventually, http } from '../support/system';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('supervisor: npm start survives a crashed service', function () {
  const database = `ld_test_supervisor_${process.pid}_${randomBytes(3).toString('hex')}`;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lead-delivery-supervisor-'));
  const said: string[] = [];
  let system: LocalSystem | undefined;
  let buyer: FakeBuyer | undefined;

  before(async function () {
    this.timeout(120_000);
    buyer = await startFakeBuyer();
    system = await startLocalSystem({
      dataDir,
      ports: 'free',
      pgUrl: pgUrl(),
      pgDatabase: database,
      temporalMode: testTemporalMode(),
      temporalServer: { database: `${database}_temporal`, maxConns: 4 },
      workers: 2,
      env: { OUTBOUND_ALLOW: '127.0.0.0/8', LOG_LEVEL: 'info' },
      seedDemoSource: false,
      quiet: true,
      log: (line) => said.push(line),
    });
    for (const secret of Object.values(system.secrets)) rememberSecret(secret);
  });

  after(async function () {
    this.timeout(60_000);
    await system?.stop();
    await buyer?.close();
    for (const db of [database, `${database}_temporal`, `${database}_temporal_visibility`]) await dropPgDatabase(pgUrl(), db).catch(() => undefined);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('When a worker and the intake service are killed with SIGKILL, then both are restarted, intake is ready again and a lead posted afterwards is delivered', async function () {
    this.timeout(90_000);
    const sys = system!;
    const admin = <T = Record<string, unknown>>(method: string, url: string, body?: unknown) => http<T>(method, `${sys.intakeUrl}/v1/admin${url}`, { token: sys.adminToken, ...(body !== undefined ? { body } : {}) });

    // Two workers booted side by side (each creates the Temporal schedules) and every process runs.
    const before = readStatusFile(sys.statusFile);
    assert.deepEqual(Object.keys(before.services), [...(testTemporalMode() === 'server' ? ['temporal', 'temporal-ui'] : ['temporal']), 'ferretdb', 'log', 'worker-1', 'worker-2', 'intake']);
    for (const [name, status] of Object.entries(before.services)) {
      assert.equal(status.state, 'running', name);
      assert.equal(status.restarts, 0, name);
      assert.ok(status.pid && alive(status.pid), `${name} runs`);
    }
    assert.ok(fs.existsSync(path.join(dataDir, 'logs', 'worker-1.log')) && fs.existsSync(path.join(dataDir, 'logs', 'worker-2.log')));

    // A route to the fake buyer, through the admin API.
    const source = await admin<{ id: string; apiKey: string }>('POST', '/sources', { name: 'supervisor test' });
    assert.equal(source.status, 201);
    rememberSecret(source.body.apiKey);
    const buyerRes = await admin<{ id: string }>('POST', '/buyers', { name: 'Acme Loans' });
    assert.equal(buyerRes.status, 201);
    const endpoint = await admin('POST', `/buyers/${buyerRes.body.id}/endpoints`, { kind: 'webhook', url: buyer!.url, mapping: { email: 'email', first_name: 'first_name' } });
    assert.equal(endpoint.status, 201, JSON.stringify(endpoint.body));
    assert.equal((await admin('PUT', `/sources/${source.body.id}/waterfall`, { buyers: [buyerRes.body.id] })).status, 200);

    // kill -9, from outside, as a crash would.
    const worker = sys.process('worker-1');
    const intake = sys.process('intake');
    const oldWorker = before.services['worker-1']!.pid!;
    const oldIntake = before.services.intake!.pid!;
    process.kill(oldWorker, 'SIGKILL');
    process.kill(oldIntake, 'SIGKILL');

    const [newWorker, newIntake] = await Promise.all([worker.waitForRestart(oldWorker, 30_000), intake.waitForRestart(oldIntake, 30_000)]);
    assert.notEqual(newWorker, oldWorker);
    assert.notEqual(newIntake, oldIntake);
    assert.ok(alive(newWorker) && alive(newIntake));
    assert.ok(!alive(oldWorker) && !alive(oldIntake));

    const after = readStatusFile(sys.statusFile);
    for (const [name, pid] of [['worker-1', newWorker], ['intake', newIntake]] as const) {
      const status = after.services[name]!;
      assert.equal(status.state, 'running', name);
      assert.equal(status.pid, pid, name);
      assert.ok(status.restarts >= 1, `${name} restarts: ${status.restarts}`);
      assert.equal(status.lastExit?.signal, 'SIGKILL', name);
    }
    assert.equal(after.services['worker-2']!.restarts, 0, 'the other worker was left alone');
    assert.equal(after.services['worker-2']!.pid, before.services['worker-2']!.pid);
    for (const name of ['worker-1', 'intake']) {
      assert.ok(said.some((line) => line.startsWith(`[supervisor] ${name} exited (SIGKILL); restart 1 in 1s`)), `said: ${said.filter((l) => l.startsWith('[supervisor]')).join('\n')}`);
    }

    await eventually(async () => ((await fetch(`${sys.intakeUrl}/readyz`)).status === 200 ? true : undefined), 30_000, 'intake /readyz');
    await eventually(() => Promise.resolve(worker.tail(200).includes('delivery worker running') ? true : undefined), 30_000, 'restarted worker-1 running');

    const posted = await http<{ leadId: string }>('POST', `${sys.intakeUrl}/v1/leads`, { token: source.body.apiKey, body: { first_name: 'Ada', email: 'ada@example.com' } });
    assert.equal(posted.status, 202, JSON.stringify(posted.body));
    const leadId = posted.body.leadId;
    const view = await eventually(
      async () => {
        const res = await http<{ status: string }>('GET', `${sys.intakeUrl}/v1/leads/${leadId}`, { token: source.body.apiKey });
        return res.status === 200 && res.body.status === 'delivered' ? res.body : undefined;
      },
      60_000,
      `lead ${leadId} delivered`,
    );
    assert.equal(view.status, 'delivered');
    const [received] = await buyer!.waitForRequests(1, 5_000);
    assert.equal((JSON.parse(received!.body) as { email?: string }).email, 'ada@example.com');

    // What the supervisor and the services said on the console carries no secret.
    const consoleLines = said.filter((line) => /^\[(supervisor|log|worker-\d|intake)\]/.test(line)).join('\n');
    const secrets: string[] = [source.body.apiKey, ...Object.values(sys.secrets).filter((v): v is string => typeof v === 'string')];
    for (const secret of secrets) assert.ok(!consoleLines.includes(secret), 'a secret reached the console');
    // Nor do the log files of every process, restarts included (the command lines heading them too).
    const logsDir = path.join(dataDir, 'logs');
    for (const file of fs.readdirSync(logsDir)) {
      const text = fs.readFileSync(path.join(logsDir, file), 'utf8');
      for (const secret of secrets) assert.ok(!text.includes(secret), `a secret is in logs/${file}`);
    }
  });
});
