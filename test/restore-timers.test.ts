import { readdirSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Client, WorkflowFailedError, WorkflowNotFoundError, type WorkflowHandle, type WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment, TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { parse, stringify } from 'yaml';
import { type BackupManifest, createActivities } from '../src/activities';
import { type DumpPostgresInput } from '../src/activities/postgres';
import { freePort, temporalBinary } from '../src/client/local-servers';
import { parseConfig } from '../src/config/load';
import { type RestoreInput } from '../src/config/runbooks';
import { type Config } from '../src/config/schema';
import { type ApprovalDecision, type RunbookStatus, approveUpdate, keepSignal, rejectUpdate } from '../src/workflows/definitions';
import { type RestoreOutcome, type dropDatabaseLater, type restoreDatabase } from '../src/workflows/restore-database';
import { damage, databasesLike } from './support/restore-fixture';
import { createDatabase, pgAdmin, servers, testConfig, uniqueName } from './support/servers';
import { type Fingerprint, fingerprint, seedShop } from './support/shop-data';
import { recordHandleHistory } from './support/histories';
import { updateRefusal as refusal, workflowBundle } from './support/temporal';

// RB-01's durable timers (approval timeout, delayed drop of the pre-restore database, health-check retries) on the
// time-skipping test server, with the REAL activities against the shared PostgreSQL: hours pass in moments.
//
// Time skipping is global to a test server. `env.client` unlocks it while it awaits a result, so once a run closes
// the server may jump to the next timer of ANY workflow (e.g. a 24 h drop timer). Where a run leaves such a timer
// behind and the test looks at the databases afterwards, its result is read through `plain`, a client without time
// skipping; server time then passes only by `env.sleep(...)`. Each test gets its own test server (see
// `unstickTimeSkipping` for why a server must not outlive a test).

let env: TestWorkflowEnvironment;
let plain: Client;

/** Undone after each test: databases to drop, servers to close. */
const cleanups: Array<() => Promise<unknown>> = [];

beforeEach(async () => {
  env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: temporalBinary('temporal-test-server') } },
  });
  plain = new Client({ connection: env.connection, namespace: env.namespace ?? 'default' });
}, 60_000);

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  await env?.teardown();
});

const HOUR = 3_600_000;

/**
 * The time-skipping test server leaks one time-skipping lock when an ABANDONED child of a CLOSED parent closes
 * (temporalio/sdk-java#2392, sdk-typescript#1101; dropDatabaseLater is exactly that): from then on server time
 * passes only in real time and `env.sleep('25h')` would take 25 h. Detect it (a 2 s sleep that takes 2 s of real
 * time) and hand the lock back. A no-op on a server without the bug.
 */
async function unstickTimeSkipping(): Promise<void> {
  const t0 = Date.now();
  await env.sleep('2s');
  if (Date.now() - t0 >= 1_500) await env.connection.testService!.unlockTimeSkipping({});
}

/**
 * `env.sleep(duration)` that returns early, with 'closed', if the run `h` closes meanwhile: a drop timer that fires
 * too early must fail the test at once, not stall the rest of the sleep (see unstickTimeSkipping).
 */
async function sleepUnlessClosed(duration: string, h: WorkflowHandle): Promise<'slept' | 'closed'> {
  const closed = plain.workflow
    .getHandle(h.workflowId)
    .result()
    .then(
      () => 'closed' as const,
      () => 'closed' as const,
    );
  const slept = env.sleep(duration).then(
    () => 'slept' as const,
    () => 'closed' as const,
  );
  return Promise.race([slept, closed]);
}

async function sql<T extends Record<string, unknown>>(text: string, params: unknown[] = [], database = 'postgres'): Promise<T[]> {
  const c = pgAdmin(database);
  await c.connect();
  try {
    return (await c.query<T>(text, params)).rows;
  } finally {
    await c.end();
  }
}

async function dbExists(name: string): Promise<boolean> {
  return (await sql('SELECT 1 FROM pg_database WHERE datname = $1', [name])).length === 1;
}

/** Rows deleted, a table dropped, junk added: nothing of it matches the backup any more. */
async function damaged(db: string, atBackup: Fingerprint): Promise<Fingerprint> {
  await damage(db);
  const fp = await fingerprint(db);
  expect(fp).not.toEqual(atBackup);
  expect(Object.keys(fp)).toEqual(['junk', 'orders']);
  return fp;
}

