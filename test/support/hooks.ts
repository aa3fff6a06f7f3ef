/** Mocha root hooks: stop whatever servers the run started. */
import { stopInfra } from './infra';

export const mochaHooks = {
  async afterAll(this: { timeout(ms: number): void }) {
    this.timeout(60_000);
    await stopInfra();
  },
};
