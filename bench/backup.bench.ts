import { statSync } from 'node:fs';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { execa } from 'execa';
import { type BackupManifest, createActivities } from '../src/activities';
import { pgBinDir } from '../src/client/local-servers';
import { createDatabase, pgAdmin, servers, tempDir, testConfig, uniqueName } from '../test/support/servers';

/**
 * Backup cost against the seed's procedure (D0/WF-01: `pg_dump | gzip > file`), measured in the same run
 * on the same database: our dump activity adds fsync, sha256, an atomic rename and a manifest.
 * Prints ratios (ours / seed); > 1 means ours is slower or larger.
 */
const ROWS = Number(process.env.BENCH_ROWS ?? 400_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

test(`backup of a ${ROWS}-row database: ours vs pg_dump | gzip`, async () => {
  const db = uniqueName('bench');
  await createDatabase(db);
  const c = pgAdmin(db);
  await c.connect();
  await c.query(`CREATE TABLE events (id bigserial PRIMARY KEY, at timestamptz NOT NULL, kind text NOT NULL, payload jsonb NOT NULL);
    INSERT INTO events (at, kind, payload) SELECT now() - g * interval '1 second', 'kind' || (g % 17),
      jsonb_build_object('user', g % 5000, 'amount', g * 1.5, 'note', repeat('x', g % 40)) FROM generate_series(1, ${ROWS}) g;`);
  const size = await c.query<{ s: string }>(`SELECT pg_size_pretty(pg_database_size(current_database())) AS s`);
  await c.end();

  const { config } = testConfig({ databases: [db], taskQueue: 'bench' });
  const target = config.targets.databases[0]!.name;
  const activities = createActivities({ config });
  const s = servers().postgres;
  const env = { PGHOST: s.host, PGPORT: String(s.port), PGUSER: s.user, PGPASSWORD: s.password, PGDATABASE: db };

  const ours: number[] = [];
  const seed: number[] = [];
  let oursBytes = 0;
  let seedBytes = 0;
  for (let i = 0; i < RUNS; i++) {
    let t = performance.now();
    const m: BackupManifest = await new MockActivityEnvironment().run(activities.dumpPostgres, {
      target,
      backupId: `${target}-bench-${i}`,
      createdAt: new Date().toISOString(),
    });
    ours.push(performance.now() - t);
    oursBytes = m.sizeBytes;

    const out = path.join(tempDir('seed'), `postgres-${i}.sql.gz`);
    t = performance.now();
    // The seed's own pipeline, as a shell pipe on purpose: it is the baseline being measured.
    await execa('sh', ['-c', `"${path.join(pgBinDir(), 'pg_dump')}" | gzip > "${out}"`], { env });
    seed.push(performance.now() - t);
    seedBytes = statSync(out).size;
  }
  const lines = [
    `database: ${size.rows[0]?.s} (${ROWS} rows), ${RUNS} runs each, median`,
    `seed  pg_dump | gzip          : ${median(seed).toFixed(0)} ms, ${(seedBytes / 1e6).toFixed(1)} MB (no checksum, no fsync, no manifest)`,
    `ours  dump activity (-Fc)     : ${median(ours).toFixed(0)} ms, ${(oursBytes / 1e6).toFixed(1)} MB (fsync + sha256 + manifest)`,
    `ratio time ours/seed          : ${(median(ours) / median(seed)).toFixed(2)}`,
    `ratio size ours/seed          : ${(oursBytes / seedBytes).toFixed(2)}`,
  ];
  console.log(lines.join('\n'));
  expect(oursBytes).toBeGreaterThan(0);
});