interface Fixture {
  db: string;
  target: string;
  taskQueue: string;
  config: Config;
  backup: BackupManifest;
  /** The database's contents when the backup was taken. */
  atBackup: Fingerprint;
  /** Real activities, on the time-skipping server; run it once per test (runUntil). */
  worker: Worker;
}

/**
 * A seeded database of its own, a config pointing at it (edited by `tweak` on the parsed YAML), one real backup
 * taken by the real dumpPostgres activity, and a worker with the real activities.
 */
async function fixture(tweak: (raw: any) => void = () => undefined): Promise<Fixture> {
  const db = uniqueName('rtm');
  await createDatabase(db);
  cleanups.push(async () => {
    for (const name of await databasesLike(db)) await sql(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  });
  await seedShop(db, 300, 4);
  const taskQueue = uniqueName('rtm');
  const raw = parse(testConfig({ databases: [db], taskQueue }).yaml);
  tweak(raw);
  const config = parseConfig(stringify(raw), 'restore-timers.yaml');
  const target = config.targets.databases[0]!.name;
  const activities = createActivities({ config });
  const backup = await new MockActivityEnvironment().run<[DumpPostgresInput], BackupManifest, typeof activities.dumpPostgres>(activities.dumpPostgres, {
    target,
    backupId: `${target}-20260101T000000Z-aaaa`,
    createdAt: '2026-01-01T00:00:00.000Z',
  });
  const atBackup = await fingerprint(db);
  expect(atBackup.orders!.rows).toBe(1200);
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: await workflowBundle(), activities });
  return { db, target, taskQueue, config, backup, atBackup, worker };
}

const production = (raw: any): void => {
  raw.targets.databases[0].production = true;
};

function startRestore(f: Fixture, extra: Partial<RestoreInput> = {}): Promise<WorkflowHandleWithFirstExecutionRunId<typeof restoreDatabase>> {
  return env.client.workflow.start<typeof restoreDatabase>('restoreDatabase', {
    taskQueue: f.taskQueue,
    workflowId: `restore/${f.target}`,
    args: [{ target: f.target, backup: f.backup.id, dryRun: false, reason: 'test: data damaged', ...extra }],
  });
}

/** The same run, through the client that does not skip time while it waits. */
function withoutSkipping(h: WorkflowHandleWithFirstExecutionRunId): WorkflowHandle<typeof restoreDatabase> {
  return plain.workflow.getHandle<typeof restoreDatabase>(h.workflowId, h.firstExecutionRunId);
}

type Restored = Extract<RestoreOutcome, { outcome: 'restored' }>;

function restored(r: RestoreOutcome): Restored {
  if (r.outcome !== 'restored') throw new Error(`expected outcome "restored", got ${JSON.stringify(r)}`);
  return r;
}

