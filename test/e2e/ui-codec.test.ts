/**
 * The Temporal Web UI shows operators the decoded lead: the dev server's UI (or, with
 * TEST_TEMPORAL_MODE=server, the UI server in front of the Temporal server) is wired (as `npm
 * start` wires it) to the intake service's codec endpoint, and a headless Chromium reads the
 * workflow's input on its page (that the stored history holds only ciphertext is shown in
 * security.test.ts). A screenshot is kept in test-artifacts/.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { startTemporalDevServer } from '../../deploy/local/temporal';
import { startTemporalUi } from '../../deploy/local/temporal-server';
import { startFakeBuyer, type FakeBuyer } from '../fakes/buyer';
import { sharedInfra, testTemporalMode } from '../support/infra';
import { startSystem, type TestSystem } from '../support/system';
import { leadWorkflowId } from '../../shared/delivery';
import { freePort } from '../../deploy/local/ports';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
export const ARTIFACTS = path.resolve(__dirname, '../../test-artifacts');

describe('Temporal UI with the codec endpoint', function () {
  let temporal: { address: string; uiUrl: string; stop(): Promise<void> };
  let system: TestSystem;
  let buyer: FakeBuyer;
  let browser: Browser;

  before(async function () {
    this.timeout(180_000);
    const { mongoBase } = await sharedInfra();
    const intakePort = await freePort();
    const codecToken = `codec-ui-${Date.now()}`;
    const codecEndpoint = `http://127.0.0.1:${intakePort}/v1/codec/t/${codecToken}`;
    if (testTemporalMode() === 'server') {
      const { temporalAddress } = await sharedInfra();
      const stateDir = mkdtempSync(path.join(os.tmpdir(), 'ld-ui-'));
      const ui = await startTemporalUi({ stateDir, temporalAddress, codecEndpoint });
      const stop = async () => {
        await ui.stop();
        rmSync(stateDir, { recursive: true, force: true });
      };
      temporal = { address: temporalAddress, uiUrl: ui.url, stop };
    } else {
      const dev = await startTemporalDevServer({ codecEndpoint });
      temporal = { address: dev.address, uiUrl: dev.uiUrl!, stop: () => dev.stop() };
    }
    system = await startSystem({ temporalAddress: temporal.address, mongoUrl: `${mongoBase}/t_ui_${Date.now()}`, intakePort, codecToken, codecCorsOrigins: [new URL(temporal.uiUrl).origin] });
    buyer = await startFakeBuyer();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  });
  after(async () => {
    await browser?.close();
    await buyer?.close();
    await system?.stop();
    await temporal?.stop();
  });

  it('When an operator opens a lead’s workflow in the UI, then its input is shown decoded', async function () {
    this.timeout(120_000);
    const { source } = await system.route([{ kind: 'webhook', url: buyer.url }]);
    const res = await system.postLead(source.apiKey, { email: 'grace.hopper@example.com', first_name: 'Grace' });
    const leadId = String(res.body.leadId);
    await system.client.workflow.getHandle(leadWorkflowId(leadId)).result();
    const page = await browser.newPage();
    await page.goto(`${temporal.uiUrl}/namespaces/default/workflows/${leadWorkflowId(leadId)}`, { waitUntil: 'domcontentloaded' });
    await page.getByText('grace.hopper@example.com').first().waitFor({ timeout: 60_000 });
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'temporal-ui-decoded.png'), fullPage: true });
    assert.ok(await page.getByText('grace.hopper@example.com').first().isVisible());
  });
});
