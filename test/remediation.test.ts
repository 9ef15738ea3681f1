import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type WorkflowHandle, WorkflowUpdateFailedError } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { type Worker as RunningWorker, type WorkerOptions, Worker } from '@temporalio/worker';
import { execa } from 'execa';
import { type DeploySettings, type Instance, type RemediationPlan, type UpstreamServer } from '../src/activities';
import { restartContainers } from '../src/activities/docker';
import { containerCpu } from '../src/activities/remediation';
import { BASE_IMAGE } from '../src/client/local-docker';
import { temporalBinary } from '../src/client/local-servers';
import { type Config } from '../src/config/schema';
import { createDockerHostWorker } from '../src/workers/docker-host';
import { createRunbookWorker } from '../src/workers/worker';
import { approveUpdate } from '../src/workflows/definitions';
import { type remediateService } from '../src/workflows/remediate-service';
import { type RunningNginx, deployTargets, freePortRange, serviceContainers, startNginx, versionsSeen } from './support/deploy-fixture';
import { recordHandleHistory, recordHistory } from './support/histories';
import { serviceContainer } from './support/restore-fixture';
import { servers, tempDir, testConfig, uniqueName } from './support/servers';
import { useDevServer, workflowBundle } from './support/temporal';

// RB-03 remediation ladder. Its gating and order on the time-skipping server with mocked activities (the
// deploy runbook's real `scale` workflow runs as the child, on an in-memory fleet); then the whole ladder
// against the real Docker engine, nginx and the `scale` workflow, with a container that really burns CPU.

