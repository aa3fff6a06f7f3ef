/**
 * The chaos suite's short profile on every test run: `npm run chaos` with a one-minute budget
 * (its own system, two workers, faults on a timeline, every invariant checked). The default
 * five-minute profile is run by hand (README, "What we promise, and how it is tested").
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';

describe('chaos (short profile)', function () {
  it('When leads flow through misbehaving buyers while workers are killed and the store, Temporal and the log service fail, then every invariant of the promise holds', async function () {
    this.timeout(420_000);
    const root = path.resolve(__dirname, '../..');
    const output: string[] = [];
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, ['--require', 'tsx/cjs', path.join(root, 'test/chaos/run.ts')], {
        cwd: root,
        env: { ...process.env, CHAOS_SECONDS: process.env.CHAOS_SECONDS ?? '60' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout.on('data', (c: Buffer) => output.push(c.toString('utf8')));
      child.stderr.on('data', (c: Buffer) => output.push(c.toString('utf8')));
      child.on('exit', (exitCode) => resolve(exitCode));
    });
    const text = output.join('');
    const table = text.slice(Math.max(0, text.indexOf('| run | value |')));
    console.log(table);
    assert.equal(code, 0, `npm run chaos failed (exit ${code}):\n${text.slice(-4000)}`);
    assert.match(text, /VERDICT: the promise held/);
  });
});
