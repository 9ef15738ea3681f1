import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { type RotationResult } from '../src/workflows/rotate-secrets';
import { REPO, authLoop, exportedHistory, pgLogin, readEnv, rotationFixture } from './support/rotation-fixture';
import { leakedIn } from './support/history-scan';
import { runCli, startWorkerProcess, writeConfigFile } from './support/processes';
import { useDevServer } from './support/temporal';

const dev = useDevServer();

test('worker SIGKILLed right after writing the .env file: the rotation completes once, nothing half-applied, no secret in history or logs', async () => {
  const f = await rotationFixture();
  const configFile = writeConfigFile(f.yaml);
  const workers: Array<Awaited<ReturnType<typeof startWorkerProcess>>> = [];
  try {
    const loop = authLoop(f);
    // The worst moment: the file is written, Temporal does not know it yet.
    const first = await startWorkerProcess(configFile, { RUNBOOKS_CRASH_AFTER: 'writeEnvFiles' });
    workers.push(first);
    // On demand, through the CLI (its client encrypts the input with the same codec key).
    const bad = await runCli(['--config', configFile, 'start', 'rotate-secrets', '-p', 'set=nope']);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('set: unknown secret set "nope"');
    const started = await runCli(['--config', configFile, 'start', 'rotate-secrets', '-p', `set=${f.dbSet}`, '-p', 'reason=quarterly']);
    expect(started.exitCode).toBe(0);
    const handle = dev.client.workflow.getHandle(`rotate/${f.dbSet}`);
    expect(await first.exited).toBeNull(); // killed by a signal
    const second = await startWorkerProcess(configFile);
    workers.push(second);
    const result = (await handle.result()) as RotationResult;
    const { failures } = await loop.stop();
    expect(failures).toEqual([]);

    // One rotation: one kept .env version, one audit line, the new role in use, the old one refused.
    const dir = path.dirname(f.envFile);
    expect(readdirSync(dir).filter((n) => n.startsWith('.env.before-'))).toEqual([`.env.before-${result.plan.rotationId}`]);
    expect(readFileSync(path.join(dir, `.env.before-${result.plan.rotationId}`), 'utf8')).toBe(f.envText);
    const audit = readFileSync(path.join(f.stateDir, 'audit.jsonl'), 'utf8').trim().split('\n');
    expect(audit).toHaveLength(1);
    const env = readEnv(f.envFile);
    expect(env.DB_USER).toBe(f.roles[1]);
    await expect(pgLogin(f.db, f.roles[1], env.DB_PASSWORD!)).resolves.toBeUndefined();
    await expect(pgLogin(f.db, f.roles[0], f.initial.dbPassword)).rejects.toThrow(/not permitted to log in/);
    expect(f.github.secrets.get(`${REPO}/DB_PASSWORD`)).toBe(env.DB_PASSWORD);

    // The crash really happened between the write and its report: the step ran twice.
    const history = await handle.fetchHistory();
    const scheduled = new Map<string, string>();
    for (const e of history.events ?? []) {
      const s = e.activityTaskScheduledEventAttributes;
      if (s) scheduled.set(String(e.eventId), s.activityType?.name ?? '');
    }
    const writeAttempts = (history.events ?? [])
      .filter((e) => e.activityTaskStartedEventAttributes && scheduled.get(String(e.activityTaskStartedEventAttributes.scheduledEventId)) === 'writeEnvFiles')
      .map((e) => e.activityTaskStartedEventAttributes!.attempt);
    expect(writeAttempts).toEqual([2]);

    const secrets = [f.initial.dbPassword, env.DB_PASSWORD!];
    expect(leakedIn(await exportedHistory(`rotate/${f.dbSet}`), secrets)).toEqual([]);
    await second.stop();
    const logs = first.output() + second.output();
    expect(logs).toContain('worker started');
    expect(secrets.filter((s) => logs.includes(s))).toEqual([]);
  } finally {
    for (const w of workers) await w.kill().catch(() => undefined);
    await f.close();
  }
});
