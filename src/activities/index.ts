import { type Config, type Severity, durationMs } from '../config/schema';
import {
  type AwaitHealthyInput,
  type HostDeps,
  type StartInstanceInput,
  type UpstreamServer,
  type WatchInput,
  awaitHealthy,
  deploySettings,
  listInstances,
  pruneImages,
  readUpstream,
  removeInstances,
  setUpstream,
  startInstance,
  watchInstance,
} from './deploy';
import { type RestartContainersInput, type StartContainersInput, type StopContainersInput, restartContainers, startContainers, stopContainers } from './docker';
import { type EmailMessage, sendEmailOnce } from './email';
import { type DumpPostgresInput, dumpPostgres } from './postgres';
import { heartbeating } from './process';
import {
  type PlanRestoreInput,
  type RestorePlan,
  checkProductionHealth,
  dropScratchDatabase,
  planRestore,
  restoreAside,
  swapBack,
  swapDatabases,
  validateBackup,
  verifyRestoredCopy,
} from './restore';
import { type SnapshotRedisInput, snapshotRedis } from './redis';
import { type SlackPostInput, type SlackUpdateInput, postSlackMessage, updateSlackMessage } from './slack';
import { pruneDirectory } from './retention';
import * as rotation from './rotation';
import { type NotifyInput, escalationPolicy, notify } from './notify';
import { checkServiceHealth, containerCpu, remediationPlan } from './remediation';
import { type HealthCheckInput, type RaiseIncidentsInput, raiseIncidents, runHealthChecks } from './health';
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
    pruneBackups: heartbeating((input: PruneBackupsInput) =>
      pruneDirectory(
        targetDir(config.backups.root, input.target),
        config.backups.retention,
        new Date(input.now),
        input.dryRun,
        durationMs(config.backups.safetyKeep),
      ),
    ),
    // Idempotent by idempotencyKey: with notifications.sentLog a retry finds the earlier send and sends nothing;
    // without it every attempt carries the same Message-ID (SMTP itself cannot dedupe).
    sendEmail: heartbeating((msg: EmailMessage) => sendEmailOnce(config, msg)),
    // Idempotent by idempotencyKey: kept in the message's metadata; a retry finds the earlier post and returns it.
    postSlackMessage: heartbeating((input: SlackPostInput) => postSlackMessage(config, input)),
    // Idempotent by (channel, ts): an update replaces the whole message.
    updateSlackMessage: heartbeating((input: SlackUpdateInput) => updateSlackMessage(config, input)),

    // RB-01 restore. Every database these create or rename carries the restore id, the key of each retry.
    // Idempotent: reads config and the backup folder only.
    planRestore: heartbeating((input: PlanRestoreInput) => planRestore(config, input)),
    // Idempotent: reads the backup file only.
    validateBackup: heartbeating((plan: RestorePlan) => validateBackup(config, plan)),
    // Idempotent by plan.asideDb: a copy marked complete is reused, anything else under that name is rebuilt.
    restoreAside: (plan: RestorePlan) => restoreAside(config, plan),
    // Idempotent: read-only queries.
    verifyRestoredCopy: heartbeating((plan: RestorePlan) => verifyRestoredCopy(config, plan)),
    // Idempotent by the set of names that exist (both renames commit together).
    swapDatabases: heartbeating((plan: RestorePlan) => swapDatabases(config, plan)),
    // Idempotent by the set of names that exist; a no-op when there was no swap.
    swapBack: heartbeating((plan: RestorePlan) => swapBack(config, plan)),
    // Idempotent: DROP IF EXISTS, and only names a restore created.
    dropScratchDatabase: heartbeating((input: { target: string; database: string }) => dropScratchDatabase(config, input)),
    // Idempotent: read-only.
    checkProductionHealth: heartbeating((plan: RestorePlan) => checkProductionHealth(config, plan)),
    // Idempotent: a stopped container stays stopped.
    stopContainers: heartbeating((input: StopContainersInput) => stopContainers(input, config.targets.dockerHosts)),
    // Idempotent: a running container stays running.
    startContainers: heartbeating((input: StartContainersInput) => startContainers(input, config.targets.dockerHosts)),
    // Idempotent by notBefore: a container started at or after it is not restarted again.
    restartContainers: heartbeating((input: RestartContainersInput) => restartContainers(input, config.targets.dockerHosts)),

    // RB-02 secret rotation. Inputs are { set, rotationId } only: the values stay in the worker's encrypted state file.
    // Idempotent by rotationId: a retry returns the stored plan; another rotation of the set is refused.
    beginRotation: heartbeating((input: rotation.RotationRef & { workflowId: string; now: string }) => rotation.beginRotation(config, input)),
    // Idempotent: sets the same new password / key again.
    applyNewCredential: heartbeating((ref: rotation.RotationRef) => rotation.applyNewCredential(config, ref)),
    // Idempotent: a read-only login.
    verifyNewCredential: heartbeating((ref: rotation.RotationRef) => rotation.verifyNewCredential(config, ref)),
    // Idempotent by rotationId: the new text is always derived from the version kept at the first attempt.
    writeEnvFiles: heartbeating((ref: rotation.RotationRef) => rotation.writeEnvFiles(config, ref)),
    // Idempotent: writes the kept version back only where the file differs.
    restoreEnvFiles: heartbeating((ref: rotation.RotationRef) => rotation.restoreEnvFiles(config, ref)),
    // Idempotent: a GitHub secret PUT replaces the value.
    updateGithubSecrets: heartbeating((ref: rotation.RotationRef) => rotation.updateGithubSecrets(config, ref)),
    // Idempotent: PUT replaces, with the previous values.
    restoreGithubSecrets: heartbeating((ref: rotation.RotationRef) => rotation.restoreGithubSecrets(config, ref)),
    // Idempotent by notBefore (see restartContainers).
    restartConsumers: heartbeating((input: rotation.RotationRef & { notBefore: string }) => rotation.restartConsumers(config, input)),
    // Idempotent: NOLOGIN / removing hashes / dropping keys that are already gone changes nothing.
    retireOldCredential: heartbeating((ref: rotation.RotationRef) => rotation.retireOldCredential(config, ref)),
    // Idempotent: LOGIN / re-adding hashes and keys only where missing.
    unretireOldCredential: heartbeating((ref: rotation.RotationRef) => rotation.unretireOldCredential(config, ref)),
    // Idempotent: read-only.
    verifyOldRetired: heartbeating((ref: rotation.RotationRef) => rotation.verifyOldRetired(config, ref)),
    // Idempotent: NOLOGIN / removing the new hash / dropping the new key only where present.
    revertNewCredential: heartbeating((ref: rotation.RotationRef) => rotation.revertNewCredential(config, ref)),
    // Idempotent by rotationId: one audit line per rotation; no state file means already finished.
    finishRotation: heartbeating((input: rotation.FinishRotationInput) => rotation.finishRotation(config, input)),

    // Deploy / scale (issue 6). Idempotent: reads the config only.
    deploySettings: (input: { service: string }) => Promise.resolve().then(() => deploySettings(config, input.service)),

    // Incidents (WF-08) and the health watch (WF-09).
    // Idempotent: reads config only (the workflow keeps the result, so a running incident keeps its policy).
    escalationPolicy: (input: { severity: Severity; policy?: string }) => Promise.resolve(escalationPolicy(config, input)),
    // Idempotent by idempotencyKey (incident + step + channel + person): Message-ID, Slack metadata key, SMS Idempotency-Key.
    notify: heartbeating((input: NotifyInput) => notify(config, input)),
    // Idempotent: probes only read.
    runHealthChecks: heartbeating((input: HealthCheckInput) => runHealthChecks(config, input)),
    // Idempotent by incident id incident/<fingerprint>: signal-with-start joins a running incident (a retry's firing, keyed by the health-watch run, counts once); resolving twice is a no-op.
    raiseIncidents: heartbeating((input: RaiseIncidentsInput) => raiseIncidents(config, input)),
    // RB-03 remediation ladder.
    // Idempotent: read-only (the config, and `docker ps` for a deployed service's labelled containers).
    remediationPlan: (input: { service: string }) => remediationPlan(config, input),
    // Idempotent: read-only (docker stats).
    containerCpu: heartbeating((input: { dockerHost: string; containers: string[] }) => containerCpu(input, config.targets.dockerHosts)),
    // Idempotent: a GET.
    checkServiceHealth: heartbeating((input: { url?: string }) => checkServiceHealth(input)),
  };
}

