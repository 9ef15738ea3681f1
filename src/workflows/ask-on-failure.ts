import { RetryState } from '@temporalio/common';
import { ActivityFailure, ApplicationFailure, condition, isCancellation, setHandler } from '@temporalio/workflow';
import { type StepAnswer, type StepDecision, type StepDecisionRecord, type StepQuestion, stepDecisionUpdate } from './definitions';
import { type ChatThread } from './chat';
import { type Progress, errorMessage } from './progress';
import { FAILURES } from './failures';

export interface AskOptions<T> {
  /** Offer "skip": the value the step stands for when skipped. Leave out where skipping is unsafe. */
  skip?: () => T;
  /** How long to wait for an answer (default 24 h). */
  timeoutMs?: number;
  /** What happens without an answer: abort (default) or skip (needs `skip`). */
  onTimeout?: 'abort' | 'skip';
  /** The step already ran (e.g. alongside another) and failed with this: ask at once instead of running it first. */
  failedWith?: unknown;
}

/**
 * "A failed step becomes a question, not a dead run." When a step's activity has failed after all its retries
 * (retries exhausted or timed out), the run records a question in its status, posts it in the chat thread with
 * buttons (when started from chat), and waits for the `stepDecision` Update: retry the step, skip it (only where
 * the step allows it), or abort (the run fails as it would have). A failure that retrying cannot fix (a
 * non-retryable error: corrupt backup, failed check) fails at once, as before. Who answered and when is in the
 * timeline (and so in the history).
 */
export class AskOnFailure {
  private pending?: StepQuestion;
  private answer?: StepDecisionRecord;
  private asked = 0;

  constructor(
    private readonly progress: Progress,
    private readonly chat?: ChatThread,
  ) {
    setHandler(
      stepDecisionUpdate,
      (d) => {
        this.answer = { ...d, by: d.by.trim(), step: this.pending!.step, at: new Date().toISOString() };
        return this.answer;
      },
      {
        validator: (d: StepDecision): void => {
          const q = this.pending;
          if (!q || this.answer) throw new Error('no step is waiting for an answer');
          if (d.step !== undefined && d.step !== q.step) throw new Error(`step: "${d.step}" is not waiting (waiting: "${q.step}")`);
          if (!q.options.includes(d.answer)) throw new Error(`answer: "${String(d.answer)}" is not possible here (choose ${q.options.join(', ')})`);
          if (!d.by?.trim()) throw new Error('by: who answers must be named');
        },
      },
    );
  }

  /** Run `fn` (a step); ask when it fails after its retries. */
  async run<T>(step: string, fn: () => Promise<T>, opts: AskOptions<T> = {}): Promise<T> {
    let earlier = 'failedWith' in opts ? { err: opts.failedWith } : undefined;
    for (;;) {
      try {
        if (earlier) {
          const { err } = earlier;
          earlier = undefined;
          throw err;
        }
        return await fn();
      } catch (err) {
        if (isCancellation(err) || !worthAsking(err)) throw err;
        const d = await this.ask(step, err, opts);
        if (d.answer === 'retry') continue;
        if (d.answer === 'skip' && opts.skip) return opts.skip();
        throw ApplicationFailure.nonRetryable(`${step} failed: ${errorMessage(err)} (aborted by ${d.by})`, FAILURES.StepAborted);
      }
    }
  }

  private async ask<T>(step: string, err: unknown, opts: AskOptions<T>): Promise<Pick<StepDecisionRecord, 'answer' | 'by'>> {
    const options: StepAnswer[] = opts.skip ? ['retry', 'skip', 'abort'] : ['retry', 'abort'];
    const timeoutMs = opts.timeoutMs ?? 24 * 3_600_000;
    this.pending = { step, error: errorMessage(err), options, askedAt: new Date().toISOString() };
    this.answer = undefined;
    this.asked += 1;
    await this.progress.show({ question: this.pending });
    const msg = await this.chat?.question(
      this.asked,
      step,
      `❓ *${step}* failed after its retries: ${this.pending.error}\nWhat now? (${options.join(' / ')}; no answer in ${timeoutMs / 3_600_000} h = ${opts.onTimeout ?? 'abort'})`,
      options,
    );
    const answered = await this.progress.step(
      `question: ${step}`,
      () => condition(() => this.answer !== undefined, timeoutMs),
      (ok) => (ok && this.answer ? `${this.answer.answer} by ${this.answer.by}${this.answer.note ? `: ${this.answer.note}` : ''}` : `no answer: ${opts.onTimeout ?? 'abort'}`),
    );
    const d = answered && this.answer ? this.answer : { answer: opts.onTimeout === 'skip' && opts.skip ? ('skip' as const) : ('abort' as const), by: 'timeout' };
    this.pending = undefined;
    await this.progress.show({ question: undefined });
    await this.chat?.edit(msg, `*${step}* failed: ${errorMessage(err)}\n→ ${d.answer} by ${d.by}`);
    return d;
  }
}

/** Only failures that another try might fix: retries exhausted or timed out, not a definitive refusal. */
function worthAsking(err: unknown): boolean {
  return err instanceof ActivityFailure && (err.retryState === RetryState.MAXIMUM_ATTEMPTS_REACHED || err.retryState === RetryState.TIMEOUT);
}
