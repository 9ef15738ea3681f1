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
  stateDir: string;
  close(): Promise<void>;
}

export async function rotationFixture(): Promise<RotationFixture> {
  const s = servers();
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
  const redis = new Redis({ host: s.redis.host, port: s.redis.port, password: s.redis.password });
  await redis.call('ACL', 'SETUSER', redisUser, 'on', `>${initial.redisPassword}`, '~*', '+@all');
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

  const container = uniqueName('consumer');
  await execa('docker', ['run', '-d', '--init', '--name', container, '--network', 'host', 'localhost/base:1', 'sleep', '36000'], {
    env: { DOCKER_HOST: s.docker.host },
  });

  const taskQueue = uniqueName('rot');
  const base = testConfig({ databases: [db], redis: [`cache-${tag}`], taskQueue });
  const raw = parse(base.yaml);
  raw.targets.dockerHosts = [{ name: 'local', dockerHost: s.docker.host }];
  raw.targets.services = [{ name: 'app', host: 'local', containers: [container] }];
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
    stateDir,
    close: async () => {
      await github.close();
      await execa('docker', ['rm', '-f', container], { env: { DOCKER_HOST: s.docker.host }, reject: false });
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

export async function redisLogin(user: string, password: string): Promise<void> {
  const s = servers().redis;
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
      await redisLogin(env.REDIS_USER!, env.REDIS_PASSWORD!).catch((err: Error) => failures.push(`redis: ${err.message}`));
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
