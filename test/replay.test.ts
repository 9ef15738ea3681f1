import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import * as workflows from '../src/workflows';
import { HISTORIES_DIR } from './support/histories';
import { workflowBundle } from './support/temporal';

// Histories recorded from real runs (RECORD_HISTORIES=1 npx jest ...). Replaying them against today's
// workflow code proves a change does not break runs that are in flight on a live cluster.
const files = readdirSync(HISTORIES_DIR).filter((f) => f.endsWith('.json'));

interface HistoryEvent {
  eventType?: string;
  workflowExecutionStartedEventAttributes?: { workflowType?: { name?: string } };
  activityTaskScheduledEventAttributes?: { activityType?: { name?: string } };
}
const events = (file: string): HistoryEvent[] => (JSON.parse(readFileSync(path.join(HISTORIES_DIR, file), 'utf8')) as { events: HistoryEvent[] }).events;
const workflowType = (file: string): string | undefined => events(file)[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name;

test('every workflow type the worker registers has at least one recorded history', () => {
  const recorded = new Set(files.map(workflowType));
  const missing = Object.keys(workflows).filter((type) => !recorded.has(type));
  expect(missing).toEqual([]);
});

test.each(files)('%s replays deterministically against the current workflow code', async (file) => {
  const history = historyFromJSON(JSON.parse(readFileSync(path.join(HISTORIES_DIR, file), 'utf8')));
  await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, path.basename(file, '.json'));
});

// Negative control: the replay above can fail. The same history with its first scheduled activity renamed no
// longer matches the commands the workflow code issues, and replay must say so.
const withActivities = files.filter((f) => events(f).some((e) => e.activityTaskScheduledEventAttributes));

test('the negative control covers every workflow type', () => {
  expect([...new Set(withActivities.map(workflowType))].sort()).toEqual(Object.keys(workflows).sort());
});

test.each(withActivities)('%s with its first scheduled activity renamed is refused as a determinism violation', async (file) => {
  const json = JSON.parse(readFileSync(path.join(HISTORIES_DIR, file), 'utf8')) as { events: HistoryEvent[] };
  const scheduled = json.events.find((e) => e.activityTaskScheduledEventAttributes)!.activityTaskScheduledEventAttributes!;
  const original = scheduled.activityType!.name!;
  scheduled.activityType = { name: 'notWhatTheCodeSchedules' };
  const err = await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, historyFromJSON(json), path.basename(file, '.json')).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DeterminismViolationError);
  expect((err as Error).message).toContain('notWhatTheCodeSchedules');
  expect((err as Error).message).toContain(original);
});
