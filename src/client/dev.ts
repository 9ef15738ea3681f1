#!/usr/bin/env node
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { stringify } from 'yaml';
import { ConfigError, loadConfig } from '../config/load';
import { type Config } from '../config/schema';
import { connectClient } from './connection';
import { type RunningServer, projectRoot, startPostgres, startRedis, startTemporal, stopPid } from './local-servers';
import { syncSchedules } from './schedules';
import { startConfiguredCodecServer } from './codec-server';
import { createIncidentServer } from './alertmanager';

/**
 * `npm start`: the whole system on one machine. Temporal dev server (Web UI on :8233, state kept in
 * .runbooks/temporal.db), the worker, and, when no runbooks.yaml exists, a local PostgreSQL and Redis
 * with a demo database so every runbook has something real to work on. Ctrl-C stops what it started, by pid.
 */

const root = projectRoot();
const state = path.join(root, '.runbooks');
const started: Array<{ name: string; server: RunningServer }> = [];

function log(msg: string): void {
  process.stdout.write(`[runbooks] ${msg}\n`);
}

async function listening(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

function secret(name: string, bytes = 18, encoding: BufferEncoding = 'base64url'): string {
  const file = path.join(state, 'secrets', name);
  if (!existsSync(file)) {
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, randomBytes(bytes).toString(encoding), { mode: 0o600 });
  }
  return readFileSync(file, 'utf8');
}

/** The embedded default: local PostgreSQL + Redis under .runbooks/, and a config pointing at them. */
async function embeddedDefault(): Promise<string> {
  const file = path.join(state, 'runbooks.yaml');
  const pgPort = Number(process.env.RUNBOOKS_PG_PORT ?? 55432);
  const redisPort = Number(process.env.RUNBOOKS_REDIS_PORT ?? 56379);
  const fresh = !existsSync(path.join(state, 'pg', 'PG_VERSION'));
  const pgServer = await startPostgres({ dir: path.join(state, 'pg'), port: pgPort, password: secret('postgres') });
  started.push({ name: 'postgresql', server: pgServer });
  log(`PostgreSQL on 127.0.0.1:${pgPort} (pid ${pgServer.pid}, data in .runbooks/pg)`);
  const redis = await startRedis({ dir: path.join(state, 'redis'), port: redisPort, password: secret('redis'), persist: true });
  started.push({ name: 'redis', server: redis });
  log(`Redis on 127.0.0.1:${redisPort} (pid ${redis.pid}, data in .runbooks/redis)`);
  if (fresh) await seedDemo(pgPort);
  secret('codec-key', 32, 'base64');
  secret('codec-token');
  secret('chatops-signing-secret', 16, 'hex');
  const codecKey = path.join(state, 'secrets', 'codec-key');
  const codecToken = path.join(state, 'secrets', 'codec-token');
  writeFileSync(
    file,
    `# Written by npm start for the local demo system; copy runbooks.example.yaml to ./runbooks.yaml for your own.\n` +
      stringify({
        temporal: {
          address: '127.0.0.1:7233',
          namespace: 'default',
          taskQueue: 'runbooks',
          webUiUrl: 'http://localhost:8233',
          // Payloads encrypted in the history; the Web UI reads them through the codec server below.
          encryption: { keys: [{ id: 'demo-1', key: { file: codecKey } }] },
        },
        targets: {
          databases: [
            {
              name: 'demo',
              host: '127.0.0.1',
              port: pgPort,
              database: 'demo',
              user: 'postgres',
              password: { file: path.join(state, 'secrets', 'postgres') },
            },
          ],
          redis: [{ name: 'cache', host: '127.0.0.1', port: redisPort, password: { file: path.join(state, 'secrets', 'redis') } }],
        },
        backups: { root: path.join(state, 'backups') },
        // The ChatOps endpoint (Slack-compatible): point a Slack app's slash command at /slack/commands and its
        // interactivity at /slack/actions, with this signing secret; map your Slack user id in `people`/`roles`.
        chatops: {
          signingSecret: { file: path.join(state, 'secrets', 'chatops-signing-secret') },
          host: '127.0.0.1',
          port: Number(process.env.RUNBOOKS_CHATOPS_PORT ?? 3000),
          people: { U0DEMO: 'demo' },
          roles: { ops: ['U0DEMO'] },
          rules: [{ runbooks: ['*'], targets: ['*'], run: ['ops'], approve: ['ops'] }],
          incidents: ['ops'],
        },
        observability: {
          metricsAddress: `127.0.0.1:${process.env.RUNBOOKS_METRICS_PORT ?? 9464}`,
          codecServer: {
            address: `127.0.0.1:${process.env.RUNBOOKS_CODEC_PORT ?? 8888}`,
            corsOrigins: ['http://localhost:8233', 'http://127.0.0.1:8233'],
            token: { file: codecToken },
          },
        },
      }),
  );
  return file;
}

async function seedDemo(port: number): Promise<void> {
  const admin = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password: secret('postgres'), database: 'postgres' });
  await admin.connect();
  await admin.query('CREATE DATABASE demo');
  await admin.end();
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password: secret('postgres'), database: 'demo' });
  await c.connect();
  await c.query(`CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE NOT NULL);
    INSERT INTO customers (name, email) SELECT 'customer ' || g, 'c' || g || '@example.test' FROM generate_series(1, 1000) g;`);
  await c.end();
  log('created demo database "demo" with 1000 customers');
}

