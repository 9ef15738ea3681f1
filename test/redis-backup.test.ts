import { copyFileSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import Redis from 'ioredis';
import { type Client, type Connection } from '@temporalio/client';
import { type NativeConnection } from '@temporalio/worker';
import { type BackupResult } from '../src/workflows/backup';
import { createRunbookWorker } from '../src/workers/worker';
import { type RunningRedis, startRedis } from '../src/client/local-servers';
import { servers, tempDir, testConfig, uniqueName } from './support/servers';
import { devServerClient, devServerWorkerConnection, workflowBundle } from './support/temporal';
import { underUmask } from './support/backup-checks';

// A Redis backup is only worth something if a redis-server can start from it: the RDB the workflow
// stored is loaded by a second, fresh server and every key written before the backup is read back.

let client: Client;
let connection: Connection;
let workerConnection: NativeConnection;
let shared: Redis;
// Other test files share this Redis: every key of this file starts with its own random prefix.
const prefix = `${uniqueName('rbt')}:`;

const STRING_KEYS = 996;
interface Written {
  strings: Map<string, string>;
  hash: { key: string; fields: Record<string, string> };
  list: { key: string; items: string[] };
  set: { key: string; members: string[] };
}

function redisOn(port: number, password: string): Redis {
  return new Redis({ host: '127.0.0.1', port, password, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
}

/** All keys under this file's prefix (SCAN, never KEYS, as on a production server). */
async function keysOf(r: Redis): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys.sort();
}

async function writeData(r: Redis): Promise<Written> {
  const strings = new Map<string, string>();
  const pipe = r.multi();
  for (let i = 0; i < STRING_KEYS; i++) {
    const key = `${prefix}str:${String(i).padStart(4, '0')}`;
    // Mixed sizes and bytes: short ASCII, UTF-8 and a few values large enough for RDB's LZF compression.
    const value = i % 100 === 0 ? `big-${i}-${'x'.repeat(20_000)}` : `value-${i}-${randomBytes(8).toString('hex')}-é✓`;
    strings.set(key, value);
    pipe.set(key, value);
  }
  const hash = { key: `${prefix}hash`, fields: {} as Record<string, string> };
  for (let i = 0; i < 200; i++) hash.fields[`field${i}`] = `hv-${i}-${randomBytes(4).toString('hex')}`;
  pipe.hset(hash.key, hash.fields);
  const list = { key: `${prefix}list`, items: Array.from({ length: 300 }, (_, i) => `item-${i}`) };
  pipe.rpush(list.key, ...list.items);
  const set = { key: `${prefix}set`, members: Array.from({ length: 150 }, (_, i) => `member-${i}`) };
  pipe.sadd(set.key, ...set.members);
  // A key with a TTL far in the future survives the round trip too (a plain string, counted with the strings).
  const ttlKey = `${prefix}str:ttl`;
  strings.set(ttlKey, 'expires-in-a-day');
  pipe.set(ttlKey, 'expires-in-a-day', 'EX', 86_400);
  await pipe.exec();
  return { strings, hash, list, set };
}

beforeAll(async () => {
  ({ client, connection } = await devServerClient());
  workerConnection = await devServerWorkerConnection();
  const s = servers().redis;
  shared = redisOn(s.port, s.password);
  await shared.connect();
});

afterAll(async () => {
  const keys = await keysOf(shared);
  if (keys.length > 0) await shared.del(...keys);
  shared.disconnect();
  await connection.close();
  await workerConnection.close();
});

test('a Redis backup is an RDB a fresh redis-server loads with every key written before it', async () => {
  const written = await writeData(shared);
  const expectedKeys = [...written.strings.keys(), written.hash.key, written.list.key, written.set.key].sort();
  expect(expectedKeys).toHaveLength(STRING_KEYS + 4);
  expect(await keysOf(shared)).toEqual(expectedKeys);

  const taskQueue = uniqueName('redis-backup');
  const target = uniqueName('cache');
  // A backup root that does not exist yet, and a worker running under umask 000.
  const parent = tempDir('redis-backups');
  const { config } = testConfig({ redis: [target], taskQueue, backupRoot: path.join(parent, 'var', 'backups') });
  const workflowId = `backup/${target}/${new Date().toISOString()}`;
  const worker = await createRunbookWorker({ config, connection: workerConnection, workflowBundle: await workflowBundle() });
  const handle = await client.workflow.start('backup', { taskQueue, workflowId, args: [{ target, kind: 'redis', prune: true }] });
  const result: BackupResult = await underUmask(0o000, () => worker.runUntil(handle.result()));

  // Changes after the backup must not show up in it: the file is the snapshot, not the live data.
  await shared.set(`${prefix}str:0000`, 'changed-after-backup');
  await shared.set(`${prefix}str:after`, 'written-after-backup');

  // Manifest: what the workflow returned is what is on disk, and it describes the file exactly.
  const { manifest } = result;
  const dir = path.join(config.backups.root, target);
  const file = path.join(dir, manifest.file);
  const bytes = readFileSync(file);
  expect(manifest.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
  expect(manifest.sizeBytes).toBe(bytes.length);
  expect(bytes.subarray(0, 5).toString('latin1')).toBe('REDIS'); // RDB magic
  expect(manifest).toMatchObject({
    id: result.backupId,
    target,
    kind: 'redis',
    format: 'redis-rdb',
    file: `${result.backupId}.rdb`,
    workflowId,
    runId: handle.firstExecutionRunId,
  });
  expect(manifest.serverVersion).toMatch(/^\d+\.\d+/);
  expect(result.backupId.startsWith(`${target}-`)).toBe(true);
  expect(JSON.parse(readFileSync(path.join(dir, `${result.backupId}.manifest.json`), 'utf8'))).toEqual(manifest);
  expect(readdirSync(dir).sort()).toEqual([manifest.file, `${result.backupId}.manifest.json`].sort());
  expect(result.retention).toMatchObject({ kept: [result.backupId], pruned: [] });
  // Every folder the backup created is 0700 and the RDB copy and its manifest are 0600 (Redis wrote its own dump.rdb 0644).
  const modeOf = (p: string): string => (statSync(p).mode & 0o777).toString(8);
  expect({
    created: [path.join(parent, 'var'), config.backups.root, dir].map(modeOf),
    rdb: modeOf(file),
    manifest: modeOf(path.join(dir, `${result.backupId}.manifest.json`)),
  }).toEqual({ created: ['700', '700', '700'], rdb: '600', manifest: '600' });

  // Restore: a second redis-server starts on a copy of the RDB (as dump.rdb in its own folder).
  const restoreDir = tempDir('redis-restore');
  copyFileSync(file, path.join(restoreDir, 'dump.rdb'));
  const password = randomBytes(12).toString('hex');
  let restored: RunningRedis | undefined;
  let r: Redis | undefined;
  try {
    restored = await startRedis({ dir: restoreDir, password });
    expect(restored.port).not.toBe(servers().redis.port);
    r = redisOn(restored.port, password);
    await r.connect();
    // Port open is not "loaded": wait until the server has finished reading the RDB.
    for (let i = 0; i < 100 && /^loading:1$/m.test(await r.info('persistence')); i++) await new Promise((res) => setTimeout(res, 100));

    expect(await keysOf(r)).toEqual(expectedKeys);
    const stringKeys = [...written.strings.keys()];
    const values = await r.mget(...stringKeys);
    expect(Object.fromEntries(stringKeys.map((k, i) => [k, values[i]]))).toEqual(Object.fromEntries(written.strings));
    expect(await r.type(written.hash.key)).toBe('hash');
    expect(await r.hgetall(written.hash.key)).toEqual(written.hash.fields);
    expect(await r.type(written.list.key)).toBe('list');
    expect(await r.lrange(written.list.key, 0, -1)).toEqual(written.list.items);
    expect(await r.type(written.set.key)).toBe('set');
    expect((await r.smembers(written.set.key)).sort()).toEqual([...written.set.members].sort());
    const ttl = await r.ttl(`${prefix}str:ttl`);
    expect(ttl).toBeGreaterThan(86_000);
    expect(ttl).toBeLessThanOrEqual(86_400);
    expect(await r.get(`${prefix}str:after`)).toBeNull();
  } finally {
    r?.disconnect();
    await restored?.stop();
  }
});
