/**
 * A worker process must not outlive its worker: when the Temporal worker stops for any reason
 * other than the process's own stop, the process exits non-zero (so a supervisor restarts it);
 * asked to stop (SIGTERM), it drains and exits 0. A real worker on the shared Temporal server, in a
 * child process that runs the services' own runService/superviseWorker.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { sharedInfra } from '../support/infra';

function runChild(address: string, mode: 'shutdown' | 'sigterm'): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--require', 'tsx/cjs', path.join(__dirname, '../support/children/failing-worker.ts'), address, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (mode === 'sigterm' && output.includes('READY')) {
        mode = 'shutdown'; // send once
        child.kill('SIGTERM');
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('worker process exit', function () {
  it('When its Temporal worker stops without the process being asked to stop, then the process exits 1 and says so', async function () {
    this.timeout(90_000);
    const { temporalAddress } = await sharedInfra();
    const { code, output } = await runChild(temporalAddress, 'shutdown');
    assert.ok(output.includes('READY'), output);
    assert.equal(code, 1, output);
    assert.match(output, /test worker stopped by itself/);
  });

  it('When the process gets SIGTERM, then its worker drains and the process exits 0', async function () {
    this.timeout(90_000);
    const { temporalAddress } = await sharedInfra();
    const { code, output } = await runChild(temporalAddress, 'sigterm');
    assert.equal(code, 0, output);
    assert.match(output, /failing-worker stopped/);
    assert.doesNotMatch(output, /stopped by itself|stopped unexpectedly/);
  });
});
