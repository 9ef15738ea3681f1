import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { type Client, type Connection } from '@temporalio/client';
import { execa } from 'execa';
import { pgBinDir, startPostgres, stopPid } from '../../src/client/local-servers';
import { type BackupResult } from '../../src/workflows/backup';
import { STATE_ENV, type TestServers, createDatabase, servers, testConfig, uniqueName } from '../support/servers';
import { fingerprint, seedShop } from '../support/shop-data';
import { runCli, startWorkerProcess, writeConfigFile } from '../support/processes';
import { devServerClient, heartbeatPid } from '../support/temporal';

/**
 * The backup runbook (WF-01) under faults: the worker SIGKILLed after each step's side effect and once in
 * the middle of a dump, and PostgreSQL stopped for a while in the middle of a dump. Every run must end with
 * exactly one published backup whose checksum matches and which restores to the source rows, and no
 * partial files. `npm run test:faults`.
 */
let client: Client;
let connection: Connection;
beforeAll(async () => ({ client, connection } = await devServerClient()));
afterAll(async () => connection.close());

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** The target's backup folder: exactly one dump and its manifest, nothing else (no temp or partial files). */
function assertOneCleanBackup(root: string, target: string, result: BackupResult): void {
  const dir = path.join(root, target);
  const files = readdirSync(dir).sort();
  expect(files).toEqual([result.manifest.file, `${result.backupId}.manifest.json`].sort());
  expect(sha256(path.join(dir, result.manifest.file))).toBe(result.manifest.sha256);
}

async function restoresTo(file: string, expected: unknown): Promise<void> {
  const s = servers().postgres;
  const env = { PGHOST: s.host, PGPORT: String(s.port), PGUSER: s.user, PGPASSWORD: s.password };
  const scratch = uniqueName('check');
  await createDatabase(scratch);
  await execa(path.join(pgBinDir(), 'pg_restore'), ['--no-owner', '-d', scratch, file], { env });
  expect(await fingerprint(scratch)).toEqual(expected);
}

async function fixture(rows = 2000) {
  const db = uniqueName('bkf');
  await createDatabase(db);
  await seedShop(db, rows, 3);
  const { yaml, config } = testConfig({ databases: [db], taskQueue: uniqueName('bkf') });
  return { db, target: config.targets.databases[0]!.name, root: config.backups.root, file: writeConfigFile(yaml), atSeed: await fingerprint(db) };
}

test.each(['dumpPostgres', 'pruneBackups'])('killed right after %s: one backup, checksum good, restores to the source rows', async (step) => {
  const f = await fixture();
  const crashing = await startWorkerProcess(f.file, { RUNBOOKS_CRASH_AFTER: step });
  const workflowId = `backup/${f.target}/fault-${step}`;
  expect((await runCli(['--config', f.file, 'start', 'backup', '-p', `target=${f.target}`, '--id', workflowId])).exitCode).toBe(0);
  expect(await crashing.exited).toBeNull(); // SIGKILLed: the crash really happened after the step
  const healthy = await startWorkerProcess(f.file);
  try {
    const result: BackupResult = await client.workflow.getHandle(workflowId).result();
    assertOneCleanBackup(f.root, f.target, result);
    await restoresTo(path.join(f.root, f.target, result.manifest.file), f.atSeed);
  } finally {
    await healthy.stop();
  }
});

test('killed in the middle of a dump: the orphaned pg_dump is stopped, the retry publishes one complete backup', async () => {
  const f = await fixture(300_000);
  const first = await startWorkerProcess(f.file);
  const workflowId = `backup/${f.target}/fault-mid-dump`;
  expect((await runCli(['--config', f.file, 'start', 'backup', '-p', `target=${f.target}`, '--id', workflowId])).exitCode).toBe(0);
  const handle = client.workflow.getHandle(workflowId);
  let dumpPid: number | undefined;
  for (let i = 0; i < 600 && !dumpPid; i++) {
    dumpPid = await heartbeatPid(handle, 'dumpPostgres');
    if (!dumpPid) await new Promise((r) => setTimeout(r, 50));
  }
  expect(dumpPid).toBeDefined();
  await first.kill();
  const healthy = await startWorkerProcess(f.file);
  try {
    const result: BackupResult = await handle.result();
    assertOneCleanBackup(f.root, f.target, result);
    await restoresTo(path.join(f.root, f.target, result.manifest.file), f.atSeed);
    // The first attempt's pg_dump did not outlive its worker and keep writing.
    expect(() => process.kill(dumpPid!, 0)).toThrow();
  } finally {
    await healthy.stop();
  }
});

/** Stop the shared PostgreSQL for `downMs`, then start it again on the same port and data (servers.json follows). */
async function postgresOutage(downMs: number): Promise<void> {
  const file = process.env[STATE_ENV]!;
  const state = JSON.parse(readFileSync(file, 'utf8')) as TestServers;
  const dataDir = path.join(state.root, 'pg');
  await stopPid(state.postgres.pid, 'SIGINT', 30_000);
  await new Promise((r) => setTimeout(r, downMs));
  const pg = await startPostgres({ dir: dataDir, port: state.postgres.port, password: state.postgres.password });
  state.postgres.pid = pg.pid;
  writeFileSync(file, JSON.stringify(state, null, 2), { mode: 0o600 });
}

test('PostgreSQL down for 20 s in the middle of a dump: the dump is retried and one complete backup is published', async () => {
  const f = await fixture(300_000);
  const worker = await startWorkerProcess(f.file);
  const workflowId = `backup/${f.target}/fault-pg-down`;
  try {
    expect((await runCli(['--config', f.file, 'start', 'backup', '-p', `target=${f.target}`, '--id', workflowId])).exitCode).toBe(0);
    const handle = client.workflow.getHandle(workflowId);
    for (let i = 0; i < 600 && !(await heartbeatPid(handle, 'dumpPostgres')); i++) await new Promise((r) => setTimeout(r, 50));
    await postgresOutage(20_000);
    const result: BackupResult = await handle.result();
    assertOneCleanBackup(f.root, f.target, result);
    await restoresTo(path.join(f.root, f.target, result.manifest.file), f.atSeed);
    const history = await handle.fetchHistory();
    const failedAttempts = (history.events ?? []).filter((e) => e.activityTaskStartedEventAttributes?.attempt && e.activityTaskStartedEventAttributes.attempt > 1);
    expect(failedAttempts.length).toBeGreaterThan(0); // the outage really hit the dump
  } finally {
    await worker.stop();
  }
});
