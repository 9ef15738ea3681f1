import { condition, setCurrentDetails, setHandler } from '@temporalio/workflow';
import { type RunbookStatus, type StepRecord, statusQuery } from './definitions';
import { currentStep, observer, runbookName, setCurrentStep, setRunbookStatus, stepLabel } from './observe';

/** Told about every change of a run's status (the chat thread's progress message). Must not throw. */
export interface ProgressReporter {
  /** `final`: the run's last status (background mode: tried even while chat is failing). */
  report(status: RunbookStatus, final?: boolean): Promise<void>;
  /**
   * Reports go through Progress's background pump and never hold a step; false for runs started before that
   * change, which await every report before and after each step (their histories replay that way).
   */
  readonly background?: boolean;
  /** Background mode: chat calls still under way besides the report (flush waits for them, bounded). */
  busy?(): boolean;
  /** Background mode: the last report failed; flush does not wait for a chat that is down. */
  failing?(): boolean;
}

/** At the end of a run, how long it waits at most for its last chat post (best effort). */
const FLUSH_WITHIN_MS = 10_000;

/**
 * Tracks a runbook's steps for the `status` query, the Web UI (step name as the summary of each activity
 * and timer, the timeline as the run's "current details", RunbookStatus search attribute), the worker's
 * metrics and, for runs started from chat, the progress message in the thread. Workflow time (Date) is
 * deterministic on replay.
 */
export class Progress {
  private readonly timeline: StepRecord[] = [];
  private state: RunbookStatus['state'] = 'running';
  private extra: Pick<RunbookStatus, 'question' | 'approval'> = {};
  /** Background reporting: a newer status waits to be reported, the pump is reporting, sections holding reports. */
  private dirty = false;
  private pumping = false;
  private held = 0;
  private flushing = false;

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
    this.publish();
    setRunbookStatus(name);
    await this.report();
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
      // Steps can run side by side: hand back to the outer step only while it is still running.
      if (currentStep() === name) setCurrentStep(outer !== undefined && this.timeline.some((r) => r.step === outer && r.state === 'running') ? outer : undefined);
      record.endedAt = new Date().toISOString();
      observer()?.stepFinished(runbookName(), stepLabel(name), record.state === 'failed' ? 'failed' : 'completed', Date.parse(record.endedAt) - Date.parse(record.startedAt));
      this.publish();
      await this.report();
    }
  }

  /** Show (or clear, with undefined) a pending question or approval gate in the status. */
  async show(extra: Pick<RunbookStatus, 'question' | 'approval'>): Promise<void> {
    this.extra = { ...this.extra, ...extra };
    this.publish();
    await this.report();
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

  /**
   * From here on no chat activity is scheduled (e.g. between stopping and starting services) until `release()`
   * (or `flush()`, so a failure inside the window keeps chat quiet through its rollback); status changes in
   * between are reported once released. The status query and the Web UI stay live all along.
   */
  hold(): void {
    if (this.background) this.held += 1;
  }

  release(): void {
    if (!this.background || this.held === 0) return;
    this.held -= 1;
    if (this.held === 0 && this.dirty) this.kick();
  }

  /** Report the final state; call once before the run returns. In the background, waits for chat a bounded time only. */
  async flush(): Promise<void> {
    if (!this.background) {
      await this.report();
      return;
    }
    this.held = 0;
    this.flushing = true;
    this.kick();
    const idle = (): boolean => !this.pumping && !this.reporter?.busy?.();
    if (!idle() && !this.reporter?.failing?.()) await condition(idle, FLUSH_WITHIN_MS).catch(() => undefined);
  }

  private get background(): boolean {
    return this.reporter?.background === true;
  }

  private async report(): Promise<void> {
    if (!this.reporter) return;
    if (this.background) this.kick();
    else await this.reporter.report(this.status());
  }

  /**
   * Background reporting: a pump started without being awaited reports the newest status, one report at a time;
   * changes made while one is under way are coalesced into the next. Its activities are scheduled at once (so a
   * reply finds its thread being opened), but no step waits for them.
   */
  private kick(): void {
    this.dirty = true;
    if (this.pumping || this.held > 0) return;
    this.pumping = true;
    void (async () => {
      try {
        while (this.dirty && this.held === 0) {
          this.dirty = false;
          await this.reporter!.report(this.status(), this.flushing).catch(() => undefined);
        }
      } finally {
        this.pumping = false;
      }
    })();
  }
}

/** The innermost message of a failure chain (ActivityFailure → ApplicationFailure → ...). */
export function errorMessage(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return e instanceof Error ? e.message : String(e);
}
