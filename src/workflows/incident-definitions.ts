import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { NotifyChannel, Severity } from '../config/schema';

/**
 * The incident workflow's contract, shared by the Alertmanager receiver, the acknowledge links, the CLI and
 * ChatOps (Slack buttons ACTIONS.incidentAck / incidentResolve of definitions.ts carry the workflow id `incident/<fingerprint>`).
 */

export const INCIDENT_WORKFLOW = 'incident';

export function incidentWorkflowId(fingerprint: string): string {
  return `incident/${fingerprint}`;
}

/** A person as the escalation reaches them: a name and the addresses the config gives them. */
export interface Contact {
  name: string;
  email?: string;
  slack?: string;
  phone?: string;
}

/** The policy an incident runs with, captured once at its start (a config change never alters a running incident). */
export interface PolicySnapshot {
  name: string;
  levels: Array<{ targets: string[]; channels: NotifyChannel[]; afterMs: number }>;
  repeat: number;
  people: Record<string, Contact>;
  rotations: Record<string, { members: string[]; shiftMs: number; startMs: number }>;
  maxTimeline: number;
}

export interface IncidentInput {
  /** Alertmanager's alert fingerprint, a health check's name, or a manual key: the workflow id is incident/<fingerprint>. */
  fingerprint: string;
  title: string;
  severity: Severity;
  description?: string;
  source: 'alertmanager' | 'health-watch' | 'manual';
  labels?: Record<string, string>;
  /** A named policy of the config instead of the severity's. */
  policy?: string;
  openedBy?: string;
  /** The operator who opened it by hand (the CLI fills it in). */
  requestedBy?: string;
  /** State carried across continue-as-new; never set by a caller. */
  carried?: IncidentState;
}

export interface Decision {
  by: string;
  note?: string;
  /** The incident key (IncidentState.key) the decision was made for, e.g. from a signed acknowledge link: refused by a later incident with the same id. */
  incidentKey?: string;
}

export interface DecisionRecord extends Decision {
  at: string;
}

export type TimelineEvent =
  | 'opened'
  | 'notified'
  | 'notify failed'
  | 'acknowledged'
  | 'resolved'
  | 'reassigned'
  | 'snoozed'
  | 'note'
  | 'alert firing'
  | 'escalation exhausted'
  | 'continued';

export interface TimelineEntry {
  at: string;
  event: TimelineEvent;
  by?: string;
  detail?: string;
}

export interface IncidentState {
  /** Stable across runs of this incident (continue-as-new), distinct for a later incident with the same id. */
  key: string;
  openedAt: string;
  policy?: PolicySnapshot;
  round: number;
  level: number;
  /** When the next level is due (epoch ms); undefined = the current level has not been notified yet. */
  nextAt?: number;
  exhausted: boolean;
  acknowledged?: DecisionRecord;
  resolved?: DecisionRecord & { auto?: boolean };
  assignee?: string;
  reassignments: number;
  snoozedUntil?: number;
  firings: number;
  /** The key of the last firing counted (AlertFiring.key). */
  lastFiringKey?: string;
  slack?: { channel: string; ts: string };
  timeline: TimelineEntry[];
}

export interface IncidentView {
  id: string;
  title: string;
  severity: Severity;
  status: 'open' | 'acknowledged' | 'resolved';
  level: number;
  round: number;
  assignee?: string;
  acknowledged?: DecisionRecord;
  resolved?: DecisionRecord;
  snoozedUntil?: string;
  slack?: { channel: string; ts: string };
  timeline: TimelineEntry[];
}

export interface ReassignRequest {
  to: string;
  by: string;
  note?: string;
}

export interface SnoozeRequest {
  /** e.g. "30m", "2h". */
  for: string;
  by: string;
  note?: string;
}

export interface NoteRequest {
  by: string;
  text: string;
}

export interface AlertFiring {
  startsAt?: string;
  summary?: string;
  /** Who fired, once (e.g. the health-watch run): the same key again is a retry of that firing, not a new one. */
  key?: string;
}

export interface AlertResolved {
  endsAt?: string;
  by?: string;
}

export const acknowledgeUpdate = defineUpdate<DecisionRecord, [Decision]>('acknowledge');
export const resolveUpdate = defineUpdate<DecisionRecord, [Decision]>('resolve');
export const reassignUpdate = defineUpdate<DecisionRecord, [ReassignRequest]>('reassign');
export const snoozeUpdate = defineUpdate<{ until: string }, [SnoozeRequest]>('snooze');
export const addNoteUpdate = defineUpdate<TimelineEntry, [NoteRequest]>('addNote');
/** Alertmanager (or the health watch) saw the alert firing: starts the incident, or is recorded by a running one. */
export const alertFiringSignal = defineSignal<[AlertFiring]>('alertFiring');
/** The alert resolved: the incident resolves itself. */
export const alertResolvedSignal = defineSignal<[AlertResolved]>('alertResolved');
export const timelineQuery = defineQuery<IncidentView>('timeline');

export interface IncidentOutcome {
  id: string;
  resolved: DecisionRecord & { auto?: boolean };
  acknowledged?: DecisionRecord;
  notifications: number;
}
