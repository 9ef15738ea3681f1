import { randomBytes } from 'node:crypto';
import { parse, stringify } from 'yaml';
import { createDatabase, servers, testConfig, uniqueName } from './support/servers';
import { seedShop } from './support/shop-data';
import { parseMail, startSmtp } from './support/smtp';
import { runCli, startWorkerProcess, writeConfigFile } from './support/processes';
import { databasesLike } from './support/restore-fixture';
import { recordHistory } from './support/histories';

function replies(stdout: string): Array<Record<string, any>> {
  return stdout.split(/\n(?=\{)/).map((s) => JSON.parse(s) as Record<string, any>);
}

/** A database with a backup, a worker process, an SMTP server, and a config whose checks `tweak` sets. */
async function drillSetup(checks: unknown[]) {
  const db = uniqueName('drill');
  await createDatabase(db);
  await seedShop(db, 800, 3);
  const smtpPassword = randomBytes(9).toString('hex');
  process.env.TEST_SMTP_PASSWORD_DRILL = smtpPassword;
  const smtp = await startSmtp('runbooks', smtpPassword);
  const base = testConfig({
    databases: [db],
    taskQueue: uniqueName('drill'),
    email: { port: smtp.port, user: 'runbooks', passwordEnv: 'TEST_SMTP_PASSWORD_DRILL', to: ['dba@example.test'] },
  });
  const raw = parse(base.yaml);
  raw.targets.databases[0].restore = { checks };
  const file = writeConfigFile(stringify(raw));
  const target = base.config.targets.databases[0]!.name;
  const worker = await startWorkerProcess(file);
  const backup = replies((await runCli(['--config', file, '--json', 'start', 'backup', '-p', `target=${target}`, '--wait'])).stdout)[1]!;
  return { db, target, file, worker, smtp, backupId: backup.result.backupId as string };
}

test('the weekly drill restores the newest backup into a scratch database, checks it, records the restore time and drops it', async () => {
  const s = await drillSetup([{ table: 'orders', minRows: 2400 }, { name: 'emails unique', sql: 'SELECT count(DISTINCT email) = count(*) FROM customers', expect: true }]);
  try {
    const run = await runCli(['--config', s.file, '--json', 'start', 'verify-backup', '-p', `target=${s.target}`, '--wait']);
    expect(run.stderr).toBe('');
    const result = replies(run.stdout)[1]!.result;
    expect(result).toMatchObject({ target: s.target, backupId: s.backupId });
    expect(result.restoreMs).toBeGreaterThan(0);
    expect(result.backupAgeMs).toBeGreaterThanOrEqual(0);
    expect((result.checks as Array<{ check: string; ok: boolean }>).map((c) => `${c.check}:${c.ok}`)).toEqual([
      'SELECT 1:true',
      'rows in orders >= 2400:true',
      'emails unique:true',
    ]);
    expect(await databasesLike(s.db)).toEqual([s.db]); // scratch dropped
    expect(s.smtp.received).toHaveLength(0);
    await recordHistory(replies(run.stdout)[1]!.workflowId as string, 'verify-backup-passed');

    // The last drill, as an operator asks for it.
    let last = { stdout: '', exitCode: 1 };
    for (const deadline = Date.now() + 15_000; !last.stdout.includes('COMPLETED') && Date.now() < deadline; ) {
      last = await runCli(['--config', s.file, 'last', 'verify-backup', s.target]);
    }
    expect(last.stdout).toMatch(new RegExp(`verify-backup/${s.target}/.* \\(verifyBackup\\) COMPLETED`));
    expect(last.stdout).toMatch(/restore\s+completed \d+ ms/);
    expect(last.stdout).toContain(`"backupId": "${s.backupId}"`);
  } finally {
    await s.worker.stop();
    await s.smtp.close();
  }
});

test('a drill whose checks fail drops its scratch database and emails the operators once', async () => {
  const s = await drillSetup([{ name: 'impossible', sql: 'SELECT count(*) FROM orders', expect: 1 }]);
  try {
    const run = await runCli(['--config', s.file, '--json', 'start', 'verify-backup', '-p', `target=${s.target}`, '--wait']);
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toContain(`backup drill of ${s.target} failed`);
    expect(await databasesLike(s.db)).toEqual([s.db]);
    expect(s.smtp.received).toHaveLength(1);
    const mail = parseMail(s.smtp.received[0]!.raw);
    expect(mail.headers.get('subject')).toBe(`[runbook] backup drill of ${s.target} FAILED`);
    expect(mail.body).toContain('impossible (got 2400, want 1)');
    expect(s.smtp.received[0]!.raw).not.toContain(servers().postgres.password);
    await recordHistory(replies(run.stdout)[0]!.workflowId as string, 'verify-backup-checks-failed');
  } finally {
    await s.worker.stop();
    await s.smtp.close();
  }
});
