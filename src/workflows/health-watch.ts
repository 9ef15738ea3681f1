import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { ParentClosePolicy, proxyActivities, startChild } from '@temporalio/workflow';
import type { HealthCheckResult, RunbookActivities } from '../activities';
import { Progress } from './progress';
import { remediateService } from './remediate-service';

const quick = proxyActivities<RunbookActivities>({
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '10 seconds',
  retry: { initialInterval: '2 seconds', maximumInterval: '30 seconds', maximumAttempts: 5 },
});

export interface HealthWatchInput {
  only?: string[];
}

export interface HealthWatchResult {
  checks: HealthCheckResult[];
  opened: string[];
  resolved: string[];
  /** Remediation ladders started (or already running) for failing services. */
  remediations: string[];
}

/**
 * WF-09, every 5 minutes by schedule: probe HTTP endpoints, the databases, Redis, disk and memory; a failing
 * check opens (or joins) incident/<check id>, a passing one resolves its incident if one is open.
 */
export async function healthWatch(input: HealthWatchInput = {}): Promise<HealthWatchResult> {
  const progress = new Progress('healthWatch');
  const checks = await progress.step('probe', () => quick.runHealthChecks({ only: input.only }), (r) =>
    `${r.filter((c) => c.ok).length}/${r.length} ok${r.some((c) => !c.ok) ? `; failing: ${r.filter((c) => !c.ok).map((c) => c.check).join(', ')}` : ''}`,
  );
  const failing = checks.filter((c) => !c.ok).map((c) => ({ check: c.check, severity: c.severity, detail: c.detail }));
  const recovered = checks.filter((c) => c.ok).map((c) => c.check);
  const r = await progress.step('incidents', () => quick.raiseIncidents({ failing, recovered }), (x) => `opened/joined ${x.opened.length}, resolved ${x.resolved.length}`);
  const remediations: string[] = [];
  for (const service of [...new Set(checks.filter((c) => !c.ok && c.remediate).map((c) => c.remediate!))]) {
    const workflowId = `remediate/${service}`;
    const why = checks.filter((c) => !c.ok && c.remediate === service).map((c) => `${c.check}: ${c.detail}`).join('; ');
    await progress.step(`remediate ${service}`, async () => {
      try {
        // It outlives this 5-minute run; one ladder per service at a time (a running one is left alone).
        await startChild(remediateService, { workflowId, args: [{ service, reason: why, requestedBy: 'health-watch' }], parentClosePolicy: ParentClosePolicy.ABANDON });
        return 'started';
      } catch (err) {
        if (err instanceof WorkflowExecutionAlreadyStartedError) return 'already running';
        throw err;
      }
    }, (x) => x);
    remediations.push(workflowId);
  }
  progress.finish('completed');
  return { checks, ...r, remediations };
}
