import { defineQuery } from '@temporalio/workflow';

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
