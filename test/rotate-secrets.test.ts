import { statSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { type Worker } from '@temporalio/worker';
import { WorkflowFailedError } from '@temporalio/client';
import { parse, stringify } from 'yaml';
import { parseConfig } from '../src/config/load';
import { createRunbookWorker } from '../src/workers/worker';
import { type RunbookMetrics, createRunbookMetrics, startMetricsServer } from '../src/workers/metrics';
import { type RotationResult } from '../src/workflows/rotate-secrets';
import { REPO, authLoop, containerStartedAt, exportedHistory, pgLogin, readEnv, redisLogin, rotationFixture, type RotationFixture } from './support/rotation-fixture';
import { historyTexts, leakedIn } from './support/history-scan';
import { recordHistory } from './support/histories';
import { useDevServer, workflowBundle } from './support/temporal';

const dev = useDevServer();

/** With `metrics`, the worker bundles its workflows at start as `npm run worker` from source does: with the interceptors that feed them. */
async function withWorker<T>(f: RotationFixture, fn: () => Promise<T>, metrics?: RunbookMetrics): Promise<T> {
  const worker: Worker = await createRunbookWorker({ config: f.config, connection: dev.workerConnection, ...(metrics ? { metrics } : { workflowBundle: await workflowBundle() }) });
  return worker.runUntil(fn);
}

function rotate(f: RotationFixture, set: string): Promise<RotationResult> {
  return dev.client.workflow.execute('rotateSecrets', { taskQueue: f.taskQueue, workflowId: `rotate/${set}`, args: [{ set }] });
}

/** Lines of `text` other than those assigning one of `keys`. */
function otherLines(text: string, keys: string[]): string[] {
  return text.split('\n').filter((l) => !keys.some((k) => new RegExp(`^(export\\s+)?${k}=`).test(l)));
}

test('PostgreSQL and Redis rotate under a client that keeps logging in: no authentication failure, old refused, new accepted everywhere', async () => {
  const f = await rotationFixture();
  try {
    const startedBefore = await containerStartedAt(f.container);
    const loop = authLoop(f);
    const { db, cache } = await withWorker(f, async () => ({ db: await rotate(f, f.dbSet), cache: await rotate(f, f.cacheSet) }));
    const { rounds, failures } = await loop.stop();
    expect(failures).toEqual([]);
    expect(rounds).toBeGreaterThan(5);
    await recordHistory(`rotate/${f.dbSet}`, 'rotate-secrets-postgres');

    // PostgreSQL: the idle role took over with a new password; the old role is refused.
    expect(db.plan).toMatchObject({ kind: 'postgres', oldRole: f.roles[0], newRole: f.roles[1] });
    const env = readEnv(f.envFile);
    expect(env.DB_USER).toBe(f.roles[1]);
    expect(env.DB_PASSWORD).not.toBe(f.initial.dbPassword);
    await expect(pgLogin(f.db, env.DB_USER!, env.DB_PASSWORD!)).resolves.toBeUndefined();
    await expect(pgLogin(f.db, f.roles[0], f.initial.dbPassword)).rejects.toThrow(/not permitted to log in/);
    // Redis: one user, the new password only.
    expect(env.REDIS_PASSWORD).not.toBe(f.initial.redisPassword);
    await expect(redisLogin(f.redisUser, env.REDIS_PASSWORD!)).resolves.toBeUndefined();
    await expect(redisLogin(f.redisUser, f.initial.redisPassword)).rejects.toThrow(/WRONGPASS/);

    // GitHub received sealed boxes that open to the new values.
    expect(f.github.secrets.get(`${REPO}/DB_PASSWORD`)).toBe(env.DB_PASSWORD);
    expect(f.github.secrets.get(`${REPO}/REDIS_PASSWORD`)).toBe(env.REDIS_PASSWORD);

    // The .env file: only the named keys changed, comments and order kept, 0600, previous versions kept.
    const text = readFileSync(f.envFile, 'utf8');
    expect(otherLines(text, ['DB_USER', 'DB_PASSWORD', 'REDIS_PASSWORD'])).toEqual(otherLines(f.envText, ['DB_USER', 'DB_PASSWORD', 'REDIS_PASSWORD']));
    expect(text.split('\n').findIndex((l) => l.startsWith('DB_USER='))).toBe(f.envText.split('\n').findIndex((l) => l.startsWith('DB_USER=')));
    expect(statSync(f.envFile).mode & 0o777).toBe(0o600);
    const kept = readdirSync(path.dirname(f.envFile)).filter((n) => n.startsWith('.env.before-'));
    expect(kept).toHaveLength(2);
    expect(kept.map((n) => readFileSync(path.join(path.dirname(f.envFile), n), 'utf8'))).toContain(f.envText);

    // The consumer was restarted (after the new values were written).
    expect(db.restarted).toEqual([f.container]);
    expect(await containerStartedAt(f.container)).toBeGreaterThan(startedBefore);

    // No secret, old or new, in the history the server keeps: every payload is ciphertext.
    const secrets = [f.initial.dbPassword, f.initial.redisPassword, env.DB_PASSWORD!, env.REDIS_PASSWORD!];
    for (const set of [f.dbSet, f.cacheSet]) {
      const json = await exportedHistory(`rotate/${set}`);
      expect(leakedIn(json, secrets)).toEqual([]);
      const { payloads } = historyTexts(json);
      expect(payloads.length).toBeGreaterThan(10);
      expect(new Set(payloads.map((p) => p.encoding))).toEqual(new Set(['binary/encrypted']));
    }

    // Audit: one line per rotation, names only; the lock is released.
    const audit = readFileSync(path.join(f.stateDir, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(audit.map((a) => [a.set, a.outcome])).toEqual([[f.dbSet, 'rotated'], [f.cacheSet, 'rotated']]);
    expect(leakedIn(JSON.stringify(audit), secrets)).toEqual([]);
    expect(readdirSync(f.stateDir).filter((n) => n.endsWith('.state'))).toEqual([]);

    // The next rotation alternates back to the first role.
    const again = await withWorker(f, () => rotate(f, f.dbSet));
    expect(again.plan).toMatchObject({ oldRole: f.roles[1], newRole: f.roles[0] });
    const env2 = readEnv(f.envFile);
    await expect(pgLogin(f.db, f.roles[0], env2.DB_PASSWORD!)).resolves.toBeUndefined();
    await expect(pgLogin(f.db, f.roles[1], env.DB_PASSWORD!)).rejects.toThrow(/not permitted to log in/);
    expect(cache.plan.kind).toBe('redis');
  } finally {
    await f.close();
  }
});

test('a failure after the database password changed rolls back everything: old values everywhere and working, new role refused', async () => {
  const f = await rotationFixture();
  try {
    // GitHub refuses the new DB_PASSWORD once (after the role, the .env file and nothing else changed).
    f.github.failPut.set('DB_PASSWORD', { status: 422, times: 1 });
    const loop = authLoop(f);
    const handle = dev.client.workflow.getHandle(`rotate/${f.dbSet}`);
    const status = () => handle.query<{ timeline: Array<{ step: string; state: string }> }>('status');
    // The worker's /metrics (as main.ts serves it) counts the rollback.
    const metrics = createRunbookMetrics();
    const metricsServer = await startMetricsServer({ address: '127.0.0.1:0', registry: metrics.registry });
    const [err, { timeline }] = await withWorker(f, async () => [await rotate(f, f.dbSet).then(() => undefined, (e: unknown) => e), await status()] as const, metrics);
    const scraped = await (await fetch(metricsServer.url)).text();
    await metricsServer.close();
    expect(scraped).toContain('runbook_rollbacks_total{runbook="rotateSecrets"} 1');
    const { failures } = await loop.stop();
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(String((err as WorkflowFailedError).cause?.message)).toMatch(/GitHub secret DB_PASSWORD of acme\/shop failed \(HTTP 422\).*rolled back: the old values are in place everywhere/);
    expect(failures).toEqual([]);
    await recordHistory(`rotate/${f.dbSet}`, 'rotate-secrets-rollback');

    expect(readFileSync(f.envFile, 'utf8')).toBe(f.envText);
    await expect(pgLogin(f.db, f.roles[0], f.initial.dbPassword)).resolves.toBeUndefined();
    const newPassword = readFileSync(path.join(path.dirname(f.envFile), readdirSync(path.dirname(f.envFile)).find((n) => n.startsWith('.env.before-'))!), 'utf8');
    expect(newPassword).toBe(f.envText); // the kept version is the original
    await expect(pgLogin(f.db, f.roles[1], 'anything')).rejects.toThrow(/not permitted to log in|password authentication failed/);
    expect(f.github.secrets.get(`${REPO}/DB_PASSWORD`)).toBe(f.initial.dbPassword);

    expect(timeline.map((s) => `${s.step}:${s.state}`)).toEqual([
      'plan:completed',
      'add new credential:completed',
      'verify new credential:completed',
      'write .env files:completed',
      'update GitHub secrets:failed',
      'rollback: restore .env files:completed',
      'rollback: restore GitHub secrets:completed',
      'rollback: restart consumers:completed',
      'rollback: withdraw new credential:completed',
    ]);
    // The lock is released: the set can be rotated again, and this time it works.
    const ok = await withWorker(f, () => rotate(f, f.dbSet));
    expect(ok.plan.newRole).toBe(f.roles[1]);
  } finally {
    await f.close();
  }
});

test('an undo step that fails leaves both credentials valid and the lock kept: every consumer still logs in with what it holds, and the failure says who holds which', async () => {
  const fixture = await rotationFixture();
  try {
    // The cache set also keeps REDIS_USER in GitHub and the .env file, after REDIS_PASSWORD.
    const raw = parse(fixture.yaml) as { rotation: { sets: Array<{ name: string; envFiles: Array<{ keys: object }>; github: { secrets: object } }> } };
    const cache = raw.rotation.sets.find((s) => s.name === fixture.cacheSet)!;
    cache.envFiles[0]!.keys = { password: 'REDIS_PASSWORD', user: 'REDIS_USER' };
    cache.github.secrets = { password: 'REDIS_PASSWORD', user: 'REDIS_USER' };
    const f: RotationFixture = { ...fixture, config: parseConfig(stringify(raw), 'rotation.yaml') };
    // GitHub takes the new REDIS_PASSWORD, refuses REDIS_USER (→ rollback), then refuses to put REDIS_PASSWORD back.
    f.github.failPut.set('REDIS_USER', { status: 422, times: 1 });
    f.github.failPut.set('REDIS_PASSWORD', { status: 403, times: 1, after: 1 });
    const loop = authLoop(f);
    const err = await withWorker(f, () => rotate(f, f.cacheSet).then(() => undefined, (e: unknown) => e));
    const { failures } = await loop.stop();
    await recordHistory(`rotate/${f.cacheSet}`, 'rotate-secrets-rollback-undo-failed');
    expect(failures).toEqual([]);

    // Each consumer logs in with the value it holds: the .env file went back to the old one, GitHub kept the new one.
    const env = readEnv(f.envFile);
    expect(env.REDIS_PASSWORD).toBe(f.initial.redisPassword);
    await expect(redisLogin(env.REDIS_USER!, env.REDIS_PASSWORD!)).resolves.toBeUndefined();
    const onGitHub = { user: f.github.secrets.get(`${REPO}/REDIS_USER`)!, password: f.github.secrets.get(`${REPO}/REDIS_PASSWORD`)! };
    expect(onGitHub.password).not.toBe(f.initial.redisPassword);
    await expect(redisLogin(onGitHub.user, onGitHub.password)).resolves.toBeUndefined();
    // The lock (with the new values) is kept, and no audit line claims the rotation is over.
    expect(readdirSync(f.stateDir).filter((n) => n.endsWith('.state'))).toEqual([`${f.cacheSet}.state`]);
    expect(readdirSync(f.stateDir)).not.toContain('audit.jsonl');

    expect(err).toBeInstanceOf(WorkflowFailedError);
    const message = String((err as WorkflowFailedError).cause?.message);
    expect(message).toContain('GitHub secret REDIS_USER of acme/shop failed (HTTP 422)');
    expect(message).toContain('rollback incomplete: restore GitHub secrets: GitHub secret REDIS_PASSWORD of acme/shop failed (HTTP 403)');
    expect(message).toContain('the old and the new credential both stay valid');
    expect(message).toContain(`Consumers: .env file ${f.envFile}: old; GitHub secret REDIS_PASSWORD: new; GitHub secret REDIS_USER: old; service app: old.`);
    expect(message).toContain(`the old values are in each .env file's .env.before-`);
    expect(message).toContain(`withdraw the new credential (ACL SETUSER <user> !<hash>`);
    expect(message).toContain(`delete <rotation.stateDir>/${f.cacheSet}.state`);
    expect([f.initial.redisPassword, onGitHub.password].filter((v) => message.includes(v))).toEqual([]);
  } finally {
    await fixture.close();
  }
});
