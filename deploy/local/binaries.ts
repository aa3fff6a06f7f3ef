/**
 * Finds (or builds once) the Go binaries used for local runs and tests: the Temporal CLI (dev server),
 * FerretDB, and for TEMPORAL_MODE=server the Temporal server, its SQL schema tool and the UI server.
 *
 * Resolution order for each binary:
 *   1. the explicit env var (TEMPORAL_BIN, FERRETDB_BIN, TEMPORAL_SERVER_BIN, TEMPORAL_SQL_TOOL_BIN,
 *      TEMPORAL_UI_SERVER_BIN) — must point at an executable file;
 *   2. `temporal` / `ferretdb` / `temporal-server` / `temporal-sql-tool` / `temporal-ui-server` on PATH;
 *   3. the cache folder outside the repo (see cacheDir()), e.g. bin/temporal-cli-v1.5.1;
 *   4. a build with the Go toolchain into that cache (once per machine; serialised across processes).
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { runToCompletion, sleep } from './proc';

export type BinaryName = 'temporal' | 'ferretdb' | 'temporal-server' | 'temporal-sql-tool' | 'temporal-ui-server';

export const TEMPORAL_CLI_VERSION = 'v1.5.1';
export const FERRETDB_VERSION = 'v1.24.2';
/** The server and UI versions the CLI v1.5.1 embeds (its go.mod): server mode runs what dev mode runs. */
export const TEMPORAL_SERVER_VERSION = 'v1.29.1';
export const TEMPORAL_UI_SERVER_VERSION = 'v2.42.1';
const TEMPORAL_MODULE = 'github.com/temporalio/cli/cmd/temporal';
const FERRETDB_MODULE = 'github.com/FerretDB/FerretDB';
const TEMPORAL_SERVER_MODULE = 'go.temporal.io/server';
const TEMPORAL_UI_SERVER_MODULE = 'github.com/temporalio/ui-server/v2';

interface BinarySpec {
  envVar: string;
  pathName: string;
  cacheFile: string;
  description: string;
  buildTime: string;
  build: (goBin: string, tmpDir: string, log: (m: string) => void) => Promise<string>;
  manualRecipe: (cache: string) => string[];
}

const SPECS: Record<BinaryName, BinarySpec> = {
  temporal: {
    envVar: 'TEMPORAL_BIN',
    pathName: 'temporal',
    cacheFile: `temporal-cli-${TEMPORAL_CLI_VERSION}`,
    description: `the Temporal CLI (${TEMPORAL_CLI_VERSION}, provides \`temporal server start-dev\`)`,
    buildTime: 'about 4 minutes on a cold Go cache',
    build: buildTemporal,
    manualRecipe: (cache) => [
      `mkdir -p ${cache}/bin/tmp && GOBIN=${cache}/bin/tmp go install ${TEMPORAL_MODULE}@${TEMPORAL_CLI_VERSION}`,
      `mv ${cache}/bin/tmp/temporal ${cache}/bin/temporal-cli-${TEMPORAL_CLI_VERSION}`,
    ],
  },
  ferretdb: {
    envVar: 'FERRETDB_BIN',
    pathName: 'ferretdb',
    cacheFile: `ferretdb-${FERRETDB_VERSION}`,
    description: `FerretDB (${FERRETDB_VERSION}, the MongoDB-compatible proxy over PostgreSQL)`,
    buildTime: 'about 2 minutes on a cold Go cache',
    build: buildFerretDB,
    manualRecipe: (cache) => [
      `dir=$(go mod download -json ${FERRETDB_MODULE}@${FERRETDB_VERSION} | sed -n 's/.*"Dir": "\\(.*\\)".*/\\1/p')`,
      `cp -r "$dir" /tmp/ferretdb-src && chmod -R u+w /tmp/ferretdb-src`,
      `echo ${FERRETDB_VERSION} > /tmp/ferretdb-src/build/version/version.txt`,
      `(cd /tmp/ferretdb-src && go build -o ${cache}/bin/ferretdb-${FERRETDB_VERSION} ./cmd/ferretdb)`,
      `(a plain \`go install\` of FerretDB builds a binary that panics with "Invalid build/version/version.txt")`,
    ],
  },
  'temporal-server': serverSpec(
    'TEMPORAL_SERVER_BIN',
    'temporal-server',
    `temporal-server-${TEMPORAL_SERVER_VERSION}`,
    `the Temporal server (${TEMPORAL_SERVER_MODULE} ${TEMPORAL_SERVER_VERSION}, for TEMPORAL_MODE=server)`,
    'about 3 minutes on a cold Go cache',
    `${TEMPORAL_SERVER_MODULE}/cmd/server`,
    TEMPORAL_SERVER_VERSION,
    'server',
  ),
  'temporal-sql-tool': serverSpec(
    'TEMPORAL_SQL_TOOL_BIN',
    'temporal-sql-tool',
    `temporal-sql-tool-${TEMPORAL_SERVER_VERSION}`,
    `the Temporal SQL schema tool (${TEMPORAL_SERVER_MODULE} ${TEMPORAL_SERVER_VERSION})`,
    'about 1 minute once the server is built',
    `${TEMPORAL_SERVER_MODULE}/cmd/tools/sql`,
    TEMPORAL_SERVER_VERSION,
    'sql',
  ),
  'temporal-ui-server': serverSpec(
    'TEMPORAL_UI_SERVER_BIN',
    'temporal-ui-server',
    `temporal-ui-server-${TEMPORAL_UI_SERVER_VERSION}`,
    `the Temporal Web UI server (${TEMPORAL_UI_SERVER_MODULE} ${TEMPORAL_UI_SERVER_VERSION}, for TEMPORAL_MODE=server)`,
    'about 1 minute on a warm Go cache',
    `${TEMPORAL_UI_SERVER_MODULE}/cmd/server`,
    TEMPORAL_UI_SERVER_VERSION,
    'server',
  ),
};