/** Poll the status query until the run is in `step`. */
async function waitForStep(handle: WorkflowHandle, step: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await handle.query<RunbookStatus>('status').catch(() => undefined);
    if (status?.step === step && status.timeline.at(-1)?.state === 'running') return;
    if (status && status.state !== 'running') throw new Error(`run ended before "${step}": ${JSON.stringify(status)}`);
    if (Date.now() > deadline) throw new Error(`run did not reach "${step}" within ${timeoutMs} ms: ${JSON.stringify(status)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function steps(status: RunbookStatus): string[] {
  return status.timeline.map((s) => `${s.step}: ${s.state}`);
}

/** Server time from start to close of a closed run. */
async function ranFor(handle: WorkflowHandle): Promise<number> {
  const d = await handle.describe();
  return d.closeTime!.getTime() - d.startTime.getTime();
}

test('a production restore nobody approves ends "not approved" after approvalTimeout (4 h, skipped); nothing is touched', async () => {
  const f = await fixture(production);
  const before = await damaged(f.db, f.atBackup);

  // The worker runs to the end of the test: queries of a closed run are answered by a worker replaying it.
  await f.worker.runUntil(async () => {
    const handle = await startRestore(f, { requestedBy: 'alice' });
    const result = await handle.result(); // unlocks time skipping: the 4 h pass at once

    expect(result).toEqual({ outcome: 'not approved', reason: 'timeout', plan: expect.objectContaining({ target: f.target, production: true }) });
    if (result.outcome !== 'not approved') throw new Error('unreachable');
    expect(result.decision).toBeUndefined();
    expect(result.plan.approvalTimeoutMs).toBe(4 * HOUR);
    // It waited the whole approval timeout in server time, and not much more.
    const took = await ranFor(handle);
    expect(took).toBeGreaterThanOrEqual(4 * HOUR);
    expect(took).toBeLessThan(4 * HOUR + 10 * 60_000);

    const status = await handle.query<RunbookStatus>('status');
    expect(steps(status)).toEqual(['plan: completed', 'validate: completed', 'approval: completed']);
    expect(status.timeline[2]!.detail).toBe('timed out');
    expect(status.state).toBe('completed');

    // Production untouched, no scratch database, not even a safety snapshot.
    expect(await fingerprint(f.db)).toEqual(before);
    expect(await databasesLike(f.db)).toEqual([f.db]);
    expect(readdirSync(path.join(f.config.backups.root, f.target)).sort()).toEqual([f.backup.file, `${f.backup.id}.manifest.json`].sort());

    // The gate is closed: an approval now is refused, and changes nothing.
    await expect(handle.executeUpdate(approveUpdate, { args: [{ by: 'bob' }] })).rejects.toBeInstanceOf(WorkflowNotFoundError); // the run is over
    expect(await fingerprint(f.db)).toEqual(before);
    expect(await databasesLike(f.db)).toEqual([f.db]);
  });
});

test('approval by Update: the requester and a nameless approver are refused, bob approves and the backup replaces production; a reject by carol ends "not approved"', async () => {
  const f = await fixture(production);
  const before = await damaged(f.db, f.atBackup);

  await f.worker.runUntil(async () => {
    // Without time skipping: the 24 h drop timer this run leaves behind must not fire while we look.
    const handle = withoutSkipping(await startRestore(f, { requestedBy: 'alice' }));
    await waitForStep(handle, 'approval');
    const approve = (d: ApprovalDecision): Promise<unknown> => handle.executeUpdate(approveUpdate, { args: [d] });
    expect(await refusal(approve({ by: 'alice' }))).toBe('by: alice requested this restore and cannot approve it');
    expect(await refusal(approve({ by: '' }))).toBe('by: who decides must be named');
    expect(await refusal(approve({ by: '   ' }))).toBe('by: who decides must be named');
    // Refused decisions are not decisions: the run still waits at the gate, production untouched.
    expect((await handle.query<RunbookStatus>('status')).step).toBe('approval');
    expect(await databasesLike(f.db)).toEqual([f.db]);

    expect(await approve({ by: 'bob', note: 'checked the incident ticket' })).toMatchObject({ decision: 'approved', by: 'bob' });
    const result = restored(await handle.result());

    expect(result.approval).toMatchObject({ decision: 'approved', by: 'bob', note: 'checked the incident ticket' });
    expect(result.plan.backup.id).toBe(f.backup.id);
    expect(result.oldDatabase).toBe(result.plan.oldDb);
    expect(result.plan.oldDb).toMatch(new RegExp(`^${f.db}__pre_restore_[0-9a-f]{8}$`));
    expect(result.dropWorkflowId).toBe(`drop/${f.target}/${result.plan.oldDb}`);
    expect(result.safetySnapshot.id).toMatch(new RegExp(`^${f.target}-prerestore-[0-9a-f]{8}$`));
    // Production is the backup again; the damaged state is kept under plan.oldDb; the aside copy became production.
    expect(await fingerprint(f.db)).toEqual(f.atBackup);
    expect(await fingerprint(result.plan.oldDb)).toEqual(before);
    expect(await databasesLike(f.db)).toEqual([f.db, result.plan.oldDb].sort());
    const status = await handle.query<RunbookStatus>('status');
    expect(status.timeline.find((s) => s.step === 'approval')?.detail).toBe('approved by bob: checked the incident ticket');
    expect(steps(status)).toEqual([
      'plan: completed',
      'validate: completed',
      'approval: completed',
      'safety snapshot: completed',
      'restore aside: completed',
      'verify copy: completed',
      'swap: completed',
      'health check: completed',
      'schedule drop: completed',
    ]);

    // A second production restore of the same database, rejected by carol.
    await sql(`INSERT INTO orders (customer_id, total) VALUES (1, 1.00)`, [], f.db);
    const current = await fingerprint(f.db);
    const second = withoutSkipping(await startRestore(f, { requestedBy: 'alice' }));
    await waitForStep(second, 'approval');
    expect(await refusal(second.executeUpdate(rejectUpdate, { args: [{ by: '' }] }))).toBe('by: who decides must be named');
    expect(await second.executeUpdate(rejectUpdate, { args: [{ by: 'carol', note: 'wrong backup' }] })).toMatchObject({ decision: 'rejected', by: 'carol' });
    const rejected = await second.result();
    // Decided once: a later approval is refused (the run is over).
    await expect(second.executeUpdate(approveUpdate, { args: [{ by: 'bob' }] })).rejects.toBeInstanceOf(WorkflowNotFoundError);

    expect(rejected).toMatchObject({ outcome: 'not approved', reason: 'rejected', decision: { decision: 'rejected', by: 'carol', note: 'wrong backup' } });
    expect(await fingerprint(f.db)).toEqual(current);
    expect(await databasesLike(f.db)).toEqual([f.db, result.plan.oldDb].sort());
    expect(steps(await second.query<RunbookStatus>('status'))).toEqual(['plan: completed', 'validate: completed', 'approval: completed']);
  });
});

/** A non-production restore (no gate) of a damaged database, read without time skipping. */
async function restoreDamaged(f: Fixture): Promise<{ result: Restored; before: Fingerprint }> {
  const before = await damaged(f.db, f.atBackup);
  const result = restored(await withoutSkipping(await startRestore(f)).result());
  expect(result.plan.keepOldForMs).toBe(24 * HOUR);
  expect(await fingerprint(f.db)).toEqual(f.atBackup);
  expect(await fingerprint(result.oldDatabase)).toEqual(before);
  return { result, before };
}

test('the pre-restore database is dropped by a durable timer when keepOldFor (24 h, skipped) is up, not before', async () => {
  const f = await fixture();
  await f.worker.runUntil(async () => {
    const { result } = await restoreDamaged(f);
    const drop = env.client.workflow.getHandle<typeof dropDatabaseLater>(result.dropWorkflowId);
    const d = await drop.describe();
    expect(d.status.name).toBe('RUNNING');
    expect(d.type).toBe('dropDatabaseLater');
    expect(await dbExists(result.oldDatabase)).toBe(true);

    expect(await sleepUnlessClosed('23h', drop)).toBe('slept');
    expect((await drop.describe()).status.name).toBe('RUNNING');
    expect((await drop.query<RunbookStatus>('status')).step).toBe('keep period');
    expect(await dbExists(result.oldDatabase)).toBe(true);

    // On to 2 s past the 24 h mark. (Not a flat 2 h: once the abandoned child closes, the test server skips no
    // more time — see unstickTimeSkipping — and the rest of the sleep would pass in real time.)
    const dueMs = d.startTime.getTime() + 24 * HOUR;
    await env.sleep(dueMs + 2_000 - (await env.currentTimeMs()));
    expect(await drop.result()).toEqual({ dropped: true });
    expect(await dbExists(result.oldDatabase)).toBe(false);
    expect(await databasesLike(f.db)).toEqual([f.db]);
    const took = await ranFor(drop);
    expect(took).toBeGreaterThanOrEqual(24 * HOUR);
    expect(took).toBeLessThan(24 * HOUR + 60_000);
    expect(steps(await drop.query<RunbookStatus>('status'))).toEqual(['keep period: completed', `drop ${result.oldDatabase}: completed`]);
    await recordHandleHistory(drop, 'drop-database-later-dropped');
    // What the timer dropped was the old database, not production.
    expect(await fingerprint(f.db)).toEqual(f.atBackup);
  });
});

test('signal keep before keepOldFor is up: the pre-restore database survives 25 h and the timer reports who kept it', async () => {
  const f = await fixture();
  await f.worker.runUntil(async () => {
    const { result, before } = await restoreDamaged(f);
    const drop = env.client.workflow.getHandle<typeof dropDatabaseLater>(result.dropWorkflowId);
    await env.sleep('1h');
    expect((await drop.describe()).status.name).toBe('RUNNING');
    await drop.signal(keepSignal, { by: 'dave', note: 'needed for the post-mortem' });
    expect(await drop.result()).toEqual({ dropped: false, keptBy: 'dave' });
    await recordHandleHistory(drop, 'drop-database-later-kept');

    await unstickTimeSkipping();
    const t0 = await env.currentTimeMs();
    await env.sleep('25h');
    expect((await env.currentTimeMs()) - t0).toBeGreaterThanOrEqual(25 * HOUR);
    expect(await dbExists(result.oldDatabase)).toBe(true);
    expect(await fingerprint(result.oldDatabase)).toEqual(before);
    expect(await databasesLike(f.db)).toEqual([f.db, result.oldDatabase].sort());
    const status = await drop.query<RunbookStatus>('status');
    expect(steps(status)).toEqual(['keep period: completed']);
    expect(status.timeline[0]!.detail).toBe('kept by dave');
  });
});

/** An HTTP health endpoint that always answers 503; counts the requests. `first` runs before the first answer. */
async function unhealthyEndpoint(first: () => Promise<unknown> = () => Promise.resolve()): Promise<{ url: string; requests: () => number }> {
  let n = 0;
  const server = http.createServer((_req, res) => {
    n++;
    void (n === 1 ? first() : Promise.resolve()).finally(() => res.writeHead(503, { 'content-type': 'text/plain' }).end('down for maintenance'));
  });
  const port = await freePort();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${port}/health`, requests: () => n };
}

