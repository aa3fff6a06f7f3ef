/**
 * Starts a Temporal dev server (`temporal server start-dev`) for local runs and tests: throwaway
 * (in memory, random ports) or persistent (`dbFile`, SQLite in WAL mode), with the project's custom
 * search attributes registered, and waits until it really serves requests.
 */
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SEARCH_ATTRIBUTES } from '../../shared/search-attributes';
import { resolveBinary } from './binaries';
import { freePort } from './ports';
import { describeExit, spawnManaged, sleep, type ExitInfo, type ManagedProcess } from './proc';

export interface TemporalDevServer {
  /** host:port of the frontend gRPC service, for `Connection.connect({ address })`. */
  address: string;
  uiUrl?: string;
  port: number;
  uiPort?: number;
  namespace: string;
  /** SIGTERM, wait for exit (SIGKILL after 10 s). */
  stop(): Promise<void>;
  /** SIGKILL now (simulates an outage). */
  kill(): void;
  pid: number;
  /** Resolves once the server process has exited (never rejects). */
  exited: Promise<ExitInfo>;
  /** Last lines of the server's output. */
  tail(n?: number): string;
}

export interface StartTemporalOptions {
  /** Frontend gRPC port; a free port when omitted. */
  port?: number;
  /** Web UI port; a free port when omitted (ignored when headless). */
  uiPort?: number;
  headless?: boolean;
  /** SQLite file for persistent state; in memory when omitted. */
  dbFile?: string;
  /** Namespace to create at launch and check for readiness (default "default"). */
  namespace?: string;
  /** Remote codec endpoint for the Web UI. */
  codecEndpoint?: string;
  /** Append the server's stdout/stderr here; otherwise the last lines are kept for error messages. */
  logFile?: string;
  log?: (m: string) => void;
  extraArgs?: string[];
}

const HOST = '127.0.0.1';
/** gRPC status NOT_FOUND (a stable number in the gRPC spec). */
const GRPC_NOT_FOUND = 5;
const READY_TIMEOUT_MS = 60_000;
const MAX_PORT_RETRIES = 3;

class EarlyExitError extends Error {
  constructor(
    message: string,
    readonly portInUse: boolean,
  ) {
    super(message);
  }
}

export async function startTemporalDevServer(opts: StartTemporalOptions = {}): Promise<TemporalDevServer> {
  const log = opts.log ?? (() => {});
  const binary = await resolveBinary('temporal', log);
  const namespace = opts.namespace ?? 'default';
  if (opts.dbFile) fs.mkdirSync(path.dirname(path.resolve(opts.dbFile)), { recursive: true });
  // Ports we pick ourselves can be taken by someone else before the server binds them: retry then.
  const portsAreOurs = opts.port === undefined || (!opts.headless && opts.uiPort === undefined);

  for (let attempt = 1; ; attempt++) {
    const port = opts.port ?? (await freePort(HOST));
    const uiPort = opts.headless ? undefined : (opts.uiPort ?? (await freePortExcept(port)));
    try {
      return await launch(binary, { ...opts, port, uiPort, namespace }, log);
    } catch (err) {
      if (err instanceof EarlyExitError && err.portInUse && portsAreOurs && attempt < MAX_PORT_RETRIES) {
        log(`Temporal dev server: a port was taken before it could bind (${port}/${uiPort ?? '-'}); retrying.`);
        continue;
      }
      throw err;
    }
  }
}

async function freePortExcept(taken: number): Promise<number> {
  for (;;) {
    const p = await freePort(HOST);
    if (p !== taken) return p;
  }
}

type LaunchOptions = StartTemporalOptions & { port: number; uiPort?: number; namespace: string };

