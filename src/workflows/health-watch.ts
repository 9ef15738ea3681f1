import { proxyActivities } from '@temporalio/workflow';
import type { HealthCheckResult, RunbookActivities } from '../activities';
import { Progress } from './progress';

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
  progress.finish('completed');
  return { checks, ...r };
}