const LIVE_NOTE = 'written by the app after the swap';

interface GateFailed {
  f: Fixture;
  before: Fingerprint;
  err: WorkflowFailedError;
  handle: WorkflowHandle;
  failedDb: string;
  web: { url: string; requests: () => number };
}

/**
 * A restore whose health gate keeps failing after the swap, while the "app" (the first health request) writes an
 * order into production, i.e. into the restored copy; then `check`, with the worker still running (queries, timers).
 * The run is read without time skipping: `env.sleep` lets the server skip the gate's retry backoffs but not the
 * 24 h drop timers the run leaves behind.
 */
/**
 * A damaged target whose service's health URL always fails; its first request writes a row (LIVE_NOTE) to the
 * database that is production at that moment (the restored copy, once swapped), then calls `wrote`.
 */
async function failingGateFixture(wrote: () => void = () => undefined) {
  let db = '';
  const web = await unhealthyEndpoint(async () => {
    await sql(`INSERT INTO orders (customer_id, total, note) VALUES (1, 42.00, '${LIVE_NOTE}')`, [], db);
    wrote();
  });
  const f = await fixture((raw) => {
    raw.targets.dockerHosts = [{ name: 'local', dockerHost: servers().docker.host }];
    raw.targets.services = [{ name: 'web', host: 'local', containers: [], healthUrl: web.url }];
    raw.targets.databases[0].services = ['web'];
  });
  db = f.db;
  const before = await damaged(f.db, f.atBackup);
  return { f, web, before };
}

