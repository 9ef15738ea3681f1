import {
  type WorkflowInterceptorsFactory,
  isCancellation,
  proxySinks,
  type Sinks,
} from '@temporalio/workflow';
import { currentStep, installObserver, runbookName } from './observe';

/**
 * Workflow interceptors bundled with every runbook (src/workers/bundle.ts): activities and timers get the
 * current runbook step as their `summary`, finished steps and runs are reported to the worker's metrics
 * through the `runbookMetrics` sink (src/workers/metrics.ts registers it), and a failed run's log line
 * names its failure type and message.
 */

export interface RunbookMetricsSinks extends Sinks {
  runbookMetrics: {
    stepFinished(runbook: string, step: string, outcome: string, durationMs: number): void;
    runFinished(runbook: string, outcome: string, durationMs: number): void;
    event(runbook: string, event: string): void;
  };
}

/** `outcome` of a runbook's result when it has one (e.g. restore's "restored" / "not approved"), else "completed". */
function outcomeOf(result: unknown): string {
  const o = (result as { outcome?: unknown } | null)?.outcome;
  return typeof o === 'string' && o.length <= 40 ? o : 'completed';
}

/**
 * A failure as plain log fields: name, failure type, message and causes. The SDK's "Workflow failed" line
 * carries the error itself, which reaches the worker's logger as a bare Error (type and activity lost).
 */
function failureFields(err: unknown, depth = 0): Record<string, unknown> | undefined {
  if (typeof err !== 'object' || err === null || typeof (err as Error).message !== 'string') return undefined;
  const e = err as Error & { type?: unknown; activityType?: unknown };
  const cause = depth < 4 ? failureFields(e.cause, depth + 1) : undefined;
  return {
    name: e.name,
    ...(typeof e.type === 'string' ? { type: e.type } : {}),
    ...(typeof e.activityType === 'string' ? { activityType: e.activityType } : {}),
    message: e.message,
    ...(cause ? { cause } : {}),
  };
}

export const interceptors: WorkflowInterceptorsFactory = () => {
  const { runbookMetrics } = proxySinks<RunbookMetricsSinks>();
  installObserver(runbookMetrics);
  // Set when the run fails: the SDK's "Workflow failed" log line (logged right after) gets it as `failure`.
  let failure: Record<string, unknown> | undefined;
  return {
    inbound: [
      {
        async execute(input, next) {
          const started = Date.now();
          let outcome = 'failed';
          try {
            const result = await next(input);
            outcome = outcomeOf(result);
            return result;
          } catch (err) {
            outcome = isCancellation(err) ? 'cancelled' : 'failed';
            if (outcome === 'failed') failure = failureFields(err);
            throw err;
          } finally {
            runbookMetrics.runFinished(runbookName(), outcome, Date.now() - started);
          }
        },
      },
    ],
    outbound: [
      {
        getLogAttributes(input, next) {
          const attrs = next(input);
          return failure ? { ...attrs, failure } : attrs;
        },
        scheduleActivity(input, next) {
          const step = currentStep();
          return next(step && !input.options.summary ? { ...input, options: { ...input.options, summary: step } } : input);
        },
        startTimer(input, next) {
          const step = currentStep();
          return next(step && !input.options?.summary ? { ...input, options: { ...input.options, summary: step } } : input);
        },
      },
    ],
  };
};
