import { type Config } from '../config/schema';
import { type EmailMessage, sendEmail } from './email';
import { type DumpPostgresInput, dumpPostgres } from './postgres';
import { type SnapshotRedisInput, snapshotRedis } from './redis';
import { pruneDirectory } from './retention';
import { targetDir } from './storage';

export interface Deps {
  config: Config;
}

export interface PruneBackupsInput {
  target: string;
  /** The workflow's clock, so every retry judges ages against the same instant. */
  now: string;
  dryRun?: boolean;
}

/** Activities with their clients injected; workflows see them only as `typeof` this factory's result. */
// eslint-disable-next-line @typescript-eslint/explicit-module-boundary-types -- the inferred type IS the activity contract
export function createActivities({ config }: Deps) {
  return {
    // Idempotent by backupId: an existing valid manifest is returned; partials of crashed attempts are replaced.
    dumpPostgres: (input: DumpPostgresInput) => dumpPostgres(config, input),
    // Idempotent by backupId: an existing valid manifest is returned; otherwise a new BGSAVE is copied.
    snapshotRedis: (input: SnapshotRedisInput) => snapshotRedis(config, input),
    // Idempotent by (target folder, now): deleting non-kept backups never changes which are kept; tombstones finish cut deletions.
    pruneBackups: (input: PruneBackupsInput) =>
      pruneDirectory(targetDir(config.backups.root, input.target), config.backups.retention, new Date(input.now), input.dryRun),
    // Idempotent by idempotencyKey: every attempt carries the same Message-ID (SMTP itself cannot dedupe).
    sendEmail: (msg: EmailMessage) => sendEmail(config, msg),
  };
}

export type RunbookActivities = ReturnType<typeof createActivities>;
export type { BackupManifest } from './storage';
export type { PruneResult } from './retention';
export type { EmailResult, EmailMessage } from './email';
