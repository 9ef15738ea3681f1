import { type WorkflowHandle, WorkflowUpdateFailedError } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { type WorkerOptions, Worker, bundleWorkflowCode } from '@temporalio/worker';
import { execa } from 'execa';
import { type RemediationPlan } from '../src/activities';
import { restartContainers } from '../src/activities/docker';
import { containerCpu } from '../src/activities/remediation';
import { temporalBinary } from '../src/client/local-servers';
import { approveUpdate } from '../src/workflows/definitions';
import { type remediateService } from '../src/workflows/remediate-service';
import { serviceContainer } from './support/restore-fixture';
import { servers, uniqueName } from './support/servers';

// RB-03 remediation ladder. Its gating and order on the time-skipping server with mocked activities and a
// stand-in for the deploy runbook's `scale` workflow; the restart step against the real Docker engine.

describe('remediation ladder (time-skipping, mocked steps)', () => {
  let env: TestWorkflowEnvironment;
  let bundle: WorkerOptions['workflowBundle'];
  beforeAll(async () => {
    bundle = await bundleWorkflowCode({ workflowsPath: require.resolve('./support/workflows-with-scale'), logger: { log: () => undefined, trace: () => undefined, debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined } });
  });
  beforeEach(async () => {
    env = await TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path: temporalBinary('temporal-test-server') } } });
  }, 60_000);
  afterEach(async () => env?.teardown());

  async function run(plan: Partial<RemediationPlan>, cpu: number, during?: (h: WorkflowHandle<typeof remediateService>) => Promise<void>) {
    const taskQueue = uniqueName('rem');
    const calls: string[] = [];
    const full: RemediationPlan = { service: 'api', dockerHost: 'unix:///x.sock', containers: ['api-1'], healthUrl: 'http://api/health', restart: 'auto', scaleOut: 'auto', scaleTo: 3, cpuThreshold: 80, approvalTimeoutMs: 30 * 60_000, ...plan };
    const activities = {
      remediationPlan: () => Promise.resolve(full),
      restartContainers: (i: { containers: string[] }) => (calls.push(`restart ${i.containers.join(',')}`), Promise.resolve({ restarted: i.containers, alreadyRestarted: [] })),
      checkServiceHealth: () => (calls.push('health'), Promise.resolve({ status: 200 })),
      containerCpu: () => (calls.push('cpu'), Promise.resolve({ cpuPercent: cpu, byContainer: { 'api-1': cpu } })),
    };
    const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: bundle, activities });
    const start = () => env.client.workflow.start<typeof remediateService>('remediateService', { taskQueue, workflowId: `remediate/api/${uniqueName('r')}`, args: [{ service: 'api', reason: 'p95 > 2 s', requestedBy: 'alice' }] });
    return worker.runUntil(async () => {
      const h = await start();
      if (during) await during(h);
      const outcome = await h.result();
      return { outcome, calls, history: await h.fetchHistory() };
    });
  }

  const scaleChildren = (history: Awaited<ReturnType<typeof run>>['history']) =>
    (history.events ?? []).filter((e) => e.startChildWorkflowExecutionInitiatedEventAttributes).map((e) => e.startChildWorkflowExecutionInitiatedEventAttributes!.workflowType!.name);

  test('CPU 95 %, both steps automatic: restart, health, then scale out to 3 through the `scale` workflow', async () => {
    const { outcome, calls, history } = await run({}, 95);
    expect(calls).toEqual(['restart api-1', 'health', 'cpu']);
    expect(scaleChildren(history)).toEqual(['scale']);
    expect(outcome).toMatchObject({ restarted: true, healthyAfterRestart: true, cpuPercent: 95, scaledTo: 3, skipped: [] });
  });

  test('CPU 40 %: restart only, no scale out', async () => {
    const { outcome, calls, history } = await run({}, 40);
    expect(calls).toEqual(['restart api-1', 'health', 'cpu']);
    expect(scaleChildren(history)).toEqual([]);
    expect(outcome.skipped).toEqual(['scale out: CPU 40 % is not above 80 %']);
  });

  test('scale out needs an approval: the requester cannot give it; another operator can', async () => {
    const { outcome, history } = await run({ scaleOut: 'approval' }, 90, async (h) => {
      await env.sleep('1m');
      const self = await h.executeUpdate(approveUpdate, { args: [{ by: 'Alice ' }] }).catch((e: unknown) => e);
      expect(self).toBeInstanceOf(WorkflowUpdateFailedError);
      expect((self as WorkflowUpdateFailedError).cause?.message).toMatch(/^by: Alice requested this remediation/);
      await h.executeUpdate(approveUpdate, { args: [{ by: 'bob' }] });
    });
    expect(scaleChildren(history)).toEqual(['scale']);
    expect(outcome.approvals.map((a) => `${a.decision} ${a.by}`)).toEqual(['approved bob']);
    expect(outcome.scaledTo).toBe(3);
  });

  test('restart needs an approval nobody gives: skipped after the timeout, nothing restarted, nothing scaled below threshold', async () => {
    const { outcome, calls } = await run({ restart: 'approval' }, 10);
    expect(calls).toEqual(['cpu']);
    expect(outcome).toMatchObject({ restarted: false, skipped: ['restart: no approval in time', 'scale out: CPU 10 % is not above 80 %'] });
  });
});

test('restart against the real Docker engine: the container restarts once; a retry with the same decision time does nothing', async () => {
  const svc = await serviceContainer();
  const dockerHost = servers().docker.host;
  const startedAt = async () => String((await execa('docker', ['inspect', '-f', '{{.State.StartedAt}}', svc.name], { env: { DOCKER_HOST: dockerHost } })).stdout);
  try {
    const before = await startedAt();
    await new Promise((r) => setTimeout(r, 1100));
    const notBefore = new Date().toISOString();
    expect(await restartContainers({ dockerHost, containers: [svc.name], notBefore })).toEqual({ restarted: [svc.name], alreadyRestarted: [] });
    const after = await startedAt();
    expect(Date.parse(after)).toBeGreaterThan(Date.parse(before));
    expect(await svc.running()).toBe(true);
    expect(await restartContainers({ dockerHost, containers: [svc.name], notBefore })).toEqual({ restarted: [], alreadyRestarted: [svc.name] });
    expect(await startedAt()).toBe(after);
    const cpu = await containerCpu({ dockerHost, containers: [svc.name] });
    expect(Object.keys(cpu.byContainer)).toEqual([svc.name]);
    expect(cpu.cpuPercent).toBeGreaterThanOrEqual(0);
  } finally {
    await svc.remove();
  }
});
