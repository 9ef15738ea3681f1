import path from 'node:path';
import { execa } from 'execa';
import { pgBinDir } from '../src/client/local-servers';
import { parseConfig } from '../src/config/load';
import { createRunbookWorker } from '../src/workers/worker';
import { type BackupResult } from '../src/workflows/backup';
import { type RestoreOutcome } from '../src/workflows/restore-database';
import { pgAdmin, servers } from '../test/support/servers';
import { restoreFixture, serviceContainer } from '../test/support/restore-fixture';
import { useDevServer, workflowBundle } from '../test/support/temporal';

/**
 * RB-01 downtime on a database of at least 200 MB: how long the application is stopped.
 * Seed (D3 RB-01 / D0): stop the app, restore into the live database, start the app: downtime = the restore.
 * Ours: restore aside and verify while the app runs; the app is stopped only around the rename swap.
 */
const ROWS = Number(process.env.BENCH_RESTORE_ROWS ?? 1_300_000);

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
    expect(size).toBeGreaterThanOrEqual(200e6);

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

    // The seed's procedure on the same database and backup, with the same container standing in for the app.
    const s = servers().postgres;
    const t0 = performance.now();
    await execa('docker', ['stop', service.name], { env: dockerEnv });
    await execa(path.join(pgBinDir(), 'pg_restore'), ['--clean', '--if-exists', '--no-owner', '-d', f.db, path.join(config.backups.root, f.target, backup.manifest.file)], {
      env: { PGHOST: s.host, PGPORT: String(s.port), PGUSER: s.user, PGPASSWORD: s.password },
    });
    await execa('docker', ['start', service.name], { env: dockerEnv });
    const seedDowntimeMs = performance.now() - t0;

    console.log(
      [
        `database ${(size / 1e6).toFixed(0)} MB (${ROWS} event rows + shop tables), backup ${(backup.manifest.sizeBytes / 1e6).toFixed(0)} MB`,
        `seed  stop app → pg_restore --clean into live DB → start app : downtime ${seedDowntimeMs.toFixed(0)} ms`,
        `ours  restore aside + verify, stop app → swap → start app    : downtime ${ours.downtimeMs} ms (whole run ${oursTotalMs.toFixed(0)} ms)`,
        `ratio downtime ours/seed: ${(ours.downtimeMs / seedDowntimeMs).toFixed(3)}`,
      ].join('\n'),
    );
    expect(ours.downtimeMs).toBeGreaterThan(0);
  } finally {
    await service.remove();
  }
});
