/**
 * Keeps the local system's processes running: a child that exits while it is not being stopped is
 * started again after an exponential backoff (1 s, 2 s, 4 s … capped at 30 s; back to 1 s once a run
 * lasted 60 s). Every restart is said on the console with the exit code or signal and the last lines
 * of output, and every state change is written to a status file (`<data dir>/status.json`) that an
 * operator console can read. A process that crashes in a tight loop keeps being restarted at the cap,
 * and every crash is said again: the supervisor never gives up silently.
 *
 * The logic depends only on what it is given (a clock, an output function, a status writer), so the
 * unit tests drive it with a fake clock and fake processes.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ExitInfo } from './proc';

// ---------------------------------------------------------------------------------------------
// Backoff

export interface BackoffPolicy {
  /** Delay before the first restart (default 1 s). */
  initialMs: number;
  /** Each consecutive crash multiplies the delay by this (default 2). */
  factor: number;
  /** The delay never exceeds this (default 30 s). */
  maxMs: number;
  /** A run at least this long resets the delay to `initialMs` (default 60 s). */
  resetAfterMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 1_000, factor: 2, maxMs: 30_000, resetAfterMs: 60_000 };

/** The delay before restart number `consecutive + 1` of a run of crashes (0-based). */
export function restartDelay(policy: BackoffPolicy, consecutive: number): number {
  return Math.min(policy.maxMs, policy.initialMs * policy.factor ** Math.max(0, consecutive));
}

/** The backoff state of one process: call started() at each start, nextDelay() at each exit. */
export class RestartBackoff {
  private consecutive = 0;
  private startedAt: number | undefined;

  constructor(
    private readonly policy: BackoffPolicy,
    private readonly now: () => number,
  ) {}

  started(): void {
    this.startedAt = this.now();
  }

  /**
   * The delay before the next start, after an exit (or a failed start: `ran` false). A run that
   * lasted `resetAfterMs` or more starts the schedule over.
   */
  nextDelay(ran = true): number {
    const upMs = ran && this.startedAt !== undefined ? this.now() - this.startedAt : 0;
    if (upMs >= this.policy.resetAfterMs) this.consecutive = 0;
    const delay = restartDelay(this.policy, this.consecutive);
    this.consecutive++;
    this.startedAt = undefined;
    return delay;
  }

  /** Crashes since the last run that lasted `resetAfterMs`. */
  crashesInARow(): number {
    return this.consecutive;
  }
}

/** "1s", "2.5s", "30s", "250ms". */
export function formatDelay(ms: number): string {
  if (ms < 1_000) return `${ms}ms`;
  const s = ms / 1_000;
  return `${Number.isInteger(s) ? s : s.toFixed(1)}s`;
}

// ---------------------------------------------------------------------------------------------
// Status file

export type ServiceState = 'starting' | 'running' | 'restarting' | 'stopped';

export interface LastExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** ISO time of the exit. */
  at: string;
}

export interface ServiceStatus {
  /** The current process, null while it is not running. */
  pid: number | null;
  state: ServiceState;
  /** Restarts after crashes since the supervisor started (failed restarts count too). */
  restarts: number;
  lastExit: LastExit | null;
  /** ISO time the current (or last) process started. */
  startedAt: string | null;
}

export interface StatusFile {
  /** The supervising process (npm start, or a chaos program). */
  supervisorPid: number;
  updatedAt: string;
  services: Record<string, ServiceStatus>;
}

/** Writes the status atomically (temp file, then rename), so a reader never sees half a file. */
export function statusFileWriter(file: string): (status: StatusFile) => void {
  return (status) => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, `${JSON.stringify(status, null, 2)}\n`);
    fs.renameSync(tmp, file);
  };
}

export function readStatusFile(file: string): StatusFile {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as StatusFile;
}

// ---------------------------------------------------------------------------------------------
// Supervisor

/** One running process, as the supervisor sees it. */
export interface RunningProcess {
  readonly pid: number;
  /** Resolves once the process has exited (never rejects). */
  readonly exited: Promise<ExitInfo>;
  /** A clean stop (SIGTERM, then SIGKILL after a grace period); resolves once it is gone. */
  stop(): Promise<void>;
  /** Last lines of its output. */
  tail(n?: number): string;
}

