/**
 * Mocha root hooks. Before the first test: find (or, on a fresh machine, build once with Go) the
 * server binaries this run needs, under a timeout long enough for a build, so that no test file's
 * own hook spends its timeout on a build. After the last: stop whatever servers the run started,
 * then prove that no secret the run created or used (tokens, keys, webhook secrets, provider
 * credentials) reached any log line.
 */
import assert from 'node:assert/strict';
import { resolveBinary, type BinaryName } from '../../deploy/local/binaries';
import { stopInfra, testTemporalMode } from './infra';
import { leakedSecrets, rememberedSecretCount } from './secrets';
import { capturedLogLines } from './system';

/** The binaries the servers of this run are started from (no FerretDB for a store given by TEST_MONGO_URL). */
function binariesNeeded(): BinaryName[] {
  // `npm run test:unit` (only test/unit/ given) starts no server: nothing to build for it.
  const specs = process.argv.filter((a) => a.startsWith('test/'));
  if (specs.length > 0 && specs.every((a) => a.startsWith('test/unit/'))) return [];
  const needed: BinaryName[] = [];
  if (testTemporalMode() === 'server') needed.push('temporal-server', 'temporal-sql-tool', 'temporal-ui-server');
  // The dev server's CLI in both modes: a test of the local system starts one whatever the run's mode.
  needed.push('temporal');
  if (!process.env.TEST_MONGO_URL) needed.push('ferretdb');
  return needed;
}

export const mochaHooks = {
  async beforeAll(this: { timeout(ms: number): void }) {
    // A Go build takes minutes (the Temporal CLI about 4 on 2 cores); builds are cached outside the repo.
    this.timeout(45 * 60_000);
    for (const name of binariesNeeded()) await resolveBinary(name, (message) => console.error(message));
  },
  async afterAll(this: { timeout(ms: number): void }) {
    this.timeout(60_000);
    await stopInfra();
    const leaked = leakedSecrets(capturedLogLines);
    if (process.env.TEST_VERBOSE) console.log(`log check: ${capturedLogLines.length} lines, ${rememberedSecretCount()} secrets`);
    assert.deepEqual(leaked, [], `secrets found in log lines: ${leaked.join(', ')}`);
  },
};
