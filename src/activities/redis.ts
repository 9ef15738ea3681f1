import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import Redis from 'ioredis';
import { type Config, type RedisTarget } from '../config/schema';
import { resolveSecret } from '../config/secrets';
import {
  type BackupManifest,
  createPrivateFile,
  ensureBackupDir,
  manifestPathFor,
  publishArtifact,
  publishedBackup,
  removeLeftovers,
  targetDir,
  writeFileAtomic,
} from './storage';
import { FAILURES } from '../workflows/failures';

export function findRedis(config: Config, name: string): { target: RedisTarget; field: string } {
  const i = config.targets.redis.findIndex((r) => r.name === name);
  const target = config.targets.redis[i];
  if (!target) throw ApplicationFailure.nonRetryable(`unknown redis target "${name}" (not in targets.redis)`, FAILURES.UnknownTarget);
  return { target, field: `targets.redis[${i}]` };
}

export function redisClient(target: RedisTarget, field: string): Redis {
  return new Redis({
    host: target.host,
    port: target.port,
    username: target.username,
    password: target.password ? resolveSecret(target.password, `${field}.password`) : undefined,
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    connectTimeout: 10_000,
    retryStrategy: () => null,
  });
}

function infoField(info: string, key: string): string | undefined {
  return new RegExp(`^${key}:(.*)$`, 'm').exec(info)?.[1]?.trim();
}

export interface SnapshotRedisInput {
  target: string;
  /** Unique per backup run; the idempotency key of this activity. */
  backupId: string;
  createdAt: string;
  workflowId?: string;
  runId?: string;
}

/**
 * BGSAVE, wait until the server reports a new successful save, copy its RDB into backup storage.
 * Idempotent by backupId: a retry returns the backup an earlier attempt published, or starts over.
 */
export async function snapshotRedis(config: Config, input: SnapshotRedisInput): Promise<BackupManifest> {
  const ctx = Context.current();
  const { target, field } = findRedis(config, input.target);
  const dir = targetDir(config.backups.root, target.name);
  await ensureBackupDir(dir);
  const file = `${input.backupId}.rdb`;
  const existing = await publishedBackup(dir, input.backupId);
  if (existing) return existing;
  await removeLeftovers(dir, input.backupId);

  const redis = redisClient(target, field);
  const started = Date.now();
  try {
    await redis.connect();
    const persistence = async (): Promise<string> => redis.info('persistence');
    // Wait out a save someone else started: its snapshot may predate this backup.
    while (infoField(await persistence(), 'rdb_bgsave_in_progress') === '1') {
      ctx.heartbeat('waiting for a running BGSAVE');
      await sleep(200, undefined, { signal: ctx.cancellationSignal });
    }
    // "Our save finished": the rdb_saves counter moved (Redis >= 7), else LASTSAVE (seconds) moved.
    const hasCounter = infoField(await persistence(), 'rdb_saves') !== undefined;
    const saves = async (): Promise<number> =>
      hasCounter ? Number(infoField(await persistence(), 'rdb_saves')) : await redis.lastsave();
    const before = await saves();
    // LASTSAVE has one-second resolution: make sure our save cannot land in the same second as the last one.
    if (!hasCounter && before >= Math.floor(Date.now() / 1000) - 1) await sleep(1100, undefined, { signal: ctx.cancellationSignal });
    await redis.bgsave();
    for (;;) {
      ctx.heartbeat('BGSAVE running');
      await sleep(200, undefined, { signal: ctx.cancellationSignal });
      const info = await persistence();
      if (infoField(info, 'rdb_bgsave_in_progress') === '1') continue;
      if (infoField(info, 'rdb_last_bgsave_status') !== 'ok') {
        throw ApplicationFailure.retryable(`BGSAVE on ${target.name} failed (rdb_last_bgsave_status=${infoField(info, 'rdb_last_bgsave_status')})`, FAILURES.RedisSaveFailed);
      }
      if ((await saves()) > before) break;
    }
    const serverVersion = infoField(await redis.info('server'), 'redis_version') ?? 'unknown';
    const dataDir = target.dataDir ?? ((await redis.config('GET', 'dir')) as string[])[1];
    const dbfilename = ((await redis.config('GET', 'dbfilename')) as string[])[1] ?? 'dump.rdb';
    if (!dataDir) throw ApplicationFailure.nonRetryable(`${field}.dataDir: cannot tell where ${target.name} writes its RDB file`, FAILURES.RedisDataDir);

    // Redis replaces dump.rdb by rename, so the copy reads one complete snapshot even if another save lands.
    const partial = path.join(dir, `.${input.backupId}.attempt${ctx.info.attempt}.partial`);
    let published;
    try {
      // Not fs.copyFile: it gives the copy the source's mode (often 0644); this file is created 0600.
      const out = await createPrivateFile(partial);
      await pipeline(createReadStream(path.join(dataDir, dbfilename)), out.createWriteStream());
      published = await publishArtifact(partial, path.join(dir, file));
    } catch (err) {
      await fs.rm(partial, { force: true });
      throw err;
    }
    const { sizeBytes, sha256 } = published;
    const manifest: BackupManifest = {
      version: 1,
      id: input.backupId,
      target: target.name,
      kind: 'redis',
      file,
      format: 'redis-rdb',
      sizeBytes,
      sha256,
      createdAt: input.createdAt,
      completedAt: new Date().toISOString(),
      durationMs: Date.now() - started,
      serverVersion,
      workflowId: input.workflowId,
      runId: input.runId,
    };
    await writeFileAtomic(manifestPathFor(dir, input.backupId), JSON.stringify(manifest, null, 2));
    return manifest;
  } finally {
    redis.disconnect();
  }
}
