import http from 'node:http';
import { type Client, type Connection } from '@temporalio/client';
import { freePort } from '../../src/client/local-servers';
import { type RestoreOutcome } from '../../src/workflows/restore-database';
import { runCli, startWorkerProcess, writeConfigFile } from '../support/processes';
import { type RestoreFixture, backedUpAndDamaged, databasesLike, restoreFixture, serviceContainer } from '../support/restore-fixture';
import { fingerprint } from '../support/shop-data';
import { devServerClient } from '../support/temporal';

/**
 * RB-01 under crashes: for every step, a worker that SIGKILLs itself right after that step's side effect
 * (before Temporal hears of it), then a healthy worker finishes the run. `npm run test:faults`.
 */
let client: Client;
let connection: Connection;
beforeAll(async () => ({ client, connection } = await devServerClient()));
afterAll(async () => connection.close());

/** Start the restore on a worker that dies after `step`, then let a healthy worker finish it. */
async function restoreThroughCrash(f: RestoreFixture, file: string, step: string): Promise<RestoreOutcome | Error> {
  const crashing = await startWorkerProcess(file, { RUNBOOKS_CRASH_AFTER: step });
  const started = await runCli(['--config', file, 'start', 'restore', '-p', `target=${f.target}`, '-p', 'reason=fault test']);
  expect(started.exitCode).toBe(0);
  const code = await Promise.race([crashing.exited, new Promise((r) => setTimeout(() => r('still running'), 120_000))]);
  expect(code).toBeNull(); // killed by SIGKILL: the crash really happened after `step`
  const healthy = await startWorkerProcess(file);
  try {
    return await (client.workflow.getHandle(`restore/${f.target}`).result() as Promise<RestoreOutcome>).catch((e: unknown) => e as Error);
  } finally {
    await healthy.stop();
  }
}

const STEPS = ['planRestore', 'validateBackup', 'dumpPostgres', 'restoreAside', 'verifyRestoredCopy', 'stopContainers', 'swapDatabases', 'startContainers', 'checkProductionHealth'];

test.each(STEPS)('killed right after %s: the restore completes once, nothing duplicated', async (step) => {
  const service = await serviceContainer();
  try {
    const f = await restoreFixture({ service, checks: [{ table: 'orders', minRows: 6000 }] });
    const file = writeConfigFile(f.yaml);
    await backedUpAndDamaged(f, file);
    const damaged = await fingerprint(f.db);

    const result = await restoreThroughCrash(f, file, step);
    if (result instanceof Error || result.outcome !== 'restored') throw result instanceof Error ? result : new Error(result.outcome);
    expect(await fingerprint(f.db)).toEqual(f.atSeed);
    expect(await fingerprint(result.oldDatabase)).toEqual(damaged);
    expect(await databasesLike(f.db)).toEqual([f.db, result.oldDatabase].sort()); // no second copy, no stray rename
    expect(await service.running()).toBe(true);
    await client.workflow.getHandle(result.dropWorkflowId).terminate('test over');
  } finally {
    await service.remove();
  }
});

test.each(['swapBack', 'stopContainers:2'])('health gate fails and the worker dies right after %s: production ends as it was before', async (step) => {
  const unhealthy = http.createServer((_req, res) => res.writeHead(503).end('down'));
  const port = await freePort();
  await new Promise<void>((r) => unhealthy.listen(port, '127.0.0.1', r));
  const service = await serviceContainer();
  try {
    const f = await restoreFixture({ service, healthUrl: `http://127.0.0.1:${port}/health` });
    const file = writeConfigFile(f.yaml);
    await backedUpAndDamaged(f, file);
    const damaged = await fingerprint(f.db);

    const result = await restoreThroughCrash(f, file, step);
    expect(result).toBeInstanceOf(Error);
    const message = String((result as Error & { cause?: Error }).cause?.message);
    expect(message).toContain('production was swapped back to its pre-restore database');
    expect(await fingerprint(f.db)).toEqual(damaged);
    // The copy that was production is kept (it may hold writes made after the swap), under the keepOldFor drop timer.
    const failedDb = (await databasesLike(f.db)).find((n) => n.startsWith(`${f.db}__failed_restore_`));
    expect(failedDb).toBeDefined();
    expect(await databasesLike(f.db)).toEqual([f.db, failedDb!].sort());
    expect(await fingerprint(failedDb!)).toEqual(f.atSeed);
    expect(message).toContain(`the restored copy is kept as ${failedDb} until `);
    const drop = client.workflow.getHandle(`drop/${f.target}/${failedDb}`);
    expect((await drop.describe()).status.name).toBe('RUNNING');
    await drop.terminate('test over');
    expect(await service.running()).toBe(true);
  } finally {
    await service.remove();
    unhealthy.close();
  }
});
