import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { startPostgres, startRedis, startTemporal, stopPid } from '../../src/client/local-servers';
import { startDocker, stopDocker } from '../../src/client/local-docker';
import { type TestServers, STATE_ENV } from './servers';

/** Start each real server once for the whole run; tests share them (each uses its own databases, ids and folders). */
export default async function globalSetup(): Promise<void> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'runbooks-test-'));
  chmodSync(root, 0o755); // the postgres system user must reach its data folder
  const pgPassword = randomBytes(12).toString('hex');
  const redisPassword = randomBytes(12).toString('hex');
  // The payload codec key every test client and worker share (temporal.encryption).
  const codecKey = randomBytes(32).toString('base64');
  // dockerd's folder stays short (unix socket paths are capped at ~107 bytes), outside the run's root.
  const dockerDir = mkdtempSync('/tmp/rb-docker-');
  const started = await Promise.allSettled([
    startTemporal({ dbFile: path.join(root, 'temporal', 'temporal.db') }),
    startPostgres({ dir: path.join(root, 'pg'), password: pgPassword }),
    startRedis({ dir: path.join(root, 'redis'), password: redisPassword }),
    startDocker({ dir: dockerDir }),
  ]);
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    // Stop what did start (by pid) before failing the run, so nothing is left behind.
    const [t, p, r, d] = started.map((x) => (x.status === 'fulfilled' ? x.value : undefined));
    await Promise.all([
      t && stopPid((t as { pid: number }).pid, 'SIGTERM'),
      p && stopPid((p as { pid: number }).pid, 'SIGINT', 30_000),
      r && stopPid((r as { pid: number }).pid, 'SIGTERM'),
      d && stopDocker(d as Awaited<ReturnType<typeof startDocker>>),
    ]);
    throw failed.reason;
  }
  const [temporal, postgres, redis, docker] = started.map((x) => (x as PromiseFulfilledResult<unknown>).value) as [
    Awaited<ReturnType<typeof startTemporal>>,
    Awaited<ReturnType<typeof startPostgres>>,
    Awaited<ReturnType<typeof startRedis>>,
    Awaited<ReturnType<typeof startDocker>>,
  ];
  const state: TestServers = {
    root,
    owner: process.pid,
    temporal: { address: temporal.address, pid: temporal.pid, dbFile: path.join(root, 'temporal', 'temporal.db') },
    postgres: { host: postgres.host, port: postgres.port, user: postgres.user, password: pgPassword, pid: postgres.pid },
    redis: { host: '127.0.0.1', port: redis.port, password: redisPassword, pid: redis.pid, dataDir: redis.dataDir },
    docker: { host: docker.dockerHost, pid: docker.pid, dir: docker.dir },
    codecKey,
  };
  const file = path.join(root, 'servers.json');
  writeFileSync(file, JSON.stringify(state, null, 2), { mode: 0o600 });
  process.env[STATE_ENV] = file;
}