/** A binary that `go install <pkg>@<version>` builds (these modules have no replace directives). */
function serverSpec(
  envVar: string,
  pathName: string,
  cacheFile: string,
  description: string,
  buildTime: string,
  pkg: string,
  version: string,
  builtName: string,
): BinarySpec {
  return {
    envVar,
    pathName,
    cacheFile,
    description,
    buildTime,
    build: async (goBin, tmpDir, log) => {
      await runGo(goBin, ['install', `${pkg}@${version}`], { cwd: tmpDir, env: goEnv({ GOBIN: tmpDir }), what: description, log });
      return path.join(tmpDir, builtName);
    },
    manualRecipe: (cache) => [
      `mkdir -p ${cache}/bin/tmp && GOBIN=${cache}/bin/tmp go install ${pkg}@${version}`,
      `mv ${cache}/bin/tmp/${builtName} ${cache}/bin/${cacheFile}`,
    ],
  };
}

const LOCK_POLL_MS = 500;
const LOCK_MAX_AGE_MS = 30 * 60_000; // a lock older than this is stale even if its pid looks alive (pid reuse)
const LOCK_WAIT_LIMIT_MS = 40 * 60_000;
const BUILD_TIMEOUT_MS = 30 * 60_000;

/** Cache folder outside the repo: $LEAD_DELIVERY_CACHE, else $XDG_CACHE_HOME/lead-delivery, else ~/.cache/lead-delivery. */
export function cacheDir(): string {
  const explicit = process.env.LEAD_DELIVERY_CACHE;
  if (explicit) return path.resolve(explicit);
  const xdg = process.env.XDG_CACHE_HOME;
  if (xdg) return path.join(path.resolve(xdg), 'lead-delivery');
  return path.join(os.homedir(), '.cache', 'lead-delivery');
}

/** Where the cached binary for `name` lives (whether or not it exists yet). */
export function cachedBinaryPath(name: BinaryName): string {
  return path.join(cacheDir(), 'bin', SPECS[name].cacheFile);
}

/** Returns an absolute path to a runnable `temporal` or `ferretdb` binary, building it once if needed. */
export async function resolveBinary(name: BinaryName, log: (msg: string) => void = () => {}): Promise<string> {
  const spec = SPECS[name];

  const fromEnv = process.env[spec.envVar];
  if (fromEnv) {
    const resolved = path.resolve(fromEnv);
    if (!(await isExecutableFile(resolved))) {
      throw new Error(
        `${spec.envVar} is set to "${fromEnv}", but that is not an executable file. ` +
          `Point ${spec.envVar} at ${spec.description}, or unset it to use PATH / the cache in ${cacheDir()}.`,
      );
    }
    return resolved;
  }

  const onPath = await findOnPath(spec.pathName);
  if (onPath) return onPath;

  const cached = cachedBinaryPath(name);
  if (await isExecutableFile(cached)) return cached;

  return buildIntoCache(name, log);
}