async function main(): Promise<void> {
  mkdirSync(state, { recursive: true });
  const explicit = process.env.RUNBOOKS_CONFIG ?? (existsSync(path.join(root, 'runbooks.yaml')) ? path.join(root, 'runbooks.yaml') : undefined);
  const file = explicit ? path.resolve(explicit) : await embeddedDefault();
  let config: Config;
  try {
    config = loadConfig(file);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return shutdown(2);
    }
    throw err;
  }

  const [host = '127.0.0.1', portText = '7233'] = config.temporal.address.split(':');
  const local = ['127.0.0.1', 'localhost'].includes(host);
  // The codec server first: the dev server's Web UI is told where it is (--ui-codec-endpoint).
  let uiCodecEndpoint: string | undefined;
  if (config.observability.codecServer) {
    const codec = await startConfiguredCodecServer(config);
    started.push({ name: 'codec server', server: { pid: process.pid, port: codec.port, stop: () => codec.close() } });
    uiCodecEndpoint = codec.uiEndpoint;
    log(`codec server on ${codec.url} (for ${config.observability.codecServer.corsOrigins.join(', ')})`);
  }
  if (local && !(await listening('127.0.0.1', Number(portText)))) {
    const uiPort = Number(portText) + 1000;
    const temporal = await startTemporal({
      dbFile: path.join(state, 'temporal.db'),
      port: Number(portText),
      uiPort,
      logFile: path.join(state, 'temporal.log'),
      uiCodecEndpoint,
    });
    started.push({ name: 'temporal', server: temporal });
    log(`Temporal dev server on ${temporal.address} (pid ${temporal.pid}); Web UI: http://localhost:${uiPort}`);
  } else {
    log(`using the Temporal server at ${config.temporal.address}`);
  }

  const { client, close } = await connectClient(config);
  const report = await syncSchedules(client, config);
  await close();
  log(`schedules: ${[...report.created, ...report.updated, ...report.unchanged].join(', ') || 'none'}`);

  const worker = spawn(process.execPath, [path.join(root, 'dist', 'workers', 'main.js'), '--config', file], { stdio: 'inherit' });
  if (worker.pid) started.push({ name: 'worker', server: { pid: worker.pid, port: 0, stop: () => stopPid(worker.pid!, 'SIGTERM', 30_000) } });
  worker.on('exit', (code) => {
    if (stopping) return; // we stopped it ourselves
    log(`worker exited (${code}); stopping the rest`);
    void shutdown(code ?? 1);
  });
  // One worker per docker host (task queue docker:<host>): the deploy and scale runbooks' docker and nginx steps.
  for (const host of config.targets.dockerHosts) {
    const args = [path.join(root, 'dist', 'workers', 'main.js'), '--config', file, '--docker-host', host.name, '--metrics-address', 'off'];
    const hw = spawn(process.execPath, args, { stdio: 'inherit' });
    if (hw.pid) started.push({ name: `docker host worker ${host.name}`, server: { pid: hw.pid, port: 0, stop: () => stopPid(hw.pid!, 'SIGTERM', 30_000) } });
  }
  // ChatOps (issue 8): the Slack-compatible command/button server, when the config has a chatops section.
  if (config.chatops) {
    const chat = spawn(process.execPath, [path.join(root, 'dist', 'client', 'chatops', 'main.js'), '--config', file], { stdio: 'inherit' });
    if (chat.pid) started.push({ name: 'chatops', server: { pid: chat.pid, port: config.chatops.port, stop: () => stopPid(chat.pid!, 'SIGTERM', 10_000) } });
    log(`ChatOps on http://${config.chatops.host}:${config.chatops.port}/slack/commands (slash commands) and /slack/actions (buttons)`);
  }
  await startIncidentReceiver(config);
  log(`config: ${path.relative(process.cwd(), file)}`);
  log(`try:    npm run runbook -- start backup -p target=${config.targets.databases[0]?.name ?? '<target>'} --wait`);
  log('Ctrl-C stops everything started here.');
}

/** The Alertmanager webhook + acknowledge links (incidents.listen), with its own Temporal client. */
async function startIncidentReceiver(config: Config): Promise<void> {
  const { client, close } = await connectClient(config);
  const server = createIncidentServer({ client, config, log });
  const { host, port } = config.incidents.listen;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const stop = async (): Promise<void> => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await close();
  };
  started.push({ name: 'incident receiver', server: { pid: process.pid, port, stop } });
  log(`incident receiver on http://${host}:${port} (POST /alertmanager, acknowledge links /ack)`);
}

let stopping = false;
async function shutdown(code: number): Promise<void> {
  if (stopping) return; // the first call stops everything, then exits
  stopping = true;
  for (const { name, server } of started.reverse()) {
    log(`stopping ${name} (pid ${server.pid})`);
    await server.stop().catch(() => undefined);
  }
  process.exit(code);
}

process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));
main().catch(async (err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  await shutdown(1);
});
