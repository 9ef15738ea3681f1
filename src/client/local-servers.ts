import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync, openSync, chownSync, mkdirSync, statSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Connection } from '@temporalio/client';
import { promisify } from 'node:util';
import { SEARCH_ATTRIBUTES } from '../config/temporal';

// Plain child_process here: this module also runs inside Jest's global setup, where ESM-only execa cannot load.
const run = promisify(execFile);

/**
 * Real servers on loopback for the embedded default (`npm start`) and the tests: PostgreSQL, Redis and
 * the Temporal dev server, each in its own folder, each stopped by the pid it was started with.
 */

export interface RunningServer {
  pid: number;
  port: number;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** Whether a process with this pid exists (signal 0 checks without touching it). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Signal one pid and wait for it to go; SIGKILL after `graceMs`. */
export async function stopPid(pid: number, signal: NodeJS.Signals = 'SIGTERM', graceMs = 15_000): Promise<void> {
  if (!alive(pid)) return;
  process.kill(pid, signal);
  const deadline = Date.now() + graceMs;
  while (alive(pid) && Date.now() < deadline) await sleep(50);
  if (alive(pid)) {
    process.kill(pid, 'SIGKILL');
    while (alive(pid)) await sleep(20);
  }
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, logFile?: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await sleep(100);
  }
  const tail = logFile && existsSync(logFile) ? `\n${readFileSync(logFile, 'utf8').split('\n').slice(-30).join('\n')}` : '';
  throw new Error(`${what} did not become ready in ${timeoutMs} ms${tail}`);
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export async function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

// --- PostgreSQL -------------------------------------------------------------------------------------------

export function pgBinDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => /^\d+$/.test(v)) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  if (!versions[0]) throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql (run scripts/setup.sh)');
  return path.join(root, versions[0], 'bin');
}

/** initdb refuses to run as root: as root, run the server tools as the `postgres` system user. */
function asPgUser(cmd: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
}

export interface PostgresOptions {
  dir: string;
  port?: number;
  /** Password of the `postgres` superuser (scram-sha-256 is enforced, also on loopback). */
  password: string;
}

export interface RunningPostgres extends RunningServer {
  host: string;
  user: string;
  dataDir: string;
}

export async function startPostgres(opts: PostgresOptions): Promise<RunningPostgres> {
  const bin = pgBinDir();
  const dataDir = path.resolve(opts.dir);
  const port = opts.port ?? (await freePort());
  const owned = (p: string): void => {
    if (process.getuid?.() === 0) {
      const { uid, gid } = pgUser();
      chownSync(p, uid, gid);
    }
  };
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    owned(dataDir);
    const pwfile = path.join(path.dirname(dataDir), `.${path.basename(dataDir)}.pw`);
    writeFileSync(pwfile, `${opts.password}\n`, { mode: 0o600 });
    owned(pwfile);
    try {
      const [cmd, args] = asPgUser(path.join(bin, 'initdb'), [
        '-D', dataDir, '--auth=scram-sha-256', '--username=postgres', `--pwfile=${pwfile}`, '--encoding=UTF8', '--no-locale', '--no-sync',
      ]);
      await run(cmd, args);
    } finally {
      rmSync(pwfile, { force: true });
    }
  }
  // Settings go in the config file, not through pg_ctl -o (which is a shell string).
  const conf = [
    `port = ${port}`,
    `listen_addresses = '127.0.0.1'`,
    `unix_socket_directories = '${dataDir}'`,
    `fsync = on`,
    `max_connections = 100`,
    `shared_buffers = '64MB'`,
  ].join('\n');
  writeFileSync(path.join(dataDir, 'postgresql.auto.conf'), `${conf}\n`);
  owned(path.join(dataDir, 'postgresql.auto.conf'));
  const logFile = path.join(dataDir, 'server.log');
  const [cmd, args] = asPgUser(path.join(bin, 'pg_ctl'), ['-D', dataDir, '-l', logFile, '-w', '-t', '60', 'start']);
  await run(cmd, args);
  const pid = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  return {
    pid,
    port,
    host: '127.0.0.1',
    user: 'postgres',
    dataDir,
    // SIGINT is PostgreSQL's "fast" shutdown: roll back sessions, checkpoint, exit.
    stop: () => stopPid(pid, 'SIGINT', 30_000),
  };
}

