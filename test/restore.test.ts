import { openSync, readSync, readdirSync, writeSync, closeSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { type Worker } from '@temporalio/worker';
import pg from 'pg';
import { parse, stringify } from 'yaml';
import { parseConfig } from '../src/config/load';
import { type Config } from '../src/config/schema';
import { type BackupResult } from '../src/workflows/backup';
import { type RestoreOutcome } from '../src/workflows/restore-database';
import { createRunbookWorker } from '../src/workers/worker';
import { type RestorePlan, createActivities } from '../src/activities';
import { planRestore } from '../src/activities/restore';
import { createDatabase, pgAdmin, servers, testConfig, uniqueName } from './support/servers';
import { type Fingerprint, fingerprint, seedShop } from './support/shop-data';
import { startWorkerProcess, runCli, writeConfigFile } from './support/processes';
import { damage, databasesLike, serviceContainer } from './support/restore-fixture';
import { recordHistory } from './support/histories';
import { heartbeatPid, useDevServer, workflowBundle } from './support/temporal';

const dev = useDevServer();

interface Fixture {
  db: string;
  target: string;
  taskQueue: string;
  config: Config;
  yaml: string;
  backup: BackupResult;
  atBackup: Fingerprint;
}

/** A seeded database (then handed to `prepare`) with one real backup, and a config (edited by `tweak`) pointing at it. */
async function fixture(tweak: (raw: any) => void = () => undefined, prepare: (db: string) => Promise<void> = () => Promise.resolve()): Promise<Fixture> {
  const db = uniqueName('rst');
  await createDatabase(db);
  await seedShop(db, 1500, 4);
  await prepare(db);
  const taskQueue = uniqueName('rst');
  const base = testConfig({ databases: [db], taskQueue });
  const raw = parse(base.yaml);
  tweak(raw);
  const yaml = stringify(raw);
  const config = parseConfig(yaml, 'restore-test.yaml');
  const target = config.targets.databases[0]!.name;
  const backup = await withWorker(config, () =>
    dev.client.workflow.execute('backup', { taskQueue, workflowId: `backup/${target}/${Date.now()}`, args: [{ target, kind: 'postgres', prune: false }] }),
  );
  return { db, target, taskQueue, config, yaml, backup: backup as BackupResult, atBackup: await fingerprint(db) };
}

async function withWorker<T>(config: Config, fn: () => Promise<T>): Promise<T> {
  const worker: Worker = await createRunbookWorker({ config, connection: dev.workerConnection, workflowBundle: await workflowBundle() });
  return worker.runUntil(fn);
}

function restore(f: Fixture, extra: Record<string, unknown> = {}): Promise<RestoreOutcome> {
  return dev.client.workflow.execute('restoreDatabase', {
    taskQueue: f.taskQueue,
    workflowId: `restore/${f.target}`,
    args: [{ target: f.target, backup: 'latest', dryRun: false, reason: 'test: data damaged', ...extra }],
  });
}

test('a damaged database is restored from its backup while its service is stopped only for the swap; the damaged state is kept', async () => {
  const service = await serviceContainer();
  const container = service.name;
  const port = service.port;
  const docker = servers().docker.host;
  try {
    const f = await fixture((raw) => {
      raw.targets.dockerHosts = [{ name: 'local', dockerHost: docker }];
      raw.targets.services = [{ name: 'api', host: 'local', containers: [container], healthUrl: `http://127.0.0.1:${port}/health` }];
      raw.targets.databases[0].services = ['api'];
      raw.targets.databases[0].restore = { checks: [{ table: 'customers', minRows: 1500 }, { name: 'orders total', sql: 'SELECT count(*) FROM orders', expect: 6000 }] };
    });
    await damage(f.db);
    const damaged = await fingerprint(f.db);
    expect(damaged).not.toEqual(f.atBackup);

    const result = await withWorker(f.config, () => restore(f));
    if (result.outcome !== 'restored') throw new Error(`unexpected outcome ${result.outcome}`);
    await recordHistory(`restore/${f.target}`, 'restore-database');
    expect(result.plan.backup.id).toBe(f.backup.backupId);
    expect(await fingerprint(f.db)).toEqual(f.atBackup); // production = the backup
    expect(await fingerprint(result.oldDatabase)).toEqual(damaged); // the pre-restore state, kept
    // The safety snapshot of the damaged state is the newest file now, yet "latest" is still the real backup.
    expect(result.safetySnapshot).toMatchObject({ purpose: 'safety' });
    expect(Date.parse(result.safetySnapshot.createdAt)).toBeGreaterThan(Date.parse(f.backup.manifest.createdAt));
    const next = await planRestore(f.config, { target: f.target, backup: 'latest', restoreId: 'next0001' });
    expect(next.backup.id).toBe(f.backup.backupId);
    expect(await databasesLike(f.db)).toEqual([f.db, result.oldDatabase].sort());

    // The service was stopped for the swap only and is serving again.
    expect(await service.running()).toBe(true);
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
    console.log(`restore downtime (services stopped → started): ${result.downtimeMs} ms`);
    expect(result.downtimeMs).toBeGreaterThan(0);

    // The old database is dropped later by a durable timer (see restore-timers.test.ts); the timer is running.
    const drop = await dev.client.workflow.getHandle(result.dropWorkflowId).describe();
    expect(drop.status.name).toBe('RUNNING');
    await dev.client.workflow.getHandle(result.dropWorkflowId).terminate('test over');
  } finally {
    await service.remove();
  }
});

test("a restore's safety snapshot and the backup before it survive the next backup's retention; restoring BY the snapshot's id brings the pre-restore rows back", async () => {
  // keepLast 2: before safety snapshots had their own TTL, the snapshot took a slot and pushed the restored-from backup out.
  const f = await fixture((raw) => (raw.backups.retention = { keepLast: 2 }));
  await damage(f.db);
  const damaged = await fingerprint(f.db);
  const file = writeConfigFile(f.yaml);
  const sorted = (xs: readonly string[]): string[] => [...xs].sort();
  await withWorker(f.config, async () => {
    const first = await restore(f);
    if (first.outcome !== 'restored') throw new Error(`unexpected outcome ${first.outcome}`);
    await dev.client.workflow.getHandle(first.dropWorkflowId).terminate('test over');
    const snapshot = first.safetySnapshot.id;
    expect(await fingerprint(f.db)).toEqual(f.atBackup);

    // The next backup, minutes (here: seconds) after the restore, applies retention.
    const next: BackupResult = await dev.client.workflow.execute('backup', {
      taskQueue: f.taskQueue,
      workflowId: `backup/${f.target}/${Date.now()}`,
      args: [{ target: f.target, kind: 'postgres', prune: true }],
    });
    expect({ kept: sorted(next.retention!.kept), pruned: next.retention!.pruned }).toEqual({
      kept: sorted([next.backupId, f.backup.backupId, snapshot]),
      pruned: [],
    });
    const onDisk = readdirSync(path.join(f.config.backups.root, f.target)).filter((n) => n.endsWith('.manifest.json'));
    expect(sorted(onDisk)).toEqual(sorted([next.backupId, f.backup.backupId, snapshot].map((id) => `${id}.manifest.json`)));

    // "That restore was a mistake": the operator restores the snapshot by its id, as `runbook backups` lists it.
    const listed = await runCli(['--config', file, 'backups', f.target]);
    expect(listed.stdout).toContain(`${snapshot}  (safety snapshot taken by a restore)`);
    const undo = await runCli(['--config', file, '--json', 'start', 'restore', '-p', `target=${f.target}`, '-p', `backup=${snapshot}`, '-p', 'reason=undo the restore', '--wait']);
    expect({ exitCode: undo.exitCode, stderr: undo.stderr }).toEqual({ exitCode: 0, stderr: '' });
    const [, done] = undo.stdout.split(/\n(?=\{)/).map((x) => JSON.parse(x) as { result: RestoreOutcome });
    const second = done!.result;
    if (second.outcome !== 'restored') throw new Error(`unexpected outcome ${second.outcome}`);
    expect(second.plan.backup.id).toBe(snapshot);
    expect(await fingerprint(f.db)).toEqual(damaged); // the rows as they were before the first restore
    await dev.client.workflow.getHandle(second.dropWorkflowId).terminate('test over');
  });
});

test('a corrupt backup is refused at validation; production is untouched', async () => {
  const f = await fixture();
  const before = await fingerprint(f.db);
  const file = path.join(f.config.backups.root, f.target, f.backup.manifest.file);
  const fd = openSync(file, 'r+');
  const at = Math.floor(statSync(file).size / 2);
  const byte = Buffer.alloc(1);
  readSync(fd, byte, 0, 1, at);
  writeSync(fd, Buffer.from([byte[0]! ^ 0xff]), 0, 1, at);
  closeSync(fd);

  // The status query is answered by a worker, so ask while it runs.
  const { err, status } = await withWorker(f.config, async () => {
    const e = await restore(f).catch((x: unknown) => x);
    const st = await dev.client.workflow.getHandle(`restore/${f.target}`).query<{ timeline: Array<{ step: string; state: string }> }>('status');
    return { err: e, status: st };
  });
  expect(err).toBeInstanceOf(WorkflowFailedError);
  expect(String((err as WorkflowFailedError).cause?.message)).toMatch(/refused, nothing was changed: backup .* is corrupt: sha256 .* does not match its manifest/);
  expect(await fingerprint(f.db)).toEqual(before);
  expect(await databasesLike(f.db)).toEqual([f.db]);
  expect(status.timeline.map((s) => `${s.step}:${s.state}`)).toEqual(['plan:completed', 'validate:failed']);
});

test('a failing verification drops the restored copy; production is untouched', async () => {
  const f = await fixture((raw) => {
    raw.targets.databases[0].restore = { checks: [{ name: 'no test customers', sql: `SELECT count(*) FROM customers WHERE email LIKE '%example.test'`, expect: 0 }] };
  });
  await damage(f.db);
  const before = await fingerprint(f.db);
  const err = await withWorker(f.config, () => restore(f)).catch((e: unknown) => e);
  expect(String((err as WorkflowFailedError).cause?.message)).toContain('rolled back (production was not touched): restored copy');
  expect(String((err as WorkflowFailedError).cause?.message)).toContain('failed 1 check(s): no test customers (got 1500, want 0)');
  expect(await fingerprint(f.db)).toEqual(before);
  expect(await databasesLike(f.db)).toEqual([f.db]); // the copy is gone
});

test('a dry run shows the plan and changes nothing; a second restore of the same database is refused while one runs', async () => {
  const f = await fixture();
  const file = writeConfigFile(f.yaml);
  const worker = await startWorkerProcess(file);
  try {
    const dry = await runCli(['--config', file, '--json', 'start', 'restore', '-p', `target=${f.target}`, '-p', 'dryRun=true', '-p', 'reason=planning', '--wait']);
    const [, done] = dry.stdout.split(/\n(?=\{)/).map((s) => JSON.parse(s) as Record<string, any>);
    expect(done!.result.outcome).toBe('dry-run');
    expect(done!.result.steps).toEqual(expect.arrayContaining([expect.stringMatching(/^swap: /), expect.stringMatching(/^pg_restore -j 2 /)]));
    expect(await databasesLike(f.db)).toEqual([f.db]);

    const missingReason = await runCli(['--config', file, 'start', 'restore', '-p', `target=${f.target}`]);
    expect(missingReason.exitCode).toBe(2);
    expect(missingReason.stderr).toContain('reason: is required');

    // Hold a lock pg_restore's target does not need but the safety snapshot does: the run stays in flight.
    const locker = pgAdmin(f.db);
    await locker.connect();
    await locker.query('BEGIN; LOCK TABLE orders IN ACCESS EXCLUSIVE MODE');
    try {
      const first = await runCli(['--config', file, 'start', 'restore', '-p', `target=${f.target}`, '-p', 'reason=first']);
      expect(first.exitCode).toBe(0);
      const second = await runCli(['--config', file, 'start', 'restore', '-p', `target=${f.target}`, '-p', 'reason=second']);
      expect(second.exitCode).toBe(1);
      expect(second.stderr).toContain(`restore/${f.target} is already running`);
    } finally {
      await locker.query('COMMIT');
      await locker.end();
    }
    const result: RestoreOutcome = await dev.client.workflow.getHandle(`restore/${f.target}`).result();
    expect(result.outcome).toBe('restored');
    if (result.outcome === 'restored') await dev.client.workflow.getHandle(result.dropWorkflowId).terminate('test over');
  } finally {
    await worker.stop();
  }
});

test('worker SIGKILLed during pg_restore: the restore completes once, with no duplicate databases', async () => {
  const f = await fixture();
  await damage(f.db);
  const damaged = await fingerprint(f.db);
  const file = writeConfigFile(f.yaml);
  const first = await startWorkerProcess(file);
  // Block pg_restore on a lock inside the aside database once it exists, so the kill lands mid-restore.
  const handle = await dev.client.workflow.start('restoreDatabase', {
    taskQueue: f.taskQueue,
    workflowId: `restore/${f.target}`,
    args: [{ target: f.target, backup: 'latest', dryRun: false, reason: 'crash test' }],
  });
  let restorePid: number | undefined;
  for (const deadline = Date.now() + 60_000; !restorePid && Date.now() < deadline; ) {
    restorePid = await heartbeatPid(handle, 'restoreAside');
    if (!restorePid) await new Promise((r) => setTimeout(r, 20));
  }
  expect(restorePid).toBeDefined();
  await first.kill();
  const second = await startWorkerProcess(file);
  try {
    const result: RestoreOutcome = await handle.result();
    if (result.outcome !== 'restored') throw new Error(result.outcome);
    expect(await fingerprint(f.db)).toEqual(f.atBackup);
    expect(await fingerprint(result.oldDatabase)).toEqual(damaged);
    expect(await databasesLike(f.db)).toEqual([f.db, result.oldDatabase].sort());
    await dev.client.workflow.getHandle(result.dropWorkflowId).terminate('test over');
  } finally {
    await second.stop();
  }
});

test('the CLI records who asked for a restore ($RUNBOOK_USER), so that operator cannot approve it', async () => {
  const f = await fixture((raw) => (raw.targets.databases[0].production = true));
  const file = writeConfigFile(f.yaml);
  const worker = await startWorkerProcess(file);
  const id = `restore/${f.target}`;
  try {
    expect((await runCli(['--config', file, 'start', 'restore', '-p', `target=${f.target}`, '-p', 'reason=drill'], { RUNBOOK_USER: 'dana' })).exitCode).toBe(0);
    let self = { exitCode: 0, stderr: '' };
    for (const deadline = Date.now() + 20_000; Date.now() < deadline; ) {
      self = await runCli(['--config', file, 'approve', id, '--by', 'DANA'], { RUNBOOK_USER: 'dana' });
      if (!self.stderr.includes('not waiting for an approval')) break; // still before the gate
    }
    expect(self.exitCode).toBe(2);
    expect(self.stderr).toContain('DANA requested this restore and cannot approve it');
    expect((await runCli(['--config', file, 'reject', id, '--by', 'erin'])).exitCode).toBe(0);
    expect(await dev.client.workflow.getHandle(id).result()).toMatchObject({ outcome: 'not approved', reason: 'rejected' });
  } finally {
    await worker.stop();
  }
});

test('a production restore waits at its gate: self-approval is refused, approval by someone else lets it run', async () => {
  const f = await fixture((raw) => (raw.targets.databases[0].production = true));
  await damage(f.db);
  const file = writeConfigFile(f.yaml);
  const worker = await startWorkerProcess(file);
  const id = `restore/${f.target}`;
  try {
    const started = await runCli(['--config', file, 'start', 'restore', '-p', `target=${f.target}`, '-p', 'reason=orders damaged', '-p', 'requestedBy=alice']);
    expect(started.exitCode).toBe(0);
    let waiting = '';
    for (const deadline = Date.now() + 20_000; !waiting.includes('step "approval"') && Date.now() < deadline; ) {
      waiting = (await runCli(['--config', file, 'describe', id])).stdout;
    }
    expect(waiting).toMatch(/RUNNING[\s\S]*step "approval"/);
    expect(await databasesLike(f.db)).toEqual([f.db]); // nothing touched while waiting

    for (const alias of ['alice', ' Alice ']) {
      const self = await runCli(['--config', file, 'approve', id, '--by', alias]);
      expect(self.exitCode).toBe(2);
      expect(self.stderr).toContain('Alice requested this restore and cannot approve it'.replace('Alice', alias.trim()));
    }

    const ok = await runCli(['--config', file, 'approve', id, '--by', 'bob', '--note', 'checked with the team']);
    expect(ok.exitCode).toBe(0);
    expect(ok.stdout).toMatch(/^approved by bob at /);
    const result: RestoreOutcome = await dev.client.workflow.getHandle(id).result();
    if (result.outcome !== 'restored') throw new Error(result.outcome);
    expect(result.approval).toMatchObject({ by: 'bob', decision: 'approved', note: 'checked with the team' });
    expect(await fingerprint(f.db)).toEqual(f.atBackup);
    const described = await runCli(['--config', file, 'describe', id]);
    expect(described.stdout).toMatch(/approval\s+completed approved by bob: checked with the team/);

    const late = await runCli(['--config', file, 'approve', id, '--by', 'carol']);
    expect(late.exitCode).not.toBe(0); // the run is over: nothing to approve
    await dev.client.workflow.getHandle(result.dropWorkflowId).terminate('test over');
  } finally {
    await worker.stop();
  }
});

async function adminSql(sql: string, database = 'postgres'): Promise<void> {
  const c = pgAdmin(database);
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

test('a swap that cannot end another role\'s session fails without leaving production refusing connections (target user = owner, not superuser)', async () => {
  const owner = uniqueName('owner');
  const password = randomBytes(12).toString('hex');
  process.env.TEST_OWNER_PW = password;
  await adminSql(`CREATE ROLE ${owner} LOGIN CREATEDB NOSUPERUSER PASSWORD '${password}'`);
  const f = await fixture(
    (raw) => void Object.assign(raw.targets.databases[0], { user: owner, password: { env: 'TEST_OWNER_PW' } }),
    async (db) => {
      await adminSql(`ALTER DATABASE "${db}" OWNER TO ${owner}`);
      await adminSql(`ALTER TABLE customers OWNER TO ${owner}; ALTER TABLE orders OWNER TO ${owner}`, db);
    },
  );
  const ownerClient = (): pg.Client =>
    new pg.Client({ host: servers().postgres.host, port: servers().postgres.port, user: owner, password, database: f.db, connectionTimeoutMillis: 5_000 });
  const damaging = ownerClient();
  await damaging.connect();
  await damaging.query('DELETE FROM orders WHERE id % 2 = 0');
  await damaging.end();
  const before = await fingerprint(f.db);
  // A superuser's session on production: the owner may not end it, so the swap cannot keep production to itself.
  const other = pgAdmin(f.db);
  other.on('error', () => undefined); // if it were ended, the test says so below
  await other.connect();
  let err: unknown;
  try {
    err = await withWorker(f.config, () => restore(f)).catch((e: unknown) => e);
    expect((await other.query<{ ok: number }>('SELECT 1 AS ok')).rows[0]!.ok).toBe(1); // its session was not ended
  } finally {
    await other.end();
  }
  expect(err).toBeInstanceOf(WorkflowFailedError);

  // Production accepts new sessions again: the application's role connects and reads.
  const app = ownerClient();
  await app.connect();
  try {
    expect((await app.query<{ n: string }>('SELECT count(*) AS n FROM orders')).rows[0]!.n).toBe(String(before.orders!.rows));
  } finally {
    await app.end();
  }
  // The failure says what happened, at once (no retries while services are down).
  const message = String((err as WorkflowFailedError).cause?.message);
  expect(message).toContain(`restore of ${f.target} failed and was rolled back (production was not swapped)`);
  expect(message).toContain(`cannot keep sessions out of ${f.db}, ${f.db}__restore_`);
  expect(message).toContain('must be a superuser to terminate superuser process');
  expect(await fingerprint(f.db)).toEqual(before);
  expect(await databasesLike(f.db)).toEqual([f.db]);
}, 300_000);

/** Which of these databases exist (exact names; derived names of a long database do not start with all of it). */
async function present(names: string[]): Promise<string[]> {
  const c = pgAdmin();
  await c.connect();
  try {
    return (await c.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname = ANY($1) ORDER BY 1', [names])).rows.map((r) => r.datname);
  } finally {
    await c.end();
  }
}

describe('derived database names are cut by bytes (PostgreSQL keeps 63 bytes of a name)', () => {
  const bytes = (s: string): number => Buffer.byteLength(s);

  test('a 63-byte multibyte database: the aside copy is built next to production, and a name PostgreSQL would cut to production is never dropped', async () => {
    const db = `${uniqueName('rst')}${'ä'.repeat(25)}x`; // 12 + 50 + 1 = 63 bytes
    expect(bytes(db)).toBe(63);
    await createDatabase(db);
    await seedShop(db, 200, 2);
    const raw = parse(testConfig({ databases: [uniqueName('mb')], taskQueue: uniqueName('rst') }).yaml);
    raw.targets.databases[0].database = db; // the target's name stays ASCII
    const config = parseConfig(stringify(raw), 'multibyte.yaml');
    const target = config.targets.databases[0]!.name;
    const activities = createActivities({ config });
    const env = new MockActivityEnvironment();
    await env.run(activities.dumpPostgres, { target, backupId: `${target}-20260101T000000Z-aaaa`, createdAt: '2026-01-01T00:00:00.000Z' });
    const atBackup = await fingerprint(db);
    await damage(db);
    const damaged = await fingerprint(db);

    const plan: RestorePlan = await env.run(activities.planRestore, { target, backup: 'latest', restoreId: 'abcd1234' });
    for (const n of [plan.asideDb, plan.oldDb, plan.failedDb]) expect(bytes(n)).toBeLessThanOrEqual(63);
    expect(new Set([db, plan.asideDb, plan.oldDb, plan.failedDb]).size).toBe(4);
    await env.run(activities.restoreAside, plan);
    expect(await fingerprint(db)).toEqual(damaged); // production untouched
    expect(await fingerprint(plan.asideDb)).toEqual(atBackup); // the copy is where the plan says
    const all = [db, plan.asideDb, plan.oldDb, plan.failedDb];
    expect(await present(all)).toEqual([db, plan.asideDb].sort());

    // `<db>__restore_<id>` looks like a scratch name, but PostgreSQL would cut it back to production's name.
    const err = await env.run(activities.dropScratchDatabase, { target, database: `${db}__restore_abcd1234` }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    expect((err as ApplicationFailure).message).toContain('refusing to drop');
    expect(await fingerprint(db)).toEqual(damaged);
    await env.run(activities.dropScratchDatabase, { target, database: plan.asideDb });
    expect(await present(all)).toEqual([db]);
  });
});
