import { ActivityFailure, ApplicationFailure, CancellationScope, isCancellation, patched, proxyActivities, sleep, workflowInfo } from '@temporalio/workflow';
import type { RotationPlan, RotationRef, RunbookActivities } from '../activities';
import type { RotateSecretsInput } from '../config/runbooks';
import { QUICK } from './activity-options';
import { countEvent } from './observe';
import { Progress, errorMessage } from './progress';
import { FAILURES } from './failures';

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
 * consumers restarted onto the old values → new credential withdrawn. If an undo step fails, the rollback
 * stops before the withdrawal and keeps the state file (the lock): both credentials stay valid, and the run
 * fails saying which consumer holds which version and how to finish by hand. No secret value passes through here.
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
    if (Object.values(done).some(Boolean)) countEvent('rollback'); // runbook_rollbacks_total: something changed and is undone
    const rollback = await CancellationScope.nonCancellable(() => rollBack(progress, ref, plan, done));
    const { problems } = rollback;
    if (!rollback.keptNew) {
      await CancellationScope.nonCancellable(() =>
        quick.finishRotation({ ...ref, outcome: 'rolled back', at: new Date().toISOString(), detail: reason }),
      );
    }
    progress.finish('failed');
    if (isCancellation(err) && !rollback.keptNew) throw err;
    const state = rollback.keptNew
      ? keptNewMessage(plan, problems, rollback.keptNew)
      : problems.length ? `rollback incomplete: ${problems.join('; ')}` : 'rolled back: the old values are in place everywhere';
    throw ApplicationFailure.nonRetryable(`rotation of "${input.set}" failed: ${reason}; ${state}`, FAILURES.RotationFailed);
  }
  await progress.step('finish', () => quick.finishRotation({ ...ref, outcome: 'rotated', at: new Date().toISOString() }));
  progress.finish('completed');
  return { outcome: 'rotated', plan, restarted, ...(oldKeysRemovedAt ? { oldKeysRemovedAt } : {}) };
}

/**
 * Since this change a rollback whose undo step failed stops before "withdraw new credential" and keeps the
 * state file (the set's lock): a consumer left on the new value must not be locked out.
 */
export const KEEP_NEW_ON_FAILED_UNDO = 'rotation-keep-new-credential-on-failed-undo';

type Version = 'old' | 'new';

/** Which value each consumer holds after an incomplete rollback, by consumer (".env file x", "GitHub secret y", "service z"). */
type Holdings = Array<[consumer: string, version: Version]>;

interface RollbackOutcome {
  problems: string[];
  /** Set when the new credential was left valid (and the lock kept): who holds which version. */
  keptNew?: Holdings;
}

/** The `notRestored` list an undo step's failure carries (restoreEnvFiles, restoreGithubSecrets), if it does. */
function notRestored(err: unknown): string[] | undefined {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  const details = cause instanceof ApplicationFailure ? (cause.details?.[0] as { notRestored?: unknown } | undefined) : undefined;
  return Array.isArray(details?.notRestored) ? (details.notRestored as string[]) : undefined;
}

