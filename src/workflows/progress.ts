import { setCurrentDetails, setHandler } from '@temporalio/workflow';
import { type RunbookStatus, type StepRecord, statusQuery } from './definitions';
import { currentStep, observer, runbookName, setCurrentStep, setRunbookStatus, stepLabel } from './observe';

/**
 * Tracks a runbook's steps for the `status` query, the Web UI (step name as the summary of each activity
 * and timer, the timeline as the run's "current details", RunbookStatus search attribute) and the worker's
 * metrics. Workflow time (Date) is deterministic on replay.
 */
export class Progress {
  private readonly timeline: StepRecord[] = [];
  private state: RunbookStatus['state'] = 'running';

  constructor(private readonly runbook: string) {
    setHandler(statusQuery, () => this.status());
  }

  status(): RunbookStatus {
    const last = this.timeline[this.timeline.length - 1];
    return { runbook: this.runbook, step: last?.step ?? 'starting', state: this.state, timeline: this.timeline.map((s) => ({ ...s })) };
  }

  /** Run one step, recording when it started and how it ended. */
  async step<T>(name: string, fn: () => Promise<T>, describe?: (result: T) => string): Promise<T> {
    const record: StepRecord = { step: name, state: 'running', startedAt: new Date().toISOString() };
    this.timeline.push(record);
    this.publish();
    setRunbookStatus(name);
    const outer = currentStep();
    setCurrentStep(name);
    try {
      const result = await fn();
      record.state = 'completed';
      record.detail = describe?.(result);
      return result;
    } catch (err) {
      record.state = 'failed';
      record.detail = errorMessage(err);
      throw err;
    } finally {
      if (currentStep() === name) setCurrentStep(outer);
      record.endedAt = new Date().toISOString();
      observer()?.stepFinished(runbookName(), stepLabel(name), record.state === 'failed' ? 'failed' : 'completed', Date.parse(record.endedAt) - Date.parse(record.startedAt));
      this.publish();
    }
  }

  finish(state: 'completed' | 'failed'): void {
    this.state = state;
    setRunbookStatus(state);
    this.publish();
  }

  /** The timeline as Markdown: the Web UI shows it as the run's current details (served by a query, no history event). */
  private publish(): void {
    const rows = this.timeline.map((s) => `| ${s.step} | ${s.state} | ${s.startedAt.slice(11, 19)} | ${(s.detail ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' ')} |`);
    setCurrentDetails([`**${this.runbook}**: ${this.state}`, '', '| step | state | started (UTC) | detail |', '| --- | --- | --- | --- |', ...rows].join('\n'));
  }
}

/** The innermost message of a failure chain (ActivityFailure → ApplicationFailure → ...). */
export function errorMessage(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return e instanceof Error ? e.message : String(e);
}
