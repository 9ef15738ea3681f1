import { mkdtempSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { stringify } from 'yaml';
import { type Config } from '../../src/config/schema';
import { parseConfig } from '../../src/config/load';

export const STATE_ENV = 'RUNBOOKS_TEST_SERVERS';

export interface TestServers {
  root: string;
  /** The Jest process that started them (`npm run test:cleanup` leaves a live run's servers alone). */
  owner: number;
  temporal: { address: string; pid: number; dbFile: string };
  postgres: { host: string; port: number; user: string; password: string; pid: number };
  redis: { host: string; port: number; password: string; pid: number; dataDir: string };
  /** A private dockerd: `host` is its DOCKER_HOST (unix socket in `dir`). */
  docker: { host: string; pid: number; dir: string };
  /** Payload codec key (base64, 32 bytes): test clients and workers encrypt every payload with it. */
  codecKey: string;
}

export const TEST_CODEC_KEY_ID = 'test-1';

export function servers(): TestServers {
  const file = process.env[STATE_ENV];
  if (!file) throw new Error(`${STATE_ENV} is not set: run the tests through jest (global setup starts the servers)`);
  return JSON.parse(readFileSync(file, 'utf8')) as TestServers;
}

/** A fresh folder under the run's temp root. */
export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(servers().root, `${prefix}-`));
}

export function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(4).toString('hex')}`;
}

/** A superuser connection to the shared test PostgreSQL. */
export function pgAdmin(database = 'postgres'): pg.Client {
  const s = servers().postgres;
  return new pg.Client({ host: s.host, port: s.port, user: s.user, password: s.password, database });
}

export async function createDatabase(name: string): Promise<void> {
  const c = pgAdmin();
  await c.connect();
  try {
    await c.query(`CREATE DATABASE "${name}"`);
  } finally {
    await c.end();
  }
}

export interface TestConfigOptions {
  databases?: string[];
  redis?: string[];
  backupRoot?: string;
  taskQueue: string;
  email?: { port: number; user: string; passwordEnv: string; to: string[] };
  /** A Slack-compatible API (test/support/slack-api.ts); the token travels as env TEST_SLACK_TOKEN. */
  slack?: { apiUrl: string; token: string; channel: string };
  extra?: Record<string, unknown>;
}

/**
 * A config (as YAML text and parsed) pointing at the shared servers. Passwords travel by reference:
 * the env vars named here are set in this process, as an operator would export them.
 */
export function testConfig(opts: TestConfigOptions): { yaml: string; config: Config } {
  const s = servers();
  process.env.TEST_PG_PASSWORD = s.postgres.password;
  process.env.TEST_REDIS_PASSWORD = s.redis.password;
  if (opts.slack) process.env.TEST_SLACK_TOKEN = opts.slack.token;
  process.env.TEST_CODEC_KEY = s.codecKey;
  const raw: Record<string, unknown> = {
    temporal: {
      address: s.temporal.address,
      namespace: 'default',
      taskQueue: opts.taskQueue,
      encryption: { keys: [{ id: TEST_CODEC_KEY_ID, key: { env: 'TEST_CODEC_KEY' } }] },
    },
    targets: {
      databases: (opts.databases ?? []).map((db) => ({
        name: db.replace(/_/g, '-'),
        host: s.postgres.host,
        port: s.postgres.port,
        database: db,
        user: s.postgres.user,
        password: { env: 'TEST_PG_PASSWORD' },
      })),
      redis: (opts.redis ?? []).map((name) => ({
        name,
        host: s.redis.host,
        port: s.redis.port,
        password: { env: 'TEST_REDIS_PASSWORD' },
      })),
    },
    backups: { root: opts.backupRoot ?? tempDir('backups') },
    notifications: {
      ...(opts.email
        ? {
            email: {
              host: '127.0.0.1',
              port: opts.email.port,
              user: opts.email.user,
              password: { env: opts.email.passwordEnv },
              from: 'runbooks@example.test',
              to: opts.email.to,
            },
          }
        : {}),
      ...(opts.slack ? { slack: { botToken: { env: 'TEST_SLACK_TOKEN' }, apiUrl: opts.slack.apiUrl, channel: opts.slack.channel } } : {}),
    },
    ...opts.extra,
  };
  const yaml = stringify(raw);
  return { yaml, config: parseConfig(yaml, 'test.yaml') };
}
