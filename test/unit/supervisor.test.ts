/**
 * The supervisor's restart logic, with a fake clock and fake processes: the backoff schedule, its
 * reset after a long run, what is said and recorded at each crash, and a stop that restarts nothing.
 */
import assert from 'node:assert/strict';
import { DEFAULT_BACKOFF, RestartBackoff, Supervisor, formatDelay, restartDelay, type Clock, type RunningProcess, type StatusFile } from '../../deploy/local/supervisor';
import type { ExitInfo } from '../../deploy/local/proc';

class FakeClock implements Clock {
  private at = 1_000_000;
  private seq = 0;
  private readonly timers = new Map<number, { due: number; fn: () => void }>();
  now(): number {
    return this.at;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { due: this.at + ms, fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  /** Moves time on, firing due timers in order (and letting promise chains run between them). */
  async advance(ms: number): Promise<void> {
    const end = this.at + ms;
    for (;;) {
      await settle();
      const next = [...this.timers.entries()].filter(([, t]) => t.due <= end).sort((a, b) => a[1].due - b[1].due)[0];
      if (!next) break;
      this.timers.delete(next[0]);
      this.at = next[1].due;
      next[1].fn();
    }
    this.at = end;
    await settle();
  }
  /** Delays of the timers now pending, relative to now. */
  pending(): number[] {
    return [...this.timers.values()].map((t) => t.due - this.at).sort((a, b) => a - b);
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}

class FakeProcess implements RunningProcess {
  readonly exited: Promise<ExitInfo>;
  stopped = false;
  private finish!: (info: ExitInfo) => void;
  constructor(
    readonly pid: number,
    private readonly output: string,
  ) {
    this.exited = new Promise((resolve) => (this.finish = resolve));
  }
  crash(info: ExitInfo = { code: null, signal: 'SIGKILL' }): void {
    this.finish(info);
  }
  stop(): Promise<void> {
    this.stopped = true;
    this.finish({ code: 0, signal: null });
    return Promise.resolve();
  }
  tail(): string {
    return this.output;
  }
}

function harness(options: { failStarts?: number } = {}) {
  const clock = new FakeClock();
  const said: string[] = [];
  const statuses: StatusFile[] = [];
  const signals: Array<[number, string]> = [];
  const procs: FakeProcess[] = [];
  let failures = options.failStarts ?? 0;
  const supervisor = new Supervisor({
    say: (m) => said.push(m),
    writeStatus: (s) => statuses.push(structuredClone(s)),
    clock,
    signal: (pid, signal) => {
      signals.push([pid, signal]);
      return true;
    },
    redact: (text) => text.replaceAll('s3cret-token', '****'),
  });
  const add = () =>
    supervisor.add({
      name: 'worker-1',
      start: (restart) => {
        if (restart && failures > 0) {
          failures--;
          return Promise.reject(new Error('could not connect with s3cret-token'));
        }
        const proc = new FakeProcess(100 + procs.length, `line one\nboom with s3cret-token`);
        procs.push(proc);
        return Promise.resolve(proc);
      },
    });
  const last = () => statuses.at(-1)!.services['worker-1']!;
  return { clock, said, statuses, signals, procs, supervisor, add, last };
}

describe('supervisor', () => {
  describe('backoff schedule', () => {
    it('When a process keeps crashing, then the delays are 1 s, 2 s, 4 s … capped at 30 s', () => {
      const delays = Array.from({ length: 8 }, (_, i) => restartDelay(DEFAULT_BACKOFF, i));
      assert.deepEqual(delays, [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
    });

    it('When a run lasted 60 s, then the next crash starts the schedule over at 1 s', () => {
      let now = 0;
      const backoff = new RestartBackoff(DEFAULT_BACKOFF, () => now);
      const run = (ms: number) => {
        backoff.started();
        now += ms;
        return backoff.nextDelay();
      };
      assert.deepEqual([run(10), run(10), run(10), run(10)], [1_000, 2_000, 4_000, 8_000]);
      assert.equal(run(59_999), 16_000, 'just under 60 s: no reset');
      assert.equal(run(60_000), 1_000, '60 s up: reset');
      assert.equal(run(5), 2_000);
    });

    it('When a start fails, then it counts as a crash and never resets the schedule', () => {
      let now = 0;
      const backoff = new RestartBackoff(DEFAULT_BACKOFF, () => now);
      backoff.started();
      now += 10;
      assert.equal(backoff.nextDelay(), 1_000);
      now += 120_000; // a start that hung for two minutes and then failed
      assert.equal(backoff.nextDelay(false), 2_000);
      assert.equal(backoff.crashesInARow(), 2);
    });

    it('When delays are formatted, then they read as seconds', () => {
      assert.deepEqual([formatDelay(1_000), formatDelay(30_000), formatDelay(1_500), formatDelay(250)], ['1s', '30s', '1.5s', '250ms']);
    });
  });

  describe('restarts', () => {
    it('When a process is killed, then it is said with the signal and the last lines, recorded as restarting, and restarted after 1 s', async () => {
      const h = harness();
      const handle = await h.add();
      assert.equal(handle.pid(), 100);
      assert.equal(h.last().state, 'running');

      h.procs[0]!.crash();
      await h.clock.advance(0);
      assert.equal(h.said[0], '[supervisor] worker-1 exited (SIGKILL); restart 1 in 1s\n    line one\n    boom with ****');
      assert.equal(h.last().state, 'restarting');
      assert.equal(h.last().pid, null);
      assert.equal(h.last().restarts, 1);
      assert.deepEqual(h.last().lastExit, { code: null, signal: 'SIGKILL', at: new Date(h.clock.now()).toISOString() });
      assert.equal(handle.pid(), undefined);
      assert.deepEqual(h.clock.pending(), [1_000]);

      await h.clock.advance(999);
      assert.equal(h.procs.length, 1, 'not before the delay');
      await h.clock.advance(1);
      assert.equal(h.procs.length, 2);
      assert.equal(handle.pid(), 101);
      assert.equal(h.last().state, 'running');
      assert.equal(h.last().pid, 101);
      assert.equal(handle.restarts(), 1);
      assert.match(h.said[1]!, /worker-1 is running again \(pid 101, restart 1\)/);
    });

    it('When a process crashes in a tight loop, then it keeps backing off up to 30 s and says so at every crash', async () => {
      const h = harness();
      await h.add();
      const announced: string[] = [];
      for (let i = 0; i < 9; i++) {
        h.procs.at(-1)!.crash({ code: 1, signal: null });
        await h.clock.advance(0);
        announced.push(h.said.filter((m) => m.includes('exited')).at(-1)!.split('\n')[0]!);
        await h.clock.advance(h.clock.pending()[0]!);
      }
      assert.deepEqual(
        announced.map((m) => /restart (\d+) in (\w+)/.exec(m)!.slice(1).join(' ')),
        ['1 1s', '2 2s', '3 4s', '4 8s', '5 16s', '6 30s', '7 30s', '8 30s', '9 30s'],
      );
      assert.ok(announced.every((m) => m.startsWith('[supervisor] worker-1 exited (code 1)')));
      assert.match(announced.at(-1)!, /9 crashes in a row without a 60s run; still retrying/);
      assert.equal(h.procs.length, 10, 'restarted every time');
    });

    it('When a process ran for 60 s before it crashed, then the restart comes after 1 s again', async () => {
      const h = harness();
      await h.add();
      for (let i = 0; i < 3; i++) {
        h.procs.at(-1)!.crash();
        await h.clock.advance(h.clock.pending()[0] ?? 0);
        await h.clock.advance(h.clock.pending()[0] ?? 0);
      }
      assert.match(h.said.filter((m) => m.includes('exited')).at(-1)!, /restart 3 in 4s/);
      await h.clock.advance(60_000);
      h.procs.at(-1)!.crash();
      await h.clock.advance(0);
      assert.match(h.said.at(-1)!, /restart 4 in 1s/);
    });

    it('When a restart itself fails, then it counts as a restart, is said (redacted) and is retried with a longer delay', async () => {
      const h = harness({ failStarts: 2 });
      await h.add();
      h.procs[0]!.crash();
      await h.clock.advance(1_000);
      assert.match(h.said.at(-1)!, /^\[supervisor\] worker-1 failed to start again; restart 2 in 2s\n {4}could not connect with \*\*\*\*$/);
      await h.clock.advance(2_000);
      assert.match(h.said.at(-1)!, /restart 3 in 4s/);
      assert.equal(h.last().state, 'restarting');
      await h.clock.advance(4_000);
      assert.equal(h.last().state, 'running');
      assert.equal(h.last().restarts, 3);
      assert.equal(h.procs.length, 2);
    });
  });

  describe('signals and stop', () => {
    it('When kill, pause and resume are called, then the signals go to the current pid; a paused process is resumed before it is stopped', async () => {
      const h = harness();
      const handle = await h.add();
      assert.equal(handle.pause(), true);
      assert.equal(handle.kill('SIGTERM'), true);
      await h.supervisor.stop();
      assert.deepEqual(h.signals, [[100, 'SIGSTOP'], [100, 'SIGTERM'], [100, 'SIGCONT']]);
      assert.equal(h.procs[0]!.stopped, true);
      assert.equal(h.last().state, 'stopped');
      assert.equal(handle.kill(), false, 'nothing runs any more');
    });

    it('When the supervisor stops, then the processes exit without a restart', async () => {
      const h = harness();
      await h.add();
      const stopped = h.supervisor.stop();
      await stopped;
      await h.clock.advance(60_000);
      assert.equal(h.procs.length, 1);
      assert.equal(h.said.length, 0, 'a clean stop is no crash');
      assert.deepEqual(h.last(), { pid: null, state: 'stopped', restarts: 0, lastExit: null, startedAt: h.last().startedAt });
    });

    it('When the supervisor stops during a backoff wait, then the pending restart is cancelled', async () => {
      const h = harness();
      await h.add();
      h.procs[0]!.crash();
      await h.clock.advance(0);
      assert.deepEqual(h.clock.pending(), [1_000]);
      await h.supervisor.stop();
      assert.deepEqual(h.clock.pending(), []);
      await h.clock.advance(10_000);
      assert.equal(h.procs.length, 1);
      assert.equal(h.last().state, 'stopped');
    });

    it('When a restarted process is awaited, then waitForRestart resolves with its new pid', async () => {
      const h = harness();
      const handle = await h.add();
      const waiting = handle.waitForRestart(100, 5_000);
      h.procs[0]!.crash();
      await h.clock.advance(1_000);
      assert.equal(await waiting, 101);
    });
  });
});
