import { ActivityCancellationType, ApplicationFailure, isCancellation, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { BackupManifest, PruneResult, RunbookActivities } from '../activities';
import type { BackupInput } from '../config/runbooks';
import { QUICK } from './activity-options';
import { Progress, errorMessage } from './progress';
import { AskOnFailure } from './ask-on-failure';
import { ChatThread } from './chat';
import { NON_RETRYABLE } from './failures';

/** How long a failed prune or notification waits for an answer before it is skipped (the backup itself is done). */
const ANSWER_WITHIN_MS = 3_600_000;

// Dumps can be long: liveness comes from heartbeats (a killed worker is noticed in 15 s), not from the total.
// A cancelled run waits for the dump to stop and remove its temp file, so "cancelled" means "nothing left".
const { dumpPostgres, snapshotRedis } = proxyActivities<RunbookActivities>({
  startToCloseTimeout: '6 hours',
  heartbeatTimeout: '15 seconds',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: {
    initialInterval: '10 seconds',
    backoffCoefficient: 2,
    maximumInterval: '5 minutes',
    maximumAttempts: 6,
    nonRetryableErrorTypes: NON_RETRYABLE.backup,
  },
});

// They heartbeat while they run, so a killed worker is noticed in 10 s, not at the 10-minute start-to-close.
const { pruneBackups, sendEmail } = proxyActivities<RunbookActivities>(QUICK);

export interface BackupResult {
  backupId: string;
  manifest: BackupManifest;
  retention?: PruneResult;
}

/** 20261124T020000Z */
function compactStamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

/**
 * WF-01: back up one target (pg_dump -Fc or Redis RDB) into storage with a manifest, then prune by the
 * retention policy. Any failure emails the operators once and fails the run, so it shows red in the UI.
 */
export async function backup(input: BackupInput): Promise<BackupResult> {
  const chat = ChatThread.fromMemo(`backup of ${input.target}`);
  const progress = new Progress('backup', chat);
  try {
    return await runBackup(input, progress, new AskOnFailure(progress, chat));
  } finally {
    await progress.flush();
  }
}

async function runBackup(input: BackupInput, progress: Progress, ask: AskOnFailure): Promise<BackupResult> {
  const info = workflowInfo();
  const startedAt = new Date();
  // Unique per run and stable across retries: the key every activity below is idempotent on.
  const backupId = `${input.target}-${compactStamp(startedAt)}-${info.runId.slice(-8)}`;
  const snapshotInput = {
    target: input.target,
    backupId,
    createdAt: startedAt.toISOString(),
    workflowId: info.workflowId,
    runId: info.runId,
  };
  try {
    const manifest = await progress.step(
      input.kind === 'postgres' ? 'dump' : 'snapshot',
      () => (input.kind === 'postgres' ? dumpPostgres(snapshotInput) : snapshotRedis(snapshotInput)),
      (m) => `${m.file}: ${m.sizeBytes} bytes, sha256 ${m.sha256.slice(0, 12)}…`,
    );
    // A prune that keeps failing asks (retry / skip / abort); skipped, the next backup prunes.
    const retention = input.prune
      ? await ask.run(
          'prune',
          () =>
            progress.step(
              'prune',
              () => pruneBackups({ target: input.target, now: startedAt.toISOString() }),
              (r) => `kept ${r.kept.length}, pruned ${r.pruned.length}`,
            ),
          { skip: () => undefined, timeoutMs: ANSWER_WITHIN_MS, onTimeout: 'skip' },
        )
      : undefined;
    progress.finish('completed');
    return { backupId, manifest, retention };
  } catch (err) {
    progress.finish('failed');
    if (isCancellation(err)) throw err;
    const reason = errorMessage(err);
    try {
      await ask.run('notify', () => progress.step('notify', () =>
        sendEmail({
          idempotencyKey: `${info.workflowId}/${info.runId}/backup-failed`,
          subject: `[runbook] backup of ${input.target} FAILED`,
          text: [
            `The ${input.kind} backup of "${input.target}" failed.`,
            ``,
            `Reason: ${reason}`,
            `Workflow: ${info.workflowId} (run ${info.runId})`,
            input.reason ? `Requested because: ${input.reason}` : '',
            ``,
            `Inspect it with: runbook describe ${info.workflowId}`,
          ].join('\n'),
        }),
      ), { skip: () => undefined, timeoutMs: ANSWER_WITHIN_MS, onTimeout: 'skip' });
    } catch {
      // The notify step records its own failure in the timeline; the run still fails with the backup's reason.
    }
    throw ApplicationFailure.fromError(err, { message: `backup of ${input.target} failed: ${reason}` });
  }
}
