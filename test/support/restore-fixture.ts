import { readdirSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { parse, stringify } from 'yaml';
import { freePort } from '../../src/client/local-servers';
import { runCli, startWorkerProcess } from './processes';
import { createDatabase, pgAdmin, servers, testConfig, uniqueName } from './servers';
import { type Fingerprint, fingerprint, seedShop } from './shop-data';

/** `db` and every database derived from it (`<db>__restore_*`, `<db>__pre_restore_*`, ...). No LIKE: `_` is a wildcard there. */
export async function databasesLike(db: string): Promise<string[]> {
  const c = pgAdmin();
  await c.connect();
  try {
    const r = await c.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE datname = $1 OR starts_with(datname, $1 || '__') ORDER BY 1`,
      [db],
    );
    return r.rows.map((x) => x.datname);
  } finally {
    await c.end();
  }
}

/** What an incident does to a database: rows deleted, a table dropped, junk added. */
export async function damage(db: string): Promise<void> {
  const c = pgAdmin(db);
  await c.connect();
  try {
    await c.query(`DELETE FROM orders WHERE id % 2 = 0; DROP TABLE customers CASCADE; CREATE TABLE junk (x int); INSERT INTO junk VALUES (1)`);
  } finally {
    await c.end();
  }
}

export interface ServiceContainer {
  name: string;
  port: number;
  healthUrl: string;
  running(): Promise<boolean>;
  remove(): Promise<void>;
}

/** A busybox httpd container on the test engine, on loopback, answering /health. */
export async function serviceContainer(): Promise<ServiceContainer> {
  const name = uniqueName('api');
  const port = await freePort();
  const env = { DOCKER_HOST: servers().docker.host };
  await execa('docker', ['run', '-d', '--init', '--name', name, '--network', 'host', 'localhost/base:1', 'sh', '-c',
    `mkdir -p /www && echo ok > /www/health && exec httpd -f -p 127.0.0.1:${port} -h /www`], { env });
  return {
    name,
    port,
    healthUrl: `http://127.0.0.1:${port}/health`,
    running: async () => String((await execa('docker', ['inspect', '-f', '{{.State.Running}}', name], { env })).stdout) === 'true',
    remove: async () => void (await execa('docker', ['rm', '-f', name], { env, reject: false })),
  };
}

export interface RestoreFixture {
  db: string;
  target: string;
  yaml: string;
  atSeed: Fingerprint;
}

/**
 * A seeded database (1500 customers with 4 orders each unless `size` says otherwise) and a config for it,
 * optionally with a service (container + health URL) that depends on it.
 */
export async function restoreFixture(
  opts: { service?: ServiceContainer; healthUrl?: string; checks?: unknown[]; size?: { customers: number; ordersPerCustomer: number } } = {},
): Promise<RestoreFixture> {
  const db = uniqueName('rst');
  await createDatabase(db);
  await seedShop(db, opts.size?.customers ?? 1500, opts.size?.ordersPerCustomer ?? 4);
  const base = testConfig({ databases: [db], taskQueue: uniqueName('rst') });
  const raw = parse(base.yaml);
  if (opts.service || opts.healthUrl) {
    raw.targets.dockerHosts = [{ name: 'local', dockerHost: servers().docker.host }];
    raw.targets.services = [{ name: 'api', host: 'local', containers: opts.service ? [opts.service.name] : [], healthUrl: opts.healthUrl ?? opts.service?.healthUrl }];
    raw.targets.databases[0].services = ['api'];
  }
  if (opts.checks) raw.targets.databases[0].restore = { checks: opts.checks };
  return { db, target: base.config.targets.databases[0]!.name, yaml: stringify(raw), atSeed: await fingerprint(db) };
}

/** Back the fixture's database up through the real CLI and worker (the restore's source), then damage it. */
export async function backedUpAndDamaged(f: RestoreFixture, configFile: string): Promise<void> {
  const w = await startWorkerProcess(configFile);
  try {
    const r = await runCli(['--config', configFile, 'start', 'backup', '-p', `target=${f.target}`, '--wait']);
    if (r.exitCode !== 0) throw new Error(r.stderr);
  } finally {
    await w.stop();
  }
  await damage(f.db);
}

/** The safety snapshot files (dump and manifest) in the target's backup folder, sorted. */
export function safetySnapshots(yaml: string, target: string): string[] {
  const root = (parse(yaml) as { backups: { root: string } }).backups.root;
  return readdirSync(path.join(root, target)).filter((n) => n.includes('-prerestore-')).sort();
}
