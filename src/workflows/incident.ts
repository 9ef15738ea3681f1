import {
  type LocalActivityOptions,
  allHandlersFinished,
  condition,
  continueAsNew,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { NotifyInput, NotifyResult, RunbookActivities } from '../activities';
import type { NotifyChannel } from '../config/schema';
import { DURATION_HINT, parseDuration } from '../config/duration';
import { type RunbookStatus, statusQuery } from './definitions';
import {
  type Contact,
  type Decision,
  type DecisionRecord,
  type IncidentInput,
  type IncidentOutcome,
  type IncidentState,
  type IncidentView,
  type NoteRequest,
  type ReassignRequest,
  type SnoozeRequest,
  type TimelineEntry,
  type TimelineEvent,
  acknowledgeUpdate,
  addNoteUpdate,
  alertFiringSignal,
  alertResolvedSignal,
  reassignUpdate,
  resolveUpdate,
  snoozeUpdate,
  timelineQuery,
} from './incident-definitions';
import { countEvent } from './observe';
import { errorMessage } from './progress';
import { NON_RETRYABLE } from './failures';

// Reads the config only: answers in milliseconds, so a lost attempt is retried after 10 s, not minutes.
const POLICY_LOOKUP: LocalActivityOptions = {
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '2 seconds', maximumInterval: '30 seconds', maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE.policyLookup },
};
const quick = proxyActivities<RunbookActivities>(POLICY_LOOKUP);
// The same lookup as a local activity: no trip through the task queue, so each incident of a burst costs one
// activity task and one workflow task less before its first page.
const local = proxyLocalActivities<RunbookActivities>(POLICY_LOOKUP);

// A notification channel that stays down must not hold the escalation: after ~5 minutes of retries the
// failure is recorded in the timeline and the other channels and levels go on.
const notifier = proxyActivities<RunbookActivities>({
  startToCloseTimeout: '1 minute',
  heartbeatTimeout: '10 seconds',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 8 },
});

/** Level 2 counts from when the incident opened (runs started before this change count from level 1's lookup). */
const LEVEL_1_DUE_AT_OPEN = 'incident-level-1-due-at-open';
/** The policy lookup as a local activity (runs started before it replay the activity). */
const POLICY_LOOKUP_LOCAL = 'incident-policy-lookup-local';

/** A snooze's length: the one duration format (../config/duration), around spaces allowed as typed in chat. */
function snoozeMs(text: unknown): number | undefined {
  return typeof text === 'string' ? parseDuration(text.trim()) : undefined;
}

/**
 * WF-08: one workflow per incident (id incident/<fingerprint>, so a duplicate alert finds the running one).
 * Notify level 1, wait on a durable timer, escalate while nobody acknowledged; the ladder runs `repeat` more
 * times, then waits. `acknowledge` stops escalation, `resolve` (or the alert resolving) closes the incident.
 * The policy is captured at the start and carried, so a running incident keeps the version it started with.
 */
