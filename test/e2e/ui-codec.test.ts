/**
 * The Temporal Web UI shows operators the decoded lead: the dev server's UI is wired (as `npm
 * start` wires it) to the intake service's codec endpoint, and a headless Chromium reads the
 * workflow's input on its page (that the stored history holds only ciphertext is shown in
 * security.test.ts). A screenshot is kept in test-artifacts/.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { startTemporalDevServer, type TemporalDevServer } from '../../deploy/local/temporal';
import { startFakeBuyer, type FakeBuyer } from '../fakes/buyer';
import { sharedInfra } from '../support/infra';
import { startSystem, type TestSystem } from '../support/system';
import { leadWorkflowId } from '../../shared/delivery';
import { freePort } from '../../deploy/local/ports';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
export const ARTIFACTS = path.resolve(__dirname, '../../test-artifacts');

describe('Temporal UI with the codec endpoint', function () {
  let temporal: TemporalDevServer;
  let system: TestSystem;
  let buyer: FakeBuyer;
  let browser: Browser;

  before(async function () {
    this.timeout(180_000);
    const { mongoBase } = await sharedInfra();
    const intakePort = await freePort();
    const codecToken = `codec-ui-${Date.now()}`;
    temporal = await startTemporalDevServer({ codecEndpoint: `http://127.0.0.1:${intakePort}/v1/codec/t/${codecToken}` });
    system = await startSystem({ temporalAddress: temporal.address, mongoUrl: `${mongoBase}/t_ui_${Date.now()}`, intakePort, codecToken, codecCorsOrigins: [new URL(temporal.uiUrl!).origin] });
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
