import { writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Worker } from '@temporalio/worker';
import { execa } from 'execa';
import { renderUpstream } from '../src/activities/deploy';
import { createDockerHostWorker } from '../src/workers/docker-host';
import { createRunbookWorker } from '../src/workers/worker';
import { type DeployResult } from '../src/workflows/deploy';
import { servers, tempDir, testConfig, uniqueName } from '../test/support/servers';
import { report } from './support/report';
import { useDevServer, workflowBundle } from '../test/support/temporal';
import {
  type LoadResult,
  type RunningNginx,
  buildAppImage,
  deployTargets,
  freePortRange,
  serviceContainers,
  startLoad,
  startNginx,
  stopLoads,
  versionsSeen,
} from '../test/support/deploy-fixture';

/**
 * Failed requests while a new version goes out, through the same nginx under the same wrk load.
 * Seed (D0 rolling-update.sh, WF-11): `docker-compose up -d --scale svc=2`, `sleep 30`, `--scale svc=1`. Here:
 * a second container of the new image joins the upstream (what compose's DNS gives nginx), a blind sleep,
 * then compose's scale-down stops the highest-numbered container — the NEW one — with no drain.
 * Ours: the `deploy` runbook, rolling, health-gated, drained.
 * Each runs twice: wrk with `Connection: close` (what the tests assert on) and with keep-alive connections,
 * where any graceful `nginx -s reload` can lose a request written at the instant nginx closes an idle connection.
 */
const SEED_SLEEP_S = Number(process.env.BENCH_SEED_SLEEP_S ?? (process.env.BENCH_SMOKE === '1' ? 5 : 30));

const dev = useDevServer();

test('failed requests during a deploy: ours vs the seed scale-to-2 / sleep / scale-to-1', async () => {
  const dockerHost = servers().docker.host;
  const host = uniqueName('bench');
  const service = uniqueName('bench').replace(/_/g, '-');
  const repo = `localhost/${service}`;
  const taskQueue = uniqueName('bench');
  for (const t of ['v1', 'v2', 'v3', 'v4', 'v5']) await buildAppImage(dockerHost, repo, t);
  const nginx: RunningNginx = await startNginx(tempDir('nginx-bench'));
  const ports = await freePortRange(6);
  const { config } = testConfig({
    taskQueue,
    extra: { targets: deployTargets([{ name: host, dockerHost }], [{ name: service, host, nginx, ports, instances: 1, drain: '2s' }]) },
  });
  const workers: Worker[] = [
    await createRunbookWorker({ config, connection: dev.workerConnection, workflowBundle: await workflowBundle() }),
    await createDockerHostWorker({ config, host, connection: dev.workerConnection }),
  ];
  const running = workers.map((w) => w.run());
  const docker = (args: string[]) => execa('docker', args, { env: { DOCKER_HOST: dockerHost } });
  const reload = () => execa('nginx', ['-s', 'reload', '-c', nginx.conf, '-p', nginx.prefix]);
  const deploy = (image: string): Promise<DeployResult> =>
    dev.client.workflow.execute('deploy', {
      taskQueue,
      workflowId: `deploy/${service}`,
      args: [{ service, image, strategy: 'rolling', canaryPercent: 10, canaryWindow: '30s', maxErrorPercent: 5, maxP95Ms: 2000, backup: false }],
    });

  /** The seed's procedure on the same service: returns the version nginx serves afterwards. */
  async function seed(image: string): Promise<void> {
    const current = Object.keys(await serviceContainers(dockerHost, service));
    const oldPort = Number(current[0]!.split('-').pop());
    const newPort = oldPort === ports.from ? ports.from + 1 : ports.from;
    const name = `${service}-seed-${newPort}`;
    // --scale svc=2: a second container; compose's DNS hands it to nginx.
    await docker(['run', '-d', '--init', '--network', 'host', '--name', name, '--label', `runbooks.service=${service}`, '--label', `runbooks.version=${image}`,
      '--label', `runbooks.port=${newPort}`, '--env', `PORT=${newPort}`, image]);
    writeFileSync(nginx.upstreamFile, renderUpstream(service, [{ port: oldPort }, { port: newPort }]));
    await reload();
    await sleep(SEED_SLEEP_S * 1000); // "wait for new instance healthy"
    // --scale svc=1: compose stops and removes the highest-numbered container, the new one, while nginx still routes to it.
    await docker(['stop', name]);
    await docker(['rm', name]);
    writeFileSync(nginx.upstreamFile, renderUpstream(service, [{ port: oldPort }]));
    await reload();
  }

  interface Measured {
    requests: number;
    failed: number;
    newShare: number;
    ms: number;
  }
  async function measure(keepAlive: boolean, fn: () => Promise<unknown>, newVersion: string): Promise<Measured> {
    const load = startLoad(nginx.url, { keepAlive });
    await sleep(500);
    const t0 = Date.now();
    await fn();
    const ms = Date.now() - t0;
    await sleep(500);
    const r: LoadResult = await load.stop();
    const seen = await versionsSeen(nginx.url, 100);
    return { requests: r.requests, failed: r.failed, newShare: seen[newVersion] ?? 0, ms };
  }

  try {
    await deploy(`${repo}:v1`);
    for (const keepAlive of [false, true]) {
      const v = keepAlive ? ['v4', 'v5'] : ['v2', 'v3'];
      const seedRun = await measure(keepAlive, () => seed(`${repo}:${v[0]}`), v[0]!);
      const ours = await measure(keepAlive, () => deploy(`${repo}:${v[1]}`), v[1]!);
      const load = keepAlive ? 'wrk, 8 keep-alive connections' : 'wrk, 8 connections, a new connection per request';
      const sizes = `${load}; ours ${ours.requests} requests in ${(ours.ms / 1000).toFixed(1)} s, seed ${seedRun.requests} in ${(seedRun.ms / 1000).toFixed(1)} s (sleep ${SEED_SLEEP_S} s)`;
      const baselineName = 'seed scale-to-2 / sleep / scale-to-1';
      report({ bench: 'deploy', metric: `failed requests (${keepAlive ? 'keep-alive' : 'close'})`, unit: 'requests', ours: ours.failed, baseline: seedRun.failed, baselineName, target: 'ours = 0', sizes, notes: keepAlive ? 'a graceful nginx reload closes idle keep-alive connections; clients that do not retry lose a request per busy connection, seed and ours alike' : undefined });
      report({ bench: 'deploy', metric: `responses from the new version afterwards (${keepAlive ? 'keep-alive' : 'close'})`, unit: '%', ours: ours.newShare, baseline: seedRun.newShare, baselineName, target: 'ours = 100', sizes });
    }
  } finally {
    await stopLoads();
    for (const w of workers) w.shutdown();
    await Promise.allSettled(running);
    await nginx.stop();
  }
});