export interface SupervisedSpec {
  name: string;
  /**
   * Starts the process (and, where the caller wants that, waits until it is ready). `restart` is
   * false for the first start. A rejection on a restart counts as a crash and is retried with backoff.
   */
  start(restart: boolean): Promise<RunningProcess>;
}

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** Sends a signal to a pid; false when there is no such process. */
export type SignalSender = (pid: number, signal: NodeJS.Signals) => boolean;

export const sendSignal: SignalSender = (pid, signal) => {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
};

export interface SupervisorOptions {
  /** Console output (one line or a few per call). */
  say: (message: string) => void;
  /** Called with the whole status at every change (e.g. statusFileWriter(file)). */
  writeStatus?: (status: StatusFile) => void;
  backoff?: Partial<BackoffPolicy>;
  clock?: Clock;
  signal?: SignalSender;
  /** Applied to every output excerpt before it is said (removes secrets). */
  redact?: (text: string) => string;
  /** How many lines of a crashed process's output are said (default 10). */
  tailLines?: number;
}

/** What a caller (npm start, a chaos program, a test) holds for one supervised process. */
export interface SupervisedHandle {
  readonly name: string;
  /** The current pid, undefined while it is not running. */
  pid(): number | undefined;
  /** Sends `signal` (default SIGKILL) to the current process; false when none runs. */
  kill(signal?: NodeJS.Signals): boolean;
  /** SIGSTOP: the process freezes (no exit, so no restart) until resume(). */
  pause(): boolean;
  /** SIGCONT. */
  resume(): boolean;
  restarts(): number;
  state(): ServiceState;
  lastExit(): LastExit | null;
  /** Output excerpt of the last process that exited (redacted), or of the current one. */
  tail(n?: number): string;
  /** Resolves when the process is running again with a pid other than `oldPid`. */
  waitForRestart(oldPid: number, timeoutMs?: number): Promise<number>;
}

interface Unit {
  spec: SupervisedSpec;
  backoff: RestartBackoff;
  current: RunningProcess | undefined;
  state: ServiceState;
  restarts: number;
  lastExit: LastExit | null;
  lastTail: string;
  startedAt: string | null;
  paused: boolean;
  stopping: boolean;
  timer: unknown;
  /** Resolves the backoff wait early (stop). */
  wake: (() => void) | undefined;
  /** The first start, while it runs (stop waits for it). */
  firstStart: Promise<void> | undefined;
  /** The watch loop (restarts); settles once the unit is stopped. */
  loop: Promise<void> | undefined;
  listeners: Array<() => void>;
}

export class Supervisor {
  private readonly units = new Map<string, Unit>();
  private readonly order: string[] = [];
  private readonly policy: BackoffPolicy;
  private readonly clock: Clock;
  private readonly signal: SignalSender;
  private readonly redact: (text: string) => string;
  private readonly tailLines: number;
  private stopping = false;

  constructor(private readonly options: SupervisorOptions) {
    this.policy = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.clock = options.clock ?? systemClock;
    this.signal = options.signal ?? sendSignal;
    this.redact = options.redact ?? ((text) => text);
    this.tailLines = options.tailLines ?? 10;
  }