/** Undo in the order that keeps consumers authenticated throughout; says what could not be undone. */
async function rollBack(
  progress: Progress,
  ref: RotationRef,
  plan: RotationPlan,
  done: { applied: boolean; env: boolean; github: boolean; restarted: boolean; retired: boolean },
): Promise<RollbackOutcome> {
  const problems: string[] = [];
  /** Runs the step when due; returns the error it failed with (undefined: done or not due). */
  const undo = async (step: string, when: boolean, fn: () => Promise<unknown>): Promise<unknown> => {
    if (!when) return undefined;
    try {
      await progress.step(`rollback: ${step}`, fn);
      return undefined;
    } catch (err) {
      problems.push(`${step}: ${errorMessage(err)}`);
      return err ?? new Error('failed');
    }
  };
  const envFiles = plan.envFilePaths ?? (plan.envFiles ? [`(${plan.envFiles} file(s) of the set)`] : []);
  const unretired = await undo('old credential back', done.retired, () => quick.unretireOldCredential(ref));
  if (unretired !== undefined && patched(KEEP_NEW_ON_FAILED_UNDO)) {
    // Retiring comes after every consumer moved to the new value: moving them back now would lock them out.
    return { problems, keptNew: holdings(plan, envFiles, envFiles, plan.githubSecrets, true) };
  }
  const envErr = await undo('restore .env files', done.env, () => quick.restoreEnvFiles(ref));
  const ghErr = await undo('restore GitHub secrets', done.github, async () => {
    const r = await quick.restoreGithubSecrets(ref);
    if (r.unknown.length) throw ApplicationFailure.create({ message: `no previous value known for ${r.unknown.join(', ')} (not in a .env file)`, details: [{ notRestored: r.unknown }] });
  });
  const notBefore = new Date().toISOString();
  const restarting = (done.env || done.restarted) && plan.services.length > 0;
  const restartErr = await undo('restart consumers', restarting, () => restart.restartConsumers({ ...ref, notBefore }));
  if (problems.length && patched(KEEP_NEW_ON_FAILED_UNDO)) {
    // A consumer may still hold the new value: the new credential stays valid, and so does the old one.
    const envNew = envErr === undefined ? [] : (notRestored(envErr) ?? envFiles);
    const ghNew = ghErr === undefined ? [] : (notRestored(ghErr) ?? plan.githubSecrets);
    const servicesNew = restartErr === undefined ? restarting && envNew.length > 0 : done.restarted || envNew.length > 0;
    return { problems, keptNew: holdings(plan, envFiles, envNew, ghNew, servicesNew) };
  }
  // Last: only now does no consumer hold the new credential.
  await undo('withdraw new credential', done.applied, () => quick.revertNewCredential(ref));
  return { problems };
}

function holdings(plan: RotationPlan, envFiles: string[], envNew: string[], ghNew: string[], servicesNew: boolean): Holdings {
  const v = (isNew: boolean): Version => (isNew ? 'new' : 'old');
  return [
    ...envFiles.map((f): [string, Version] => [`.env file ${f}`, v(envNew.includes(f))]),
    ...plan.githubSecrets.map((g): [string, Version] => [`GitHub secret ${g}`, v(ghNew.includes(g))]),
    ...plan.services.map((s): [string, Version] => [`service ${s}`, v(servicesNew)]),
  ];
}

/** The end of the failure message of a rollback that left the new credential valid: who holds what, and how to finish. */
function keptNewMessage(plan: RotationPlan, problems: string[], holdings: Holdings): string {
  const lock = `<rotation.stateDir>/${plan.set}.state`;
  const held = holdings.map(([c, v]) => `${c}: ${v}`).join('; ');
  const allNew = holdings.every(([, v]) => v === 'new');
  const withdrawNew =
    plan.kind === 'postgres' ? `ALTER ROLE "${plan.newRole}" NOLOGIN` : plan.kind === 'redis' ? 'ACL SETUSER <user> !<hash> for each password hash ACL GETUSER lists other than the old password\'s' : `remove key ${plan.newKid} from the key set`;
  const retireOld =
    plan.kind === 'postgres' ? (plan.oldRole ? `ALTER ROLE "${plan.oldRole}" NOLOGIN` : 'nothing to retire') : plan.kind === 'redis' ? 'ACL SETUSER <user> !<hash> for each password hash other than the new password\'s' : `remove key(s) ${plan.oldKids?.join(', ') || '(none)'} from the key set`;
  const finish = allNew && problems.some((p) => p.startsWith('old credential back'))
    ? `every consumer holds the new value: to finish the rotation by hand make sure the old credential is refused (${retireOld}), then delete ${lock}`
    : `to finish the rollback by hand put the old value back wherever "new" is listed (the old values are in each .env file's .env.before-${plan.rotationId}), restart the services that read it, then withdraw the new credential (${withdrawNew}) and delete ${lock}`;
  return `rollback incomplete: ${problems.join('; ')}. Nothing was withdrawn: the old and the new credential both stay valid, so every consumer still logs in, and the lock ${lock} is kept. Consumers: ${held}. ${finish[0]!.toUpperCase()}${finish.slice(1)}`;
}
