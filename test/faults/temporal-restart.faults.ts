import { readFileSync } from 'node:fs';
import path from 'node:path';
import { type WorkflowHandle } from '@temporalio/client';
import { type BackupResult } from '../../src/workflows/backup';
import { type RestoreOutcome } from '../../src/workflows/restore-database';
import { type RotationResult } from '../../src/workflows/rotate-secrets';
import { assertOneCleanBackup, backupFixture, restoresTo } from '../support/backup-checks';
import { type Downtime, onTemporal, usePrivateTemporal } from '../support/private-servers';
import { runCli, startWorkerProcess, writeConfigFile } from '../support/processes';
import { backedUpAndDamaged, databasesLike, restoreFixture, safetySnapshots, serviceContainer } from '../support/restore-fixture';
import { REPO, authLoop, containerStarts, pgLogin, readEnv, rotationFixture } from '../support/rotation-fixture';
import { fingerprint } from '../support/shop-data';
import { heartbeatPid } from '../support/temporal';
import { activitySpan, retriedActivities, waitForStep, waitUntil } from '../support/wait';

/**
 * The Temporal dev server stopped (by pid) for 20 s in the middle of a run and started again on the same port
 * with the same SQLite file, for the backup (mid-dump), RB-01 restore (mid restore-aside) and RB-02 rotation
 * (mid consumer restart). The worker is never restarted: it reconnects by itself, and each run completes
 * once with what its user expects. One private server for this file (the shared one serves everyone else).
 * `npm run test:faults`.
 */
// Down longer than any heartbeat timeout (15 s for dumps and restores, 10 s for quick steps): once back, the
// server times the running step out, and its retry copes with what the first attempt, on the same worker, did
// or is still doing.
// FAULT_TEMPORAL_DOWN_MS=5000 checks the gentler case (the attempt outlives the restart; also passes).
const DOWN_MS = Number(process.env.FAULT_TEMPORAL_DOWN_MS ?? 20_000);

const priv = usePrivateTemporal();

/** Exactly one run with this id, and it completed (no second run, no continue-as-new, no reset). */
async function completedOnce(workflowId: string): Promise<void> {
  const runs = [];
  for await (const r of priv.client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) runs.push(r.status.name);
  expect(runs).toEqual(['COMPLETED']);
}

/** The server went down after the step was scheduled and before it closed: a mid-step restart. */
async function expectInStep(handle: WorkflowHandle, activityType: string, down: Downtime): Promise<void> {
  const span = await activitySpan(handle, activityType);
  expect(span.scheduledAt).toBeLessThan(down.stoppedAt);
  expect(span.closedAt).toBeGreaterThan(down.stoppedAt);
  console.log(`${handle.workflowId}: server down ${down.backAt - down.stoppedAt} ms inside ${activityType}; retried: ${JSON.stringify(await retriedActivities(handle))}`);
}

test('backup: Temporal restarted mid-dump; one backup, checksum good, restores to the source rows', async () => {
  const f = await backupFixture(300_000, (y) => onTemporal(y, priv.temporal.address));
  const worker = await startWorkerProcess(f.file);
  const workflowId = `backup/${f.target}/temporal-restart`;
  try {
    expect((await runCli(['--config', f.file, 'start', 'backup', '-p', `target=${f.target}`, '--id', workflowId])).exitCode).toBe(0);
    const handle = priv.client.workflow.getHandle(workflowId);
    await waitUntil('pg_dump running', () => heartbeatPid(handle, 'dumpPostgres'), 60_000, 50);
    const down = await priv.temporal.restart(DOWN_MS);
    const result: BackupResult = await handle.result();
    await expectInStep(handle, 'dumpPostgres', down);
    assertOneCleanBackup(f.root, f.target, result);
    await restoresTo(path.join(f.root, f.target, result.manifest.file), f.atSeed);
    await completedOnce(workflowId);
  } finally {
    await worker.stop();
  }
});

test('RB-01 restore: Temporal restarted while restore-aside runs; production holds the backup rows, nothing duplicated', async () => {
  const service = await serviceContainer();
  try {
    const size = { customers: 60_000, ordersPerCustomer: 10 };
    const f = await restoreFixture({ service, size, checks: [{ table: 'orders', minRows: 600_000 }] });
    const file = writeConfigFile(onTemporal(f.yaml, priv.temporal.address));
    await backedUpAndDamaged(f, file);
    const damaged = await fingerprint(f.db);
    const worker = await startWorkerProcess(file);
    try {
      expect((await runCli(['--config', file, 'start', 'restore', '-p', `target=${f.target}`, '-p', 'reason=temporal restart'])).exitCode).toBe(0);
      const handle = priv.client.workflow.getHandle(`restore/${f.target}`);
      await waitForStep(handle, 'restore aside');
      await waitUntil('pg_restore running', () => heartbeatPid(handle, 'restoreAside'), 60_000, 50);
      const down = await priv.temporal.restart(DOWN_MS);
      const result = (await handle.result()) as RestoreOutcome;
      await expectInStep(handle, 'restoreAside', down);
      if (result.outcome !== 'restored') throw new Error(result.outcome);
      expect(await fingerprint(f.db)).toEqual(f.atSeed);
      expect(await fingerprint(result.oldDatabase)).toEqual(damaged);
      expect(await databasesLike(f.db)).toEqual([f.db, result.oldDatabase].sort()); // one copy, one pre-restore database
      expect(safetySnapshots(f.yaml, f.target)).toEqual([result.safetySnapshot.file, `${result.safetySnapshot.id}.manifest.json`].sort());
      expect(await service.running()).toBe(true);
      await completedOnce(handle.workflowId);
      await priv.client.workflow.getHandle(result.dropWorkflowId).terminate('test over');
    } finally {
      await worker.stop();
    }
  } finally {
    await service.remove();
  }
});


test('RB-02 rotation: Temporal restarted while consumers restart; one rotation, no failed login, one GitHub PUT', async () => {
  const f = await rotationFixture({ slowConsumer: true });
  const file = writeConfigFile(onTemporal(f.yaml, priv.temporal.address));
  const worker = await startWorkerProcess(file);
  const since = Date.now();
  try {
    const loop = authLoop(f);
    const handle = await priv.client.workflow.start('rotateSecrets', { taskQueue: f.taskQueue, workflowId: `rotate/${f.dbSet}`, args: [{ set: f.dbSet }] });
    await waitForStep(handle, 'restart consumers');
    const down = await priv.temporal.restart(DOWN_MS);
    const result = (await handle.result()) as RotationResult;
    await expectInStep(handle, 'restartConsumers', down);
    expect((await loop.stop()).failures).toEqual([]);
    const env = readEnv(f.envFile);
    expect(env.DB_USER).toBe(result.plan.newRole);
    await expect(pgLogin(f.db, env.DB_USER!, env.DB_PASSWORD!)).resolves.toBeUndefined();
    await expect(pgLogin(f.db, f.roles[0], f.initial.dbPassword)).rejects.toThrow(/not permitted to log in/);
    expect(f.github.secrets.get(`${REPO}/DB_PASSWORD`)).toBe(env.DB_PASSWORD);
    expect(f.github.requests.filter((r) => r.method === 'PUT').map((r) => r.path)).toEqual([`/repos/${REPO}/actions/secrets/DB_PASSWORD`]);
    expect(await containerStarts(f.container, since)).toBe(1);
    expect(readFileSync(path.join(f.stateDir, 'audit.jsonl'), 'utf8').trim().split('\n')).toHaveLength(1);
    await completedOnce(handle.workflowId);
  } finally {
    await worker.stop();
    await f.close();
  }
});
