import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { type RotationResult } from '../../src/workflows/rotate-secrets';
import { startWorkerProcess, writeConfigFile } from '../support/processes';
import { REPO, authLoop, pgLogin, readEnv, redisLogin, rotationFixture } from '../support/rotation-fixture';
import { useDevServer } from '../support/temporal';

/**
 * RB-02 under crashes: for every step (and every rollback step), a worker that SIGKILLs itself right after
 * the step's side effect, before Temporal hears of it; a healthy worker then finishes the run. The app's
 * logins never fail, and the run ends with exactly one rotation (or exactly the old values). `npm run test:faults`.
 */
const dev = useDevServer();

const steps = ['beginRotation', 'applyNewCredential', 'writeEnvFiles', 'updateGithubSecrets', 'restartConsumers', 'retireOldCredential', 'finishRotation'];

test.each(steps)('killed right after %s: one rotation, no failed login', async (step) => {
  const f = await rotationFixture();
  const file = writeConfigFile(f.yaml);
  const workers: Array<Awaited<ReturnType<typeof startWorkerProcess>>> = [];
  try {
    const loop = authLoop(f);
    workers.push(await startWorkerProcess(file, { RUNBOOKS_CRASH_AFTER: step }));
    const handle = await dev.client.workflow.start('rotateSecrets', { taskQueue: f.taskQueue, workflowId: `rotate/${f.cacheSet}`, args: [{ set: f.cacheSet }] });
    expect(await workers[0]!.exited).toBeNull();
    workers.push(await startWorkerProcess(file));
    const result = (await handle.result()) as RotationResult;
    expect((await loop.stop()).failures).toEqual([]);
    const env = readEnv(f.envFile);
    await expect(redisLogin(f.redisUser, env.REDIS_PASSWORD!)).resolves.toBeUndefined();
    await expect(redisLogin(f.redisUser, f.initial.redisPassword)).rejects.toThrow(/WRONGPASS/);
    expect(f.github.secrets.get(`${REPO}/REDIS_PASSWORD`)).toBe(env.REDIS_PASSWORD);
    expect(readdirSync(path.dirname(f.envFile)).filter((n) => n.startsWith('.env.before-'))).toEqual([`.env.before-${result.plan.rotationId}`]);
    expect(readFileSync(path.join(f.stateDir, 'audit.jsonl'), 'utf8').trim().split('\n')).toHaveLength(1);
  } finally {
    for (const w of workers) await w.kill().catch(() => undefined);
    await f.close();
  }
});

test.each(['restoreEnvFiles', 'restoreGithubSecrets', 'revertNewCredential'])('a failed rotation, killed right after rollback step %s: the old values everywhere', async (step) => {
  const f = await rotationFixture();
  const file = writeConfigFile(f.yaml);
  const workers: Array<Awaited<ReturnType<typeof startWorkerProcess>>> = [];
  try {
    f.github.failPut.set('DB_PASSWORD', { status: 422, times: 1 });
    const loop = authLoop(f);
    workers.push(await startWorkerProcess(file, { RUNBOOKS_CRASH_AFTER: step }));
    const handle = await dev.client.workflow.start('rotateSecrets', { taskQueue: f.taskQueue, workflowId: `rotate/${f.dbSet}`, args: [{ set: f.dbSet }] });
    expect(await workers[0]!.exited).toBeNull();
    workers.push(await startWorkerProcess(file));
    await expect(handle.result()).rejects.toMatchObject({ cause: { message: expect.stringMatching(/GitHub secret DB_PASSWORD of acme\/shop failed \(HTTP 422\).*rolled back: the old values are in place everywhere/) } });
    expect((await loop.stop()).failures).toEqual([]);
    expect(readFileSync(f.envFile, 'utf8')).toBe(f.envText);
    await expect(pgLogin(f.db, f.roles[0], f.initial.dbPassword)).resolves.toBeUndefined();
    expect(f.github.secrets.get(`${REPO}/DB_PASSWORD`)).toBe(f.initial.dbPassword);
    expect(readdirSync(f.stateDir).filter((n) => n.endsWith('.state'))).toEqual([]);
  } finally {
    for (const w of workers) await w.kill().catch(() => undefined);
    await f.close();
  }
});
