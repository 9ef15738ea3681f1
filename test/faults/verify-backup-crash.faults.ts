import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { type Client, type Connection, type WorkflowHandle } from '@temporalio/client';
import { parse, stringify } from 'yaml';
import { alive } from '../../src/client/local-servers';
import { type DrillResult } from '../../src/workflows/verify-backup';
import { sha256 } from '../support/backup-checks';
import { type WorkerProcess, runCli, startWorkerProcess, writeConfigFile } from '../support/processes';
import { databasesLike } from '../support/restore-fixture';
import { createDatabase, testConfig, uniqueName } from '../support/servers';
import { seedShop } from '../support/shop-data';
import { parseMail, startSmtp } from '../support/smtp';
import { devServerClient, heartbeatPid } from '../support/temporal';
import { expectCutMidStep, retriedActivities, waitForStep, waitUntil } from '../support/wait';

/**
 * WF-05 (the weekly restore drill) under crashes: a worker that SIGKILLs itself right after each step's side
 * effect, and one SIGKILLed while pg_restore fills the scratch database; a healthy worker then finishes the
 * drill. What users care about: one drill with the right verdict, no scratch database left behind, at most
 * one email, and the backup it drilled untouched. `npm run test:faults`.
 */
let client: Client;
let connection: Connection;
beforeAll(async () => ({ client, connection } = await devServerClient()));
afterAll(async () => connection.close());

type Smtp = Awaited<ReturnType<typeof startSmtp>>;

interface Drill {
  db: string;
  target: string;
  /** Configs with passing checks and with a check that always fails, same database and backup folder. */
  passing: string;
  failing: string;
  smtp: Smtp;
  backupId: string;
  backupDir: string;
  /** sha256 of every file in the target's backup folder after the backup. */
  files: Record<string, string>;
}

function filesOf(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir).sort().map((n) => [n, sha256(path.join(dir, n))]));
}

