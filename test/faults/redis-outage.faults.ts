import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { type Client, type Connection } from '@temporalio/client';
import { type RotationResult } from '../../src/workflows/rotate-secrets';
import { type PrivateRedis, privateRedis } from '../support/private-servers';
import { startWorkerProcess, writeConfigFile } from '../support/processes';
import { REPO, authLoop, containerStarts, readEnv, redisLogin, rotationFixture } from '../support/rotation-fixture';
import { devServerClient } from '../support/temporal';
import { retriedActivities, waitForStep } from '../support/wait';

/**
 * RB-02 of a Redis credential set while Redis itself is down for 15 s in the middle of the run (stopped by
 * pid after the new password was added, while the consumers restart; started again on the same port). The
 * Redis is the test's own, keeping its ACL users in an ACL file as a production one must. The run completes
 * once; nothing is sent twice; no secret is lost: the new password, persisted before the outage, still works
 * after it, and the .env file, GitHub and Redis agree. The application's logins fail only with "connection
 * refused" while Redis is down, never with a wrong password. `npm run test:faults`.
 */
let client: Client;
let connection: Connection;
let redis: PrivateRedis;
beforeAll(async () => {
  ({ client, connection } = await devServerClient());
  redis = await privateRedis(randomBytes(12).toString('hex'));
});
afterAll(async () => {
  await connection?.close();
  await redis?.stop();
});

/** What an application sees while its Redis is down (refused, reset, or closed connections). */
const UNREACHABLE = /ECONNREFUSED|ECONNRESET|Connection is closed|connect ETIMEDOUT/;

test('Redis down for 15 s mid-rotation of its credential: one rotation, nothing sent twice, no secret lost', async () => {
  const f = await rotationFixture({ redis, slowConsumer: true });
  const file = writeConfigFile(f.yaml);
  const since = Date.now();
  const worker = await startWorkerProcess(file);
  try {
    const loop = authLoop(f);
    const handle = await client.workflow.start('rotateSecrets', { taskQueue: f.taskQueue, workflowId: `rotate/${f.cacheSet}`, args: [{ set: f.cacheSet }] });
    await waitForStep(handle, 'restart consumers'); // the new password is on the user (and in the ACL file) by now
    await redis.outage(15_000);
    const result = (await handle.result()) as RotationResult;
    const { failures } = await loop.stop();
    expect(failures.filter((m) => !UNREACHABLE.test(m))).toEqual([]); // never a wrong password
    expect(failures.length).toBeGreaterThan(0); // the outage really hit the application
    expect(Object.keys(await retriedActivities(handle))).toContain('retireOldCredential'); // ... and the run

    const env = readEnv(f.envFile);
    await expect(redisLogin(f.redisUser, env.REDIS_PASSWORD!, redis)).resolves.toBeUndefined();
    await expect(redisLogin(f.redisUser, f.initial.redisPassword, redis)).rejects.toThrow(/WRONGPASS/);
    expect(f.github.secrets.get(`${REPO}/REDIS_PASSWORD`)).toBe(env.REDIS_PASSWORD);
    expect(f.github.requests.filter((r) => r.method === 'PUT').map((r) => r.path)).toEqual([`/repos/${REPO}/actions/secrets/REDIS_PASSWORD`]);
    expect(result.restarted).toEqual([f.container]);
    expect(await containerStarts(f.container, since)).toBe(1);
    expect(readdirSync(path.dirname(f.envFile)).filter((n) => n.startsWith('.env.before-'))).toEqual([`.env.before-${result.plan.rotationId}`]);
    expect(readFileSync(path.join(f.stateDir, 'audit.jsonl'), 'utf8').trim().split('\n')).toHaveLength(1);
    expect(readdirSync(f.stateDir).filter((n) => n.endsWith('.state'))).toEqual([]); // the set's lock is released
  } finally {
    await worker.stop();
    await f.close();
  }
});
