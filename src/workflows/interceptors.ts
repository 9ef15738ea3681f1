import {
  type WorkflowInterceptorsFactory,
  isCancellation,
  proxySinks,
  type Sinks,
} from '@temporalio/workflow';
import { currentStep, installObserver, runbookName } from './observe';

/**
 * Workflow interceptors bundled with every runbook (src/workers/bundle.ts): activities and timers get the
 * current runbook step as their `summary`, and finished steps and runs are reported to the worker's
 * metrics through the `runbookMetrics` sink (src/workers/metrics.ts registers it).
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

export const interceptors: WorkflowInterceptorsFactory = () => {
  const { runbookMetrics } = proxySinks<RunbookMetricsSinks>();
  installObserver(runbookMetrics);
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
            throw err;
          } finally {
            runbookMetrics.runFinished(runbookName(), outcome, Date.now() - started);
          }
        },
      },
    ],
    outbound: [
      {
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
