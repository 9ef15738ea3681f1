import { createHash } from 'node:crypto';
import {
  type Client,
  type ScheduleOptions,
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  type ScheduleOptionsStartWorkflowAction,
} from '@temporalio/client';
import { type Config, durationMs } from '../config/schema';
import { InputError, findRunbook, parseRunbookInput } from '../config/runbooks';
import { type RunbookStartMetadata, runbookStartMetadata } from './start-options';

/**
 * Temporal Schedules derived from the config: one backup schedule per target (backups.schedule, or the
 * target's own `backup:` spec; `backup: false` opts out) plus every entry of `schedules:`.
 * `runbook schedules sync` makes the server match this list: create, update in place, and delete the
 * schedules it made earlier for the same task queue that the config no longer has.
 */

export const MANAGED_BY = 'durable-runbooks';

export interface DesiredSchedule {
  scheduleId: string;
  runbook: string;
  workflowType: string;
  /** Schedule runs get "<workflowIdPrefix>-<scheduled time>" as workflow id. */
  workflowIdPrefix: string;
  input: unknown;
  target: string;
  cron: string;
  /** An interval ("90d") instead of the cron expression, for schedules like RB-02's every 90 days. */
  every?: string;
  timezone: string;
  overlap: keyof typeof OVERLAP;
  paused: boolean;
  /** Search attributes (TriggeredBy = schedule:<id>), summary and memo of every run it starts. */
  start?: RunbookStartMetadata;
}

const OVERLAP = {
  skip: ScheduleOverlapPolicy.SKIP,
  buffer_one: ScheduleOverlapPolicy.BUFFER_ONE,
  allow_all: ScheduleOverlapPolicy.ALLOW_ALL,
  cancel_other: ScheduleOverlapPolicy.CANCEL_OTHER,
  terminate_other: ScheduleOverlapPolicy.TERMINATE_OTHER,
} as const;

/** Everything the config asks for. Bad runbook parameters in `schedules:` are reported with their path. */
export function desiredSchedules(config: Config): DesiredSchedule[] {
  const out: DesiredSchedule[] = [];
  const backupTargets = [
    ...config.targets.databases.map((t) => ({ t, kind: 'postgres' as const })),
    ...config.targets.redis.map((t) => ({ t, kind: 'redis' as const })),
  ];
  for (const { t, kind } of backupTargets) {
    if (t.backup === false) continue;
    const spec = t.backup ?? config.backups.schedule;
    out.push({
      scheduleId: `backup-${t.name}`,
      runbook: 'backup',
      workflowType: 'backup',
      workflowIdPrefix: `backup/${t.name}`,
      input: { target: t.name, kind, prune: true, reason: 'scheduled' },
      target: t.name,
      cron: spec.cron,
      timezone: spec.timezone,
      overlap: 'skip',
      paused: false,
    });
  }
  for (const db of config.targets.databases) {
    if (db.restore.verify === false) continue;
    const spec = db.restore.verify ?? config.backups.verifySchedule;
    out.push({
      scheduleId: `verify-backup-${db.name}`,
      runbook: 'verify-backup',
      workflowType: 'verifyBackup',
      workflowIdPrefix: `verify-backup/${db.name}`,
      input: { target: db.name },
      target: db.name,
      cron: spec.cron,
      timezone: spec.timezone,
      overlap: 'skip',
      paused: false,
    });
  }
  // RB-02: each secret set every rotation.every (90 days), unless the set says otherwise or `every: false`.
  for (const set of config.rotation.sets) {
    if (set.every === false) continue;
    out.push({
      scheduleId: `rotate-${set.name}`,
      runbook: 'rotate-secrets',
      workflowType: 'rotateSecrets',
      workflowIdPrefix: `rotate/${set.name}`,
      input: { set: set.name, reason: 'scheduled' },
      target: set.name,
      cron: '',
      every: set.every ?? config.rotation.every,
      timezone: 'UTC',
      overlap: 'skip',
      paused: false,
    });
  }
  // WF-09: the health watch, every 5 minutes by default, when the config has a `health` section.
  if (config.health) {
    out.push({
      scheduleId: 'health-watch',
      runbook: 'health-watch',
      workflowType: 'healthWatch',
      workflowIdPrefix: 'health-watch/all',
      input: {},
      target: 'all',
      cron: config.health.schedule.cron,
      timezone: config.health.schedule.timezone,
      overlap: 'skip',
      paused: false,
    });
  }
  const problems: string[] = [];
  config.schedules.forEach((s, i) => {
    try {
      const def = findRunbook(s.runbook);
      const input = parseRunbookInput(def, s.params, config);
      out.push({
        scheduleId: s.id,
        runbook: def.name,
        workflowType: def.workflowType,
        workflowIdPrefix: `${def.name}/${def.target(input)}`,
        input,
        target: def.target(input),
        cron: s.cron,
        timezone: s.timezone,
        overlap: s.overlap,
        paused: s.paused,
      });
    } catch (err) {
      if (!(err instanceof InputError)) throw err;
      const field = (issue: string): string => (issue.startsWith('runbook:') ? `schedules[${i}].${issue}` : `schedules[${i}].params.${issue}`);
      problems.push(...err.issues.map(field));
    }
  });
  const ids = new Map<string, number>();
  for (const s of out) ids.set(s.scheduleId, (ids.get(s.scheduleId) ?? 0) + 1);
  for (const [id, n] of ids) if (n > 1) problems.push(`schedules: id "${id}" is used ${n} times (backup-<target> ids are taken by target backups)`);
  if (problems.length > 0) throw new InputError(problems);
  return out.map((d) => ({
    ...d,
    start: runbookStartMetadata(config, { ...findRunbook(d.runbook), target: () => d.target }, d.input, `schedule:${d.scheduleId}`),
  }));
}

