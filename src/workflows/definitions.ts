import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';

/** One step of a runbook as the operator sees it in `runbook describe` and the Web UI. */
export interface StepRecord {
  step: string;
  state: 'running' | 'completed' | 'failed' | 'skipped';
  startedAt: string;
  endedAt?: string;
  detail?: string;
}

export interface RunbookStatus {
  runbook: string;
  /** The step running now, or the last one when the run is over. */
  step: string;
  state: 'running' | 'completed' | 'failed';
  timeline: StepRecord[];
  /** A failed step waiting for an operator's answer (see ask-on-failure.ts). */
  question?: StepQuestion;
  /** An approval gate waiting for decisions. */
  approval?: { quorum: number; approvedBy: string[]; requestedBy?: string };
}

/** Every runbook answers this query. */
export const statusQuery = defineQuery<RunbookStatus>('status');

/** Who decided an approval gate, when, and why. Recorded in the workflow (and so in its history). */
export interface ApprovalDecision {
  by: string;
  note?: string;
}

export interface ApprovalRecord extends ApprovalDecision {
  decision: 'approved' | 'rejected';
  at: string;
  /** Approvals still needed after this one (quorum); 0 = the gate is open. */
  pending?: number;
}

/** Approval gates: a Temporal Update, so the caller learns at once whether the decision was accepted. */
export const approveUpdate = defineUpdate<ApprovalRecord, [ApprovalDecision]>('approve');
export const rejectUpdate = defineUpdate<ApprovalRecord, [ApprovalDecision]>('reject');
/** Keep the pre-restore database instead of dropping it when its time is up. */
export const keepSignal = defineSignal<[ApprovalDecision]>('keep');

/** A failed step asks what to do instead of failing the run: retry it, skip it (where allowed), or abort. */
export type StepAnswer = 'retry' | 'skip' | 'abort';

export interface StepQuestion {
  step: string;
  /** Why the step failed (after its retries). */
  error: string;
  options: StepAnswer[];
  askedAt: string;
}

export interface StepDecision {
  answer: StepAnswer;
  by: string;
  /** The step the answer is meant for: an answer to an older question is refused. */
  step?: string;
  note?: string;
}

export interface StepDecisionRecord extends StepDecision {
  step: string;
  at: string;
}

export const stepDecisionUpdate = defineUpdate<StepDecisionRecord, [StepDecision]>('stepDecision');

export interface RollbackRequest {
  by: string;
  reason?: string;
}

/** Ask a running deploy to roll back at its next gate (a canary watch checks every few seconds). */
export const rollbackUpdate = defineUpdate<{ accepted: true; by: string }, [RollbackRequest]>('rollback');

/**
 * Slack button action ids: the workflows and activities put them on buttons, the ChatOps service (src/client/chatops)
 * handles them. Messages already posted carry them: never rename one.
 */
export const ACTIONS = {
  approve: 'runbook_approve',
  reject: 'runbook_reject',
  retry: 'runbook_retry',
  skip: 'runbook_skip',
  abort: 'runbook_abort',
  /** Incident buttons (value: the incident's workflow id): the `acknowledge` / `resolve` Updates. */
  incidentAck: 'incident_ack',
  incidentResolve: 'incident_resolve',
} as const satisfies Record<StepAnswer | 'approve' | 'reject' | 'incidentAck' | 'incidentResolve', string>;

/**
 * Where a run started from chat reports (the workflow memo `chat`): its progress message in `channel`, questions
 * and approvals in that message's thread. Runs without it (CLI, schedules) report nowhere but the status query.
 */
export interface ChatMemo {
  channel: string;
  /** Who asked, as recorded in runs (operator name). */
  requestedBy?: string;
  /** The Web UI link of the run. */
  link?: string;
}