async function withFailingGate(check: (r: GateFailed) => Promise<void>): Promise<void> {
  const { f, web, before } = await failingGateFixture();
  await f.worker.runUntil(async () => {
    const started = await startRestore(f);
    const handle = withoutSkipping(started);
    await env.sleep('5m'); // the gate's 8 attempts with backoffs of 2 s × 1.5ⁿ (at most 10 s): about 1 min of server time
    const err = await handle.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    await recordHandleHistory(handle, 'restore-database-health-gate-failed');
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const failedDb = `${f.db}__failed_restore_${started.firstExecutionRunId.replace(/-/g, '').slice(-8)}`;
    await check({ f, before, err: err as WorkflowFailedError, handle, failedDb, web });
  });
}

test('a health gate that keeps failing after the swap swaps production back and KEEPS the restored copy (with its live writes) until keepOldFor (24 h, skipped)', async () => {
  await withFailingGate(async ({ f, before, err, handle, failedDb, web }) => {
    const failure = err.cause;
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure!.message).toContain(`restore of ${f.target} failed and was rolled back (production was swapped back to its pre-restore database;`);
    expect(failure!.message).toContain(`health check failed: web ${web.url} (HTTP 503)`);
    // The failure says where the copy is and until when it is kept.
    const dropWorkflowId = `drop/${f.target}/${failedDb}`;
    const drop = env.client.workflow.getHandle<typeof dropDatabaseLater>(dropWorkflowId);
    const d = await drop.describe();
    expect(d.status.name).toBe('RUNNING');
    const until = new Date(d.startTime.getTime() + 24 * HOUR);
    expect(failure!.message).toMatch(new RegExp(`the restored copy is kept as ${failedDb} until (\\S+) \\(signal keep to ${dropWorkflowId.replace(/\//g, '\\/')} to keep it longer\\)`));
    const said = Date.parse(/ until (\S+) /.exec(failure!.message)![1]!);
    expect(Math.abs(said - until.getTime())).toBeLessThan(60_000);
    // Every attempt of the health gate asked; the backoffs between them were server time.
    expect(web.requests()).toBe(8);
    expect(await ranFor(handle)).toBeGreaterThanOrEqual(2_000 + 3_000 + 4_500 + 6_750 + 10_000 * 3);

    // Production is its pre-restore (damaged) state again; the copy, with the order the app wrote after the swap, is kept.
    expect(await fingerprint(f.db)).toEqual(before);
    expect(await sql<{ n: string }>('SELECT count(*) AS n FROM orders WHERE note = $1', [LIVE_NOTE], failedDb)).toEqual([{ n: '1' }]);
    expect((await fingerprint(failedDb)).orders!.rows).toBe(f.atBackup.orders!.rows + 1);
    expect(await sql<{ n: string }>('SELECT count(*) AS n FROM orders WHERE note = $1', [LIVE_NOTE], f.db)).toEqual([{ n: '0' }]);

    const status = await handle.query<RunbookStatus>('status');
    expect(status.state).toBe('failed');
    expect(steps(status)).toEqual([
      'plan: completed',
      'validate: completed',
      'safety snapshot: completed',
      'restore aside: completed',
      'verify copy: completed',
      'stop services: completed',
      'swap: completed',
      'start services: completed',
      'health check: failed',
      'undo: stop services: completed',
      'undo: swap back: completed',
      'undo: start services: completed',
      `undo: keep ${failedDb}: completed`,
      `undo: drop ${f.db}__restore_${failedDb.slice(-8)}: completed`,
    ]);
    expect(status.timeline.find((s) => s.step === 'health check')?.detail).toContain('HTTP 503');
    expect(await databasesLike(f.db)).toEqual([f.db, failedDb].sort());

    // Still there after 23 h; dropped by the durable timer when the 24 h are up, production untouched.
    expect(await sleepUnlessClosed('23h', drop)).toBe('slept');
    expect(await dbExists(failedDb)).toBe(true);
    await env.sleep(d.startTime.getTime() + 24 * HOUR + 2_000 - (await env.currentTimeMs()));
    expect(await drop.result()).toEqual({ dropped: true });
    expect(await databasesLike(f.db)).toEqual([f.db]);
    expect(await fingerprint(f.db)).toEqual(before);
  });
});

