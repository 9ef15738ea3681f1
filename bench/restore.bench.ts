import path from 'node:path';
import { execa } from 'execa';
import { pgBinDir } from '../src/client/local-servers';
import { parseConfig } from '../src/config/load';
import { createRunbookWorker } from '../src/workers/worker';
import { type BackupResult } from '../src/workflows/backup';
import { type RestoreOutcome } from '../src/workflows/restore-database';
import { pgAdmin, servers, tempDir } from '../test/support/servers';
import { restoreFixture, serviceContainer } from '../test/support/restore-fixture';
import { useDevServer, workflowBundle } from '../test/support/temporal';
import { report } from './support/report';

/**
 * RB-01 on a database of about 1 GB: how long the application is stopped, and the whole restore against raw pg_restore -j2.
 * Seed (D3 RB-01 / D0): stop the app, restore into the live database, start the app: downtime = the restore.
 * Ours: restore aside and verify while the app runs; the app is stopped only around the rename swap.
 */
const ROWS = Number(process.env.BENCH_RESTORE_ROWS ?? (process.env.BENCH_SMOKE === '1' ? 100_000 : 5_200_000));

const dev = useDevServer();

test(`restore downtime, ${ROWS} rows: ours vs stop-restore-start`, async () => {
  const service = await serviceContainer();
  const dockerEnv = { DOCKER_HOST: servers().docker.host };
  try {
    const f = await restoreFixture({ service });
    const c = pgAdmin(f.db);
    await c.connect();
    await c.query(`CREATE TABLE events (id bigserial PRIMARY KEY, at timestamptz NOT NULL, kind text NOT NULL, payload jsonb NOT NULL);
      INSERT INTO events (at, kind, payload) SELECT now() - g * interval '1 second', 'kind' || (g % 17),
        jsonb_build_object('user', g % 5000, 'amount', g * 1.5, 'note', repeat('x', g % 40)) FROM generate_series(1, ${ROWS}) g;
      CREATE INDEX ON events (kind, at);`);
    const size = Number((await c.query<{ s: string }>('SELECT pg_database_size(current_database()) AS s')).rows[0]?.s);
    await c.end();

    const config = parseConfig(f.yaml, 'bench.yaml');
    const taskQueue = config.temporal.taskQueue;
    const worker = await createRunbookWorker({ config, connection: dev.workerConnection, workflowBundle: await workflowBundle() });
    const { backup, ours, oursTotalMs } = await worker.runUntil(async () => {
      const b: BackupResult = await dev.client.workflow.execute('backup', { taskQueue, workflowId: `bench-backup-${f.target}`, args: [{ target: f.target, kind: 'postgres', prune: false }] });
      const t = performance.now();
      const r: RestoreOutcome = await dev.client.workflow.execute('restoreDatabase', { taskQueue, workflowId: `restore/${f.target}`, args: [{ target: f.target, backup: 'latest', dryRun: false, reason: 'bench' }] });
      if (r.outcome !== 'restored') throw new Error(r.outcome);
      await dev.client.workflow.getHandle(r.dropWorkflowId).terminate('bench over');
      return { backup: b, ours: r, oursTotalMs: performance.now() - t };
    });

    const s = servers().postgres;
    const pgEnv = { PGHOST: s.host, PGPORT: String(s.port), PGUSER: s.user, PGPASSWORD: s.password };
    const backupFile = path.join(config.backups.root, f.target, backup.manifest.file);

    // Raw pg_restore -j2 of the same backup into a fresh database: the floor for the whole restore.
    const scratch = `${f.db}_raw`;
    await execa(path.join(pgBinDir(), 'createdb'), [scratch], { env: pgEnv });
    let t = performance.now();
    await execa(path.join(pgBinDir(), 'pg_restore'), ['-j', '2', '--no-owner', '-d', scratch, backupFile], { env: pgEnv });
    const rawRestoreMs = performance.now() - t;
    await execa(path.join(pgBinDir(), 'dropdb'), [scratch], { env: pgEnv });

    // The seed's procedure (D0/D3 RB-01) on the same database, the same container standing in for the app:
    // its backup is `pg_dump | gzip` (plain SQL; --clean so that replaying it into the live DB can work at all),
    // its restore is stop app → `gunzip | psql` into the live database → start app.
    const seedFile = path.join(tempDir('seed'), 'backup.sql.gz');
    await execa('sh', ['-c', `"${path.join(pgBinDir(), 'pg_dump')}" --clean --if-exists -d "${f.db}" | gzip > "${seedFile}"`], { env: pgEnv });
    t = performance.now();
    await execa('docker', ['stop', service.name], { env: dockerEnv });
    await execa('sh', ['-c', `gunzip -c "${seedFile}" | "${path.join(pgBinDir(), 'psql')}" -q -v ON_ERROR_STOP=1 -d "${f.db}" >/dev/null`], { env: pgEnv });
    await execa('docker', ['start', service.name], { env: dockerEnv });
    const seedDowntimeMs = performance.now() - t;

    const sizes = `database ${(size / 1e6).toFixed(0)} MB (${ROWS} event rows + shop tables), backup ${(backup.manifest.sizeBytes / 1e6).toFixed(0)} MB`;
    report({ bench: 'restore', metric: 'downtime (app stopped)', unit: 'ms', ours: ours.downtimeMs, baseline: seedDowntimeMs, baselineName: 'seed stop → gunzip | psql into live DB → start', target: 'a few seconds at any size', sizes });
    report({
      bench: 'restore',
      metric: 'whole restore',
      unit: 'ms',
      ours: oursTotalMs,
      baseline: rawRestoreMs,
      baselineName: 'raw pg_restore -j2 into a fresh DB',
      target: '≤ 1.10',
      sizes,
      notes: 'ours adds validation (sha256 + pg_restore --list), a safety snapshot of production, checks and the swap',
    });
    expect(ours.downtimeMs).toBeGreaterThan(0);
  } finally {
    await service.remove();
  }
});