  /**
   * Starts a process and supervises it from then on. Rejects when the first start fails (nothing is
   * supervised then), or when the supervisor was stopped meanwhile (the process is stopped again).
   */
  async add(spec: SupervisedSpec): Promise<SupervisedHandle> {
    if (this.units.has(spec.name)) throw new Error(`${spec.name} is supervised already`);
    if (this.stopping) throw new Error(`not starting ${spec.name}: the supervisor is stopping`);
    const unit: Unit = {
      spec,
      backoff: new RestartBackoff(this.policy, () => this.clock.now()),
      current: undefined,
      state: 'starting',
      restarts: 0,
      lastExit: null,
      lastTail: '',
      startedAt: null,
      paused: false,
      stopping: false,
      timer: undefined,
      wake: undefined,
      firstStart: undefined,
      loop: undefined,
      listeners: [],
    };
    this.units.set(spec.name, unit);
    this.order.push(spec.name);
    this.publish();
    let settled: () => void = () => undefined;
    unit.firstStart = new Promise<void>((resolve) => (settled = resolve));
    try {
      unit.backoff.started();
      unit.startedAt = new Date(this.clock.now()).toISOString();
      let first: RunningProcess;
      try {
        first = await spec.start(false);
      } catch (error) {
        this.forget(spec.name);
        throw error;
      }
      if (unit.stopping || this.stopping) {
        await first.stop();
        unit.state = 'stopped';
        this.publish();
        throw new Error(`${spec.name} started while it was being stopped; stopped it again`);
      }
      this.running(unit, first);
    } finally {
      settled();
    }
    unit.loop = this.watch(unit);
    return this.handle(unit);
  }

  /** The handle of a supervised process. */
  get(name: string): SupervisedHandle {
    const unit = this.units.get(name);
    if (!unit) throw new Error(`${name} is not supervised`);
    return this.handle(unit);
  }

  names(): string[] {
    return [...this.order];
  }

  status(): StatusFile {
    const services: Record<string, ServiceStatus> = {};
    for (const name of this.order) {
      const unit = this.units.get(name)!;
      services[name] = {
        pid: unit.state === 'running' ? (unit.current?.pid ?? null) : null,
        state: unit.state,
        restarts: unit.restarts,
        lastExit: unit.lastExit,
        startedAt: unit.startedAt,
      };
    }
    return { supervisorPid: process.pid, updatedAt: new Date(this.clock.now()).toISOString(), services };
  }

  /**
   * Marks everything as stopping at once (synchronously: an exit seen after this is not restarted),
   * then stops the processes in the reverse order of their start. Pending restarts are cancelled.
   */
  stop(): Promise<void> {
    this.stopping = true;
    for (const unit of this.units.values()) this.cancel(unit);
    return (async () => {
      for (const name of [...this.order].reverse()) await this.stopUnit(name);
    })();
  }

  /** Stops one process cleanly, without restarting it. */
  async stopUnit(name: string): Promise<void> {
    const unit = this.units.get(name);
    if (!unit) return;
    this.cancel(unit);
    if (!unit.loop) {
      // Still in its first start: add() stops the process once the start settles.
      await unit.firstStart;
      return;
    }
    const current = unit.current;
    if (current && unit.state === 'running') {
      if (unit.paused) this.signal(current.pid, 'SIGCONT'); // a stopped process would not see SIGTERM
      await current.stop().catch((error: unknown) => this.options.say(`  stopping ${name} failed: ${this.redact(String(error))}`));
    }
    // Returns at once from a backoff wait, after an exit, or once a restart in flight settles.
    await unit.loop;
    unit.paused = false;
    unit.state = 'stopped';
    this.publish();
  }

  // -------------------------------------------------------------------------------------------

  private cancel(unit: Unit): void {
    unit.stopping = true;
    if (unit.timer !== undefined) this.clock.clearTimeout(unit.timer);
    unit.timer = undefined;
    unit.wake?.();
  }

  private forget(name: string): void {
    this.units.delete(name);
    this.order.splice(this.order.indexOf(name), 1);
    this.publish();
  }

  private running(unit: Unit, proc: RunningProcess): void {
    unit.current = proc;
    unit.state = 'running';
    unit.paused = false;
    unit.backoff.started();
    unit.startedAt = new Date(this.clock.now()).toISOString();
    this.publish();
    for (const listener of unit.listeners.splice(0)) listener();
  }

