import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import { type Config } from '../config/schema';
import { RUNBOOK_NAME, RUNBOOK_TARGET } from '../config/temporal';
import {
  type AlertFiring,
  type AlertResolved,
  INCIDENT_WORKFLOW,
  type IncidentInput,
  alertFiringSignal,
  alertResolvedSignal,
  incidentWorkflowId,
} from '../workflows/incident-definitions';

/**
 * Open an incident or join the running one: signal-with-start on incident/<fingerprint>, so the same alert
 * arriving twice (Alertmanager repeats, two health-watch runs) makes one incident.
 */
export async function openIncident(client: Client, config: Config, input: IncidentInput, firing: AlertFiring = {}): Promise<{ workflowId: string; runId: string }> {
  const workflowId = incidentWorkflowId(input.fingerprint);
  const handle = await client.workflow.signalWithStart(INCIDENT_WORKFLOW, {
    workflowId,
    taskQueue: config.temporal.taskQueue,
    args: [input],
    signal: alertFiringSignal,
    signalArgs: [firing],
    typedSearchAttributes: [
      { key: RUNBOOK_NAME, value: 'incident' },
      { key: RUNBOOK_TARGET, value: input.fingerprint },
    ],
  });
  return { workflowId, runId: handle.signaledRunId };
}

/** Resolve the running incident of this fingerprint; false when there is none (already closed or never opened). */
export async function resolveIncident(client: Client, fingerprint: string, resolved: AlertResolved = {}): Promise<boolean> {
  try {
    await client.workflow.getHandle(incidentWorkflowId(fingerprint)).signal(alertResolvedSignal, resolved);
    return true;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}
