import { ApplicationFailure, CancellationScope, isCancellation, proxyActivities, sleep, workflowInfo } from '@temporalio/workflow';
import type { RotationPlan, RotationRef, RunbookActivities } from '../activities';
import type { RotateSecretsInput } from '../config/runbooks';
import { QUICK } from './activity-options';
import { Progress, errorMessage } from './progress';

const quick = proxyActivities<RunbookActivities>(QUICK);

// A rolling restart waits for each container in turn.
const restart = proxyActivities<RunbookActivities>({ ...QUICK, startToCloseTimeout: '30 minutes' });

export interface RotationResult {
  outcome: 'rotated';
  plan: RotationPlan;
  /** JWT: when the old keys stopped verifying. */
  oldKeysRemovedAt?: string;
  restarted: string[];
}

/**
 * RB-02: rotate one secret set without a single authentication failure.
 * plan (lock + new values, kept encrypted on the worker) → add the new credential beside the old one →
 * log in with it → .env files → GitHub secrets → rolling restart of the consumers → (JWT: the grace
 * period, a durable timer) → retire the old credential → check it is refused.
 * Until "retire" both credentials work, so a consumer on either one is served. Any failure (or a cancel)
 * rolls back in the order that keeps that true: old credential back → .env files and GitHub back →
 * consumers restarted onto the old values → new credential withdrawn. No secret value passes through here.
 */
export async function rotateSecrets(input: RotateSecretsInput): Promise<RotationResult> {
  const progress = new Progress('rotateSecrets');
  const info = workflowInfo();
  const stamp = new Date().toISOString().replace(/[-:]/g, '').slice(0, 15);
  const ref: RotationRef = { set: input.set, rotationId: `${stamp}Z-${info.runId.replace(/-/g, '').slice(-8)}` };

  const plan = await progress.step(
    'plan',
    () => quick.beginRotation({ ...ref, workflowId: info.workflowId, now: new Date().toISOString() }),
    (p) => (p.kind === 'postgres' ? `role ${p.oldRole ?? '(none)'} → ${p.newRole}` : p.kind === 'jwt' ? `signing key ${p.newKid}` : `Redis ACL user password`),
  );
  const done = { applied: false, env: false, github: false, restarted: false, retired: false };
  let restarted: string[] = [];
  let oldKeysRemovedAt: string | undefined;
  try {
    done.applied = true; // set before the call: a timed-out attempt may still have applied it
    await progress.step('add new credential', () => quick.applyNewCredential(ref));
    await progress.step('verify new credential', () => quick.verifyNewCredential(ref));
    if (plan.envFiles > 0) {
      done.env = true;
      await progress.step('write .env files', () => quick.writeEnvFiles(ref), (n) => `${n} file(s)`);
    }
    if (plan.githubSecrets.length > 0) {
      done.github = true;
      await progress.step('update GitHub secrets', () => quick.updateGithubSecrets(ref), (names) => names.join(', '));
    }
    if (plan.services.length > 0) {
      done.restarted = true;
      const notBefore = new Date().toISOString();
      restarted = await progress.step('restart consumers', () => restart.restartConsumers({ ...ref, notBefore }), (c) => c.join(', '));
    }
    if (plan.graceMs) {
      // Tokens signed with the old key stay valid until the longest of them expires.
      await progress.step('grace period', () => sleep(plan.graceMs!), () => `old key(s) ${plan.oldKids?.join(', ') || '(none)'} verified for ${plan.graceMs} ms`);
    }
    done.retired = true;
    await progress.step('retire old credential', () => quick.retireOldCredential(ref));
    if (plan.kind === 'jwt') oldKeysRemovedAt = new Date().toISOString();
    await progress.step('verify old credential refused', () => quick.verifyOldRetired(ref));
  } catch (err) {
    const reason = errorMessage(err);
    const problems = await CancellationScope.nonCancellable(() => rollBack(progress, ref, plan, done));
    await CancellationScope.nonCancellable(() =>
      quick.finishRotation({ ...ref, outcome: 'rolled back', at: new Date().toISOString(), detail: reason }),
    );
    progress.finish('failed');
    if (isCancellation(err)) throw err;
    const state = problems.length ? `rollback incomplete: ${problems.join('; ')}` : 'rolled back: the old values are in place everywhere';
    throw ApplicationFailure.nonRetryable(`rotation of "${input.set}" failed: ${reason}; ${state}`, 'RotationFailed');
  }
  await progress.step('finish', () => quick.finishRotation({ ...ref, outcome: 'rotated', at: new Date().toISOString() }));
  progress.finish('completed');
  return { outcome: 'rotated', plan, restarted, ...(oldKeysRemovedAt ? { oldKeysRemovedAt } : {}) };
}

/** Undo in the order that keeps consumers authenticated throughout; returns what could not be undone. */
async function rollBack(
  progress: Progress,
  ref: RotationRef,
  plan: RotationPlan,
  done: { applied: boolean; env: boolean; github: boolean; restarted: boolean; retired: boolean },
): Promise<string[]> {
  const problems: string[] = [];
  const undo = async (step: string, when: boolean, fn: () => Promise<unknown>): Promise<void> => {
    if (!when) return;
    try {
      await progress.step(`rollback: ${step}`, fn);
    } catch (err) {
      problems.push(`${step}: ${errorMessage(err)}`);
    }
  };
  await undo('old credential back', done.retired, () => quick.unretireOldCredential(ref));
  await undo('restore .env files', done.env, () => quick.restoreEnvFiles(ref));
  await undo('restore GitHub secrets', done.github, async () => {
    const r = await quick.restoreGithubSecrets(ref);
    if (r.unknown.length) throw new Error(`no previous value known for ${r.unknown.join(', ')} (not in a .env file)`);
  });
  const notBefore = new Date().toISOString();
  await undo('restart consumers', (done.env || done.restarted) && plan.services.length > 0, () => restart.restartConsumers({ ...ref, notBefore }));
  // Last: only now does no consumer hold the new credential.
  await undo('withdraw new credential', done.applied, () => quick.revertNewCredential(ref));
  return problems;
}