/** A seeded database, one backup of it (real CLI and worker), an SMTP server, and two configs. */
async function drillFixture(customers: number, ordersPerCustomer: number): Promise<Drill> {
  const db = uniqueName('vbk');
  await createDatabase(db);
  await seedShop(db, customers, ordersPerCustomer);
  const smtpPassword = randomBytes(9).toString('hex');
  process.env.TEST_SMTP_PASSWORD_VBK = smtpPassword;
  const smtp = await startSmtp('runbooks', smtpPassword);
  const base = testConfig({
    databases: [db],
    redis: ['sent'],
    taskQueue: uniqueName('vbk'),
    email: { port: smtp.port, user: 'runbooks', passwordEnv: 'TEST_SMTP_PASSWORD_VBK', to: ['dba@example.test'] },
  });
  const withChecks = (checks: unknown[]): string => {
    const raw = parse(base.yaml);
    raw.targets.databases[0].restore = { checks };
    // What sendEmail sent, by idempotency key (the shared Redis): the operator's way to have the report delivered once.
    raw.notifications.sentLog = { redis: 'sent' };
    return writeConfigFile(stringify(raw));
  };
  const rows = customers * ordersPerCustomer;
  const passing = withChecks([{ table: 'orders', minRows: rows }, { name: 'emails unique', sql: 'SELECT count(DISTINCT email) = count(*) FROM customers', expect: true }]);
  const failing = withChecks([{ name: 'impossible', sql: 'SELECT count(*) FROM orders', expect: 1 }]);
  const target = base.config.targets.databases[0]!.name;
  const w = await startWorkerProcess(passing);
  let backupId: string;
  try {
    const r = await runCli(['--config', passing, '--json', 'start', 'backup', '-p', `target=${target}`, '--wait']);
    if (r.exitCode !== 0) throw new Error(r.stderr);
    backupId = (JSON.parse(r.stdout.split(/\n(?=\{)/)[1]!) as { result: { backupId: string } }).result.backupId;
  } finally {
    await w.stop();
  }
  const backupDir = path.join(base.config.backups.root, target);
  return { db, target, passing, failing, smtp, backupId, backupDir, files: filesOf(backupDir) };
}

async function startDrill(d: Drill, file: string): Promise<WorkflowHandle> {
  const started = await runCli(['--config', file, '--json', 'start', 'verify-backup', '-p', `target=${d.target}`]);
  expect(started.exitCode).toBe(0);
  return client.workflow.getHandle((JSON.parse(started.stdout) as { workflowId: string }).workflowId);
}

/** Start a drill on a worker that dies after `step`, then let a healthy worker finish it. */
async function drillThroughCrash(d: Drill, file: string, step: string): Promise<{ handle: WorkflowHandle; result: DrillResult | Error }> {
  const crashing = await startWorkerProcess(file, { RUNBOOKS_CRASH_AFTER: step });
  let healthy: WorkerProcess | undefined;
  try {
    const handle = await startDrill(d, file);
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([crashing.exited, new Promise((r) => (timer = setTimeout(() => r('still running after 120 s'), 120_000)))]);
    clearTimeout(timer); // no timer left to keep Jest alive after the run
    expect(code).toBeNull(); // killed by SIGKILL: the crash really happened after `step`
    healthy = await startWorkerProcess(file);
    const result = await (handle.result() as Promise<DrillResult>).catch((e: unknown) => e as Error);
    return { handle, result };
  } finally {
    await crashing.kill();
    await healthy?.stop();
  }
}

/** The drill left nothing behind and did not touch the backup it drilled. */
async function expectCleanAfter(d: Drill): Promise<void> {
  expect(await databasesLike(d.db)).toEqual([d.db]); // scratch database dropped, exactly once
  expect(filesOf(d.backupDir)).toEqual(d.files); // same files, same checksums
}

describe('drill whose checks pass', () => {
  let d: Drill;
  beforeAll(async () => (d = await drillFixture(1000, 3)));
  afterAll(async () => d?.smtp.close());

  test.each(['planRestore', 'validateBackup', 'restoreAside', 'verifyRestoredCopy', 'dropScratchDatabase'])(
    'killed right after %s: the drill completes once, passes, leaves no scratch database, sends no email',
    async (step) => {
      const sent = d.smtp.received.length;
      const { handle, result } = await drillThroughCrash(d, d.passing, step);
      if (result instanceof Error) throw result;
      expect(result).toMatchObject({ target: d.target, backupId: d.backupId });
      expect(result.checks.map((c) => `${c.check}:${c.ok}`)).toEqual(['SELECT 1:true', 'rows in orders >= 3000:true', 'emails unique:true']);
      expect(result.restoreMs).toBeGreaterThan(0);
      expect((await retriedActivities(handle))[step]).toBeGreaterThanOrEqual(1); // the step really ran again
      await expectCleanAfter(d);
      expect(d.smtp.received.length - sent).toBe(0);
    },
  );
});

describe('drill whose checks fail', () => {
  let d: Drill;
  beforeAll(async () => (d = await drillFixture(1000, 3)));
  afterAll(async () => d?.smtp.close());

  // A failed verifyRestoredCopy never reaches the crash hook (it kills after a step's success only); the
  // failure path's own steps are the scratch database's drop and the email.
  test.each(['dropScratchDatabase', 'sendEmail'])(
    'killed right after %s: the drill fails once, drops its scratch database, emails the operators exactly once',
    async (step) => {
      const sent = d.smtp.received.length;
      const { result } = await drillThroughCrash(d, d.failing, step);
      expect(result).toBeInstanceOf(Error);
      expect(String((result as Error & { cause?: Error }).cause?.message)).toContain(`backup drill of ${d.target} failed`);
      await expectCleanAfter(d);
      const mails = d.smtp.received.slice(sent);
      expect(mails).toHaveLength(1);
      const mail = parseMail(mails[0]!.raw);
      expect(mail.headers.get('subject')).toBe(`[runbook] backup drill of ${d.target} FAILED`);
      expect(mail.body).toContain('impossible (got 3000, want 1)');
    },
  );
});

test('killed while pg_restore fills the scratch database: one drill, passed, no scratch database, the dead worker\'s pg_restore stopped', async () => {
  const d = await drillFixture(40_000, 10);
  let first: WorkerProcess | undefined;
  let healthy: WorkerProcess | undefined;
  try {
    first = await startWorkerProcess(d.passing);
    const handle = await startDrill(d, d.passing);
    await waitForStep(handle, 'restore');
    const restorePid = await waitUntil('pg_restore running', () => heartbeatPid(handle, 'restoreAside'), 60_000, 50);
    expect(alive(restorePid)).toBe(true); // the first attempt is mid-way: its pg_restore is filling the scratch database
    await first.kill();
    const killedAt = Date.now();
    healthy = await startWorkerProcess(d.passing);
    const result = (await handle.result()) as DrillResult;
    await expectCutMidStep(handle, 'restoreAside', killedAt);
    expect(result.checks.every((c) => c.ok)).toBe(true);
    expect(result.checks.map((c) => c.check)).toContain('rows in orders >= 400000');
    await expectCleanAfter(d);
    expect(d.smtp.received).toHaveLength(0);
    expect(alive(restorePid)).toBe(false); // the dead worker's pg_restore did not go on writing
  } finally {
    await first?.kill();
    await healthy?.stop();
    await d.smtp.close();
  }
});