/** A digest of everything sync controls, kept in the schedule's note: equal digest = nothing to update. */
function digest(d: DesiredSchedule, taskQueue: string): string {
  const h = createHash('sha256')
    .update(JSON.stringify([d.runbook, d.workflowType, d.workflowIdPrefix, d.input, d.cron, d.timezone, d.overlap, d.paused, taskQueue, d.start, ...(d.every ? [d.every] : [])]))
    .digest('hex')
    .slice(0, 16);
  return `managed by ${MANAGED_BY}; config ${h}`;
}

function action(d: DesiredSchedule, taskQueue: string): ScheduleOptionsStartWorkflowAction<never> {
  return {
    type: 'startWorkflow',
    workflowType: d.workflowType,
    workflowId: d.workflowIdPrefix,
    taskQueue,
    args: [d.input] as never,
    ...(d.start ?? {}),
  };
}

function options(d: DesiredSchedule, taskQueue: string): Omit<ScheduleOptions, 'scheduleId'> {
  return {
    spec: d.every ? { intervals: [{ every: durationMs(d.every) }], timezone: d.timezone } : { cronExpressions: [d.cron], timezone: d.timezone },
    action: action(d, taskQueue),
    policies: {
      overlap: OVERLAP[d.overlap],
      // After an outage run a missed backup once (SKIP keeps it to one), but not one from days ago.
      catchupWindow: '1 hour',
      pauseOnFailure: false,
    },
    state: { paused: d.paused, note: digest(d, taskQueue) },
    // Owner = this config's task queue: a sync never touches schedules another config (or a person) made.
    memo: { managedBy: MANAGED_BY, taskQueue },
  };
}

export interface SyncReport {
  created: string[];
  updated: string[];
  unchanged: string[];
  deleted: string[];
}

/** Make the server's schedules match the config. Safe to run again: a second run changes nothing. */
export async function syncSchedules(client: Client, config: Config, opts: { dryRun?: boolean } = {}): Promise<SyncReport> {
  const desired = desiredSchedules(config); // validates everything before the first change
  const taskQueue = config.temporal.taskQueue;
  const report: SyncReport = { created: [], updated: [], unchanged: [], deleted: [] };

  for (const d of desired) {
    const handle = client.schedule.getHandle(d.scheduleId);
    let current;
    try {
      current = await handle.describe();
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
    }
    if (!current) {
      if (!opts.dryRun) await client.schedule.create({ scheduleId: d.scheduleId, ...options(d, taskQueue) });
      report.created.push(d.scheduleId);
    } else if (current.state.note !== digest(d, taskQueue)) {
      if (!opts.dryRun) {
        const o = options(d, taskQueue);
        await handle.update((prev) => ({
          ...prev,
          spec: o.spec,
          action: o.action,
          policies: o.policies,
          state: { ...prev.state, paused: d.paused, note: digest(d, taskQueue) },
        }));
      }
      report.updated.push(d.scheduleId);
    } else {
      report.unchanged.push(d.scheduleId);
    }
  }

  const wanted = new Set(desired.map((d) => d.scheduleId));
  for await (const s of client.schedule.list()) {
    if (s.memo?.managedBy !== MANAGED_BY || s.memo.taskQueue !== taskQueue || wanted.has(s.scheduleId)) continue;
    if (!opts.dryRun) {
      await client.schedule
        .getHandle(s.scheduleId)
        .delete()
        .catch((err: unknown) => {
          if (!(err instanceof ScheduleNotFoundError)) throw err;
        });
    }
    report.deleted.push(s.scheduleId);
  }
  report.deleted.sort(); // the server lists in its own order; operators (and diffs) want a stable one
  return report;
}
