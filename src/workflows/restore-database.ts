import {
  ApplicationFailure,
  CancellationScope,
  ParentClosePolicy,
  condition,
  isCancellation,
  patched,
  proxyActivities,
  setHandler,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
import type { BackupManifest, RestorePlan, RunbookActivities } from '../activities';
import type { RestoreInput } from '../config/runbooks';
import { type ApprovalDecision, type ApprovalRecord, approveUpdate, keepSignal, rejectUpdate } from './definitions';
import { LONG, QUICK } from './activity-options';
import { countEvent } from './observe';
import { Progress, errorMessage } from './progress';
import { AskOnFailure } from './ask-on-failure';
import { ChatThread } from './chat';

const quick = proxyActivities<RunbookActivities>(QUICK);

const long = proxyActivities<RunbookActivities>(LONG);

// The success gate: services get a bounded time to come back, polled by retries (no blind sleeps).
const health = proxyActivities<RunbookActivities>({
  startToCloseTimeout: '30 seconds',
  heartbeatTimeout: '10 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 1.5, maximumInterval: '10 seconds', maximumAttempts: 8 },
});

export type RestoreOutcome =
  | { outcome: 'dry-run'; plan: RestorePlan; steps: string[] }
  | { outcome: 'not approved'; reason: 'timeout' | 'rejected'; decision?: ApprovalRecord; approvals?: ApprovalRecord[]; plan: RestorePlan }
  | {
      outcome: 'restored';
      plan: RestorePlan;
      /** The decision that opened the gate (the last approval of the quorum). */
      approval?: ApprovalRecord;
      /** Every approval, in order (quorum > 1 needs several different approvers). */
      approvals?: ApprovalRecord[];
      safetySnapshot: BackupManifest;
      /** From the first service stopped (or the swap, without services) to the last one started again. */
      downtimeMs: number;
      oldDatabase: string;
      dropOldAt: string;
      dropWorkflowId: string;
    };

type Compensation = { step: string; run: () => Promise<unknown> };

/** Safety snapshot and restore-aside side by side (runs started before it replay one after the other). */
const SNAPSHOT_ALONGSIDE_RESTORE = 'restore-snapshot-alongside';

/** A restored copy swapped back out is kept (drop-later timer) instead of dropped at once (runs before it drop it). */
const KEEP_FAILED_COPY = 'restore-keep-failed-copy';

/**
 * RB-01: restore a PostgreSQL database without losing anything.
 * validate → (approval) → safety snapshot → restore ASIDE → verify the copy → stop services → swap (two
 * renames, one transaction) → start services → health gate. A failure undoes what was done, newest first
 * (saga); production is only ever the old database or a verified copy. The old database is kept, and a
 * child workflow drops it after restore.keepOldFor unless someone signals `keep`.
 */
export async function restoreDatabase(input: RestoreInput): Promise<RestoreOutcome> {
  // Started from chat: progress, the approval request and questions go to its thread (memo `chat`).
  const chat = ChatThread.fromMemo(`restore of ${input.target}`);
  const progress = new Progress('restoreDatabase', chat);
  try {
    return await restore(input, progress, chat);
  } finally {
    await progress.flush();
  }
}

async function restore(input: RestoreInput, progress: Progress, chat: ChatThread | undefined): Promise<RestoreOutcome> {
  const info = workflowInfo();
  // Steps before production is touched ask an operator when they fail after their retries (retry / abort).
  const ask = new AskOnFailure(progress, chat);
  const restoreId = info.runId.replace(/-/g, '').slice(-8);

  // The gate opens with `quorum` approvals by different people (never the requester); one reject closes it.
  let decision: ApprovalRecord | undefined;
  const approvals: ApprovalRecord[] = [];
  let quorum = 1;
  let awaitingApproval = false;
  // People are compared by normalised name: "Alice " and "alice" are the same person.
  const person = (name: string | undefined): string => (name ?? '').trim().toLowerCase();
  const decide = (kind: ApprovalRecord['decision']) => (d: ApprovalDecision) => {
    const record: ApprovalRecord = { ...d, by: d.by.trim(), decision: kind, at: new Date().toISOString() };
    if (kind === 'approved') {
      approvals.push(record);
      record.pending = Math.max(0, quorum - approvals.length);
      if (record.pending === 0) decision = record;
    } else {
      decision = record;
    }
    return record;
  };
  const validate = (d: ApprovalDecision): void => {
    if (!awaitingApproval) throw new Error('this restore is not waiting for an approval');
    if (decision) throw new Error(`already ${decision.decision} by ${decision.by}`);
    if (!person(d.by)) throw new Error('by: who decides must be named');
    if (input.requestedBy && person(d.by) === person(input.requestedBy)) {
      throw new Error(`by: ${d.by.trim()} requested this restore and cannot approve it`);
    }
    if (approvals.some((a) => person(a.by) === person(d.by))) {
      throw new Error(`by: ${d.by.trim()} has already approved; ${quorum - approvals.length} more approver(s) needed`);
    }
  };
  setHandler(approveUpdate, decide('approved'), { validator: validate });
  setHandler(rejectUpdate, decide('rejected'), { validator: validate });

  let plan: RestorePlan;
  try {
    plan = await ask.run('plan', () =>
      progress.step('plan', () => quick.planRestore({ target: input.target, backup: input.backup, restoreId }), (p) =>
        `backup ${p.backup.id} → ${p.database} (aside ${p.asideDb})`,
      ),
    );
    await ask.run('validate', () => progress.step('validate', () => quick.validateBackup(plan), (v) => `sha256 ok, ${v.entries} archive entries`));
  } catch (err) {
    progress.finish('failed');
    if (isCancellation(err)) throw err;
    throw ApplicationFailure.fromError(err, { message: `restore of ${input.target} refused, nothing was changed: ${errorMessage(err)}` });
  }

  if (input.dryRun) {
    progress.finish('completed');
    return {
      outcome: 'dry-run',
      plan,
      steps: [
        ...(plan.production ? [`wait up to ${plan.approvalTimeoutMs / 60_000} min for an approval (production)`] : []),
        `safety snapshot of ${plan.database}`,
        `pg_restore -j ${plan.jobs} ${plan.backup.file} into ${plan.asideDb}`,
        `verify ${plan.asideDb}: SELECT 1${plan.checks.length ? ` + ${plan.checks.length} configured check(s)` : ''}`,
        ...(plan.services.length ? [`stop ${plan.services.flatMap((s) => s.containers).join(', ')}`] : []),
        `swap: ${plan.database} → ${plan.oldDb}, ${plan.asideDb} → ${plan.database}`,
        ...(plan.services.length ? [`start ${plan.services.flatMap((s) => s.containers).join(', ')}`] : []),
        'health check (SQL + HTTP)',
        `drop ${plan.oldDb} after ${plan.keepOldForMs / 3_600_000} h`,
      ],
    };
  }

  if (plan.production || plan.approvalRequired) {
    quorum = plan.approvalQuorum ?? 1;
    awaitingApproval = true;
    const waiting = (): Promise<void> =>
      progress.show({ approval: { quorum, approvedBy: approvals.map((a) => a.by), ...(input.requestedBy ? { requestedBy: input.requestedBy } : {}) } });
    await waiting();
    const request = await chat?.approvalRequest(
      `🔒 Restore of *${plan.target}* from backup \`${plan.backup.id}\` needs ${quorum > 1 ? `${quorum} approvals` : 'an approval'}` +
        `${input.requestedBy ? ` (requested by ${input.requestedBy}, who cannot approve it)` : ''}. Reason: ${input.reason}`,
    );
    const said = (r: ApprovalRecord): string => `${r.by}${r.note ? `: ${r.note}` : ''}`;
    const decided = await progress.step(
      'approval',
      async () => {
        // Each approval short of the quorum shows in the status (and the chat message) at once.
        for (let seen = 0; ; ) {
          const ok = await condition(() => decision !== undefined || approvals.length > seen, plan.approvalTimeoutMs);
          if (!ok || decision) return ok;
          seen = approvals.length;
          await waiting();
        }
      },
      (ok) =>
        ok && decision
          ? decision.decision === 'approved'
            ? `approved by ${approvals.map(said).join(', ')}`
            : `rejected by ${said(decision)}`
          : 'timed out',
    );
    awaitingApproval = false;
    await progress.show({ approval: undefined });
    const approved = decided && decision?.decision === 'approved';
    await chat?.edit(
      request,
      approved ? `✅ Approved by ${approvals.map(said).join(', ')}` : decided && decision ? `⛔ Rejected by ${said(decision)}` : '⌛ No decision in time: not restored',
    );
    if (!approved) {
      progress.finish('completed');
      return { outcome: 'not approved', reason: decided ? 'rejected' : 'timeout', decision, ...(approvals.length ? { approvals } : {}), plan };
    }
  }

  const snapshotStep = (): Promise<BackupManifest> =>
    progress.step(
      'safety snapshot',
      () =>
        long.dumpPostgres({
          target: plan.target,
          backupId: `${plan.target}-prerestore-${restoreId}`,
          createdAt: new Date().toISOString(),
          workflowId: info.workflowId,
          runId: info.runId,
          purpose: 'safety',
        }),
      (m) => `${m.file} (${m.sizeBytes} bytes)`,
    );
  const asideStep = (): Promise<unknown> =>
    progress.step('restore aside', () => long.restoreAside(plan), (r) => (r.reused ? 'already restored' : `${r.durationMs} ms`));
  // The safety snapshot reads production while the backup is restored into the aside database: they touch
  // different databases, so they run side by side (runs started before this change did them one after the other).
  const alongside = patched(SNAPSHOT_ALONGSIDE_RESTORE);
  let safetySnapshot: BackupManifest | undefined = alongside ? undefined : await ask.run('safety snapshot', snapshotStep);

  const compensations: Compensation[] = [];
  const allContainers = plan.services.map((s) => ({ dockerHost: s.dockerHost, containers: s.containers }));
  const stopServices = (): Promise<unknown> => Promise.all(allContainers.map((c) => quick.stopContainers({ ...c, timeoutSeconds: 30 })));
  const startServices = (): Promise<unknown> => Promise.all(allContainers.map((c) => quick.startContainers(c)));
  let downtimeStart = 0;
  let downtimeMs = 0;
  let swapped = false;
  let swapBackState: string | undefined; // what `swap back` found (undefined: it did not run, or failed)
  let keptCopy: Awaited<ReturnType<typeof dropLater>> | undefined; // the swapped-out copy and its drop timer
  try {
    // Compensations run newest first. The restored copy only becomes plan.failedDb when `swap back` renames
    // it, so its drop is registered first and runs after the swap back.
    compensations.push({ step: `drop ${plan.asideDb}`, run: () => quick.dropScratchDatabase({ target: plan.target, database: plan.asideDb }) });
    const failedCopy: Compensation = { step: `drop ${plan.failedDb}`, run: () => quick.dropScratchDatabase({ target: plan.target, database: plan.failedDb }) };
    compensations.push(failedCopy);
    if (alongside) {
      const [snap, aside] = await Promise.allSettled([snapshotStep(), asideStep()]);
      // A step that failed after its retries becomes a question, one at a time (a retry runs the same idempotent activity).
      safetySnapshot = snap.status === 'fulfilled' ? snap.value : await ask.run('safety snapshot', snapshotStep, { failedWith: snap.reason });
      if (aside.status === 'rejected') await ask.run('restore aside', asideStep, { failedWith: aside.reason });
    } else {
      await ask.run('restore aside', asideStep);
    }
    await ask.run('verify copy', () => progress.step('verify copy', () => quick.verifyRestoredCopy(plan), (r) => `${r.length} check(s) passed`));
    // From here on services are down or production is swapped: no waiting for people, failures roll back at once.

    downtimeStart = Date.now();
    compensations.push({ step: 'start services', run: startServices });
    progress.hold(); // the downtime window: no chat activity until services are started again (or rolled back: flush resumes)
    if (allContainers.length) await progress.step('stop services', stopServices);
    compensations.push({
      step: 'swap back',
      run: async () => {
        swapBackState = (await quick.swapBack(plan)).state;
        // The copy was production and may hold writes made since the swap: keep it like the pre-restore database.
        if (swapBackState !== 'nothing to undo' && patched(KEEP_FAILED_COPY)) {
          Object.assign(failedCopy, { step: `keep ${plan.failedDb}`, run: async () => (keptCopy = await dropLater(plan, plan.failedDb)) });
        }
      },
    });
    swapped = true; // from here on, a failure means production must be swapped back
    await progress.step('swap', () => quick.swapDatabases(plan), (r) => `${r.state}, ${r.terminatedSessions} session(s) ended`);
    if (allContainers.length) {
      compensations.push({ step: 'stop services', run: stopServices });
      await progress.step('start services', startServices);
    }
    progress.release();
    downtimeMs = Date.now() - downtimeStart;
    await progress.step('health check', () => health.checkProductionHealth(plan), (r) => `${r.length} check(s) passed`);
  } catch (err) {
    progress.hold(); // the rollback stops and starts services too: no chat activity until it is done
    await CancellationScope.nonCancellable(async () => {
      for (const c of [...compensations].reverse()) {
        await progress.step(`undo: ${c.step}`, c.run).catch(() => undefined); // recorded in the timeline; go on with the rest
      }
    });
    progress.release();
    // runbook_rollbacks_total: production was swapped and went back (a failure before the swap touched nothing).
    if (swapped && swapBackState !== 'nothing to undo') countEvent('rollback');
    progress.finish('failed');
    if (isCancellation(err)) throw err;
    const undone = !swapped
      ? 'production was not touched'
      : swapBackState === 'nothing to undo'
        ? 'production was not swapped'
        : swapBackState
          ? 'production was swapped back to its pre-restore database'
          : `swapping production back FAILED: check which of ${plan.database} and ${plan.oldDb} holds what`;
    const kept = keptCopy
      ? `; the restored copy is kept as ${keptCopy.database} until ${keptCopy.dropAt} (signal keep to ${keptCopy.workflowId} to keep it longer)`
      : '';
    throw ApplicationFailure.fromError(err, { message: `restore of ${plan.target} failed and was rolled back (${undone}${kept}): ${errorMessage(err)}` });
  }

  const { workflowId: dropWorkflowId, dropAt: dropOldAt } = await progress.step('schedule drop', () => dropLater(plan, plan.oldDb));
  progress.finish('completed');
  return {
    outcome: 'restored',
    plan,
    approval: decision,
    ...(approvals.length ? { approvals } : {}),
    safetySnapshot: safetySnapshot!,
    downtimeMs,
    oldDatabase: plan.oldDb,
    dropOldAt,
    dropWorkflowId,
  };
}

/** Start the durable timer that drops `database` after restore.keepOldFor (signal `keep` to its run to keep it). */
async function dropLater(plan: RestorePlan, database: string): Promise<{ database: string; workflowId: string; dropAt: string }> {
  const workflowId = `drop/${plan.target}/${database}`;
  const dropAt = new Date(Date.now() + plan.keepOldForMs).toISOString();
  await startChild(dropDatabaseLater, {
    workflowId,
    args: [{ target: plan.target, database, afterMs: plan.keepOldForMs }],
    // The restore is over; the timer lives on by itself and keeps restore/<db> free for the next one.
    parentClosePolicy: ParentClosePolicy.ABANDON,
  });
  return { database, workflowId, dropAt };
}

export interface DropLaterInput {
  target: string;
  database: string;
  afterMs: number;
}

/** Keep a pre-restore database (or a restored copy swapped back out) for a while, then drop it. Signal `keep` (or cancel this run) to keep it. */
export async function dropDatabaseLater(input: DropLaterInput): Promise<{ dropped: boolean; keptBy?: string }> {
  const progress = new Progress('dropDatabaseLater');
  let keptBy: string | undefined;
  setHandler(keepSignal, (d) => {
    keptBy = d.by || 'unknown';
  });
  const kept = await progress.step('keep period', () => condition(() => keptBy !== undefined, input.afterMs), (k) => (k ? `kept by ${keptBy}` : 'elapsed'));
  if (kept) {
    progress.finish('completed');
    return { dropped: false, keptBy };
  }
  const r = await progress.step(`drop ${input.database}`, () => quick.dropScratchDatabase({ target: input.target, database: input.database }));
  progress.finish('completed');
  return { dropped: r.dropped };
}