function buildArgs(o: LaunchOptions): string[] {
  const args = ['server', 'start-dev', '--ip', HOST, '--port', String(o.port)];
  if (o.uiPort === undefined) args.push('--headless');
  else args.push('--ui-port', String(o.uiPort));
  if (o.dbFile) {
    args.push('--db-filename', path.resolve(o.dbFile));
    args.push('--sqlite-pragma', 'journal_mode=WAL', '--sqlite-pragma', 'synchronous=NORMAL');
  }
  if (o.namespace !== 'default') args.push('--namespace', o.namespace);
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) args.push('--search-attribute', `${name}=${type}`);
  if (o.codecEndpoint) args.push('--ui-codec-endpoint', o.codecEndpoint);
  args.push('--log-level', 'warn');
  args.push(...(o.extraArgs ?? []));
  return args;
}

async function launch(binary: string, o: LaunchOptions, log: (m: string) => void): Promise<TemporalDevServer> {
  const args = buildArgs(o);
  const address = `${HOST}:${o.port}`;
  const started = Date.now();
  // The codec endpoint carries the codec token: not in the log file's command line.
  const proc = spawnManaged(binary, args, { name: 'temporal', logFile: o.logFile, ...(o.codecEndpoint ? { mask: [o.codecEndpoint] } : {}) });
  try {
    await waitUntilTemporalReady(proc, address, o.namespace, { logFile: o.logFile, log, label: 'Temporal dev server' });
  } catch (err) {
    await proc.stop(2_000);
    throw err;
  }
  const uiUrl = o.uiPort === undefined ? undefined : `http://${HOST}:${o.uiPort}`;
  log(
    `Temporal dev server ready at ${address} (namespace ${o.namespace}` +
      `${uiUrl ? `, UI ${uiUrl}` : ''}, ${o.dbFile ? `db ${o.dbFile}` : 'in memory'}) in ${Date.now() - started} ms`,
  );
  return {
    address,
    uiUrl,
    port: o.port,
    uiPort: o.uiPort,
    namespace: o.namespace,
    pid: proc.pid,
    exited: proc.exited,
    tail: (n?: number) => proc.tail(n),
    stop: () => proc.stop(10_000),
    kill: () => proc.kill(),
  };
}

function earlyExitError(proc: ManagedProcess, logFile: string | undefined, label: string): EarlyExitError {
  const info = proc.exitInfo() ?? { code: null, signal: null };
  // A Go panic puts its message first and a long stack after it: look for the cause in everything kept,
  // and show the panic's own line beside the last lines.
  const kept = proc.tail(Number.MAX_SAFE_INTEGER);
  const portInUse = /address already in use/i.test(kept);
  const cause = kept.split('\n').find((line) => /^panic:|fatal|address already in use/i.test(line));
  const last = proc.tail(40);
  const output = cause && !last.includes(cause) ? `${cause}\n...\n${last}` : last;
  return new EarlyExitError(
    `${label} ${describeExit(info)} before it was ready.` +
      (logFile ? ` Full log: ${logFile}.` : '') +
      ` Last output:\n${output || '(no output)'}`,
    portInUse,
  );
}

export interface ReadyOptions {
  logFile?: string;
  log: (m: string) => void;
  /** "Temporal dev server", "Temporal server": used in messages. */
  label: string;
  /** Register the namespace when it does not exist (the dev server creates its own; a cluster does not). */
  registerNamespace?: { retentionDays: number };
  timeoutMs?: number;
}

/**
 * Frontend answers, the namespace exists and all custom search attributes are registered and usable
 * in a visibility query. Throws early when the process exits first.
 */
export async function waitUntilTemporalReady(proc: ManagedProcess, address: string, namespace: string, opts: ReadyOptions): Promise<void> {
  const { logFile, log, label } = opts;
  const timeoutMs = opts.timeoutMs ?? READY_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  let lastError = 'not checked yet';
  while (Date.now() < deadline) {
    if (proc.exitInfo()) throw earlyExitError(proc, logFile, label);
    const check = checkReady(address, namespace, log, opts.registerNamespace);
    check.catch(() => undefined); // observed below; avoids an unhandled rejection if the exit wins the race
    const outcome = await Promise.race([check.then(() => 'ready' as const), proc.exited.then(() => 'exited' as const)]).catch(
      (err: unknown) => {
        if (err instanceof SearchAttributeConflictError) throw err;
        return err instanceof Error ? err.message : String(err);
      },
    );
    if (outcome === 'ready') return;
    if (outcome === 'exited') throw earlyExitError(proc, logFile, label);
    lastError = outcome;
    await sleep(250);
  }
  throw new Error(
    `${label} at ${address} was not ready within ${timeoutMs / 1000} s (last error: ${lastError}).` +
      (logFile ? ` Full log: ${logFile}.` : '') +
      ` Last output:\n${proc.tail(40) || '(no output)'}`,
  );
}