function pgUser(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  const parts = line?.split(':');
  if (!parts?.[2] || !parts[3]) throw new Error('system user "postgres" not found (install the postgresql package)');
  return { uid: Number(parts[2]), gid: Number(parts[3]) };
}

// --- Redis ------------------------------------------------------------------------------------------------

export interface RedisOptions {
  dir: string;
  port?: number;
  password: string;
  /** Keep RDB snapshots on a timer (the dev system does; the tests save explicitly). */
  persist?: boolean;
}

export interface RunningRedis extends RunningServer {
  dataDir: string;
}

export async function startRedis(opts: RedisOptions): Promise<RunningRedis> {
  const dataDir = path.resolve(opts.dir);
  mkdirSync(dataDir, { recursive: true });
  const port = opts.port ?? (await freePort());
  // The password lives in a 0600 config file so it never shows in `ps`.
  const confFile = path.join(dataDir, 'redis.conf');
  writeFileSync(
    confFile,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dataDir}`,
      'dbfilename dump.rdb',
      opts.persist ? 'save 3600 1 300 100 60 10000' : 'save ""',
      `requirepass ${opts.password}`,
      'daemonize no',
      'protected-mode yes',
      `logfile ${path.join(dataDir, 'redis.log')}`,
    ].join('\n') + '\n',
    { mode: 0o600 },
  );
  const child = spawn('redis-server', [confFile], { stdio: 'ignore', detached: true });
  child.unref();
  const pid = child.pid;
  if (!pid) throw new Error('redis-server did not start (run scripts/setup.sh)');
  await waitFor('redis-server', () => portOpen(port), 20_000, path.join(dataDir, 'redis.log'));
  return { pid, port, dataDir, stop: () => stopPid(pid, 'SIGTERM') };
}

// --- Temporal dev server ----------------------------------------------------------------------------------

export function temporalBinary(name: 'temporal' | 'temporal-test-server', root = projectRoot()): string {
  const p = path.join(root, '.tools', 'venv', 'bin', name);
  if (!existsSync(p)) throw new Error(`${p} not found: run scripts/setup.sh`);
  return p;
}

export function projectRoot(): string {
  let dir = __dirname;
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('project root not found');
    dir = up;
  }
  return dir;
}

export interface TemporalOptions {
  dbFile: string;
  port?: number;
  /** Web UI port; omitted = headless. */
  uiPort?: number;
  logFile?: string;
  /** Codec server the Web UI calls to show encoded payloads readable (`--ui-codec-endpoint`). */
  uiCodecEndpoint?: string;
}

export interface RunningTemporal extends RunningServer {
  address: string;
  uiUrl?: string;
}

export async function startTemporal(opts: TemporalOptions): Promise<RunningTemporal> {
  const port = opts.port ?? (await freePort());
  const args = [
    'server', 'start-dev',
    '--ip', '127.0.0.1',
    '--port', String(port),
    '--http-port', String(await freePort()),
    '--metrics-port', String(await freePort()),
    '--db-filename', opts.dbFile,
    '--log-level', 'warn',
    ...SEARCH_ATTRIBUTES.flatMap((k) => ['--search-attribute', `${k.name}=Keyword`]),
    ...(opts.uiPort ? ['--ui-port', String(opts.uiPort)] : ['--headless']),
    ...(opts.uiPort && opts.uiCodecEndpoint ? ['--ui-codec-endpoint', opts.uiCodecEndpoint] : []),
  ];
  mkdirSync(path.dirname(opts.dbFile), { recursive: true });
  const logFile = opts.logFile ?? `${opts.dbFile}.log`;
  const out = openSync(logFile, 'a');
  const child = spawn(temporalBinary('temporal'), args, { stdio: ['ignore', out, out], detached: true });
  child.unref();
  const pid = child.pid;
  if (!pid) throw new Error('temporal dev server did not start');
  const address = `127.0.0.1:${port}`;
  await waitFor(
    'temporal dev server',
    async () => {
      if (!alive(pid)) throw new Error('exited');
      const conn = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await conn.workflowService.getSystemInfo({});
        return true;
      } finally {
        await conn.close();
      }
    },
    60_000,
    logFile,
  );
  return { pid, port, address, uiUrl: opts.uiPort ? `http://localhost:${opts.uiPort}` : undefined, stop: () => stopPid(pid, 'SIGTERM') };
}

export function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}
