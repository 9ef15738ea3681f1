import { setTimeout as sleep } from 'node:timers/promises';
import { type WorkflowHandle } from '@temporalio/client';
import { type RunbookStatus, statusQuery } from '../../src/workflows/definitions';

/** Poll `probe` every `everyMs` until it returns something other than undefined (a throw counts as "not yet"). */
export async function waitUntil<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 120_000, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Wait (status query, polled every 50 ms) until the run is in `step`; fails at once if the run ends first. */
export async function waitForStep(handle: WorkflowHandle, step: string, timeoutMs = 180_000): Promise<RunbookStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await handle.query(statusQuery).catch(() => undefined); // no workflow task yet, or no worker for a moment
    if (s?.step === step) return s;
    if (s && s.state !== 'running') throw new Error(`${handle.workflowId} ended in step "${s.step}" (${s.state}) before "${step}"`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${handle.workflowId} to reach step "${step}" (now: ${s?.step})`);
    await sleep(50);
  }
}

/** Activity attempts after the first, by activity type, from the run's history: where the fault hit. */
export async function retriedActivities(handle: WorkflowHandle): Promise<Record<string, number>> {
  const events = (await handle.fetchHistory()).events ?? [];
  const typeOf = new Map<string, string>();
  const out: Record<string, number> = {};
  for (const e of events) {
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled) typeOf.set(String(e.eventId), scheduled.activityType?.name ?? '?');
    const started = e.activityTaskStartedEventAttributes;
    if (started && (started.attempt ?? 1) > 1) {
      const type = typeOf.get(String(started.scheduledEventId)) ?? '?';
      out[type] = (out[type] ?? 0) + (started.attempt! - 1);
    }
  }
  return out;
}

function eventMs(t: { seconds?: unknown; nanos?: number | null } | null | undefined): number {
  return Number(t?.seconds ?? 0) * 1000 + (t?.nanos ?? 0) / 1e6;
}

/**
 * When the run's (last) activity of this type was scheduled and when it closed, by the server's history: a
 * fault "in the middle of a step" must fall in between.
 */
export async function activitySpan(handle: WorkflowHandle, activityType: string): Promise<{ scheduledAt: number; closedAt: number }> {
  const events = (await handle.fetchHistory()).events ?? [];
  const scheduled = events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === activityType).at(-1);
  if (!scheduled) throw new Error(`no ${activityType} in the history of ${handle.workflowId}`);
  const id = String(scheduled.eventId);
  const closed = events.find((e) =>
    [e.activityTaskCompletedEventAttributes, e.activityTaskFailedEventAttributes, e.activityTaskTimedOutEventAttributes, e.activityTaskCanceledEventAttributes].some(
      (a) => a && String(a.scheduledEventId) === id,
    ),
  );
  if (!closed) throw new Error(`${activityType} of ${handle.workflowId} never closed`);
  return { scheduledAt: eventMs(scheduled.eventTime), closedAt: eventMs(closed.eventTime) };
}

/**
 * Proof that a fault cut a step in the middle, not at a boundary: an activity of this type was scheduled before
 * the fault and closed after it, and, with `retried` (the default), the history's started event of that activity
 * says attempt ≥ 2: the attempt that was running when the fault hit never finished, and the step ran again.
 * Callers also show that the first attempt was running at the fault (its heartbeat pid was alive).
 */
export async function expectCutMidStep(handle: WorkflowHandle, activityType: string, faultAt: number, opts: { retried?: boolean } = {}): Promise<void> {
  const events = (await handle.fetchHistory()).events ?? [];
  const spans = events
    .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === activityType)
    .map((scheduled) => {
      const id = String(scheduled.eventId);
      const closed = events.find((e) =>
        [e.activityTaskCompletedEventAttributes, e.activityTaskFailedEventAttributes, e.activityTaskTimedOutEventAttributes, e.activityTaskCanceledEventAttributes].some(
          (a) => a && String(a.scheduledEventId) === id,
        ),
      );
      const started = events.find((e) => e.activityTaskStartedEventAttributes && String(e.activityTaskStartedEventAttributes.scheduledEventId) === id);
      return { scheduledAt: eventMs(scheduled.eventTime), closedAt: closed ? eventMs(closed.eventTime) : Infinity, attempt: started?.activityTaskStartedEventAttributes?.attempt ?? 1 };
    });
  const cut = spans.find((s) => s.scheduledAt < faultAt && s.closedAt > faultAt);
  expect({ activityType, faultAt, cut: cut !== undefined, spans }).toMatchObject({ cut: true });
  if (opts.retried ?? true) expect(cut!.attempt).toBeGreaterThanOrEqual(2);
}
