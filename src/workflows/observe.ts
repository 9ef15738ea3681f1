import { patched, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { RUNBOOK_NAME, RUNBOOK_STATUS } from '../config/search-attributes';

/**
 * What a runbook tells the outside world while it runs, in one place every runbook shares through
 * `Progress`: the step name becomes the `summary` of the activities and timers it schedules (so the Web
 * UI's timeline reads as runbook steps), the RunbookStatus search attribute follows the steps, and the
 * worker's metrics hear about finished steps and runs (when the worker installed the observer, see
 * `interceptors.ts`). State lives on globalThis: the SDK keeps a separate global object per workflow run.
 */

/** Reported to the worker process (a Temporal sink: never called during replay). */
export interface RunbookObserver {
  stepFinished(runbook: string, step: string, outcome: 'completed' | 'failed', durationMs: number): void;
  runFinished(runbook: string, outcome: string, durationMs: number): void;
  /** Countable moments: `escalation` (incident), `rollback` (deploy, restore, rotation), ... */
  event(runbook: string, event: string): void;
}

interface ObserveState {
  step?: string;
  observer?: RunbookObserver;
}

const KEY = '__runbookObserve';

function state(): ObserveState {
  const g = globalThis as unknown as Record<string, ObserveState | undefined>;
  return (g[KEY] ??= {});
}

/** The interceptor module installs this; without it (e.g. a test bundle without interceptors) nothing is reported. */
export function installObserver(observer: RunbookObserver): void {
  state().observer = observer;
}

export function observer(): RunbookObserver | undefined {
  return state().observer;
}

/** The step whose activities and timers are being scheduled now (their `summary` in the Web UI). */
export function currentStep(): string | undefined {
  return state().step;
}

export function setCurrentStep(step: string | undefined): void {
  state().step = step;
}

/** The runbook's name: the RunbookName search attribute when the run has one, else the workflow type. */
export function runbookName(): string {
  const info = workflowInfo();
  return info.typedSearchAttributes.get(RUNBOOK_NAME) ?? info.workflowType;
}

/**
 * Set RunbookStatus (the step, or how the run ended). Only for runs started with RunbookName (the CLI,
 * schedules, ChatOps): those come from a namespace where `runbook setup` registered the attributes.
 * Behind a patch marker, so histories recorded before this existed still replay.
 */
export function setRunbookStatus(status: string): void {
  const info = workflowInfo();
  if (info.typedSearchAttributes.get(RUNBOOK_NAME) === undefined) return;
  if (!patched('runbook-status-search-attribute')) return;
  if (info.typedSearchAttributes.get(RUNBOOK_STATUS) === status) return;
  upsertSearchAttributes([{ key: RUNBOOK_STATUS, value: status.slice(0, 100) }]);
}

/** Count a moment worth a metric (escalation, rollback, ...) in the worker's /metrics. */
export function countEvent(event: string): void {
  observer()?.event(runbookName(), event);
}

/**
 * A step name as a metric label: words that carry names or ids (digits, `_`, `/`) are dropped, so
 * `drop shop__pre_restore_ab12` and `undo: drop shop__restore_ab12` stay a handful of label values.
 */
export function stepLabel(step: string): string {
  const words = step.split(/\s+/).filter((w) => w && !/[\d_/]/.test(w));
  return words.join(' ') || 'step';
}
