import { writeFileSync } from 'node:fs';
import { ScheduleNotFoundError } from '@temporalio/client';
import { parse, stringify } from 'yaml';
import { MANAGED_BY } from '../src/client/schedules';
import { createRunbookWorker } from '../src/workers/worker';
import { createDatabase, testConfig, uniqueName } from './support/servers';
import { runCli, writeConfigFile } from './support/processes';
import { useDevServer, workflowBundle } from './support/temporal';

const dev = useDevServer();

async function ourSchedules(taskQueue: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const s of dev.client.schedule.list()) {
    if (s.memo?.managedBy === MANAGED_BY && s.memo.taskQueue === taskQueue) ids.push(s.scheduleId);
  }
  return ids.sort();
}

/** The schedule list is a visibility query: wait until it shows what the server already has. */
async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('schedules sync: created once, unchanged on re-run, updated in place, removed with the config entry', async () => {
  const db = uniqueName('sched');
  await createDatabase(db);
  const taskQueue = uniqueName('sched');
  const { yaml, config } = testConfig({ databases: [db], taskQueue });
  const target = config.targets.databases[0]!.name;
  const scheduleId = `backup-${target}`;
  const drillId = `verify-backup-${target}`;
  const file = writeConfigFile(yaml);
  const edit = (change: (raw: { targets: { databases: Array<Record<string, unknown>> } }) => void): void => {
    const raw = parse(yaml) as { targets: { databases: Array<Record<string, unknown>> } };
    change(raw);
    writeFileSync(file, stringify(raw));
  };

  const first = await runCli(['--config', file, '--json', 'schedules', 'sync']);
  expect(first.stderr).toBe('');
  expect(JSON.parse(first.stdout)).toEqual({ created: [scheduleId, drillId], updated: [], unchanged: [], deleted: [] });
  const second = await runCli(['--config', file, '--json', 'schedules', 'sync']);
  expect(JSON.parse(second.stdout)).toEqual({ created: [], updated: [], unchanged: [scheduleId, drillId], deleted: [] });
  expect(await eventually(() => ourSchedules(taskQueue), (ids) => ids.length === 2)).toEqual([scheduleId, drillId].sort());

  // WF-05: the restore drill runs weekly, Sunday 03:00.
  const drill = await dev.client.schedule.getHandle(drillId).describe();
  expect(drill.spec.calendars?.[0]).toMatchObject({ dayOfWeek: [{ start: 'SUNDAY', end: 'SUNDAY', step: 1 }], hour: [{ start: 3, end: 3, step: 1 }] });
  expect(drill.action).toMatchObject({ workflowType: 'verifyBackup', workflowId: `verify-backup/${target}` });

  const created = await dev.client.schedule.getHandle(scheduleId).describe();
  expect(created.spec.calendars?.[0]).toMatchObject({ hour: [{ start: 2, end: 2, step: 1 }], minute: [{ start: 0, end: 0, step: 1 }] });
  expect(created.spec.timezone).toBe('UTC');
  expect(created.policies.overlap).toBe('SKIP');
  expect(created.action).toMatchObject({ type: 'startWorkflow', workflowType: 'backup', workflowId: `backup/${target}`, taskQueue });

  edit((raw) => (raw.targets.databases[0]!.backup = { cron: '30 3 * * *', timezone: 'Europe/Madrid' }));
  const third = await runCli(['--config', file, '--json', 'schedules', 'sync']);
  expect(JSON.parse(third.stdout)).toEqual({ created: [], updated: [scheduleId], unchanged: [drillId], deleted: [] });
  const updated = await dev.client.schedule.getHandle(scheduleId).describe();
  expect(updated.spec.calendars?.[0]).toMatchObject({ hour: [{ start: 3, end: 3, step: 1 }], minute: [{ start: 30, end: 30, step: 1 }] });
  expect(updated.spec.timezone).toBe('Europe/Madrid');
  expect(updated.info.createdAt).toEqual(created.info.createdAt); // the same schedule, changed in place
  expect(await ourSchedules(taskQueue)).toEqual([scheduleId, drillId].sort());

  // The schedule really starts the runbook: trigger it now and let a worker run the backup.
  const worker = await createRunbookWorker({ config, connection: dev.workerConnection, workflowBundle: await workflowBundle() });
  await worker.runUntil(async () => {
    await dev.client.schedule.getHandle(scheduleId).trigger();
    const run = await eventually(
      async () => (await dev.client.schedule.getHandle(scheduleId).describe()).info.recentActions[0],
      (a) => a !== undefined,
    );
    expect(run?.action.workflow.workflowId).toMatch(new RegExp(`^backup/${target}-`));
    const result = await dev.client.workflow.getHandle(run!.action.workflow.workflowId).result();
    expect(result).toMatchObject({ manifest: { target, kind: 'postgres' } });
  });

  edit((raw) => {
    raw.targets.databases[0]!.backup = false;
    raw.targets.databases[0]!.restore = { verify: false };
  });
  const fourth = await runCli(['--config', file, '--json', 'schedules', 'sync']);
  expect(JSON.parse(fourth.stdout)).toEqual({ created: [], updated: [], unchanged: [], deleted: [scheduleId, drillId] });
  await expect(dev.client.schedule.getHandle(scheduleId).describe()).rejects.toBeInstanceOf(ScheduleNotFoundError);
});

test('schedules sync refuses bad runbook parameters before changing anything', async () => {
  const taskQueue = uniqueName('sched_bad');
  const db = uniqueName('sched_ok');
  const { yaml } = testConfig({
    taskQueue,
    databases: [db], // valid: its backup schedule would be created if sync did not validate everything first
    extra: { schedules: [{ id: 'nightly-x', runbook: 'backup', params: { target: 'no-such-target' }, cron: '0 1 * * *' }] },
  });
  const file = writeConfigFile(yaml);
  const r = await runCli(['--config', file, 'schedules', 'sync']);
  expect(r.exitCode).toBe(2);
  expect(r.stderr).toContain('schedules[0].params.target: unknown target "no-such-target"');
  expect(await ourSchedules(taskQueue)).toEqual([]);
});
