import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import Redis from 'ioredis';
import pg from 'pg';
import { parse as parseEnv } from 'dotenv';
import { parse, stringify } from 'yaml';
import { temporalBinary } from '../../src/client/local-servers';
import { parseConfig } from '../../src/config/load';
import { type Config } from '../../src/config/schema';
import { type FakeGitHub, startFakeGitHub } from './github';
import { createDatabase, pgAdmin, servers, tempDir, testConfig, uniqueName } from './servers';

export const REPO = 'acme/shop';

/**
 * What RB-02 rotates in a test: a database with two alternating login roles (the first in use), a Redis
 * ACL user, a .env file the "app" reads (with comments and unrelated keys), a fake GitHub holding the
 * current values, a consumer container on the test dockerd, and two secret sets (db-*, cache-*).
 */
export interface RotationFixture {
  yaml: string;
  config: Config;
  taskQueue: string;
  dbSet: string;
  cacheSet: string;
  db: string;
  roles: [string, string];
  redisUser: string;
  envFile: string;
  /** The .env file as the test wrote it. */
  envText: string;
  initial: { dbPassword: string; redisPassword: string };
  github: FakeGitHub;
  container: string;
  /** Every consumer container of the `app` service, in restart order (`container` is the first). */
  containers: string[];
  stateDir: string;
  /** The Redis server the cache set's ACL user lives on (the shared one unless `opts.redis` named another). */
  redis: RedisServer;
  close(): Promise<void>;
}

export interface RedisServer {
  host: string;
  port: number;
  password: string;
}

export interface RotationFixtureOptions {
  /** A Redis of the test's own for the cache set (its admin password travels as env TEST_PRIVATE_REDIS_PASSWORD). */
  redis?: RedisServer;
  /**
   * The consumer container ignores SIGTERM, so each restart of it waits out `docker restart`'s 10 s grace:
   * a window in which a test can hit the rotation while `restartConsumers` runs.
   */
  slowConsumer?: boolean;
  /** How many consumer containers the `app` service has (1 by default); a rotation restarts them one by one. */
  consumers?: number;
}

export async function rotationFixture(opts: RotationFixtureOptions = {}): Promise<RotationFixture> {
  const s = servers();
  const redisServer: RedisServer = opts.redis ?? s.redis;
  const tag = uniqueName('rot').slice(4);
  const db = `rot_${tag}`;
  await createDatabase(db);
  const group = `app_${tag}`;
  const roles: [string, string] = [`app_${tag}_a`, `app_${tag}_b`];
  const initial = { dbPassword: `initial-db-${tag}-x9`, redisPassword: `initial-redis-${tag}-x9` };
  const admin = pgAdmin(db);
  await admin.connect();
  try {
    // The documented setup: a group role owns the grants, two login roles inherit them, one is idle.
    await admin.query(`CREATE ROLE ${group} NOLOGIN`);
    await admin.query(`CREATE ROLE ${roles[0]} LOGIN PASSWORD '${initial.dbPassword}' IN ROLE ${group}`);
    await admin.query(`CREATE ROLE ${roles[1]} NOLOGIN IN ROLE ${group}`);
    await admin.query(`CREATE TABLE orders (id int); INSERT INTO orders VALUES (1); GRANT SELECT ON orders TO ${group}`);
  } finally {
    await admin.end();
  }
  const redisUser = `app_${tag}`;
  const redis = new Redis({ host: redisServer.host, port: redisServer.port, password: redisServer.password });
  await redis.call('ACL', 'SETUSER', redisUser, 'on', `>${initial.redisPassword}`, '~*', '+@all');
  if (((await redis.config('GET', 'aclfile')) as string[])[1]) await redis.call('ACL', 'SAVE'); // a server that keeps its users in a file
  redis.disconnect();

  const dir = tempDir('rotation');
  const envFile = path.join(dir, '.env');
  const envText = [
    '# shop application settings',
    'APP_NAME=shop   # shown in the header',
    '',
    'DB_HOST=127.0.0.1',
    `DB_PORT=${s.postgres.port}`,
    `DB_NAME=${db}`,
    `DB_USER=${roles[0]}`,
    `DB_PASSWORD=${initial.dbPassword}`,
    '# cache',
    `export REDIS_USER=${redisUser}`,
    `REDIS_PASSWORD="${initial.redisPassword}"`,
    'FEATURE_FLAGS="a,b c"',
    '',
  ].join('\n');
  writeFileSync(envFile, envText, { mode: 0o600 });

  const github = await startFakeGitHub();
  github.secrets.set(`${REPO}/DB_PASSWORD`, initial.dbPassword);
  github.secrets.set(`${REPO}/REDIS_PASSWORD`, initial.redisPassword);
  process.env.TEST_GITHUB_TOKEN = github.token;

  const containers = Array.from({ length: opts.consumers ?? 1 }, () => uniqueName('consumer'));
  const container = containers[0]!;
  const command = opts.slowConsumer ? ['sh', '-c', 'trap "" TERM; while :; do sleep 1; done'] : ['sleep', '36000'];
  for (const name of containers) {
    await execa('docker', ['run', '-d', '--init', '--name', name, '--network', 'host', 'localhost/base:1', ...command], {
      env: { DOCKER_HOST: s.docker.host },
    });
  }

  const taskQueue = uniqueName('rot');
  const base = testConfig({ databases: [db], redis: [`cache-${tag}`], taskQueue });
  const raw = parse(base.yaml);
  if (opts.redis) {
    process.env.TEST_PRIVATE_REDIS_PASSWORD = opts.redis.password;
    Object.assign(raw.targets.redis[0], { host: opts.redis.host, port: opts.redis.port, password: { env: 'TEST_PRIVATE_REDIS_PASSWORD' } });
  }
  raw.targets.dockerHosts = [{ name: 'local', dockerHost: s.docker.host }];
  raw.targets.services = [{ name: 'app', host: 'local', containers }];
  const stateDir = path.join(dir, 'state');
  const dbSet = `db-${tag}`;
  const cacheSet = `cache-${tag}`;
  raw.rotation = {
    stateDir,
    github: { baseUrl: github.url, token: { env: 'TEST_GITHUB_TOKEN' } },
    sets: [
      {
        name: dbSet,
        postgres: { target: base.config.targets.databases[0]!.name, roles },
        envFiles: [{ path: envFile, keys: { user: 'DB_USER', password: 'DB_PASSWORD' } }],
        github: { repo: REPO, secrets: { password: 'DB_PASSWORD' } },
        services: ['app'],
      },
      {
        name: cacheSet,
        redis: { target: `cache-${tag}`, user: redisUser },
        envFiles: [{ path: envFile, keys: { password: 'REDIS_PASSWORD' } }],
        github: { repo: REPO, secrets: { password: 'REDIS_PASSWORD' } },
        services: ['app'],
      },
    ],
  };
  const yaml = stringify(raw);
  return {
    yaml,
    config: parseConfig(yaml, 'rotation.yaml'),
    taskQueue,
    dbSet,
    cacheSet,
    db,
    roles,
    redisUser,
    envFile,
    envText,
    initial,
    github,
    container,
    containers,
    stateDir,
    redis: redisServer,
    close: async () => {
      await github.close();
      await execa('docker', ['rm', '-f', ...containers], { env: { DOCKER_HOST: s.docker.host }, reject: false });
    },
  };
}