/**
 * The activities a docker host's worker runs (task queue `docker:<host>`): the engine and the nginx in front
 * of it are local to that worker. Each refuses a service of another host (WrongHost).
 */
// eslint-disable-next-line @typescript-eslint/explicit-module-boundary-types -- the inferred type IS the activity contract
export function createDockerHostActivities(deps: HostDeps) {
  return {
    // Idempotent: read-only.
    listInstances: heartbeating((input: { service: string }) => listInstances(deps, input)),
    // Idempotent by container name <service>-<port> plus the version and deploy-id labels: an earlier attempt's container is reused.
    startInstance: heartbeating((input: StartInstanceInput) => startInstance(deps, input)),
    // Idempotent: read-only (docker inspect + HTTP probes).
    awaitHealthy: (input: AwaitHealthyInput) => awaitHealthy(deps, input),
    // Idempotent: read-only probes.
    watchInstance: (input: WatchInput) => watchInstance(deps, input),
    // Idempotent: a container already gone counts as removed.
    removeInstances: heartbeating((input: { service: string; names: string[]; stopSeconds?: number }) => removeInstances(deps, input)),
    // Idempotent: only removes, skips what is gone, in use or newer than the deployed image.
    pruneImages: heartbeating((input: { service: string; repository: string; current: string; keep: number }) => pruneImages(deps, input)),
    // Idempotent: read-only.
    readUpstream: (input: { service: string }) => readUpstream(deps, input),
    // Idempotent by content: atomic replace, nginx -t, then a graceful reload every time.
    setUpstream: heartbeating((input: { service: string; servers: UpstreamServer[] }) => setUpstream(deps, input)),
  };
}

export type DockerHostActivities = ReturnType<typeof createDockerHostActivities>;
export { hostTaskQueue as hostTaskQueueName } from './deploy';
export type { DeploySettings, Instance, UpstreamServer, WatchResult } from './deploy';

export type RunbookActivities = ReturnType<typeof createActivities>;
export type { BackupManifest } from './storage';
export type { PruneResult } from './retention';
export type { EmailResult, EmailMessage } from './email';
export type { SlackPostInput, SlackPostResult, SlackUpdateInput } from './slack';
export type { RestorePlan, CheckResult } from './restore';
export type { RotationPlan, RotationRef } from './rotation';
export type { NotifyInput, NotifyResult } from './notify';
export type { HealthCheckResult, HealthCheckInput, RaiseIncidentsInput } from './health';
export type { RemediationPlan } from './remediation';
