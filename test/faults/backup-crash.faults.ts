import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type Client, type Connection } from '@temporalio/client';
import { startPostgres, stopPid } from '../../src/client/local-servers';
import { type BackupResult } from '../../src/workflows/backup';
import { assertOneCleanBackup, backupFixture, restoresTo } from '../support/backup-checks';
import { STATE_ENV, type TestServers } from '../support/servers';
import { runCli, startWorkerProcess } from '../support/processes';
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

test.each(['dumpPostgres', 'pruneBackups'])('killed right after %s: one backup, checksum good, restores to the source rows', async (step) => {
  const f = await backupFixture();
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
  const f = await backupFixture(300_000);
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
    expect(() => process.kill(dumpPid!, 0)).toThrow('ESRCH');
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
  const f = await backupFixture(300_000);
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
