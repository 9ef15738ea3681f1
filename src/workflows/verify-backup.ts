import { ApplicationFailure, CancellationScope, isCancellation, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { CheckResult, RunbookActivities } from '../activities';
import type { VerifyBackupInput } from '../config/runbooks';
import { LONG, QUICK } from './activity-options';
import { Progress, errorMessage } from './progress';
import { ChatThread } from './chat';

const quick = proxyActivities<RunbookActivities>(QUICK);
const long = proxyActivities<RunbookActivities>(LONG);

export interface DrillResult {
  target: string;
  backupId: string;
  /** RPO evidence: how old the newest backup was when the drill ran. */
  backupAgeMs: number;
  /** RTO evidence: how long pg_restore took to bring the backup back. */
  restoreMs: number;
  checks: CheckResult[];
  scratchDatabase: string;
}

/**
 * WF-05 drill (weekly, Sunday 03:00 by default): restore the newest backup into a scratch database, run
 * the target's checks, measure restore time and backup age, drop the scratch database, email on failure.
 * The result stays on the run, so `runbook describe` (or `runbook last verify-backup <db>`) shows the last drill.
 */
export async function verifyBackup(input: VerifyBackupInput): Promise<DrillResult> {
  const chat = ChatThread.fromMemo(`restore drill of ${input.target}`);
  const progress = new Progress('verifyBackup', chat);
  try {
    return await drill(input, progress);
  } finally {
    await progress.flush();
  }
}

async function drill(input: VerifyBackupInput, progress: Progress): Promise<DrillResult> {
  const info = workflowInfo();
  const restoreId = info.runId.replace(/-/g, '').slice(-8);
  let scratch: string | undefined;
  try {
    const plan = await progress.step('plan', () => quick.planRestore({ target: input.target, backup: 'latest', restoreId, purpose: 'verify' }), (p) => `backup ${p.backup.id}`);
    scratch = plan.asideDb;
    await progress.step('validate', () => quick.validateBackup(plan), (v) => `sha256 ok, ${v.entries} archive entries`);
    const restored = await progress.step('restore', () => long.restoreAside(plan), (r) => `${r.durationMs} ms`);
    const checks = await progress.step('checks', () => quick.verifyRestoredCopy(plan), (r) => `${r.length} check(s) passed`);
    await progress.step('drop scratch', () => quick.dropScratchDatabase({ target: plan.target, database: plan.asideDb }));
    progress.finish('completed');
    return {
      target: plan.target,
      backupId: plan.backup.id,
      backupAgeMs: Date.now() - Date.parse(plan.backup.createdAt),
      restoreMs: restored.durationMs,
      checks,
      scratchDatabase: plan.asideDb,
    };
  } catch (err) {
    progress.finish('failed');
    await CancellationScope.nonCancellable(async () => {
      if (scratch) await progress.step('drop scratch', () => quick.dropScratchDatabase({ target: input.target, database: scratch! })).catch(() => undefined);
      if (isCancellation(err)) return;
      await progress
        .step('notify', () =>
          quick.sendEmail({
            idempotencyKey: `${info.workflowId}/${info.runId}/drill-failed`,
            subject: `[runbook] backup drill of ${input.target} FAILED`,
            text: [
              `The weekly restore drill of "${input.target}" failed: its newest backup could not be shown to restore.`,
              ``,
              `Reason: ${errorMessage(err)}`,
              `Workflow: ${info.workflowId} (run ${info.runId})`,
            ].join('\n'),
          }),
        )
        .catch(() => undefined);
    });
    if (isCancellation(err)) throw err;
    throw ApplicationFailure.fromError(err, { message: `backup drill of ${input.target} failed: ${errorMessage(err)}` });
  }
}
