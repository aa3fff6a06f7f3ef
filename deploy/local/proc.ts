/**
 * Child-process helper shared by the local infrastructure starters (Temporal dev server, FerretDB, Go
 * builds): spawn without a shell, keep the last lines of output for error messages (optionally tee
 * everything into a log file), stop gracefully (SIGTERM, then SIGKILL), and make sure long-running
 * children do not outlive this Node process (best effort: on 'exit', and on SIGINT/SIGTERM when nobody
 * else handles those signals).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Keeps the last `capacity` lines written to it. */
export class LineRing {
  private readonly lines: string[] = [];
  private partial = '';

  constructor(private readonly capacity = 200) {}

  push(chunk: string): void {
    const parts = (this.partial + chunk).split(/\r?\n/);
    this.partial = parts.pop() ?? '';
    for (const line of parts) this.add(line);
  }

  /** The last `n` lines (including an unterminated last line), joined with newlines. */
  tail(n = 40): string {
    const all = this.partial ? [...this.lines, this.partial] : this.lines;
    return all.slice(-n).join('\n');
  }

  private add(line: string): void {
    this.lines.push(line);
    if (this.lines.length > this.capacity) this.lines.splice(0, this.lines.length - this.capacity);
  }
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ManagedProcessOptions {
  /** Short name used in messages ("temporal", "ferretdb"). */
  name: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Append stdout and stderr to this file (its folder is created). */
  logFile?: string;
  /** Kill the child when this Node process exits (default true). */
  killOnParentExit?: boolean;
  /** Secret values in the arguments, written as **** in the command line that heads the log file. */
  mask?: readonly string[];
}

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Resolves once the child has exited (never rejects). */
  readonly exited: Promise<ExitInfo>;
  /** Non-null once the child has exited. */
  exitInfo(): ExitInfo | null;
  /** Last lines of combined stdout/stderr. */
  tail(n?: number): string;
  /** SIGTERM, wait up to `graceMs`, then SIGKILL; resolves when the child is gone. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL now (does not wait). */
  kill(): void;
}

const live = new Set<ChildProcess>();
let hooksInstalled = false;

function killAllLiveSync(): void {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // Best effort: the child may already be gone.
    }
  }
  live.clear();
}

function onTerminatingSignal(signal: NodeJS.Signals): void {
  // If someone else (e.g. the `npm start` orchestrator) handles this signal, they own the shutdown
  // order; our 'exit' hook still kills whatever is left when they call process.exit().
  if (process.listenerCount(signal) > 1) return;
  killAllLiveSync();
  process.removeListener(signal, onTerminatingSignal);
  process.kill(process.pid, signal);
}

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', killAllLiveSync);
  process.on('SIGINT', onTerminatingSignal);
  process.on('SIGTERM', onTerminatingSignal);
}

function maskSecrets(text: string, secrets: readonly string[] = []): string {
  return [...secrets].filter(Boolean).sort((a, b) => b.length - a.length).reduce((out, secret) => out.split(secret).join('****'), text);
}

function openLogStream(logFile: string): fs.WriteStream {
  fs.mkdirSync(path.dirname(path.resolve(logFile)), { recursive: true });
  return fs.createWriteStream(logFile, { flags: 'a' });
}

/** Spawns `command args` (no shell) and manages its lifetime and output. */
export function spawnManaged(command: string, args: readonly string[], opts: ManagedProcessOptions): ManagedProcess {
  const ring = new LineRing();
  const logStream = opts.logFile ? openLogStream(opts.logFile) : undefined;
  if (logStream) logStream.write(`\n==== ${new Date().toISOString()} ${opts.name}: ${maskSecrets(`${command} ${args.join(' ')}`, opts.mask)}\n`);

  const child = spawn(command, [...args], {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });

  let exit: ExitInfo | null = null;
  let spawnError: Error | undefined;
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('error', (err) => {
      // 'error' without a pid means the spawn itself failed; 'exit' will not follow.
      spawnError = err;
      ring.push(`[${opts.name}] failed to start: ${err.message}\n`);
      if (child.pid === undefined) {
        exit = { code: null, signal: null };
        resolve(exit);
      }
    });
    child.once('close', (code, signal) => {
      exit = { code, signal };
      live.delete(child);
      logStream?.end();
      resolve(exit);
    });
  });

  const onData = (buf: Buffer): void => {
    const text = buf.toString('utf8');
    ring.push(text);
    logStream?.write(text);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);

  if (opts.killOnParentExit !== false && child.pid !== undefined) {
    installExitHooks();
    live.add(child);
  }

  const kill = (): void => {
    if (exit === null && child.pid !== undefined) child.kill('SIGKILL');
  };

  const stop = async (graceMs = 10_000): Promise<void> => {
    if (exit !== null || child.pid === undefined) return;
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), graceMs);
    });
    const result = await Promise.race([exited, timedOut]);
    if (timer) clearTimeout(timer);
    if (result === 'timeout') {
      kill();
      await exited;
    }
  };

  return {
    name: opts.name,
    pid: child.pid ?? -1,
    child,
    exited,
    exitInfo: () => exit,
    tail: (n?: number) => (spawnError && !ring.tail(n) ? spawnError.message : ring.tail(n)),
    stop,
    kill,
  };
}

export function describeExit(info: ExitInfo): string {
  if (info.signal) return `killed by ${info.signal}`;
  if (info.code === null) return 'failed to start';
  return `exited with code ${info.code}`;
}

export interface RunResult extends ExitInfo {
  output: string;
}

/**
 * Runs a short-lived command to completion and returns its exit status and (tail of) output.
 * `onProgress` is called every `progressEveryMs` while it runs (for "still building…" messages).
 */
export async function runToCompletion(
  command: string,
  args: readonly string[],
  opts: {
    name: string;
    cwd?: string;
    env?: NodeJS.ProcessEnv;
    timeoutMs?: number;
    onProgress?: (elapsedMs: number) => void;
    progressEveryMs?: number;
    /** Keep the complete stdout (e.g. for JSON output); otherwise only the tail is returned. */
    captureStdout?: boolean;
  },
): Promise<RunResult & { stdout: string }> {
  const proc = spawnManaged(command, args, { name: opts.name, cwd: opts.cwd, env: opts.env });
  let stdout = '';
  if (opts.captureStdout) proc.child.stdout?.on('data', (b: Buffer) => (stdout += b.toString('utf8')));
  const started = Date.now();
  const progress = opts.onProgress
    ? setInterval(() => opts.onProgress?.(Date.now() - started), opts.progressEveryMs ?? 30_000)
    : undefined;
  const killer = opts.timeoutMs ? setTimeout(() => proc.kill(), opts.timeoutMs) : undefined;
  try {
    const info = await proc.exited;
    return { ...info, output: proc.tail(60), stdout };
  } finally {
    if (progress) clearInterval(progress);
    if (killer) clearTimeout(killer);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
