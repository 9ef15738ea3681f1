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
}

/** Approval gates: a Temporal Update, so the caller learns at once whether the decision was accepted. */
export const approveUpdate = defineUpdate<ApprovalRecord, [ApprovalDecision]>('approve');
export const rejectUpdate = defineUpdate<ApprovalRecord, [ApprovalDecision]>('reject');
/** Keep the pre-restore database instead of dropping it when its time is up. */
export const keepSignal = defineSignal<[ApprovalDecision]>('keep');