export async function incident(input: IncidentInput): Promise<IncidentOutcome> {
  const info = workflowInfo();
  const s: IncidentState = input.carried ?? {
    key: `${info.workflowId}/${info.runId.slice(0, 8)}`,
    openedAt: new Date().toISOString(),
    round: 0,
    level: 0,
    exhausted: false,
    reassignments: 0,
    firings: 0,
    timeline: [],
  };
  /** Bumped by anything that changes what the escalation loop waits for. */
  let wake = 0;
  let notifications = 0;

  const now = (): string => new Date().toISOString();
  const record = (event: TimelineEvent, by?: string, detail?: string): TimelineEntry => {
    const e: TimelineEntry = { at: now(), event, ...(by ? { by } : {}), ...(detail ? { detail } : {}) };
    s.timeline.push(e);
    return e;
  };
  const view = (): IncidentView => ({
    id: info.workflowId,
    title: input.title,
    severity: input.severity,
    status: s.resolved ? 'resolved' : s.acknowledged ? 'acknowledged' : 'open',
    level: s.level + 1,
    round: s.round + 1,
    assignee: s.assignee,
    acknowledged: s.acknowledged,
    resolved: s.resolved,
    snoozedUntil: s.snoozedUntil && s.snoozedUntil > Date.now() ? new Date(s.snoozedUntil).toISOString() : undefined,
    slack: s.slack,
    timeline: s.timeline.map((e) => ({ ...e })),
  });

  const requireBy = (d: { by?: unknown }): void => {
    if (typeof d?.by !== 'string' || !d.by.trim()) throw new Error('by: who acts must be named');
  };
  const requireThisIncident = (d: Decision): void => {
    if (d.incidentKey !== undefined && d.incidentKey !== s.key) {
      throw new Error('incidentKey: this link belongs to an earlier incident with the same id, which is closed; this incident has its own link');
    }
  };
  const requireOpen = (): void => {
    if (s.resolved) throw new Error(`incident already resolved by ${s.resolved.by} at ${s.resolved.at}`);
  };
  const decision = (d: Decision): DecisionRecord => ({ by: d.by.trim(), at: now(), ...(d.note?.trim() ? { note: d.note.trim() } : {}) });

  setHandler(timelineQuery, view);
  setHandler(statusQuery, (): RunbookStatus => {
    const v = view();
    return {
      runbook: 'incident',
      step: v.status === 'open' ? `level ${v.level} (round ${v.round})` : v.status,
      state: s.resolved ? 'completed' : 'running',
      timeline: s.timeline.map((e) => ({ step: e.event, state: 'completed', startedAt: e.at, endedAt: e.at, detail: [e.by, e.detail].filter(Boolean).join(': ') || undefined })),
    };
  });
  setHandler(
    acknowledgeUpdate,
    (d) => {
      s.acknowledged = decision(d);
      record('acknowledged', s.acknowledged.by, s.acknowledged.note);
      wake++;
      return s.acknowledged;
    },
    {
      validator: (d: Decision) => {
        requireBy(d);
        requireThisIncident(d);
        requireOpen();
        if (s.acknowledged) throw new Error(`incident already acknowledged by ${s.acknowledged.by} at ${s.acknowledged.at}`);
      },
    },
  );
  setHandler(
    resolveUpdate,
    (d) => {
      s.resolved = decision(d);
      record('resolved', s.resolved.by, s.resolved.note);
      wake++;
      return s.resolved;
    },
    {
      validator: (d: Decision) => {
        requireBy(d);
        requireOpen();
      },
    },
  );
  setHandler(
    reassignUpdate,
    async (r) => {
      s.assignee = r.to.trim();
      s.reassignments++;
      const rec = decision(r);
      record('reassigned', rec.by, `to ${s.assignee}${rec.note ? `: ${rec.note}` : ''}`);
      await notifyPeople('reassigned', [s.assignee], `reassigned to you by ${rec.by}`);
      return rec;
    },
    {
      validator: (r: ReassignRequest) => {
        requireBy(r);
        requireOpen();
        if (typeof r.to !== 'string' || !r.to.trim()) throw new Error('to: who takes the incident must be named');
        if (s.policy && !(r.to.trim() in s.policy.people)) {
          throw new Error(`to: unknown person "${r.to}" (known: ${Object.keys(s.policy.people).join(', ') || 'none'})`);
        }
      },
    },
  );
  setHandler(
    snoozeUpdate,
    (r) => {
      s.snoozedUntil = Date.now() + (snoozeMs(r.for) ?? 0);
      const until = new Date(s.snoozedUntil).toISOString();
      record('snoozed', r.by.trim(), `until ${until}${r.note?.trim() ? `: ${r.note.trim()}` : ''}`);
      wake++;
      return { until };
    },
    {
      validator: (r: SnoozeRequest) => {
        requireBy(r);
        requireOpen();
        if (s.acknowledged) throw new Error('incident is acknowledged: escalation has already stopped');
        const ms = snoozeMs(r.for);
        if (!ms || ms > 86_400_000) throw new Error(`for: ${DURATION_HINT}, more than 0 and at most 24h`);
      },
    },
  );
  setHandler(addNoteUpdate, (n) => record('note', n.by.trim(), n.text.trim()), {
    validator: (n: NoteRequest) => {
      requireBy(n);
      if (typeof n.text !== 'string' || !n.text.trim()) throw new Error('text: the note is empty');
      if (n.text.length > 2000) throw new Error('text: at most 2000 characters');
    },
  });
  setHandler(alertFiringSignal, (a) => {
    if (a.key !== undefined && a.key === s.lastFiringKey) return; // the same firing signalled again by a retried activity
    s.lastFiringKey = a.key;
    s.firings++;
    if (s.firings > 1) record('alert firing', input.source, a.summary ?? 'fired again');
  });
  setHandler(alertResolvedSignal, (a) => {
    if (s.resolved) return;
    s.resolved = { by: a.by ?? input.source, at: now(), note: 'the alert resolved', auto: true };
    record('resolved', s.resolved.by, 'the alert resolved');
    wake++;
  });

  /** A rotation's member on call at this (workflow) time. */
  const resolveTarget = (target: string): Contact | undefined => {
    const p = s.policy!;
    const rot = p.rotations[target];
    if (rot) {
      const turn = Math.floor((Date.now() - rot.startMs) / rot.shiftMs);
      const n = rot.members.length;
      return p.people[rot.members[((turn % n) + n) % n]!];
    }
    return p.people[target];
  };

  async function send(inputs: NotifyInput[]): Promise<void> {
    const results = await Promise.allSettled(inputs.map((n) => notifier.notify(n)));
    results.forEach((r, i) => {
      const n = inputs[i]!;
      const who = n.channel === 'slack' ? (s.slack?.channel ?? 'channel') : (n.to[0]?.name ?? '?');
      if (r.status === 'fulfilled') {
        const res: NotifyResult = r.value;
        if (res.slack && !s.slack) s.slack = res.slack;
        if (res.delivered) {
          notifications++;
          if (n.kind === 'page' || n.kind === 'reassigned') record('notified', undefined, `${n.channel} → ${who} (level ${n.incident.level}, round ${n.incident.round})`);
        } else if (res.skipped) {
          record('notify failed', undefined, `${n.channel} → ${who}: ${res.skipped}`);
        }
      } else {
        record('notify failed', undefined, `${n.channel} → ${who}: ${errorMessage(r.reason)}`);
      }
    });
  }

  /** The notifications of one step: one Slack message (thread reply after the first), one email / SMS per person. */
  function messages(kind: NotifyInput['kind'], people: Contact[], channels: NotifyChannel[], tag: string, detail?: string): NotifyInput[] {
    const base = {
      kind,
      incident: {
        id: info.workflowId,
        key: s.key,
        title: input.title,
        severity: input.severity,
        description: input.description,
        openedAt: s.openedAt,
        level: s.level + 1,
        round: s.round + 1,
      },
      notBefore: now(),
      ...(detail ? { detail } : {}),
    };
    const out: NotifyInput[] = [];
    for (const channel of channels) {
      if (channel === 'slack') {
        out.push({ ...base, channel, idempotencyKey: `${s.key}/${tag}/slack`, to: people, ...(s.slack ? { slack: s.slack } : {}) });
        continue;
      }
      for (const p of people) {
        if (channel === 'email' && !p.email) continue;
        if (channel === 'sms' && !p.phone) continue;
        out.push({ ...base, channel, idempotencyKey: `${s.key}/${tag}/${channel}/${p.name}`, to: [p] });
      }
    }
    return out;
  }

  async function notifyPeople(kind: NotifyInput['kind'], names: string[], detail: string): Promise<void> {
    const level = s.policy!.levels[s.level]!;
    const people = names.map(resolveTarget).filter((c): c is Contact => c !== undefined);
    await send(messages(kind, people, level.channels, `reassign-${s.reassignments}`, detail));
  }

  async function notifyLevel(): Promise<void> {
    const level = s.policy!.levels[s.level]!;
    const seen = new Set<string>();
    const people: Contact[] = [];
    for (const t of [...level.targets, ...(s.assignee ? [s.assignee] : [])]) {
      const c = resolveTarget(t);
      if (c && !seen.has(c.name)) {
        seen.add(c.name);
        people.push(c);
      }
    }
    // Slack's first message becomes the incident's thread; its later messages reply in it.
    const ordered = level.channels.includes('slack') && !s.slack ? ['slack' as const, ...level.channels.filter((c) => c !== 'slack')] : level.channels;
    const batch = messages('page', people, ordered, `r${s.round + 1}/l${s.level + 1}`);
    if (!s.slack && batch[0]?.channel === 'slack') {
      await send([batch[0]]);
      await send(batch.slice(1));
    } else {
      await send(batch);
    }
  }

  async function statusUpdate(kind: 'acknowledged' | 'resolved', d: DecisionRecord): Promise<void> {
    if (!s.slack) return;
    await send([
      {
        kind,
        channel: 'slack',
        idempotencyKey: `${s.key}/${kind}/slack`,
        to: [],
        slack: s.slack,
        notBefore: now(),
        detail: `${kind} by ${d.by}${d.note ? `: ${d.note}` : ''}`,
        incident: { id: info.workflowId, title: input.title, severity: input.severity, openedAt: s.openedAt, level: s.level + 1, round: s.round + 1 },
      },
    ]);
  }

  if (!s.policy) {
    const lookup = { severity: input.severity, policy: input.policy };
    s.policy = patched(POLICY_LOOKUP_LOCAL) ? await local.escalationPolicy(lookup) : await quick.escalationPolicy(lookup);
    record('opened', input.openedBy ?? input.requestedBy ?? input.source, `${input.severity}: ${input.title} (policy ${s.policy.name})`);
  }
  const policy = s.policy;
  let ackAnnounced = false;

  while (!s.resolved) {
    if (s.acknowledged && !ackAnnounced) {
      ackAnnounced = true;
      await statusUpdate('acknowledged', s.acknowledged);
      continue;
    }
    if (s.acknowledged || s.exhausted) {
      const seen = wake;
      await condition(() => s.resolved !== undefined || wake !== seen);
    } else if (s.nextAt === undefined) {
      const snoozeLeft = (s.snoozedUntil ?? 0) - Date.now();
      if (snoozeLeft > 0) {
        const seen = wake;
        await condition(() => wake !== seen, snoozeLeft);
        continue;
      }
      // The next level is due `after` from when this one fell due, not from when its pages were delivered:
      // a slow SMTP server or a busy worker must not push the escalation back. Level 1 fell due when the
      // incident opened (the seed's "escalate 30 min" counts from the alert), not after the policy lookup.
      const firstPage = s.level === 0 && s.round === 0 && s.snoozedUntil === undefined;
      const dueAt = firstPage && patched(LEVEL_1_DUE_AT_OPEN) ? Math.min(Date.parse(s.openedAt), Date.now()) : Date.now();
      await notifyLevel();
      s.nextAt = dueAt + policy.levels[s.level]!.afterMs;
    } else {
      const left = Math.max(s.nextAt, s.snoozedUntil ?? 0) - Date.now();
      if (left > 0) {
        const seen = wake;
        await condition(() => wake !== seen, left);
        continue;
      }
      // Nobody acknowledged in time: the next level (or the next round of the ladder).
      s.nextAt = undefined;
      s.level++;
      if (s.level >= policy.levels.length) {
        s.level = 0;
        s.round++;
        if (s.round > policy.repeat) {
          s.round = policy.repeat;
          s.level = policy.levels.length - 1;
          s.exhausted = true;
          record('escalation exhausted', undefined, `${policy.repeat + 1} round(s) of ${policy.levels.length} level(s), nobody acknowledged`);
        }
      }
      // runbook_escalations_total: the ladder moved on (a sink call, not a command: no patch needed).
      if (!s.exhausted) countEvent('escalation');
    }
    if (!s.resolved && (s.timeline.length >= policy.maxTimeline || workflowInfo().continueAsNewSuggested)) {
      await condition(allHandlersFinished);
      // Keep the last entries; the full story is in the earlier runs' histories.
      s.timeline = [...s.timeline.slice(-Math.floor(policy.maxTimeline / 2))];
      record('continued', undefined, `history continued in a new run (${info.historyLength} events)`);
      await continueAsNew<typeof incident>({ ...input, carried: s });
    }
  }

  await statusUpdate('resolved', s.resolved);
  await condition(allHandlersFinished);
  return { id: info.workflowId, resolved: s.resolved, acknowledged: s.acknowledged, notifications };
}
