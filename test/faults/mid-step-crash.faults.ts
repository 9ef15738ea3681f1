import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { type Client, type Connection } from '@temporalio/client';
import { alive } from '../../src/client/local-servers';
import { type RestoreOutcome } from '../../src/workflows/restore-database';
import { type RotationResult } from '../../src/workflows/rotate-secrets';
import { runCli, startWorkerProcess, writeConfigFile } from '../support/processes';
import { backedUpAndDamaged, databasesLike, restoreFixture, safetySnapshots, serviceContainer } from '../support/restore-fixture';
import { REPO, type RotationFixture, authLoop, containerStarts, readEnv, redisLogin, rotationFixture } from '../support/rotation-fixture';
import { fingerprint } from '../support/shop-data';
import { devServerClient, heartbeatPid } from '../support/temporal';
import { expectCutMidStep, waitForStep, waitUntil } from '../support/wait';

/**
 * The worker SIGKILLed (by pid) in the middle of a step, not at a boundary: RB-01 while `restoreAside` has
 * pg_restore writing the copy, RB-02 while `restartConsumers` waits for a consumer to stop. A healthy worker
 * then finishes the run: the user-visible result is the one a clean run gives, and nothing exists twice.
 * `npm run test:faults`.
 */
let client: Client;
let connection: Connection;
beforeAll(async () => ({ client, connection } = await devServerClient()));
afterAll(async () => connection.close());

test('RB-01 restore: worker SIGKILLed while pg_restore runs; one copy, one pre-restore database, one safety snapshot', async () => {
  const service = await serviceContainer();
  try {
    const size = { customers: 60_000, ordersPerCustomer: 10 };
    const f = await restoreFixture({ service, size, checks: [{ table: 'orders', minRows: 600_000 }] });
    const file = writeConfigFile(f.yaml);
    await backedUpAndDamaged(f, file);
    const damaged = await fingerprint(f.db);
    const first = await startWorkerProcess(file);
    expect((await runCli(['--config', file, 'start', 'restore', '-p', `target=${f.target}`, '-p', 'reason=mid-step crash'])).exitCode).toBe(0);
    const handle = client.workflow.getHandle(`restore/${f.target}`);
    await waitForStep(handle, 'restore aside');
    const restorePid = await waitUntil('pg_restore running', () => heartbeatPid(handle, 'restoreAside'), 60_000, 50);
    expect(alive(restorePid)).toBe(true); // the first attempt is mid-way: its pg_restore is writing the copy
    await first.kill();
    const killedAt = Date.now();
    const healthy = await startWorkerProcess(file);
    try {
      const result = (await handle.result()) as RestoreOutcome;
      if (result.outcome !== 'restored') throw new Error(result.outcome);
      await expectCutMidStep(handle, 'restoreAside', killedAt);
      expect(await fingerprint(f.db)).toEqual(f.atSeed);
      expect(await fingerprint(result.oldDatabase)).toEqual(damaged);
      expect(await databasesLike(f.db)).toEqual([f.db, result.oldDatabase].sort()); // no second copy, no stray rename
      expect(safetySnapshots(f.yaml, f.target)).toEqual([result.safetySnapshot.file, `${result.safetySnapshot.id}.manifest.json`].sort());
      expect(await service.running()).toBe(true);
      expect(alive(restorePid)).toBe(false); // the dead worker's pg_restore did not go on writing
      await client.workflow.getHandle(result.dropWorkflowId).terminate('test over');
    } finally {
      await healthy.stop();
    }
  } finally {
    await service.remove();
  }
});

/**
 * Rotate the cache set with `consumers` slow-stopping consumer containers and SIGKILL the worker once
 * `killWhen` says so, during the rolling restart; a healthy worker finishes the run.
 */
async function rotationKilledMidRestart(consumers: number, killWhen: (f: RotationFixture, since: number) => Promise<unknown>): Promise<void> {
  const f = await rotationFixture({ slowConsumer: true, consumers });
  const file = writeConfigFile(f.yaml);
  const since = Date.now();
  const first = await startWorkerProcess(file);
  let healthy: Awaited<ReturnType<typeof startWorkerProcess>> | undefined;
  try {
    const loop = authLoop(f);
    const handle = await client.workflow.start('rotateSecrets', { taskQueue: f.taskQueue, workflowId: `rotate/${f.cacheSet}`, args: [{ set: f.cacheSet }] });
    await waitForStep(handle, 'restart consumers');
    await killWhen(f, since);
    await first.kill();
    const killedAt = Date.now();
    healthy = await startWorkerProcess(file);
    const result = (await handle.result()) as RotationResult;
    await expectCutMidStep(handle, 'restartConsumers', killedAt);
    expect([...result.restarted].sort()).toEqual([...f.containers].sort());
    expect((await loop.stop()).failures).toEqual([]);
    const env = readEnv(f.envFile);
    await expect(redisLogin(f.redisUser, env.REDIS_PASSWORD!)).resolves.toBeUndefined();
    await expect(redisLogin(f.redisUser, f.initial.redisPassword)).rejects.toThrow(/WRONGPASS/);
    expect(f.github.secrets.get(`${REPO}/REDIS_PASSWORD`)).toBe(env.REDIS_PASSWORD);
    expect(f.github.requests.filter((r) => r.method === 'PUT').map((r) => r.path)).toEqual([`/repos/${REPO}/actions/secrets/REDIS_PASSWORD`]);
    for (const c of f.containers) expect(`${c}: ${await containerStarts(c, since)} start(s)`).toBe(`${c}: 1 start(s)`);
    expect(readdirSync(path.dirname(f.envFile)).filter((n) => n.startsWith('.env.before-'))).toEqual([`.env.before-${result.plan.rotationId}`]);
    expect(readFileSync(path.join(f.stateDir, 'audit.jsonl'), 'utf8').trim().split('\n')).toHaveLength(1);
  } finally {
    await first.kill();
    await healthy?.stop();
    await f.close();
  }
}

test('RB-02 rotation: worker SIGKILLed while consumers restart; one rotation, one restart, no failed login', async () => {
  // `docker restart` is waiting for the consumer to stop.
  await rotationKilledMidRestart(1, () => new Promise((r) => setTimeout(r, 1_000)));
});

test('RB-02 rotation: worker SIGKILLed during the second consumer\'s restart; each consumer restarted once', async () => {
  await rotationKilledMidRestart(2, async (f, since) => {
    await waitUntil('the first consumer restarted', async () => ((await containerStarts(f.containers[0]!, since)) === 1 ? true : undefined), 60_000);
    await new Promise((r) => setTimeout(r, 3_000)); // the second one is stopping
  });
});