  /** Waits for each exit and restarts, until the unit is stopped. */
  private async watch(unit: Unit): Promise<void> {
    const name = unit.spec.name;
    for (;;) {
      const proc = unit.current!;
      const info = await proc.exited;
      if (unit.stopping) return;
      unit.lastExit = { code: info.code, signal: info.signal, at: new Date(this.clock.now()).toISOString() };
      unit.lastTail = this.redact(proc.tail(this.tailLines));
      unit.paused = false;
      let delay = unit.backoff.nextDelay(true);
      unit.restarts++;
      unit.state = 'restarting';
      this.publish();
      this.say(`[supervisor] ${name} exited (${describe(info)}); restart ${unit.restarts} in ${formatDelay(delay)}${this.loopNote(unit)}`, unit.lastTail);
      // Start again, backing off further while the start itself fails.
      for (;;) {
        await this.sleep(unit, delay);
        if (unit.stopping) return;
        try {
          const next = await unit.spec.start(true);
          if (unit.stopping) {
            await next.stop().catch(() => undefined);
            return;
          }
          this.running(unit, next);
          this.say(`[supervisor] ${name} is running again (pid ${next.pid}, restart ${unit.restarts})`);
          break;
        } catch (error) {
          if (unit.stopping) return;
          delay = unit.backoff.nextDelay(false);
          unit.restarts++;
          this.publish();
          const message = this.redact(error instanceof Error ? error.message : String(error));
          this.say(`[supervisor] ${name} failed to start again; restart ${unit.restarts} in ${formatDelay(delay)}${this.loopNote(unit)}`, message);
        }
      }
    }
  }

  private loopNote(unit: Unit): string {
    const crashes = unit.backoff.crashesInARow();
    return crashes >= 5 ? ` (${crashes} crashes in a row without a ${formatDelay(this.policy.resetAfterMs)} run; still retrying)` : '';
  }

  private sleep(unit: Unit, ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (unit.stopping) return resolve();
      unit.wake = () => {
        unit.wake = undefined;
        resolve();
      };
      unit.timer = this.clock.setTimeout(() => {
        unit.timer = undefined;
        unit.wake?.();
      }, ms);
    });
  }

  private say(line: string, excerpt?: string): void {
    let body = '';
    if (excerpt !== undefined) body = excerpt.trim() ? `\n${excerpt.trimEnd().split('\n').map((l) => `    ${l}`).join('\n')}` : '\n    (no output)';
    this.options.say(`${line}${body}`);
  }

  private publish(): void {
    try {
      this.options.writeStatus?.(this.status());
    } catch (error) {
      this.options.say(`[supervisor] could not write the status file: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  private handle(unit: Unit): SupervisedHandle {
    const pid = () => (unit.state === 'running' ? unit.current?.pid : undefined);
    const send = (signal: NodeJS.Signals) => {
      const current = pid();
      return current === undefined ? false : this.signal(current, signal);
    };
    return {
      name: unit.spec.name,
      pid,
      kill: (signal = 'SIGKILL') => send(signal),
      pause: () => {
        const sent = send('SIGSTOP');
        if (sent) unit.paused = true;
        return sent;
      },
      resume: () => {
        const sent = send('SIGCONT');
        if (sent) unit.paused = false;
        return sent;
      },
      restarts: () => unit.restarts,
      state: () => unit.state,
      lastExit: () => unit.lastExit,
      tail: (n) => (unit.state === 'running' && unit.current ? this.redact(unit.current.tail(n)) : unit.lastTail),
      waitForRestart: (oldPid, timeoutMs = 60_000) =>
        new Promise<number>((resolve, reject) => {
          const deadline = this.clock.now() + timeoutMs;
          const check = () => {
            const now = pid();
            if (now !== undefined && now !== oldPid) return resolve(now);
            if (unit.stopping) return reject(new Error(`${unit.spec.name} was stopped`));
            if (this.clock.now() >= deadline) return reject(new Error(`${unit.spec.name} was not restarted within ${formatDelay(timeoutMs)}`));
            unit.listeners.push(check);
            // Also look again now and then: the listener fires on a start, the deadline needs a timer.
            this.clock.setTimeout(() => {
              const at = unit.listeners.indexOf(check);
              if (at >= 0) {
                unit.listeners.splice(at, 1);
                check();
              }
            }, Math.max(1, Math.min(1_000, deadline - this.clock.now())));
          };
          check();
        }),
    };
  }
}

function describe(info: ExitInfo): string {
  if (info.signal) return info.signal;
  if (info.code === null) return 'failed to start';
  return `code ${info.code}`;
}
