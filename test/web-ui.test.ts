import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { type Browser, type Page, chromium } from 'playwright-core';
import { parse, stringify } from 'yaml';
import { type RunningTemporal, freePort, projectRoot, startTemporal } from '../src/client/local-servers';
import { type CodecServerProcess, startCodecServerProcess } from './support/codec-server-process';
import { type WorkerProcess, runCli, startWorkerProcess, writeConfigFile } from './support/processes';
import { restoreFixture } from './support/restore-fixture';
import { tempDir } from './support/servers';

/**
 * The Web UI tells the story: a headless Chromium opens the dev server's UI, filters runs by RunbookName,
 * opens a finished restore and finds its steps (the activity summaries). Everything is as in production: the
 * real worker process with temporal.encryption (the product's AES-GCM codec), the runs started by the CLI,
 * and the real `runbook codec-server` process the UI calls (--ui-codec-endpoint). With the codec server the
 * UI shows the restore's input and a failed run's reason; without it neither is readable.
 * Screenshots land in test-artifacts/.
 */

const ARTIFACTS = path.join(projectRoot(), 'test-artifacts');
const TOKEN = `ui-codec-token-${Date.now().toString(36)}`;
const REASON = 'orders table damaged in the UI test';

let temporal: RunningTemporal;
let codec: CodecServerProcess;
let worker: WorkerProcess;
let browser: Browser;
let page: Page;
let ui: string;
let restoreId: string;
let backupId: string;
let failedId: string;
let failedMessage: string;

function startedId(stdout: string): string {
  const m = /started (\S+)/.exec(stdout);
  if (!m) throw new Error(`no run started:\n${stdout}`);
  return m[1]!;
}

beforeAll(async () => {
  const [uiPort, codecPort, temporalPort] = [await freePort(), await freePort(), await freePort()];
  ui = `http://127.0.0.1:${uiPort}`;
  const f = await restoreFixture();
  const raw = parse(f.yaml);
  raw.temporal.address = `127.0.0.1:${temporalPort}`;
  raw.observability = { codecServer: { address: `127.0.0.1:${codecPort}`, corsOrigins: [ui, `http://localhost:${uiPort}`], token: { env: 'TEST_UI_CODEC_TOKEN' } } };
  const file = writeConfigFile(stringify(raw));
  codec = await startCodecServerProcess(file, { TEST_UI_CODEC_TOKEN: TOKEN });
  const dir = tempDir('ui-temporal');
  [temporal, browser] = await Promise.all([
    startTemporal({ dbFile: path.join(dir, 'temporal.db'), port: temporalPort, uiPort, uiCodecEndpoint: `${codec.url}/${TOKEN}` }),
    chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-dev-shm-usage'] }),
  ]);
  page = await browser.newPage({ viewport: { width: 1600, height: 1200 } });

  // A real backup and restore of a seeded database, and a restore that fails (a backup id that does not exist).
  worker = await startWorkerProcess(file, {}, ['--metrics-address', 'off']);
  const cli = async (args: string[], exitCode = 0): Promise<string> => {
    const r = await runCli(['--config', file, 'start', ...args, '--wait'], { RUNBOOK_USER: 'alice' });
    expect({ exitCode: r.exitCode, stderr: exitCode ? '' : r.stderr }).toEqual({ exitCode, stderr: '' });
    failedMessage = exitCode ? r.stderr.replace(/^error: /, '').trim() : failedMessage;
    return startedId(r.stdout);
  };
  backupId = await cli(['backup', '-p', `target=${f.target}`]);
  restoreId = await cli(['restore', '-p', `target=${f.target}`, '-p', `reason=${REASON}`]);
  failedId = await cli(['restore', '--id', `restore-missing/${f.target}`, '-p', `target=${f.target}`, '-p', `backup=${f.target}-20200101T000000Z-0badc0de`, '-p', 'reason=a backup nobody took'], 1);
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await worker?.stop();
  await temporal?.stop();
  await codec?.stop();
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

test('a failed run shows its reason, decrypted by the codec server', async () => {
  expect(failedMessage).toContain('0badc0de'); // what the CLI printed: the reason, naming the missing backup
  await page.goto(`${ui}/namespaces/default/workflows/${encodeURIComponent(failedId)}`);
  await page.getByText('Failed', { exact: true }).first().waitFor({ timeout: 30_000 });
  // The UI shows a failure's encodedAttributes, decrypted by the codec server: the reason the CLI printed.
  await page.getByText(failedMessage.split('"')[0]!).first().waitFor({ timeout: 30_000 });
  await page.getByText('0badc0de', { exact: false }).first().waitFor({ timeout: 30_000 });
  await artifact('ui-failed-restore-with-codec');
});

test('without the codec server the same input and failure are not readable', async () => {
  await codec.stop();
  await page.goto(`${ui}/namespaces/default/workflows/${encodeURIComponent(restoreId)}`);
  await page.getByText('Completed').first().waitFor({ timeout: 30_000 });
  // What the server stores: AES-GCM ciphertext, which the UI can only show as it is (base64).
  const connection = await Connection.connect({ address: temporal.address });
  try {
    const history = await new Client({ connection }).workflow.getHandle(restoreId).fetchHistory();
    const stored = history.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!;
    expect(Buffer.from(stored.metadata!.encoding!).toString()).toBe('binary/encrypted');
    await page.getByText(Buffer.from(stored.data!).toString('base64').slice(0, 40)).first().waitFor({ timeout: 30_000 });
  } finally {
    await connection.close();
  }
  await artifact('ui-restore-without-codec');
  const text = await page.locator('body').innerText();
  expect(text).toContain('restoreAside'); // the page is there, with the activity types...
  expect(text).not.toContain(REASON); // ...but not the input
  expect(text).not.toContain('restore aside'); // nor the step summaries: they are payloads, encoded too

  await page.goto(`${ui}/namespaces/default/workflows/${encodeURIComponent(failedId)}`);
  await page.getByText('Failed', { exact: true }).first().waitFor({ timeout: 30_000 });
  await page.getByText('Encoded failure').first().waitFor({ timeout: 30_000 });
  await artifact('ui-failed-restore-without-codec');
  expect(await page.locator('body').innerText()).not.toContain('0badc0de');
});
