import { statSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { pgBinDir } from '../src/client/local-servers';
import { createRunbookWorker } from '../src/workers/worker';
import { type BackupResult } from '../src/workflows/backup';
import { createDatabase, pgAdmin, servers, tempDir, testConfig, uniqueName } from '../test/support/servers';
import { useDevServer, workflowBundle } from '../test/support/temporal';
import { report } from './support/report';

/**
 * Backup cost, measured in the same run on the same database:
 *   - the whole `backup` workflow (dev server, worker, dump activity with fsync + sha256 + atomic rename +
 *     manifest, retention pass) against a raw `pg_dump -Fc` to a file (target ≤ 1.10);
 *   - against the seed's procedure (D0/WF-01: `pg_dump | gzip > file`), time and size.
 * BENCH_BACKUP_ROWS sets the size (default ≈ 1 GB of table data; BENCH_SMOKE=1 for a quick small run).
 */
const SMOKE = process.env.BENCH_SMOKE === '1';
const ROWS = Number(process.env.BENCH_BACKUP_ROWS ?? (SMOKE ? 100_000 : 6_000_000));
const RUNS = Number(process.env.BENCH_RUNS ?? (SMOKE ? 1 : 3));

const dev = useDevServer();

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

test(`backup of a ${ROWS}-row database: the workflow vs pg_dump -Fc vs pg_dump | gzip`, async () => {
  const db = uniqueName('bench');
  await createDatabase(db);
  const c = pgAdmin(db);
  await c.connect();
  await c.query(`CREATE TABLE events (id bigserial PRIMARY KEY, at timestamptz NOT NULL, kind text NOT NULL, payload jsonb NOT NULL);
    INSERT INTO events (at, kind, payload) SELECT now() - g * interval '1 second', 'kind' || (g % 17),
      jsonb_build_object('user', g % 5000, 'amount', g * 1.5, 'note', repeat('x', g % 40)) FROM generate_series(1, ${ROWS}) g;`);
  const dbBytes = Number((await c.query<{ s: string }>('SELECT pg_database_size(current_database()) AS s')).rows[0]?.s);
  await c.end();

  const { config } = testConfig({ databases: [db], taskQueue: uniqueName('bench-backup') });
  const target = config.targets.databases[0]!.name;
  const s = servers().postgres;
  const env = { PGHOST: s.host, PGPORT: String(s.port), PGUSER: s.user, PGPASSWORD: s.password, PGDATABASE: db };
  const pgDump = path.join(pgBinDir(), 'pg_dump');
  const worker = await createRunbookWorker({ config, connection: dev.workerConnection, workflowBundle: await workflowBundle() });

  const ours: number[] = [];
  const raw: number[] = [];
  const seed: number[] = [];
  let oursBytes = 0;
  let rawBytes = 0;
  let seedBytes = 0;
  await worker.runUntil(async () => {
    for (let i = 0; i < RUNS; i++) {
      // Interleaved, so a drift in the machine's load hits all three alike.
      let t = performance.now();
      const r: BackupResult = await dev.client.workflow.execute('backup', {
        taskQueue: config.temporal.taskQueue,
        workflowId: `bench-backup-${target}-${i}`,
        args: [{ target, kind: 'postgres', prune: true }],
      });
      ours.push(performance.now() - t);
      oursBytes = r.manifest.sizeBytes;

      const rawFile = path.join(tempDir('raw'), `${db}.dump`);
      t = performance.now();
      await execa(pgDump, ['-Fc', '-f', rawFile], { env });
      raw.push(performance.now() - t);
      rawBytes = statSync(rawFile).size;

      const seedFile = path.join(tempDir('seed'), `postgres-${i}.sql.gz`);
      t = performance.now();
      // The seed's own pipeline, as a shell pipe on purpose: it is the baseline being measured.
      await execa('sh', ['-c', `"${pgDump}" | gzip > "${seedFile}"`], { env });
      seed.push(performance.now() - t);
      seedBytes = statSync(seedFile).size;
    }
  });

  const sizes = `database ${(dbBytes / 1e6).toFixed(0)} MB (${ROWS} rows), median of ${RUNS}`;
  report({ bench: 'backup', metric: 'time', unit: 'ms', ours: median(ours), baseline: median(raw), baselineName: 'raw pg_dump -Fc', target: '≤ 1.10', sizes, notes: 'ours = the whole workflow: fsync, sha256, manifest, retention' });
  report({ bench: 'backup', metric: 'time', unit: 'ms', ours: median(ours), baseline: median(seed), baselineName: 'seed pg_dump | gzip', sizes });
  report({ bench: 'backup', metric: 'size', unit: 'MB', ours: oursBytes / 1e6, baseline: seedBytes / 1e6, baselineName: 'seed pg_dump | gzip', sizes, notes: `raw -Fc ${(rawBytes / 1e6).toFixed(1)} MB` });
  expect(oursBytes).toBeGreaterThan(0);
});
