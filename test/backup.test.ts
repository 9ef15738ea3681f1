import { chmodSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { execa } from 'execa';
import { type BackupResult } from '../src/workflows/backup';
import { createRunbookWorker } from '../src/workers/worker';
import { pgBinDir } from '../src/client/local-servers';
import { createDatabase, servers, testConfig, uniqueName } from './support/servers';
import { fingerprint, seedShop } from './support/shop-data';
import { recordHistory } from './support/histories';
import { useDevServer, workflowBundle } from './support/temporal';
import { underUmask } from './support/backup-checks';

const dev = useDevServer();
const modeOf = (p: string): string => (statSync(p).mode & 0o777).toString(8);

test('a PostgreSQL backup restores to identical rows and its manifest checksum matches the file; only the worker user can read it', async () => {
  const db = uniqueName('shop');
  await createDatabase(db);
  await seedShop(db);
  const before = await fingerprint(db);
  const taskQueue = uniqueName('backup');
  const { config } = testConfig({ databases: [db], taskQueue });
  const target = config.targets.databases[0]!.name;
  // The target's folder as an older version left it (mkdir -p under umask 022), and a worker running under umask 000.
  const dir = path.join(config.backups.root, target);
  mkdirSync(dir);
  chmodSync(dir, 0o755);

  const worker = await createRunbookWorker({ config, connection: dev.workerConnection, workflowBundle: await workflowBundle() });
  const handle = await dev.client.workflow.start('backup', {
    taskQueue,
    workflowId: `backup/${target}/${new Date().toISOString()}`,
    args: [{ target, kind: 'postgres', prune: true }],
  });
  const result: BackupResult = await underUmask(0o000, () => worker.runUntil(handle.result()));
  await recordHistory(handle.workflowId, 'backup-postgres');

  // The dump holds every customer row: folder 0700, dump and manifest 0600, whatever the umask.
  const file = path.join(dir, result.manifest.file);
  expect({ folder: modeOf(dir), dump: modeOf(file), manifest: modeOf(path.join(dir, `${result.backupId}.manifest.json`)) }).toEqual({
    folder: '700',
    dump: '600',
    manifest: '600',
  });
  expect(createHash('sha256').update(readFileSync(file)).digest('hex')).toBe(result.manifest.sha256);
  expect(result.manifest.sizeBytes).toBe(readFileSync(file).length);
  expect(result.manifest.serverVersion).toMatch(/^\d+\.\d+/);
  expect(readdirSync(dir).sort()).toEqual([result.manifest.file, `${result.backupId}.manifest.json`].sort());

  // Restore into a scratch database: same rows, same contents.
  const scratch = uniqueName('scratch');
  await createDatabase(scratch);
  const s = servers().postgres;
  await execa(path.join(pgBinDir(), 'pg_restore'), ['--no-owner', '--exit-on-error', '-d', scratch, file], {
    env: { PGHOST: s.host, PGPORT: String(s.port), PGUSER: s.user, PGPASSWORD: s.password },
  });
  const after = await fingerprint(scratch);
  expect(Object.keys(after)).toEqual(['customers', 'orders']);
  expect(after).toEqual(before);
  expect(after.orders!.rows).toBe(10_000);
});
