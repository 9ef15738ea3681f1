import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { NativeConnection } from '@temporalio/worker';
import { type Browser, type Page, chromium } from 'playwright-core';
import { type CodecServer, startCodecServer } from '../src/client/codec-server';
import { type RunningTemporal, freePort, projectRoot, startTemporal } from '../src/client/local-servers';
import { runbookStartMetadata } from '../src/client/start-options';
import { findRunbook } from '../src/config/runbooks';
import { createRunbookWorker } from '../src/workers/worker';
import { type RestoreOutcome } from '../src/workflows/restore-database';
import { restoreFixture } from './support/restore-fixture';
import { parseConfig } from '../src/config/load';
import { tempDir } from './support/servers';
import { MaskingCodec } from './support/test-codec';

/**
 * The Web UI tells the story: a headless Chromium opens the dev server's UI, filters runs by RunbookName,
 * opens a finished restore and finds its steps (the activity summaries). Payloads are encoded by a test
 * codec: with the codec server the UI shows the restore's input; without it the input is unreadable.
 * Screenshots land in test-artifacts/.
 */

const ARTIFACTS = path.join(projectRoot(), 'test-artifacts');
/** The bundle `npm run build` made, with the workflow interceptors the production worker runs (step summaries). */
const BUNDLE_PATH = path.join(projectRoot(), 'dist', 'workflow-bundle.js');
const TOKEN = 'ui-codec-token-7c1e';
const REASON = 'orders table damaged in the UI test';

let temporal: RunningTemporal;
let codec: CodecServer;
let browser: Browser;
let page: Page;
let ui: string;
let connection: Connection;
let workerConnection: NativeConnection;
let restoreId: string;
let backupId: string;
let restoreInput: Record<string, unknown>;

beforeAll(async () => {
  const uiPort = await freePort();
  ui = `http://127.0.0.1:${uiPort}`;
  const codecPort = await freePort();
  codec = await startCodecServer({ codecs: [new MaskingCodec()], address: `127.0.0.1:${codecPort}`, corsOrigins: [ui, `http://localhost:${uiPort}`], token: TOKEN });
  const dir = tempDir('ui-temporal');
  [temporal, browser] = await Promise.all([
    startTemporal({ dbFile: path.join(dir, 'temporal.db'), uiPort, uiCodecEndpoint: `${codec.url}/${TOKEN}` }),
    chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-dev-shm-usage'] }),
  ]);
  page = await browser.newPage({ viewport: { width: 1600, height: 1200 } });

  // A real backup and restore of a seeded database, every payload masked by the codec.
  const f = await restoreFixture();
  const config = parseConfig(f.yaml.replace(/address: .*/, `address: ${temporal.address}`), 'ui.yaml');
  const dataConverter = { payloadCodecs: [new MaskingCodec()] };
  connection = await Connection.connect({ address: temporal.address });
  const client = new Client({ connection, namespace: 'default', dataConverter });
  workerConnection = await NativeConnection.connect({ address: temporal.address });
  const worker = await createRunbookWorker({ config, connection: workerConnection, workflowBundle: { codePath: BUNDLE_PATH }, dataConverter });
  const start = (runbook: string, input: Record<string, unknown>, workflowId: string) => {
    const def = findRunbook(runbook);
    return client.workflow.execute(def.workflowType, {
      taskQueue: config.temporal.taskQueue,
      workflowId,
      args: [input],
      ...runbookStartMetadata(config, def, input, 'cli:alice'),
    });
  };
  backupId = `backup/${f.target}/ui`;
  restoreId = `restore/${f.target}`;
  const outcome = await worker.runUntil(async () => {
    await start('backup', { target: f.target, kind: 'postgres', prune: false }, backupId);
    restoreInput = { target: f.target, backup: 'latest', dryRun: false, reason: REASON, requestedBy: 'alice' };
    return start('restore', restoreInput, restoreId) as Promise<RestoreOutcome>;
  });
  expect(outcome.outcome).toBe('restored');
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await connection?.close();
  await workerConnection?.close();
  await temporal?.stop();
  await codec?.close();
});

async function artifact(name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
  writeFileSync(path.join(ARTIFACTS, `${name}.txt`), await page.locator('body').innerText());
}

test('runs filtered by RunbookName; the finished restore shows its steps and, through the codec server, its input', async () => {
  await page.goto(`${ui}/namespaces/default/workflows?query=${encodeURIComponent('RunbookName="restore"')}`);
  const row = page.getByRole('link', { name: restoreId });
  await row.first().waitFor({ timeout: 30_000 });
  await artifact('ui-runs-restore');
  // The filter hides the backup run of the same database.
  await expect(page.getByRole('link', { name: backupId }).count()).resolves.toBe(0);

  await row.first().click();
  await page.getByText('Completed').first().waitFor({ timeout: 30_000 });
  // The timeline labels each activity with its runbook step (the summary, decoded by the codec server too).
  for (const step of ['planRestore • plan', 'dumpPostgres • safety snapshot', 'restoreAside • restore aside', 'swapDatabases • swap', 'checkProductionHealth • health check']) {
    await page.getByText(step, { exact: true }).first().waitFor({ timeout: 30_000 });
  }
  // Decoded by the codec server: the input's reason is readable.
  await page.getByText(REASON).first().waitFor({ timeout: 30_000 });
  await artifact('ui-restore-with-codec');
});

test('without the codec server the same input is not readable', async () => {
  await codec.close();
  await page.goto(`${ui}/namespaces/default/workflows/${encodeURIComponent(restoreId)}`);
  await page.getByText('Completed').first().waitFor({ timeout: 30_000 });
  // What the server stores: the masked bytes, which the UI can only show as they are (base64).
  const [stored] = await new MaskingCodec().encode([defaultPayloadConverter.toPayload(restoreInput)]);
  await page.getByText(Buffer.from(stored!.data!).toString('base64').slice(0, 40)).first().waitFor({ timeout: 30_000 });
  await artifact('ui-restore-without-codec');
  const text = await page.locator('body').innerText();
  expect(text).toContain('restoreAside'); // the page is there, with the activity types...
  expect(text).not.toContain(REASON); // ...but not the input
  expect(text).not.toContain('restore aside'); // nor the step summaries: they are payloads, encoded too
});
