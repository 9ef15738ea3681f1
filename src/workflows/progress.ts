import { setHandler } from '@temporalio/workflow';
import { type RunbookStatus, type StepRecord, statusQuery } from './definitions';

/** Tracks a runbook's steps for the `status` query. Workflow time (Date) is deterministic on replay. */
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
      record.endedAt = new Date().toISOString();
    }
  }

  finish(state: 'completed' | 'failed'): void {
    this.state = state;
  }
}

/** The innermost message of a failure chain (ActivityFailure → ApplicationFailure → ...). */
export function errorMessage(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return e instanceof Error ? e.message : String(e);
}