async function isExecutableFile(file: string): Promise<boolean> {
  try {
    const st = await fsp.stat(file);
    if (!st.isFile()) return false;
    await fsp.access(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function findOnPath(command: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, command);
    if (await isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

async function findGo(): Promise<string | undefined> {
  const onPath = await findOnPath('go');
  if (onPath) return onPath;
  const standard = '/usr/local/go/bin/go';
  return (await isExecutableFile(standard)) ? standard : undefined;
}

function howToFix(name: BinaryName, reason: string): string {
  const spec = SPECS[name];
  const cache = cacheDir();
  return [
    `Cannot provide ${spec.description}: ${reason}`,
    `Looked at: $${spec.envVar} (not set), \`${spec.pathName}\` on PATH, ${cachedBinaryPath(name)}.`,
    `Fix one of these ways:`,
    `  - export ${spec.envVar}=/absolute/path/to/${spec.pathName}`,
    `  - put \`${spec.pathName}\` on PATH`,
    `  - install Go (>= 1.23, \`go\` on PATH or /usr/local/go/bin/go) and re-run; it is built once into ${cache} (${spec.buildTime})`,
    `  - or build it by hand:`,
    ...spec.manualRecipe(cache).map((l) => `      ${l}`),
    `  (set LEAD_DELIVERY_CACHE to use another cache folder)`,
  ].join('\n');
}

async function buildIntoCache(name: BinaryName, log: (msg: string) => void): Promise<string> {
  const spec = SPECS[name];
  const target = cachedBinaryPath(name);
  const goBin = await findGo();
  if (!goBin) throw new Error(howToFix(name, 'it is not installed and the Go toolchain was not found to build it.'));

  const binDir = path.dirname(target);
  await fsp.mkdir(binDir, { recursive: true });
  const release = await acquireLock(path.join(binDir, `.${spec.cacheFile}.lock`), log);
  try {
    // Another process may have built it while we waited for the lock.
    if (await isExecutableFile(target)) return target;

    log(`Building ${spec.description} with ${goBin} into ${target} — ${spec.buildTime}; this happens once per machine.`);
    const tmpDir = path.join(binDir, `.build-${spec.cacheFile}-${process.pid}-${randomBytes(4).toString('hex')}`);
    await fsp.mkdir(tmpDir, { recursive: true });
    const started = Date.now();
    try {
      const built = await spec.build(goBin, tmpDir, log);
      await verifyBinary(name, built);
      await fsp.chmod(built, 0o755);
      await fsp.rename(built, target); // same filesystem: atomic
    } catch (err) {
      throw new Error(howToFix(name, `building it failed:\n${errorMessage(err)}`));
    } finally {
      await fsp.rm(tmpDir, { recursive: true, force: true });
    }
    log(`Built ${target} in ${Math.round((Date.now() - started) / 1000)} s.`);
    return target;
  } finally {
    await release();
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function goEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, GO111MODULE: 'on', ...extra };
}

function progressLogger(what: string, log: (m: string) => void): (elapsedMs: number) => void {
  return (elapsedMs) => log(`  … still building ${what} (${Math.round(elapsedMs / 1000)} s so far)`);
}

async function runGo(
  goBin: string,
  args: string[],
  opts: { cwd: string; env?: NodeJS.ProcessEnv; what: string; log: (m: string) => void; captureStdout?: boolean },
): Promise<string> {
  const res = await runToCompletion(goBin, args, {
    name: 'go',
    cwd: opts.cwd,
    env: opts.env ?? goEnv(),
    timeoutMs: BUILD_TIMEOUT_MS,
    onProgress: progressLogger(opts.what, opts.log),
    captureStdout: opts.captureStdout,
  });
  if (res.code !== 0) {
    const status = res.signal ? `was killed by ${res.signal}` : `exited with code ${res.code}`;
    throw new Error(`\`go ${args.join(' ')}\` ${status}. Last output:\n${res.output}`);
  }
  return res.stdout;
}

/** `GOBIN=<tmpDir> go install github.com/temporalio/cli/cmd/temporal@v1.5.1` */
async function buildTemporal(goBin: string, tmpDir: string, log: (m: string) => void): Promise<string> {
  await runGo(goBin, ['install', `${TEMPORAL_MODULE}@${TEMPORAL_CLI_VERSION}`], {
    cwd: tmpDir,
    env: goEnv({ GOBIN: tmpDir }),
    what: 'the Temporal CLI',
    log,
  });
  return path.join(tmpDir, 'temporal');
}

/**
 * FerretDB's own `go install` yields a binary that panics at start ("Invalid build/version/version.txt"),
 * so: download the module, copy it somewhere writable, write the version file, `go build ./cmd/ferretdb`.
 */
async function buildFerretDB(goBin: string, tmpDir: string, log: (m: string) => void): Promise<string> {
  const json = await runGo(goBin, ['mod', 'download', '-json', `${FERRETDB_MODULE}@${FERRETDB_VERSION}`], {
    cwd: tmpDir,
    what: 'FerretDB (downloading sources)',
    log,
    captureStdout: true,
  });
  const moduleDir = parseModDownloadDir(json);
  const src = path.join(tmpDir, 'src');
  await fsp.cp(moduleDir, src, { recursive: true });
  await makeUserWritable(src);
  await fsp.writeFile(path.join(src, 'build', 'version', 'version.txt'), `${FERRETDB_VERSION}\n`);
  const out = path.join(tmpDir, 'ferretdb');
  await runGo(goBin, ['build', '-o', out, './cmd/ferretdb'], { cwd: src, what: 'FerretDB', log });
  return out;
}

function parseModDownloadDir(json: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new Error(`Unexpected output from \`go mod download -json\`:\n${json.slice(0, 2000)}`);
  }
  const rec = parsed as { Dir?: unknown; Error?: unknown };
  if (typeof rec.Error === 'string' && rec.Error) throw new Error(`go mod download failed: ${rec.Error}`);
  if (typeof rec.Dir !== 'string' || !rec.Dir) throw new Error(`\`go mod download -json\` gave no Dir:\n${json}`);
  return rec.Dir;
}

/** The Go module cache is read-only; the copy must be writable (chmod -R u+w). */
async function makeUserWritable(dir: string): Promise<void> {
  const st = await fsp.stat(dir);
  await fsp.chmod(dir, st.mode | 0o200);
  for (const entry of await fsp.readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) await makeUserWritable(p);
    else if (entry.isFile()) await fsp.chmod(p, (await fsp.stat(p)).mode | 0o200);
  }
}

/** A freshly built binary must at least print its version (catches FerretDB's version.txt panic). */
async function verifyBinary(name: BinaryName, file: string): Promise<void> {
  if (!(await isExecutableFile(file))) throw new Error(`the build finished but ${file} is missing or not executable`);
  const res = await runToCompletion(file, ['--version'], { name, timeoutMs: 30_000 });
  if (res.code !== 0) throw new Error(`the built binary fails \`${name} --version\`:\n${res.output}`);
}

// ---------------------------------------------------------------------------------------------
// Cross-process lock: exclusive-create file holding "pid hostname startedAt".

interface LockOwner {
  pid: number;
  host: string;
  since: number;
}

async function acquireLock(lockFile: string, log: (m: string) => void): Promise<() => Promise<void>> {
  const me = `${process.pid} ${os.hostname()} ${Date.now()}\n`;
  const deadline = Date.now() + LOCK_WAIT_LIMIT_MS;
  let announced = false;
  for (;;) {
    try {
      const fh = await fsp.open(lockFile, 'wx');
      try {
        await fh.writeFile(me);
      } finally {
        await fh.close();
      }
      return async () => {
        await fsp.rm(lockFile, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const content = await readIfExists(lockFile);
    if (content === undefined) continue; // released between our attempts
    const owner = parseOwner(content);
    if (await isStale(owner, lockFile)) {
      await breakStaleLock(lockFile, content);
      continue;
    }
    if (!announced) {
      announced = true;
      log(`Waiting for another process (pid ${owner?.pid ?? '?'}) that is building into ${path.dirname(lockFile)} …`);
    }
    if (Date.now() > deadline) {
      throw new Error(
        `Gave up after ${LOCK_WAIT_LIMIT_MS / 60_000} min waiting for the build lock ${lockFile} ` +
          `(held by pid ${owner?.pid ?? '?'}). If no build is running, delete that file.`,
      );
    }
    await sleep(LOCK_POLL_MS);
  }
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await fsp.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function parseOwner(content: string): LockOwner | undefined {
  const [pid, host, since] = content.trim().split(/\s+/);
  const owner = { pid: Number(pid), host: host ?? '', since: Number(since) };
  return Number.isInteger(owner.pid) && owner.pid > 0 && Number.isFinite(owner.since) ? owner : undefined;
}

async function isStale(owner: LockOwner | undefined, lockFile: string): Promise<boolean> {
  if (!owner) {
    // Empty or garbled: the owner may be between create and write; only stale if it stays that way.
    try {
      const st = await fsp.stat(lockFile);
      return Date.now() - st.mtimeMs > 10_000;
    } catch {
      return false;
    }
  }
  if (Date.now() - owner.since > LOCK_MAX_AGE_MS) return true;
  if (owner.host !== os.hostname()) return false; // cannot check a pid on another machine
  return !isPidAlive(owner.pid);
}

function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes a stale lock without deleting a fresh one another waiter may have just created: move it
 * aside first, and only delete what we moved if it is still the stale content we judged.
 */
async function breakStaleLock(lockFile: string, staleContent: string): Promise<void> {
  const aside = `${lockFile}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await fsp.rename(lockFile, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  const moved = await readIfExists(aside);
  if (moved !== undefined && moved !== staleContent) {
    // We moved a live lock by accident: put it back unless someone created a new one meanwhile.
    await fsp.link(aside, lockFile).catch(() => undefined);
  }
  await fsp.rm(aside, { force: true });
}
