import { setHandler } from '@temporalio/workflow';
import { type RunbookStatus, type StepRecord, statusQuery } from './definitions';

/** Told about every change of a run's status (the chat thread's progress message). Must not throw. */
export interface ProgressReporter {
  report(status: RunbookStatus): Promise<void>;
}

/** Tracks a runbook's steps for the `status` query. Workflow time (Date) is deterministic on replay. */
export class Progress {
  private readonly timeline: StepRecord[] = [];
  private state: RunbookStatus['state'] = 'running';
  private extra: Pick<RunbookStatus, 'question' | 'approval'> = {};

  constructor(
    private readonly runbook: string,
    private readonly reporter?: ProgressReporter,
  ) {
    setHandler(statusQuery, () => this.status());
  }

  status(): RunbookStatus {
    const last = this.timeline[this.timeline.length - 1];
    return {
      runbook: this.runbook,
      step: last?.step ?? 'starting',
      state: this.state,
      timeline: this.timeline.map((s) => ({ ...s })),
      ...(this.extra.question ? { question: { ...this.extra.question } } : {}),
      ...(this.extra.approval ? { approval: { ...this.extra.approval } } : {}),
    };
  }

  /** Run one step, recording when it started and how it ended. */
  async step<T>(name: string, fn: () => Promise<T>, describe?: (result: T) => string): Promise<T> {
    const record: StepRecord = { step: name, state: 'running', startedAt: new Date().toISOString() };
    this.timeline.push(record);
    await this.report();
    try {
      const result = await fn();
      record.state = 'completed';
      record.detail = describe?.(result);
      record.endedAt = new Date().toISOString();
      await this.report();
      return result;
    } catch (err) {
      record.state = 'failed';
      record.detail = errorMessage(err);
      record.endedAt = new Date().toISOString();
      await this.report();
      throw err;
    }
  }

  /** Show (or clear, with undefined) a pending question or approval gate in the status. */
  async show(extra: Pick<RunbookStatus, 'question' | 'approval'>): Promise<void> {
    this.extra = { ...this.extra, ...extra };
    await this.report();
  }

  finish(state: 'completed' | 'failed'): void {
    this.state = state;
  }

  /** Report the final state; call once before the run returns. */
  async flush(): Promise<void> {
    await this.report();
  }

  private async report(): Promise<void> {
    if (this.reporter) await this.reporter.report(this.status());
  }
}

/** The innermost message of a failure chain (ActivityFailure → ApplicationFailure → ...). */
export function errorMessage(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return e instanceof Error ? e.message : String(e);
}
