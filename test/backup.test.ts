import { readFileSync, readdirSync } from 'node:fs';
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

const dev = useDevServer();

test('a PostgreSQL backup restores to identical rows and its manifest checksum matches the file', async () => {
  const db = uniqueName('shop');
  await createDatabase(db);
  await seedShop(db);
  const before = await fingerprint(db);
  const taskQueue = uniqueName('backup');
  const { config } = testConfig({ databases: [db], taskQueue });
  const target = config.targets.databases[0]!.name;

  const worker = await createRunbookWorker({ config, connection: dev.workerConnection, workflowBundle: await workflowBundle() });
  const handle = await dev.client.workflow.start('backup', {
    taskQueue,
    workflowId: `backup/${target}/${new Date().toISOString()}`,
    args: [{ target, kind: 'postgres', prune: true }],
  });
  const result: BackupResult = await worker.runUntil(handle.result());
  await recordHistory(handle.workflowId, 'backup-postgres');

  const dir = path.join(config.backups.root, target);
  const file = path.join(dir, result.manifest.file);
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
