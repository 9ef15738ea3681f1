import { readFileSync } from 'node:fs';
import { execa } from 'execa';
import { parse, stringify } from 'yaml';
import { parseUpstream } from '../../src/activities/deploy';
import { type DeployResult, type DeployStatus } from '../../src/workflows/deploy';
import { buildAppImage, deployTargets, freePortRange, serviceContainers, startLoad, startNginx, stopLoads, versionsSeen } from '../support/deploy-fixture';
import { usePrivateTemporal } from '../support/private-servers';
import { type WorkerProcess, startWorkerProcess, writeConfigFile } from '../support/processes';
import { servers, tempDir, testConfig, uniqueName } from '../support/servers';
import { activitySpan, retriedActivities } from '../support/wait';

/**
 * The zero-downtime deploy (WF-11) with the Temporal dev server stopped (by pid) for 20 s in the middle of
 * a rolling deploy under load, while a health gate runs, then started again on the same port and SQLite file.
 * The workers are never restarted. The deploy completes once, no request fails, exactly the new version's
 * containers serve. A Temporal server of this file's own (the shared one serves everyone else).
 * `npm run test:faults`.
 */
const DOWN_MS = Number(process.env.FAULT_TEMPORAL_DOWN_MS ?? 20_000);
const dockerHost = servers().docker.host;

const priv = usePrivateTemporal();
afterAll(() => stopLoads());

test('rolling deploy under load, Temporal down 20 s during a health gate: deployed once, 0 failed requests, only v2 serves', async () => {
  const host = uniqueName('h');
  const service = uniqueName('web').replace(/_/g, '-');
  const repo = `localhost/${service}`;
  const tag = (v: string): string => `${v}-${service.slice(4)}`;
  const image = (v: string): string => `${repo}:${tag(v)}`;
  const built = (async () => {
    for (const v of ['v1', 'v2']) await buildAppImage(dockerHost, repo, tag(v));
  })();
  built.catch(() => undefined);
  const nginx = await startNginx(tempDir('nginx'));
  const taskQueue = uniqueName('deployr');
  const raw = parse(testConfig({ taskQueue }).yaml);
  raw.temporal.address = priv.temporal.address;
  raw.targets = { ...raw.targets, ...deployTargets([{ name: host, dockerHost }], [{ name: service, host, nginx, ports: await freePortRange(4), minHealthy: '3s' }]) };
  const file = writeConfigFile(stringify(raw));
  const workers: WorkerProcess[] = [];
  const start = (img: string, extra: Record<string, unknown> = {}) =>
    priv.client.workflow.start('deploy', {
      taskQueue,
      workflowId: `deploy/${service}`,
      args: [{ service, image: img, strategy: 'rolling', canaryPercent: 10, canaryWindow: '30s', maxErrorPercent: 5, maxP95Ms: 2000, backup: false, ...extra }],
    });
  try {
    workers.push(...(await Promise.all([startWorkerProcess(file), startWorkerProcess(file, {}, ['--docker-host', host])])));
    await built;
    expect(await (await start(image('v1'), { minHealthy: '200ms' })).result()).toMatchObject({ outcome: 'deployed', to: image('v1') });

    const load = startLoad(nginx.url);
    const handle = await start(image('v2'));
    let status = await handle.query<DeployStatus>('status');
    for (const deadline = Date.now() + 60_000; !status.step.startsWith('health gate') && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 100));
      status = await handle.query<DeployStatus>('status');
    }
    expect(status).toMatchObject({ state: 'running', step: expect.stringMatching(/^health gate \d+$/) });
    const down = await priv.temporal.restart(DOWN_MS);
    const result = (await handle.result()) as DeployResult;
    const seen = await load.stop();
    const span = await activitySpan(handle, 'awaitHealthy');
    console.log(`deploy: server down ${down.backAt - down.stoppedAt} ms in ${status.step}; retried ${JSON.stringify(await retriedActivities(handle))}; load ${JSON.stringify(seen)}; last gate ${span.closedAt - span.scheduledAt} ms`);

    expect(result).toMatchObject({ outcome: 'deployed', from: image('v1'), to: image('v2') });
    expect(seen.requests).toBeGreaterThan(100);
    expect(seen).toMatchObject({ failed: 0 });
    const containers = await serviceContainers(dockerHost, service);
    expect(Object.values(containers)).toEqual([`${image('v2')} running`, `${image('v2')} running`]); // no duplicate, no orphan
    const ports = Object.keys(containers).map((n) => Number(n.slice(service.length + 1))).sort();
    expect(parseUpstream(readFileSync(nginx.upstreamFile, 'utf8')).map((s) => s.port).sort()).toEqual(ports);
    expect(await versionsSeen(nginx.url, 50)).toEqual({ [tag('v2')]: 50 });
    const runs = [];
    for await (const r of priv.client.workflow.list({ query: `WorkflowId = 'deploy/${service}'` })) runs.push(r.status.name);
    expect(runs).toEqual(['COMPLETED', 'COMPLETED']); // the v1 deploy and this one: no second run of either
    // The gate that was cut is one step in the timeline, not two.
    expect((await handle.query<DeployStatus>('status')).timeline.filter((s) => s.step === status.step)).toHaveLength(1);
  } finally {
    await stopLoads();
    for (const w of workers) await w.stop().catch(() => undefined);
    const env = { DOCKER_HOST: dockerHost };
    const ids = (await execa('docker', ['ps', '-aq', '--filter', `label=runbooks.service=${service}`], { env })).stdout.split('\n').filter(Boolean);
    if (ids.length) await execa('docker', ['rm', '-f', ...ids], { env, reject: false });
    await nginx.stop();
  }
});