export function readEnv(file: string): Record<string, string> {
  return parseEnv(readFileSync(file, 'utf8'));
}

/** Log in to PostgreSQL as an application would; resolves, or rejects with the server's error. */
export async function pgLogin(db: string, user: string, password: string): Promise<void> {
  const s = servers().postgres;
  const c = new pg.Client({ host: s.host, port: s.port, database: db, user, password, connectionTimeoutMillis: 5_000 });
  try {
    await c.connect();
    await c.query('SELECT count(*) FROM orders');
  } finally {
    await c.end().catch(() => undefined);
  }
}

export async function redisLogin(user: string, password: string, s: RedisServer = servers().redis): Promise<void> {
  // AUTH sent by hand, so a refusal surfaces as the server's reply (WRONGPASS ...), not as a closed connection.
  const r = new Redis({ host: s.host, port: s.port, lazyConnect: true, enableReadyCheck: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => undefined);
  try {
    await r.connect();
    await r.call('AUTH', user, password);
    await r.ping();
  } finally {
    r.disconnect();
  }
}

export interface AuthLoop {
  stop(): Promise<{ rounds: number; failures: string[] }>;
}

/**
 * The application's view: over and over, re-read the .env file and log in to PostgreSQL and Redis with
 * what it says. Every failure is recorded with its message.
 */
export function authLoop(f: RotationFixture): AuthLoop {
  let running = true;
  let rounds = 0;
  const failures: string[] = [];
  const loop = (async () => {
    while (running) {
      const env = readEnv(f.envFile);
      await pgLogin(f.db, env.DB_USER!, env.DB_PASSWORD!).catch((err: Error) => failures.push(`pg as ${env.DB_USER}: ${err.message}`));
      await redisLogin(env.REDIS_USER!, env.REDIS_PASSWORD!, f.redis).catch((err: Error) => failures.push(`redis: ${err.message}`));
      rounds++;
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { rounds, failures };
    },
  };
}

/** `temporal workflow show --output json`: the history as the server keeps it (no codec). */
export async function exportedHistory(workflowId: string): Promise<string> {
  const r = await execa(temporalBinary('temporal'), ['workflow', 'show', '--workflow-id', workflowId, '--output', 'json', '--address', servers().temporal.address]);
  return String(r.stdout);
}

export async function containerStartedAt(name: string): Promise<number> {
  const r = await execa('docker', ['inspect', '-f', '{{.State.StartedAt}}', name], { env: { DOCKER_HOST: servers().docker.host } });
  return Date.parse(String(r.stdout).trim());
}

/** How many times the container was started after `sinceMs` (docker events: a restart is one start). */
export async function containerStarts(name: string, sinceMs: number): Promise<number> {
  const r = await execa(
    'docker',
    ['events', '--since', String(Math.floor(sinceMs / 1000)), '--until', String(Math.ceil(Date.now() / 1000) + 1), '--filter', `container=${name}`, '--filter', 'event=start', '--format', '{{.TimeNano}}'],
    { env: { DOCKER_HOST: servers().docker.host } },
  );
  // --since has one-second resolution: the nanosecond timestamps tell the starts after `sinceMs`.
  return String(r.stdout).split('\n').filter((t) => t && BigInt(t) > BigInt(sinceMs) * 1_000_000n).length;
}
