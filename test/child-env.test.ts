import { chmodSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { parse, stringify } from 'yaml';
import { pgBin } from '../src/activities/postgres';
import { parseConfig } from '../src/config/load';
import { runCli, startWorkerProcess, writeConfigFile } from './support/processes';
import { restoreFixture, serviceContainer } from './support/restore-fixture';
import { servers, tempDir } from './support/servers';

/**
 * What a child process of the worker sees: the real worker process runs a backup and a restore (pg_dump,
 * pg_restore, docker stop/start of the service). Each tool is a wrapper that writes its environment to a file
 * and then execs the real tool. The worker's own environment holds a canary and the test config's secrets
 * (the codec key, the Redis password): none of them may reach a child; each child gets what its tool needs.
 */

const CANARY = 'RUNBOOK_CANARY_7d1f';

function wrapper(dir: string, name: string, real: string, dumps: string): void {
  const file = path.join(dir, name);
  writeFileSync(file, `#!/bin/sh\n/usr/bin/env > "${dumps}/${name}-$$.env"\nexec "${real}" "$@"\n`);
  chmodSync(file, 0o755);
}

function envs(dumps: string, tool: string): Array<Record<string, string>> {
  return readdirSync(dumps)
    .filter((f) => f.startsWith(`${tool}-`))
    .map((f) => Object.fromEntries(readFileSync(path.join(dumps, f), 'utf8').split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])));
}

test('pg_dump, pg_restore and docker get only the variables their tool needs, never the worker\'s environment', async () => {
  const dir = tempDir('child-env');
  const bin = path.join(dir, 'bin');
  const dumps = path.join(dir, 'env');
  mkdirSync(bin);
  mkdirSync(dumps);
  const realPg = path.dirname(pgBin(parseConfig('{}', 'x.yaml'), 'pg_dump'));
  for (const tool of ['pg_dump', 'pg_restore']) wrapper(bin, tool, path.join(realPg, tool), dumps);
  wrapper(bin, 'docker', String((await execa('sh', ['-c', 'command -v docker'])).stdout).trim(), dumps);

  const service = await serviceContainer();
  try {
    const f = await restoreFixture({ service });
    const raw = parse(f.yaml);
    raw.backups.pgBinDir = bin;
    const file = writeConfigFile(stringify(raw));
    const worker = await startWorkerProcess(file, { [CANARY]: 'canary-value', PATH: `${bin}:${process.env.PATH}`, LANG: 'C.UTF-8' });
    try {
      const backup = await runCli(['--config', file, 'start', 'backup', '-p', `target=${f.target}`, '--wait']);
      expect(backup.stderr).toBe('');
      const restore = await runCli(['--config', file, 'start', 'restore', '-p', `target=${f.target}`, '-p', 'reason=env test', '--wait']);
      expect(restore.stderr).toBe('');
    } finally {
      await worker.stop();
    }

    const s = servers();
    const workerSecrets = [s.codecKey, s.redis.password];
    const pg = [...envs(dumps, 'pg_dump'), ...envs(dumps, 'pg_restore')];
    const docker = envs(dumps, 'docker');
    // backup + safety snapshot; validation (--list) + the restore itself; stop and start of the service.
    expect(envs(dumps, 'pg_dump').length).toBeGreaterThanOrEqual(2);
    expect(envs(dumps, 'pg_restore').length).toBeGreaterThanOrEqual(1);
    expect(docker.length).toBeGreaterThanOrEqual(2);
    for (const env of [...pg, ...docker]) {
      expect(env[CANARY]).toBeUndefined();
      expect(Object.keys(env).filter((k) => k.startsWith('TEST_'))).toEqual([]); // the config's secret references
      expect(Object.values(env).filter((v) => workerSecrets.includes(v))).toEqual([]);
      expect(env.PATH).toContain(bin);
      expect(env.LANG).toBe('C.UTF-8');
    }
    for (const env of docker) {
      expect(env.DOCKER_HOST).toBe(s.docker.host);
      expect(env.PGPASSWORD).toBeUndefined();
    }
    // pg_dump and the restore itself connect: they get the database's password (and nothing else does).
    const connecting = pg.filter((e) => e.PGHOST);
    expect(connecting.length).toBeGreaterThanOrEqual(3);
    for (const env of connecting) expect(env.PGPASSWORD).toBe(s.postgres.password);
  } finally {
    await service.remove();
  }
}, 180_000);
