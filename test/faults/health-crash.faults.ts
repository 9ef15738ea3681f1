import { type Client, type Connection } from '@temporalio/client';
import { execa } from 'execa';
import { type HealthWatchResult } from '../../src/workflows/health-watch';
import { timelineQuery } from '../../src/workflows/incident-definitions';
import { type RemediateOutcome } from '../../src/workflows/remediate-service';
import { type WorkerProcess, startWorkerProcess, writeConfigFile } from '../support/processes';
import { serviceContainer } from '../support/restore-fixture';
import { containerStarts } from '../support/rotation-fixture';
import { servers, testConfig, uniqueName } from '../support/servers';
import { devServerClient } from '../support/temporal';
import { retriedActivities } from '../support/wait';

/**
 * WF-09 + RB-03 under crashes: the service's container is down, the health watch's probe fails, it opens
 * incident/health-http-<probe> and starts remediate/<service>, whose ladder restarts the container. A worker
 * SIGKILLs itself right after one step's side effect; a healthy worker finishes. Then: one incident, the
 * container started exactly once, and the next (healthy) watch resolves the incident. `npm run test:faults`.
 */
let client: Client;
let connection: Connection;
beforeAll(async () => ({ client, connection } = await devServerClient()));
afterAll(async () => connection.close());

const STEPS = ['runHealthChecks', 'raiseIncidents', 'remediationPlan', 'restartContainers', 'checkServiceHealth', 'containerCpu'];

test.each(STEPS)('killed right after %s: one incident, the container restarted once, recovery resolves the incident', async (step) => {
  const api = await serviceContainer();
  const suffix = uniqueName('x').slice(2);
  const service = `svc-${suffix}`;
  const probe = `api-${suffix}`;
  const check = `health-http-${probe}`;
  const taskQueue = uniqueName('hwc');
  const { yaml } = testConfig({
    taskQueue,
    extra: {
      targets: {
        databases: [],
        redis: [],
        dockerHosts: [{ name: 'local', dockerHost: servers().docker.host }],
        services: [{ name: service, host: 'local', containers: [api.name], healthUrl: api.healthUrl }],
      },
      remediation: { services: { [service]: { restart: 'auto', scaleOut: 'approval', cpuThreshold: 80 } } },
      escalation: { people: { 'on-call': { email: 'oncall@example.test' }, 'team-lead': { email: 'lead@example.test' } } },
      health: { http: [{ name: probe, url: api.healthUrl, timeout: '2s', service }], disk: [], memory: { warn: 100, critical: 100 } },
    },
  });
  const file = writeConfigFile(yaml);
  let crashing: WorkerProcess | undefined;
  let healthy: WorkerProcess | undefined;
  try {
    await execa('docker', ['stop', '-t', '2', api.name], { env: { DOCKER_HOST: servers().docker.host } });
    expect(await api.running()).toBe(false);
    const since = Date.now();
    crashing = await startWorkerProcess(file, { RUNBOOKS_CRASH_AFTER: step });
    const watch = await client.workflow.start('healthWatch', { taskQueue, workflowId: uniqueName('health-watch'), args: [{}] });
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([crashing.exited, new Promise((r) => (timer = setTimeout(() => r('still running after 120 s'), 120_000)))]);
    clearTimeout(timer); // no timer left to keep Jest alive after the run
    expect(code).toBeNull(); // killed by SIGKILL: the crash really happened after `step`
    healthy = await startWorkerProcess(file);

    const down = (await watch.result()) as HealthWatchResult;
    expect(down.checks.find((c) => c.check === check)).toMatchObject({ ok: false, remediate: service });
    expect(down.opened).toEqual([`incident/${check}`]);
    expect(down.remediations).toEqual([`remediate/${service}`]);
    const ladderHandle = client.workflow.getHandle(`remediate/${service}`);
    const ladder = (await ladderHandle.result()) as RemediateOutcome;
    expect(ladder).toMatchObject({ service, restarted: true, healthyAfterRestart: true });
    const retried = { ...(await retriedActivities(watch)), ...(await retriedActivities(ladderHandle)) };
    expect(retried[step]).toBeGreaterThanOrEqual(1); // the step really ran again

    expect(await api.running()).toBe(true);
    expect(await containerStarts(api.name, since)).toBe(1);
    const runs = [];
    for await (const w of client.workflow.list({ query: `WorkflowId = "incident/${check}"` })) runs.push(w);
    expect(runs).toHaveLength(1);
    const incident = client.workflow.getHandle(`incident/${check}`);
    const view = await incident.query(timelineQuery);
    expect(view.status).toBe('open');
    // One firing: a retried raiseIncidents does not show up as the alert firing again.
    expect(view.timeline.filter((e) => e.event === 'alert firing')).toEqual([]);

    const up = (await client.workflow.execute('healthWatch', { taskQueue, workflowId: uniqueName('health-watch'), args: [{}] })) as HealthWatchResult;
    expect(up.resolved).toEqual([check]);
    expect(up.remediations).toEqual([]);
    expect(((await incident.result()) as { resolved?: unknown }).resolved).toMatchObject({ by: 'health-watch', auto: true });
    expect(await containerStarts(api.name, since)).toBe(1);
  } finally {
    await crashing?.kill();
    await healthy?.stop();
    await api.remove();
  }
});
