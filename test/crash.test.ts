import { readdirSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { type Client, type Connection } from '@temporalio/client';
import { pgBinDir } from '../src/client/local-servers';
import { type BackupResult } from '../src/workflows/backup';
import { sha256File } from '../src/activities/storage';
import { createDatabase, pgAdmin, servers, testConfig, uniqueName } from './support/servers';
import { fingerprint, seedShop } from './support/shop-data';
import { devServerClient, heartbeatPid } from './support/temporal';
import { startWorkerProcess, writeConfigFile } from './support/processes';

let client: Client;
let connection: Connection;
beforeAll(async () => ({ client, connection } = await devServerClient()));
afterAll(async () => connection.close());

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitUntil<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('worker SIGKILLed while pg_dump runs: the backup completes once, no half-written file under a final name', async () => {
  const db = uniqueName('crash');
  await createDatabase(db);
  await seedShop(db, 3000, 5);
  const before = await fingerprint(db);
  const taskQueue = uniqueName('crash');
  const { yaml, config } = testConfig({ databases: [db], taskQueue });
  const target = config.targets.databases[0]!.name;
  const dir = path.join(config.backups.root, target);
  const configFile = writeConfigFile(yaml);

  // Hold a lock pg_dump needs, so the dump is provably in flight when the worker dies.
  const locker = pgAdmin(db);
  await locker.connect();
  await locker.query('BEGIN; LOCK TABLE orders IN ACCESS EXCLUSIVE MODE');

  const first = await startWorkerProcess(configFile);
  const handle = await client.workflow.start('backup', {
    taskQueue,
    workflowId: `backup/${target}/crash-${Date.now()}`,
    args: [{ target, kind: 'postgres', prune: true }],
  });
  const watcher = pgAdmin();
  await watcher.connect();
  const blockedDump = () =>
    watcher
      .query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = 'durable-runbooks' AND wait_event_type = 'Lock'`,
        [db],
      )
      .then((r) => r.rows[0]?.pid);
  await waitUntil('pg_dump to block on the lock', blockedDump);
  // The pg_dump process the activity reported in its heartbeat.
  const dumpPid = () => heartbeatPid(handle);
  const orphanPid = await waitUntil('the dump to heartbeat its pid', dumpPid);
  expect(processAlive(orphanPid)).toBe(true);

  await first.kill();
  expect(processAlive(orphanPid)).toBe(true); // a dead worker does not take its pg_dump with it
  // The crash left only a temp file: nothing is visible under a final name.
  const afterCrash = readdirSync(dir);
  expect(afterCrash.filter((f) => !f.startsWith('.'))).toEqual([]);
  expect(afterCrash.some((f) => f.endsWith('.partial'))).toBe(true);

  const second = await startWorkerProcess(configFile);
  try {
    // The retry (after the 15 s heartbeat timeout) kills the dead worker's pg_dump before starting its own.
    await waitUntil('the orphaned pg_dump to be killed', () => Promise.resolve(processAlive(orphanPid) ? undefined : true), 60_000);
    const retryPid = await waitUntil('the retry to start its own pg_dump', async () => {
      const pid = await dumpPid();
      return pid !== undefined && pid !== orphanPid ? pid : undefined;
    });
    expect(processAlive(retryPid)).toBe(true);
    await locker.query('COMMIT');
    const result: BackupResult = await handle.result();

    const files = readdirSync(dir).sort();
    expect(files).toEqual([result.manifest.file, `${result.backupId}.manifest.json`].sort());
    expect(await sha256File(path.join(dir, result.manifest.file))).toBe(result.manifest.sha256);

    const history = await handle.fetchHistory();
    const dumpAttempts = (history.events ?? []).filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes?.attempt);
    expect(dumpAttempts[0]).toBeGreaterThanOrEqual(2); // the dump really ran twice
    const sessions = await watcher.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'durable-runbooks'`, [db]);
    expect(sessions.rows[0]).toEqual({ n: 0 }); // no pg_dump left behind

    const scratch = uniqueName('crash_restore');
    await createDatabase(scratch);
    const s = servers().postgres;
    await execa(path.join(pgBinDir(), 'pg_restore'), ['--no-owner', '--exit-on-error', '-d', scratch, path.join(dir, result.manifest.file)], {
      env: { PGHOST: s.host, PGPORT: String(s.port), PGUSER: s.user, PGPASSWORD: s.password },
    });
    expect(await fingerprint(scratch)).toEqual(before);
  } finally {
    await locker.end().catch(() => undefined);
    await watcher.end();
    await second.stop();
  }
});
