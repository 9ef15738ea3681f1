import { readdirSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import pg from 'pg';
import { type Config, type DatabaseTarget } from '../config/schema';
import { redact, resolveSecret } from '../config/secrets';
import { PG_ENV, runHeartbeated } from './process';
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

export function findDatabase(config: Config, name: string): { db: DatabaseTarget; field: string } {
  const i = config.targets.databases.findIndex((d) => d.name === name);
  const db = config.targets.databases[i];
  if (!db) {
    throw ApplicationFailure.nonRetryable(`unknown database target "${name}" (not in targets.databases)`, FAILURES.UnknownTarget);
  }
  return { db, field: `targets.databases[${i}]` };
}

/** pg_dump/pg_restore/psql: from backups.pgBinDir, else the newest Debian-style install, else PATH. */
export function pgBin(config: Config, tool: string): string {
  if (config.backups.pgBinDir) return path.join(config.backups.pgBinDir, tool);
  try {
    const versions = readdirSync('/usr/lib/postgresql')
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return path.join('/usr/lib/postgresql', versions[0], 'bin', tool);
  } catch {
    // not a Debian layout
  }
  return tool;
}

/** libpq environment for the CLI tools: the password travels in the environment, never in argv. */
export function libpqEnv(db: DatabaseTarget, field: string, database = db.database): Record<string, string> {
  return {
    PGHOST: db.host,
    PGPORT: String(db.port),
    PGUSER: db.user,
    PGDATABASE: database,
    PGPASSWORD: resolveSecret(db.password, `${field}.password`),
    PGAPPNAME: 'durable-runbooks',
    PGCONNECT_TIMEOUT: '10',
  };
}

export async function withPgClient<T>(db: DatabaseTarget, field: string, fn: (c: pg.Client) => Promise<T>, database = db.database): Promise<T> {
  const client = new pg.Client({
    host: db.host,
    port: db.port,
    user: db.user,
    database,
    password: resolveSecret(db.password, `${field}.password`),
    application_name: 'durable-runbooks',
    connectionTimeoutMillis: 10_000,
  });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export interface DumpPostgresInput {
  target: string;
  /** Unique per backup run; the idempotency key of this activity. */
  backupId: string;
  createdAt: string;
  workflowId?: string;
  runId?: string;
  purpose?: 'backup' | 'safety';
}

/**
 * pg_dump -Fc of one database target into backup storage, with a manifest.
 * Idempotent by backupId: a retry returns the backup an earlier attempt published, or replaces its partial file.
 */
export async function dumpPostgres(config: Config, input: DumpPostgresInput): Promise<BackupManifest> {
  const ctx = Context.current();
  const { db, field } = findDatabase(config, input.target);
  const dir = targetDir(config.backups.root, db.name);
  await ensureBackupDir(dir);

  const done = await publishedBackup(dir, input.backupId);
  if (done) return done;
  await removeLeftovers(dir, input.backupId);

  const env = libpqEnv(db, field);
  const serverVersion = await withPgClient(db, field, async (c) => {
    const r = await c.query<{ server_version: string }>('SHOW server_version');
    return r.rows[0]?.server_version ?? 'unknown';
  }).catch((err: unknown) => {
    // A database that does not exist is a config error: retrying for minutes only delays the alert.
    // Authentication failures stay retryable: a secret rotation may be switching credentials right now.
    if ((err as { code?: string }).code === '3D000') {
      throw ApplicationFailure.nonRetryable(`${field}.database: ${redact((err as Error).message)}`, FAILURES.DatabaseMissing);
    }
    throw err;
  });

  const file = `${input.backupId}.dump`;
  const partial = path.join(dir, `.${input.backupId}.attempt${ctx.info.attempt}.partial`);
  // pg_dump truncates the file it is given and keeps its mode: created here 0600, the dump is never readable by others.
  await (await createPrivateFile(partial)).close();
  const started = Date.now();
  const result = await runHeartbeated(pgBin(config, 'pg_dump'), ['--format=custom', '--no-password', '--file', partial], {
    env,
    passthrough: PG_ENV,
    marker: partial,
    progress: () => fs.stat(partial).then((st) => ({ bytes: st.size })),
  });
  if (result.isCanceled || result.failed) {
    await fs.rm(partial, { force: true });
    if (result.isCanceled) throw ctx.cancellationSignal.reason ?? new Error('cancelled');
    throw ApplicationFailure.retryable(
      `pg_dump of ${db.name} failed (exit ${result.exitCode ?? result.signal}): ${redact(String(result.stderr)).trim().slice(-500)}`,
      FAILURES.PgDumpFailed,
    );
  }

  const { sizeBytes, sha256 } = await publishArtifact(partial, path.join(dir, file));
  const manifest: BackupManifest = {
    version: 1,
    id: input.backupId,
    target: db.name,
    kind: 'postgres',
    file,
    format: 'pg_dump-custom',
    sizeBytes,
    sha256,
    createdAt: input.createdAt,
    completedAt: new Date().toISOString(),
    durationMs: Date.now() - started,
    serverVersion,
    database: db.database,
    workflowId: input.workflowId,
    runId: input.runId,
    purpose: input.purpose ?? 'backup',
  };
  await writeFileAtomic(manifestPathFor(dir, input.backupId), JSON.stringify(manifest, null, 2));
  await removeLeftovers(dir, input.backupId, [file]);
  return manifest;
}