test('a kept restored copy survives keepOldFor when someone signals keep', async () => {
  await withFailingGate(async ({ f, failedDb }) => {
    const drop = env.client.workflow.getHandle<typeof dropDatabaseLater>(`drop/${f.target}/${failedDb}`);
    await drop.signal(keepSignal, { by: 'erin', note: 'the orders written after the swap are needed' });
    expect(await drop.result()).toEqual({ dropped: false, keptBy: 'erin' });
    await unstickTimeSkipping();
    const t0 = await env.currentTimeMs();
    await env.sleep('25h');
    expect((await env.currentTimeMs()) - t0).toBeGreaterThanOrEqual(25 * HOUR);
    expect(await sql<{ n: string }>('SELECT count(*) AS n FROM orders WHERE note = $1', [LIVE_NOTE], failedDb)).toEqual([{ n: '1' }]);
    expect(await databasesLike(f.db)).toEqual([f.db, failedDb].sort());
  });
});


test('a restore cancelled after the swap swaps production back and keeps the restored copy under its drop timer', async () => {
  let firstRequest!: () => void;
  const asked = new Promise<void>((resolve) => (firstRequest = resolve));
  const { f, before } = await failingGateFixture(() => firstRequest());
  await f.worker.runUntil(async () => {
    const started = await startRestore(f);
    const handle = withoutSkipping(started);
    await asked; // swapped, services started, the app wrote to the restored copy
    await handle.cancel();
    const err = await handle.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    const failedDb = `${f.db}__failed_restore_${started.firstExecutionRunId.replace(/-/g, '').slice(-8)}`;
    expect(await fingerprint(f.db)).toEqual(before);
    expect(await sql<{ n: string }>('SELECT count(*) AS n FROM orders WHERE note = $1', [LIVE_NOTE], failedDb)).toEqual([{ n: '1' }]);
    expect(await databasesLike(f.db)).toEqual([f.db, failedDb].sort());
    expect((await env.client.workflow.getHandle(`drop/${f.target}/${failedDb}`).describe()).status.name).toBe('RUNNING');
    expect(steps(await handle.query<RunbookStatus>('status')).slice(-3)).toEqual([
      'undo: start services: completed',
      `undo: keep ${failedDb}: completed`,
      `undo: drop ${f.db}__restore_${failedDb.slice(-8)}: completed`,
    ]);
  });
});
