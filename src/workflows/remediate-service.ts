import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { condition, executeChild, proxyActivities, setHandler } from '@temporalio/workflow';
import type { RemediationPlan, RunbookActivities } from '../activities';
import { type ApprovalDecision, type ApprovalRecord, approveUpdate, rejectUpdate } from './definitions';
import { Progress } from './progress';
import { NON_RETRYABLE } from './failures';
import { scale } from './deploy';

const quick = proxyActivities<RunbookActivities>({
  startToCloseTimeout: '3 minutes',
  heartbeatTimeout: '10 seconds',
  retry: { initialInterval: '2 seconds', maximumInterval: '30 seconds', maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE.remediation },
});

// The service gets about a minute to come back after a restart, polled by retries.
const health = proxyActivities<RunbookActivities>({
  startToCloseTimeout: '15 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 1.5, maximumInterval: '10 seconds', maximumAttempts: 8 },
});

export interface RemediateInput {
  service: string;
  reason: string;
  requestedBy?: string;
}

export interface RemediateOutcome {
  service: string;
  restarted: boolean;
  healthyAfterRestart?: boolean;
  cpuPercent?: number;
  /** The CPU % of each container as read (docker stats), the highest of which is cpuPercent. */
  cpuByContainer?: Record<string, number>;
  scaledTo?: number;
  /** Steps skipped and why (not approved, CPU below threshold). */
  skipped: string[];
  approvals: ApprovalRecord[];
}

/**
 * RB-03 / WF-09 remediation ladder: restart the service's containers, check its health; when CPU is above
 * the threshold (seed: 80 %) scale out (child workflow `scale`, the deploy runbook's). Each step runs
 * automatically or waits for `runbook approve remediate/<service> --by NAME`, per remediation.services.
 */
export async function remediateService(input: RemediateInput): Promise<RemediateOutcome> {
  const progress = new Progress('remediateService');
  const out: RemediateOutcome = { service: input.service, restarted: false, skipped: [], approvals: [] };
  let awaiting: string | undefined;
  let decision: ApprovalRecord | undefined;
  const person = (n: string | undefined): string => (n ?? '').trim().toLowerCase();
  const validate = (d: ApprovalDecision): void => {
    if (!awaiting) throw new Error('no step of this remediation is waiting for an approval');
    if (!person(d.by)) throw new Error('by: who decides must be named');
    if (input.requestedBy && person(d.by) === person(input.requestedBy)) throw new Error(`by: ${d.by.trim()} requested this remediation and cannot approve it`);
  };
  const decide = (kind: ApprovalRecord['decision']) => (d: ApprovalDecision): ApprovalRecord => {
    decision = { by: d.by.trim(), ...(d.note ? { note: d.note } : {}), decision: kind, at: new Date().toISOString() };
    return decision;
  };
  setHandler(approveUpdate, decide('approved'), { validator: validate });
  setHandler(rejectUpdate, decide('rejected'), { validator: validate });

  const plan: RemediationPlan = await progress.step('plan', () => quick.remediationPlan({ service: input.service }), (p) =>
    `${p.containers.join(', ')} on ${p.dockerHost}; restart ${p.restart}, scale out ${p.scaleOut} to ${p.scaleTo} above ${p.cpuThreshold} % CPU`,
  );

  /** true when the step may run: automatic, or approved in time. */
  async function gate(step: string, mode: 'auto' | 'approval'): Promise<boolean> {
    if (mode === 'auto') return true;
    awaiting = step;
    decision = undefined;
    const decided = await progress.step(`approval: ${step}`, () => condition(() => decision !== undefined, plan.approvalTimeoutMs), (ok) =>
      ok && decision ? `${decision.decision} by ${decision.by}` : 'timed out',
    );
    awaiting = undefined;
    const d = decision as ApprovalRecord | undefined; // set by the Update handlers meanwhile
    if (d) out.approvals.push(d);
    if (decided && d?.decision === 'approved') return true;
    out.skipped.push(`${step}: ${decided && d ? `rejected by ${d.by}` : 'no approval in time'}`);
    return false;
  }

  if (await gate('restart', plan.restart)) {
    const notBefore = new Date().toISOString();
    await progress.step('restart', () => quick.restartContainers({ dockerHost: plan.dockerHost, containers: plan.containers, notBefore }), (r) =>
      r.restarted.length ? `restarted ${r.restarted.join(', ')}` : 'already restarted',
    );
    out.restarted = true;
    out.healthyAfterRestart = await progress.step('health check', () =>
      health.checkServiceHealth({ url: plan.healthUrl }).then(
        () => true,
        () => false,
      ),
    );
  }

  const cpu = await progress.step('cpu', () => quick.containerCpu({ dockerHost: plan.dockerHost, containers: plan.containers }), (c) => `${c.cpuPercent} %`);
  out.cpuPercent = cpu.cpuPercent;
  out.cpuByContainer = cpu.byContainer;
  if (cpu.cpuPercent <= plan.cpuThreshold) {
    out.skipped.push(`scale out: CPU ${cpu.cpuPercent} % is not above ${plan.cpuThreshold} %`);
  } else if (await gate('scale out', plan.scaleOut)) {
    try {
      await progress.step(`scale out to ${plan.scaleTo}`, () =>
        // The deploy runbook's `scale` workflow. Its id is the service's deploy lock (deploy/<service>): never a scale in the middle of a deploy.
        executeChild(scale, {
          workflowId: `deploy/${plan.service}`,
          args: [{ service: plan.service, instances: plan.scaleTo, requestedBy: `remediation (${input.requestedBy ?? 'automatic'})`, reason: `CPU ${cpu.cpuPercent} % > ${plan.cpuThreshold} %: ${input.reason}` }],
        }),
      );
      out.scaledTo = plan.scaleTo;
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      out.skipped.push(`scale out: a deploy or scale of ${plan.service} is running (deploy/${plan.service})`);
    }
  }
  progress.finish('completed');
  return out;
}
