import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import { parse, stringify } from 'yaml';
import { type RunningTemporal, alive, freePort, portOpen, startTemporal, stopPid } from '../../src/client/local-servers';
import { servers, tempDir } from './servers';
import { testCodec } from './temporal';
import { trackPid, untrackPid } from './tracked-pids';

/**
 * Servers a fault test starts for itself, because it stops and restarts them (the shared ones serve every
 * other test file). Each runs with its pid recorded (tracked-pids.ts) until the test stops it.
 */

const track = (pid: number, what: string): void => trackPid(servers().root, pid, what);
const untrack = (pid: number): void => untrackPid(servers().root, pid);

/** When a server went down (its process gone) and when it was back (answering). */
export interface Downtime {
  stoppedAt: number;
  backAt: number;
}

export interface PrivateTemporal {
  readonly address: string;
  readonly pid: number;
  /** Stop the server by pid, stay down `downMs`, start it again on the same port and the same SQLite file. */
  restart(downMs: number): Promise<Downtime>;
  stop(): Promise<void>;
}

/** A Temporal dev server of the test's own, its state in a SQLite file that survives restarts. */
export async function privateTemporal(): Promise<PrivateTemporal> {
  const dbFile = path.join(tempDir('temporal-private'), 'temporal.db');
  const port = await freePort();
  let running: RunningTemporal | undefined = await startTemporal({ dbFile, port });
  track(running.pid, 'temporal');
  const stop = async (): Promise<void> => {
    if (!running) return;
    const { pid } = running;
    await running.stop();
    untrack(pid);
    running = undefined;
  };
  return {
    address: `127.0.0.1:${port}`,
    get pid() {
      return running?.pid ?? 0;
    },
    restart: async (downMs) => {
      await stop();
      const stoppedAt = Date.now();
      await sleep(downMs);
      running = await startTemporal({ dbFile, port });
      track(running.pid, 'temporal');
      return { stoppedAt, backAt: Date.now() };
    },
    stop,
  };
}

/** A client of a private server, with the payload codec every test client and worker uses. */
export async function clientOf(address: string): Promise<{ client: Client; connection: Connection }> {
  const connection = await Connection.connect({ address });
  return { client: new Client({ connection, namespace: 'default', dataConverter: { payloadCodecs: [testCodec()] } }), connection };
}

/**
 * A private Temporal server for the whole test file, with a client on it (the tests' codec); stopped by pid
 * after the file. Read `temporal` and `client` inside tests (they are set in beforeAll).
 */
export function usePrivateTemporal(): { readonly temporal: PrivateTemporal; readonly client: Client } {
  let temporal: PrivateTemporal | undefined;
  let conn: { client: Client; connection: Connection } | undefined;
  beforeAll(async () => {
    temporal = await privateTemporal();
    conn = await clientOf(temporal.address);
  });
  afterAll(async () => {
    await conn?.connection.close();
    await temporal?.stop();
  });
  return {
    get temporal(): PrivateTemporal {
      if (!temporal) throw new Error('usePrivateTemporal: only inside tests');
      return temporal;
    },
    get client(): Client {
      if (!conn) throw new Error('usePrivateTemporal: only inside tests');
      return conn.client;
    },
  };
}

/** A test config (YAML) pointed at a private Temporal server. */
export function onTemporal(yaml: string, address: string): string {
  const raw = parse(yaml);
  raw.temporal.address = address;
  return stringify(raw);
}

export interface PrivateRedis {
  readonly host: string;
  readonly port: number;
  readonly password: string;
  readonly pid: number;
  /** Stop the server by pid (SIGTERM), stay down `downMs`, start it again on the same port and ACL file. */
  outage(downMs: number): Promise<Downtime>;
  stop(): Promise<void>;
}

/**
 * A Redis 7 of the test's own that keeps its users in an ACL file, as a production server whose ACL users
 * change at run time must (else a restart forgets them): the `default` user has `password`. No RDB.
 */
export async function privateRedis(password: string): Promise<PrivateRedis> {
  const dir = tempDir('redis-private');
  const port = await freePort();
  const aclFile = path.join(dir, 'users.acl');
  writeFileSync(aclFile, `user default on #${createHash('sha256').update(password).digest('hex')} ~* &* +@all\n`, { mode: 0o600 });
  const confFile = path.join(dir, 'redis.conf');
  writeFileSync(
    confFile,
    [`port ${port}`, 'bind 127.0.0.1', `dir ${dir}`, 'save ""', `aclfile ${aclFile}`, 'daemonize no', `logfile ${path.join(dir, 'redis.log')}`].join('\n') + '\n',
    { mode: 0o600 },
  );
  const start = async (): Promise<number> => {
    const child = spawn('redis-server', [confFile], { stdio: 'ignore', detached: true });
    child.unref();
    const pid = child.pid;
    if (!pid) throw new Error('redis-server did not start');
    track(pid, 'redis');
    for (let i = 0; !(await portOpen(port)); i++) {
      if (!alive(pid) || i > 200) throw new Error(`private redis-server did not come up (see ${dir}/redis.log)`);
      await sleep(100);
    }
    return pid;
  };
  let pid: number | undefined = await start();
  const stop = async (): Promise<void> => {
    if (!pid) return;
    await stopPid(pid, 'SIGTERM');
    untrack(pid);
    pid = undefined;
  };
  return {
    host: '127.0.0.1',
    port,
    password,
    get pid() {
      return pid ?? 0;
    },
    outage: async (downMs) => {
      await stop();
      const stoppedAt = Date.now();
      await sleep(downMs);
      pid = await start();
      return { stoppedAt, backAt: Date.now() };
    },
    stop,
  };
}