describe('remediation ladder (time-skipping, mocked steps)', () => {
  let env: TestWorkflowEnvironment;
  let bundle: WorkerOptions['workflowBundle'];
  beforeAll(async () => {
    bundle = await workflowBundle();
  });
  beforeEach(async () => {
    env = await TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path: temporalBinary('temporal-test-server') } } });
  }, 60_000);
  afterEach(async () => env?.teardown());

  /** With `record`, the run's history is kept under that name (RECORD_HISTORIES=1). */
  async function run(plan: Partial<RemediationPlan>, cpu: number, during?: (h: WorkflowHandle<typeof remediateService>) => Promise<void>, record?: string) {
    const taskQueue = uniqueName('rem');
    const calls: string[] = [];
    const full: RemediationPlan = { service: 'api', dockerHost: 'unix:///x.sock', containers: ['api-1'], healthUrl: 'http://api/health', restart: 'auto', scaleOut: 'auto', scaleTo: 3, cpuThreshold: 80, approvalTimeoutMs: 30 * 60_000, ...plan };
    // The deploy runbook's steps on an in-memory fleet of two serving instances, so the real `scale` runs as the child.
    const fleet: { instances: Instance[]; upstream: UpstreamServer[] } = {
      instances: [8001, 8002].map((port) => ({ name: `api-${port}`, id: `id${port}`, version: 'api:v1', port, deployId: 'd1', state: 'running', health: 'healthy' })),
      upstream: [{ port: 8001 }, { port: 8002 }],
    };
    const settings: DeploySettings = { service: 'api', host: 'h', taskQueue, instances: 2, ports: { from: 8001, to: 8010 }, health: { path: '/health', expectStatus: 200, minHealthyMs: 0, timeoutMs: 1000 }, drainMs: 0, keepImages: 3, databases: [] };
    const activities = {
      deploySettings: () => Promise.resolve(settings),
      listInstances: () => Promise.resolve(fleet.instances),
      readUpstream: () => Promise.resolve(fleet.upstream),
      startInstance: (i: { image: string; port: number; deployId: string }) => {
        const inst: Instance = { name: `api-${i.port}`, id: `id${i.port}`, version: i.image, port: i.port, deployId: i.deployId, state: 'running', health: 'healthy' };
        fleet.instances.push(inst);
        return Promise.resolve(inst);
      },
      awaitHealthy: () => Promise.resolve({ healthyAfterMs: 1 }),
      setUpstream: (i: { servers: UpstreamServer[] }) => ((fleet.upstream = i.servers), Promise.resolve({ servers: i.servers })),
      removeInstances: (i: { names: string[] }) => ((fleet.instances = fleet.instances.filter((x) => !i.names.includes(x.name))), Promise.resolve({ removed: i.names })),
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
      if (record) await recordHandleHistory(h, record);
      return { outcome, calls, history: await h.fetchHistory(), serving: fleet.upstream.map((u) => u.port).sort() };
    });
  }

  const scaleChildren = (history: Awaited<ReturnType<typeof run>>['history']) =>
    (history.events ?? []).filter((e) => e.startChildWorkflowExecutionInitiatedEventAttributes).map((e) => e.startChildWorkflowExecutionInitiatedEventAttributes!.workflowType!.name);

  test('CPU 95 %, both steps automatic: restart, health, then scale out to 3 through the `scale` workflow', async () => {
    const { outcome, calls, history, serving } = await run({}, 95);
    expect(calls).toEqual(['restart api-1', 'health', 'cpu']);
    expect(scaleChildren(history)).toEqual(['scale']);
    expect(outcome).toMatchObject({ restarted: true, healthyAfterRestart: true, cpuPercent: 95, scaledTo: 3, skipped: [] });
    expect(serving).toEqual([8001, 8002, 8003]); // the scale workflow put a third instance in the upstream
  });

  test('CPU 40 %: restart only, no scale out', async () => {
    const { outcome, calls, history, serving } = await run({}, 40);
    expect(calls).toEqual(['restart api-1', 'health', 'cpu']);
    expect(scaleChildren(history)).toEqual([]);
    expect(serving).toEqual([8001, 8002]);
    expect(outcome.skipped).toEqual(['scale out: CPU 40 % is not above 80 %']);
  });

  test('scale out needs an approval: the requester cannot give it; another operator can', async () => {
    const { outcome, history, serving } = await run({ scaleOut: 'approval' }, 90, async (h) => {
      await env.sleep('1m');
      const self = await h.executeUpdate(approveUpdate, { args: [{ by: 'Alice ' }] }).catch((e: unknown) => e);
      expect(self).toBeInstanceOf(WorkflowUpdateFailedError);
      expect((self as WorkflowUpdateFailedError).cause?.message).toMatch(/^by: Alice requested this remediation/);
      await h.executeUpdate(approveUpdate, { args: [{ by: 'bob' }] });
    }, 'remediate-service-scale-out-approved');
    expect(scaleChildren(history)).toEqual(['scale']);
    expect(serving).toEqual([8001, 8002, 8003]);
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

// The dev server's connections close after the describe below has stopped its workers.
const dev = useDevServer();

describe('the ladder against the real Docker engine, nginx and the deploy runbook\'s `scale`', () => {
  const dockerHost = servers().docker.host;
  const env = { DOCKER_HOST: dockerHost };
  const host = uniqueName('h');
  const taskQueue = uniqueName('remediate');
  const hot = uniqueName('hot').replace(/_/g, '-');
  const calm = uniqueName('calm').replace(/_/g, '-');
  const THRESHOLD = 6;
  const nginx: Record<string, RunningNginx> = {};
  const ports: Record<string, { from: number; to: number }> = {};
  let config: Config;
  let workers: RunningWorker[] = [];
  let running: Array<Promise<unknown>> = [];

  /**
   * An app image FROM the local busybox base: httpd serving /health, /version and /port (the port of the
   * instance that answered). The instance started on `burnPort` also runs a busy loop, started again with
   * its container (so a restart does not cure it).
   */
  async function buildImage(ref: string, burnPort?: number): Promise<string> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'rb-cpu-'));
    mkdirSync(path.join(dir, 'www'));
    writeFileSync(path.join(dir, 'www', 'health'), 'ok\n');
    writeFileSync(path.join(dir, 'www', 'version'), `${ref}\n`);
    writeFileSync(
      path.join(dir, 'Dockerfile'),
      [
        `FROM ${BASE_IMAGE}`,
        'COPY www /www',
        `ENV PORT=8080 BURN_PORT=${burnPort ?? 0}`,
        'HEALTHCHECK --interval=2s --timeout=1s --retries=2 CMD wget -q -O /dev/null http://127.0.0.1:$PORT/health || exit 1',
        `CMD ["sh", "-c", "echo $PORT > /www/port; if [ \\"$PORT\\" = \\"$BURN_PORT\\" ]; then (while :; do :; done) & fi; exec httpd -f -p 127.0.0.1:$PORT -h /www"]`,
        '',
      ].join('\n'),
    );
    await execa('docker', ['build', '-q', '-t', ref, dir], { env });
    return ref;
  }

  /** The service's running containers on the engine, read from the engine itself: name → port label. */
  async function runningInstances(service: string): Promise<Record<string, number>> {
    const r = await execa('docker', ['ps', '--filter', `label=runbooks.service=${service}`, '--filter', 'status=running', '--format', '{{.Names}} {{.Label "runbooks.port"}}'], { env });
    return Object.fromEntries(String(r.stdout).split('\n').filter(Boolean).map((l) => [l.split(' ')[0]!, Number(l.split(' ')[1])]));
  }

  /** CPU time the container's processes used (its cgroup's cpuacct.usage, ns): a reading that does not come from docker stats. */
  async function cgroupCpuNs(name: string): Promise<number> {
    const pid = String((await execa('docker', ['inspect', '-f', '{{.State.Pid}}', name], { env })).stdout).trim();
    const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').find((l) => /(^|,|:)cpuacct(,|:)/.test(l));
    const rel = line ? line.split(':')[2]! : readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').find((l) => l.startsWith('0::'))!.slice(3);
    const v1 = path.join('/sys/fs/cgroup/cpuacct', rel, 'cpuacct.usage');
    try {
      return Number(readFileSync(v1, 'utf8'));
    } catch {
      const stat = readFileSync(path.join('/sys/fs/cgroup', rel, 'cpu.stat'), 'utf8');
      return Number(/usage_usec (\d+)/.exec(stat)![1]) * 1000;
    }
  }

  /** Each container's CPU share (% of one core) over `ms`, from its cgroup. */
  async function cpuShare(names: string[], ms = 3000): Promise<Record<string, number>> {
    const before = await Promise.all(names.map(cgroupCpuNs));
    const t0 = process.hrtime.bigint();
    await sleep(ms);
    const after = await Promise.all(names.map(cgroupCpuNs));
    const wall = Number(process.hrtime.bigint() - t0);
    return Object.fromEntries(names.map((n, i) => [n, ((after[i]! - before[i]!) / wall) * 100]));
  }

  const deploy = (service: string, image: string): Promise<unknown> =>
    dev.client.workflow.execute('deploy', {
      taskQueue,
      workflowId: `deploy/${service}`,
      args: [{ service, image, strategy: 'rolling', canaryPercent: 10, canaryWindow: '30s', maxErrorPercent: 5, maxP95Ms: 2000, backup: false }],
    });
  const remediate = (service: string) =>
    dev.client.workflow.execute<typeof remediateService>('remediateService', { taskQueue, workflowId: `remediate/${service}`, args: [{ service, reason: 'p95 > 2 s', requestedBy: 'alice' }] });

  beforeAll(async () => {
    for (const s of [hot, calm]) {
      nginx[s] = await startNginx(tempDir(`nginx-${s}`));
      ports[s] = await freePortRange(4);
    }
    // The first deploy puts its two instances on the first two ports: the hot service's first one burns CPU.
    await buildImage(`localhost/${hot}:v1`, ports[hot]!.from);
    await buildImage(`localhost/${calm}:v1`);
    const targets = deployTargets([{ name: host, dockerHost }], [hot, calm].map((name) => ({ name, host, nginx: nginx[name]!, ports: ports[name]!, instances: 2 }))) as { services: Array<Record<string, unknown>> };
    targets.services = targets.services.map((s) => ({ ...s, healthUrl: `http://127.0.0.1:${nginx[s.name as string]!.port}/health` }));
    const rule = { restart: 'auto', scaleOut: 'auto', scaleTo: 3, cpuThreshold: THRESHOLD };
    config = testConfig({ taskQueue, extra: { targets, remediation: { services: { [hot]: rule, [calm]: rule } } } }).config;
    workers = [
      await createRunbookWorker({ config, connection: dev.workerConnection, workflowBundle: await workflowBundle() }),
      await createDockerHostWorker({ config, host, connection: dev.workerConnection }),
    ];
    running = workers.map((w) => w.run());
    await deploy(hot, `localhost/${hot}:v1`);
    await deploy(calm, `localhost/${calm}:v1`);
  }, 180_000);

  afterAll(async () => {
    for (const w of workers) w.shutdown();
    await Promise.allSettled(running);
    for (const s of [hot, calm]) {
      const ids = String((await execa('docker', ['ps', '-aq', '--filter', `label=runbooks.service=${s}`], { env })).stdout).split('\n').filter(Boolean);
      if (ids.length) await execa('docker', ['rm', '-f', ...ids], { env, reject: false });
      await nginx[s]?.stop();
    }
  });

  test('an idle service next to a container of another service that burns CPU: restarted, its own containers read, not scaled out', async () => {
    const before = await runningInstances(calm);
    expect(Object.keys(before)).toHaveLength(2);
    const startedAt = async (): Promise<Record<string, string>> =>
      Object.fromEntries(await Promise.all(Object.keys(before).map(async (n): Promise<[string, string]> => [n, String((await execa('docker', ['inspect', '-f', '{{.State.StartedAt}}', n], { env })).stdout)])));
    const started0 = await startedAt();
    const outcome = await remediate(calm);
    expect(outcome).toMatchObject({ restarted: true, healthyAfterRestart: true });
    // Restarted for real: each of the service's containers started again.
    const started1 = await startedAt();
    for (const n of Object.keys(before)) expect(Date.parse(started1[n]!)).toBeGreaterThan(Date.parse(started0[n]!));
    // The reading is of the service's own two containers, not the engine's busiest one.
    expect(Object.keys(outcome.cpuByContainer ?? {}).sort()).toEqual(Object.keys(before).sort());
    expect(outcome.cpuPercent).toBeLessThanOrEqual(THRESHOLD);
    expect(outcome.scaledTo).toBeUndefined();
    expect(outcome.skipped).toEqual([expect.stringMatching(new RegExp(`^scale out: CPU [\\d.]+ % is not above ${THRESHOLD} %$`))]);
    expect(await runningInstances(calm)).toEqual(before);
  }, 180_000);

  test('a service whose container burns CPU: its stats trigger the scale out, then 3 containers run and nginx serves all 3', async () => {
    const before = await runningInstances(hot);
    const burner = Object.keys(before).find((n) => before[n] === ports[hot]!.from)!;
    const idle = Object.keys(before).find((n) => n !== burner)!;
    expect(Object.keys(before)).toHaveLength(2);
    const outcome = await remediate(hot);
    expect(outcome).toMatchObject({ restarted: true, healthyAfterRestart: true, scaledTo: 3, skipped: [] });
    // The reading that triggered it: docker stats of the service's two containers, the burning one above the threshold.
    expect(Object.keys(outcome.cpuByContainer ?? {}).sort()).toEqual([burner, idle].sort());
    expect(outcome.cpuByContainer![burner]).toBeGreaterThan(THRESHOLD);
    expect(outcome.cpuByContainer![idle]).toBeLessThanOrEqual(THRESHOLD);
    expect(outcome.cpuPercent).toBe(outcome.cpuByContainer![burner]);
    // ...and the kernel's own count agrees: the burner really uses CPU, the other one does not.
    const share = await cpuShare([burner, idle]);
    console.log(`docker stats ${JSON.stringify(outcome.cpuByContainer)}; cgroup share over 3 s ${JSON.stringify(share)}`);
    expect(share[burner]).toBeGreaterThan(THRESHOLD);
    expect(share[idle]).toBeLessThan(THRESHOLD);
    // N+1 containers of the service run on the engine, and nginx routes to each of them.
    const after = await runningInstances(hot);
    expect(Object.keys(after)).toHaveLength(3);
    expect(Object.keys(after)).toEqual(expect.arrayContaining(Object.keys(before)));
    expect(Object.values(await serviceContainers(dockerHost, hot))).toEqual([`localhost/${hot}:v1 running`, `localhost/${hot}:v1 running`, `localhost/${hot}:v1 running`]);
    const seen = await versionsSeen(`http://127.0.0.1:${nginx[hot]!.port}/port`, 60);
    expect(Object.keys(seen).map(Number).sort()).toEqual(Object.values(after).sort());
    await recordHistory(`remediate/${hot}`, 'remediate-service-scale-out');
  }, 180_000);
});
