/**
 * Mocha root hooks: stop whatever servers the run started, then prove that no secret the run
 * created or used (tokens, keys, webhook secrets, provider credentials) reached any log line.
 */
import assert from 'node:assert/strict';
import { stopInfra } from './infra';
import { leakedSecrets, rememberedSecretCount } from './secrets';
import { capturedLogLines } from './system';

export const mochaHooks = {
  async afterAll(this: { timeout(ms: number): void }) {
    this.timeout(60_000);
    await stopInfra();
    const leaked = leakedSecrets(capturedLogLines);
    if (process.env.TEST_VERBOSE) console.log(`log check: ${capturedLogLines.length} lines, ${rememberedSecretCount()} secrets`);
    assert.deepEqual(leaked, [], `secrets found in log lines: ${leaked.join(', ')}`);
  },
};