/** Numeric values of temporal.api.enums.v1.IndexedValueType (stable in the Temporal API protos). */
const INDEXED_VALUE_TYPE: Record<string, number> = {
  Text: 1,
  Keyword: 2,
  Int: 3,
  Double: 4,
  Bool: 5,
  Datetime: 6,
  KeywordList: 7,
};

function typeNameOf(value: number): string {
  return Object.entries(INDEXED_VALUE_TYPE).find(([, v]) => v === value)?.[0] ?? `#${value}`;
}

/** Not worth retrying: the persisted state contradicts SEARCH_ATTRIBUTES. */
class SearchAttributeConflictError extends Error {}

/**
 * Which SEARCH_ATTRIBUTES are missing on the server; throws SearchAttributeConflictError when one exists
 * with another type (a type cannot be changed in place).
 */
function missingSearchAttributes(visible: Record<string, number>, namespace: string): Record<string, number> {
  const missing: Record<string, number> = {};
  for (const [name, typeName] of Object.entries(SEARCH_ATTRIBUTES)) {
    const wanted = INDEXED_VALUE_TYPE[typeName];
    if (wanted === undefined) throw new SearchAttributeConflictError(`Unknown search attribute type ${typeName} for ${name}`);
    const actual = visible[name];
    if (actual === undefined) missing[name] = wanted;
    else if (actual !== wanted) {
      throw new SearchAttributeConflictError(
        `Search attribute ${name} exists in namespace ${namespace} with type ${typeNameOf(actual)}, but shared/search-attributes.ts ` +
          `says ${typeName}. A type cannot be changed: remove it (temporal operator search-attribute remove ` +
          `--name ${name} --namespace ${namespace}) or delete the dev server's --db-filename file.`,
      );
    }
  }
  return missing;
}

/**
 * Frontend answers, the namespace exists and every custom search attribute is registered. start-dev
 * only applies --search-attribute when it creates a namespace, so attributes added to
 * SEARCH_ATTRIBUTES after a persistent db file was created are registered here.
 */
async function checkReady(address: string, namespace: string, log: (m: string) => void, register?: { retentionDays: number }): Promise<void> {
  const connection = await Connection.connect({ address, connectTimeout: 2_000 });
  try {
    await connection.withDeadline(Date.now() + 5_000, async () => {
      await connection.workflowService.getSystemInfo({});
      try {
        await connection.workflowService.describeNamespace({ namespace });
      } catch (err) {
        if (!register || (err as { code?: unknown }).code !== GRPC_NOT_FOUND) throw err;
        log(`Registering namespace ${namespace} (retention ${register.retentionDays} days)`);
        await connection.workflowService.registerNamespace({
          namespace,
          workflowExecutionRetentionPeriod: msToTs(`${register.retentionDays}d`),
        });
        throw new Error(`namespace ${namespace} just registered, not visible yet`);
      }
      const res = await connection.operatorService.listSearchAttributes({ namespace });
      const missing = missingSearchAttributes(res.customAttributes ?? {}, namespace);
      const names = Object.keys(missing);
      if (names.length > 0) {
        log(`Registering search attributes missing from namespace ${namespace}: ${names.join(', ')}`);
        await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: missing });
        throw new Error(`search attributes just registered, not visible yet: ${names.join(', ')}`);
      }
      // A cluster's services learn new attributes from their caches: usable once a query naming each one parses.
      const query = Object.keys(SEARCH_ATTRIBUTES)
        .map((name) => `${name} IS NOT NULL`)
        .join(' OR ');
      await connection.workflowService.countWorkflowExecutions({ namespace, query });
    });
  } finally {
    await connection.close();
  }
}
