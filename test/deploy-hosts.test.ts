import { mkdtempSync } from 'node:fs';
import { type Worker } from '@temporalio/worker';
import { type DeployResult } from '../src/workflows/deploy';
import { createRunbookWorker } from '../src/workers/worker';
import { type RunningDocker, startDocker } from '../src/client/local-docker';
import { type Config } from '../src/config/schema';
import { type WorkerProcess, startWorkerProcess, writeConfigFile } from './support/processes';
import { servers, tempDir, testConfig, uniqueName } from './support/servers';
import { useDevServer, workflowBundle } from './support/temporal';
import { type RunningNginx, buildAppImage, deployTargets, freePortRange, serviceContainers, startNginx, versionsSeen } from './support/deploy-fixture';

const dev = useDevServer();

describe('two docker hosts, one worker each', () => {
  const h1 = uniqueName('one');
  const h2 = uniqueName('two');
  const a = uniqueName('api').replace(/_/g, '-');
  const b = uniqueName('shop').replace(/_/g, '-');
  const taskQueue = uniqueName('hosts');
  const engine1 = servers().docker.host;
  let second: RunningDocker;
  let engine2: string;
  let nginxA: RunningNginx;
  let nginxB: RunningNginx;
  let config: Config;
  let configFile: string;
  let main: Worker;
  let mainRun: Promise<void>;
  const hostWorkers: Record<string, WorkerProcess> = {};

  beforeAll(async () => {
    second = await startDocker({ dir: mkdtempSync('/tmp/rb-docker-') });
    engine2 = second.dockerHost;
    await Promise.all([
      ...['v1', 'v2'].map((t) => buildAppImage(engine1, `localhost/${a}`, t)),
      ...['v1', 'v2'].map((t) => buildAppImage(engine2, `localhost/${b}`, t)),
    ]);
    nginxA = await startNginx(tempDir('nginx-a'));
    nginxB = await startNginx(tempDir('nginx-b'));
    const made = testConfig({
      taskQueue,
      extra: {
        targets: deployTargets(
          [
            { name: h1, dockerHost: engine1 },
            { name: h2, dockerHost: engine2 },
          ],
          [
            { name: a, host: h1, nginx: nginxA, ports: await freePortRange(4) },
            { name: b, host: h2, nginx: nginxB, ports: await freePortRange(4) },
          ],
        ),
      },
    });
    config = made.config;
    configFile = writeConfigFile(made.yaml);
    main = await createRunbookWorker({ config, connection: dev.workerConnection, workflowBundle: await workflowBundle() });
    mainRun = main.run();
    [hostWorkers[h1], hostWorkers[h2]] = await Promise.all([
      startWorkerProcess(configFile, {}, ['--docker-host', h1]),
      startWorkerProcess(configFile, {}, ['--docker-host', h2]),
    ]);
  });

  afterAll(async () => {
    await Promise.allSettled(Object.values(hostWorkers).map((w) => w.stop()));
    main?.shutdown();
    await mainRun?.catch(() => undefined);
    await nginxA?.stop();
    await nginxB?.stop();
    await second?.stop();
  });

  afterEach(async () => {
    for (const s of [a, b]) await dev.client.workflow.getHandle(`deploy/${s}`).terminate('test over').catch(() => undefined);
  });

  function deploy(service: string, image: string): Promise<DeployResult> {
    return dev.client.workflow.execute('deploy', {
      taskQueue,
      workflowId: `deploy/${service}`,
      args: [{ service, image, strategy: 'rolling', canaryPercent: 10, canaryWindow: '30s', maxErrorPercent: 5, maxP95Ms: 2000, backup: false }],
    });
  }

  /** Which worker process ran each of the run's docker-host activities (from the history). */
  async function activityWorkers(service: string): Promise<Set<string>> {
    const history = await dev.client.workflow.getHandle(`deploy/${service}`).fetchHistory();
    const started = new Set<string>();
    const queues = new Map<number, string>();
    for (const e of history.events ?? []) {
      const sched = e.activityTaskScheduledEventAttributes;
      if (sched) queues.set(Number(e.eventId), sched.taskQueue?.name ?? '');
      const st = e.activityTaskStartedEventAttributes;
      if (st && queues.get(Number(st.scheduledEventId)) !== taskQueue) started.add(`${queues.get(Number(st.scheduledEventId))} ${st.identity}`);
    }
    return started;
  }

  test('each service lands on its own host, and each host worker ran only its own host steps', async () => {
    const [ra, rb] = await Promise.all([deploy(a, `localhost/${a}:v1`), deploy(b, `localhost/${b}:v1`)]);
    expect(ra).toMatchObject({ outcome: 'deployed', to: `localhost/${a}:v1` });
    expect(rb).toMatchObject({ outcome: 'deployed', to: `localhost/${b}:v1` });
    expect(Object.values(await serviceContainers(engine1, a))).toEqual([`localhost/${a}:v1 running`, `localhost/${a}:v1 running`]);
    expect(Object.values(await serviceContainers(engine2, b))).toEqual([`localhost/${b}:v1 running`, `localhost/${b}:v1 running`]);
    expect(await serviceContainers(engine2, a)).toEqual({});
    expect(await serviceContainers(engine1, b)).toEqual({});
    expect(await versionsSeen(nginxA.url, 20)).toEqual({ v1: 20 });
    expect(await versionsSeen(nginxB.url, 20)).toEqual({ v1: 20 });
    const pidOf = (h: string) => hostWorkers[h]!.pid;
    expect([...(await activityWorkers(a))].every((s) => s.startsWith(`docker:${h1} ${pidOf(h1)}@`))).toBe(true);
    expect([...(await activityWorkers(b))].every((s) => s.startsWith(`docker:${h2} ${pidOf(h2)}@`))).toBe(true);
    expect((await activityWorkers(a)).size).toBe(1);
  });

  test('the host worker SIGKILLed mid-deploy: after its restart the deploy ends with exactly the intended containers', async () => {
    const handle = await dev.client.workflow.start('deploy', {
      taskQueue,
      workflowId: `deploy/${a}`,
      args: [{ service: a, image: `localhost/${a}:v2`, strategy: 'rolling', canaryPercent: 10, canaryWindow: '30s', maxErrorPercent: 5, maxP95Ms: 2000, backup: false }],
    });
    // Kill it as soon as the first new container exists: its health gate is running on that worker.
    const deadline = Date.now() + 30_000;
    while (!Object.values(await serviceContainers(engine1, a)).some((v) => v.startsWith(`localhost/${a}:v2`))) {
      if (Date.now() > deadline) throw new Error('no v2 container appeared');
      await new Promise((r) => setTimeout(r, 50));
    }
    await hostWorkers[h1]!.kill();
    await new Promise((r) => setTimeout(r, 1000));
    hostWorkers[h1] = await startWorkerProcess(configFile, {}, ['--docker-host', h1]);
    expect(await handle.result()).toMatchObject({ outcome: 'deployed', from: `localhost/${a}:v1`, to: `localhost/${a}:v2` });
    // The step the dead worker held ran again on the restarted one.
    const history = await handle.fetchHistory();
    expect((history.events ?? []).some((e) => (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1)).toBe(true);
    expect(Object.values(await serviceContainers(engine1, a))).toEqual([`localhost/${a}:v2 running`, `localhost/${a}:v2 running`]);
    expect(await versionsSeen(nginxA.url, 20)).toEqual({ v2: 20 });
    // b was never touched
    expect(Object.values(await serviceContainers(engine2, b))).toEqual([`localhost/${b}:v1 running`, `localhost/${b}:v1 running`]);
  });
});
