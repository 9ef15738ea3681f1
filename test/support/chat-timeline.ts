import { type Server, createServer } from 'node:http';
import { type AddressInfo } from 'node:net';
import { type temporal } from '@temporalio/proto';

type History = temporal.api.history.v1.IHistory;

const CHAT_ACTIVITIES = new Set(['postSlackMessage', 'updateSlackMessage']);

/** A Slack Web API that is down: every call answers HTTP 500 (an outage as Slack's edge shows it). */
export async function startSlackOutage(): Promise<{ apiUrl: string; calls(): number; close(): Promise<void> }> {
  let calls = 0;
  const server: Server = createServer((req, res) => {
    calls += 1;
    req.resume();
    res.writeHead(500, { 'content-type': 'text/plain' }).end('internal server error');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    apiUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/`,
    calls: () => calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** What a restore's history says about its downtime window and chat traffic (read from the events, not from the run's result). */
export interface RestoreTimeline {
  /** From `stopContainers` scheduled to the last `startContainers` completed (history event times). */
  downtimeMs: number;
  /** From the run's start to its completion. */
  durationMs: number;
  /** Chat activities (postSlackMessage/updateSlackMessage) scheduled inside that window, in order. */
  chatInWindow: string[];
  /** Chat activities scheduled anywhere in the run. */
  chatScheduled: number;
}

function ms(e: temporal.api.history.v1.IHistoryEvent): number {
  return Number(e.eventTime?.seconds ?? 0) * 1000 + (e.eventTime?.nanos ?? 0) / 1e6;
}

export function restoreTimeline(history: History): RestoreTimeline {
  const events = history.events ?? [];
  const names = new Map<string, string>();
  let stop: number | undefined;
  let start: number | undefined;
  const chat: Array<{ index: number; name: string }> = [];
  events.forEach((e, index) => {
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled) {
      const name = scheduled.activityType?.name ?? '';
      names.set(String(e.eventId), name);
      if (name === 'stopContainers' && stop === undefined) stop = index;
      if (CHAT_ACTIVITIES.has(name)) chat.push({ index, name });
    }
    const completed = e.activityTaskCompletedEventAttributes;
    if (completed && names.get(String(completed.scheduledEventId)) === 'startContainers') start = index;
  });
  if (stop === undefined || start === undefined) throw new Error('the history has no stopContainers … startContainers window');
  return {
    downtimeMs: ms(events[start]!) - ms(events[stop]!),
    durationMs: ms(events[events.length - 1]!) - ms(events[0]!),
    chatInWindow: chat.filter((c) => c.index > stop! && c.index < start!).map((c) => c.name),
    chatScheduled: chat.length,
  };
}
