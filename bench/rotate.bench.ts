import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { execa } from 'execa';
import { createRunbookWorker } from '../src/workers/worker';
import { type RotationResult } from '../src/workflows/rotate-secrets';
import { pgAdmin, servers } from '../test/support/servers';
import { containerStartedAt, pgLogin, readEnv, rotationFixture, type RotationFixture } from '../test/support/rotation-fixture';
import { useDevServer, workflowBundle } from '../test/support/temporal';
import { report } from './support/report';

/**
 * RB-02: authentication failures an application sees while its database password is rotated.
 * The application is modelled as apps are: it reads its credentials from the .env file when it starts
 * (i.e. when its container is (re)started) and logs in over and over with them.
 * Seed (D3 RB-02): new password on the role in use, write .env, restart (`up -d --force-recreate`).
 * Ours: rotateSecrets (idle role gets the new password; the old one is retired after the restart).
 */
const dev = useDevServer();

function app(f: RotationFixture): { stop(): Promise<{ logins: number; failures: number; failingMs: number }> } {
  let running = true;
  let logins = 0;
  let failures = 0;
  let firstFail: number | undefined;
  let lastFail: number | undefined;
  let env = readEnv(f.envFile);
  // The restart watcher: when the container has been (re)started, the app has read its .env file again.
  const watcher = (async () => {
    let started = await containerStartedAt(f.container);
    while (running) {
      await new Promise((r) => setTimeout(r, 50));
      const now = await containerStartedAt(f.container).catch(() => started);
      if (now !== started) {
        started = now;
        env = readEnv(f.envFile);
      }
    }
  })();
  const loop = (async () => {
    while (running) {
      logins++;
      try {
        await pgLogin(f.db, env.DB_USER!, env.DB_PASSWORD!);
      } catch {
        failures++;
        firstFail ??= performance.now();
        lastFail = performance.now();
      }
    }
  })();
  return {
    stop: async () => {
      running = false;
      await Promise.all([loop, watcher]);
      return { logins, failures, failingMs: firstFail === undefined ? 0 : lastFail! - firstFail };
    },
  };
}

test('password rotation under load: authentication failures, ours vs the seed procedure', async () => {
  const f = await rotationFixture();
  const dockerEnv = { DOCKER_HOST: servers().docker.host };
  try {
    const worker = await createRunbookWorker({ config: f.config, connection: dev.workerConnection, workflowBundle: await workflowBundle() });
    let a = app(f);
    const t0 = performance.now();
    const result: RotationResult = await worker.runUntil(() =>
      dev.client.workflow.execute('rotateSecrets', { taskQueue: f.taskQueue, workflowId: `rotate/${f.dbSet}`, args: [{ set: f.dbSet }] }),
    );
    const oursMs = performance.now() - t0;
    const ours = await a.stop();

    // The seed's procedure, on the same database, .env file and container.
    a = app(f);
    await new Promise((r) => setTimeout(r, 300));
    const t1 = performance.now();
    const env = readEnv(f.envFile);
    const password = randomBytes(32).toString('base64url');
    const c = pgAdmin(f.db);
    await c.connect();
    await c.query(`ALTER ROLE ${c.escapeIdentifier(env.DB_USER!)} PASSWORD ${c.escapeLiteral(password)}`);
    await c.end();
    writeFileSync(f.envFile, readFileSync(f.envFile, 'utf8').replace(/^DB_PASSWORD=.*$/m, `DB_PASSWORD=${password}`));
    await execa('docker', ['restart', f.container], { env: dockerEnv });
    await new Promise((r) => setTimeout(r, 500)); // the app notices its restart
    const seedMs = performance.now() - t1;
    const seed = await a.stop();

    const sizes = `a login loop against PostgreSQL during the rotation: ours ${ours.logins} logins in ${(oursMs / 1000).toFixed(1)} s, seed ${seed.logins} in ${(seedMs / 1000).toFixed(1)} s`;
    report({ bench: 'rotate', metric: 'failed logins', unit: 'logins', ours: ours.failures, baseline: seed.failures, baselineName: 'seed ALTER ROLE in use, .env, restart', target: 'ours = 0', sizes, notes: `seed failing for ${(seed.failingMs / 1000).toFixed(2)} s; ours ${result.plan.oldRole} → ${result.plan.newRole}` });
    expect(ours.failures).toBe(0);
  } finally {
    await f.close();
  }
});
