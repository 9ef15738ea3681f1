import { createServer, type Server } from 'node:http';
import { type AddressInfo } from 'node:net';
import path from 'node:path';
import { type Worker } from '@temporalio/worker';
import { execa } from 'execa';
import { type RunningRedis, startRedis } from '../src/client/local-servers';
import { type Config } from '../src/config/schema';
import { createRunbookWorker } from '../src/workers/worker';
import { type healthWatch } from '../src/workflows/health-watch';
import { type incident } from '../src/workflows/incident';
import { timelineQuery } from '../src/workflows/incident-definitions';
import { type remediateService } from '../src/workflows/remediate-service';
import { recordHistory } from './support/histories';
import { type ServiceContainer, serviceContainer } from './support/restore-fixture';
import { servers, tempDir, testConfig, uniqueName } from './support/servers';
import { useDevServer, workflowBundle } from './support/temporal';

// WF-09 against real servers: the shared PostgreSQL, a Redis of this test's own (it gets stopped and started
// again, so not the shared one), and a local HTTP endpoint. A failing check opens incident/health-<check>,
// the check passing again resolves it.

const dev = useDevServer();

describe('health watch', () => {
  let redis: RunningRedis;
  let redisDir: string;
  let redisPort: number;
  let web: Server;
  let api: ServiceContainer;
  let config: Config;
  let worker: Worker;
  let running: Promise<void>;
  const redisName = uniqueName('cache').replace('_', '-');

  beforeAll(async () => {
    redisDir = path.join(tempDir('hw-redis'), 'data');
    redis = await startRedis({ dir: redisDir, password: 'hw-redis-password' });
    redisPort = redis.port;
    web = createServer((_req, res) => res.writeHead(200).end('ok'));
    await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', () => resolve()));
    api = await serviceContainer();
    process.env.HW_REDIS_PASSWORD = 'hw-redis-password';
    const taskQueue = uniqueName('health');
    const base = testConfig({ taskQueue, databases: ['postgres'] }).config;
    config = testConfig({
      taskQueue,
      databases: ['postgres'],
      extra: {
        targets: {
          databases: base.targets.databases.map((d) => ({ ...d, restore: undefined, services: undefined, production: undefined })),
          redis: [{ name: redisName, host: '127.0.0.1', port: redisPort, password: { env: 'HW_REDIS_PASSWORD' } }],
          dockerHosts: [{ name: 'local', dockerHost: servers().docker.host }],
          services: [{ name: 'api', host: 'local', containers: [api.name], healthUrl: api.healthUrl }],
        },
        remediation: { services: { api: { restart: 'auto', scaleOut: 'approval', cpuThreshold: 80 } } },
        // The default "high" policy pages on-call, then the team lead (no channel configured: recorded, not sent).
        escalation: { people: { 'on-call': { email: 'oncall@example.test' }, 'team-lead': { email: 'lead@example.test' } } },
        health: {
          http: [
            { name: 'web', url: `http://127.0.0.1:${(web.address() as AddressInfo).port}/health` },
            { name: 'api', url: api.healthUrl, timeout: '2s', service: 'api' },
          ],
          disk: [],
          memory: { warn: 100, critical: 100 },
        },
      },
    }).config;
    worker = await createRunbookWorker({ config, connection: dev.workerConnection, workflowBundle: await workflowBundle() });
    running = worker.run();
  });

  afterAll(async () => {
    worker?.shutdown();
    await running;
    await redis?.stop();
    await new Promise<void>((resolve) => web?.close(() => resolve()));
    await api?.remove();
  });

  /** One tick of the watch; with `record`, its history is kept under that name (RECORD_HISTORIES=1). */
  const watch = async (record?: string) => {
    const workflowId = uniqueName('health-watch');
    const result = await dev.client.workflow.execute<typeof healthWatch>('healthWatch', { taskQueue: config.temporal.taskQueue, workflowId, args: [{}] });
    if (record) await recordHistory(workflowId, record);
    return result;
  };
  const redisCheck = `health-redis-${redisName}`;

  test('Redis stops: its incident opens; Redis back: the incident resolves; healthy checks open nothing', async () => {
    const ok = await watch('health-watch-all-healthy');
    expect(ok.checks.map((c) => [c.check, c.ok]).sort()).toEqual([
      ['health-http-api', true],
      ['health-http-web', true],
      ['health-memory', true],
      ['health-postgres-postgres', true],
      [redisCheck, true],
    ]);
    expect(ok.opened).toEqual([]);

    await redis.stop();
    const down = await watch('health-watch-incident-opened');
    const failing = down.checks.find((c) => c.check === redisCheck)!;
    expect(failing).toMatchObject({ ok: false, severity: 'high' });
    expect(failing.detail).toMatch(/ECONNREFUSED|connect/);
    expect(failing.detail).not.toContain('hw-redis-password');
    expect(down.opened).toEqual([`incident/${redisCheck}`]);
    expect(down.remediations).toEqual([]); // Redis has no remediation ladder
    const h = dev.client.workflow.getHandle<typeof incident>(`incident/${redisCheck}`);
    expect((await h.query(timelineQuery)).status).toBe('open');

    // Still down five minutes later: the same incident, not a second one.
    expect((await watch()).opened).toEqual([`incident/${redisCheck}`]);
    const runs = [];
    for await (const w of dev.client.workflow.list({ query: `WorkflowId = "incident/${redisCheck}"` })) runs.push(w);
    expect(runs).toHaveLength(1);

    redis = await startRedis({ dir: redisDir, port: redisPort, password: 'hw-redis-password' });
    const up = await watch('health-watch-incident-resolved');
    expect(up.resolved).toEqual([redisCheck]);
    const outcome = await h.result();
    expect(outcome.resolved).toMatchObject({ by: 'health-watch', auto: true });
  });

  test('the api container stops: its incident opens and its remediation ladder restarts it; the next run resolves the incident', async () => {
    await execa('docker', ['stop', '-t', '2', api.name], { env: { DOCKER_HOST: servers().docker.host } });
    expect(await api.running()).toBe(false);
    const down = await watch('health-watch-remediation-started');
    expect(down.checks.find((c) => c.check === 'health-http-api')).toMatchObject({ ok: false, severity: 'critical', remediate: 'api' });
    expect(down.opened).toEqual(['incident/health-http-api']);
    expect(down.remediations).toEqual(['remediate/api']);
    const ladder = await dev.client.workflow.getHandle<typeof remediateService>('remediate/api').result();
    expect(ladder).toMatchObject({ service: 'api', restarted: true, healthyAfterRestart: true });
    expect(ladder.skipped).toEqual([expect.stringMatching(/^scale out: CPU [\d.]+ % is not above 80 %$/)]);
    expect(await api.running()).toBe(true);
    await recordHistory('remediate/api', 'remediate-service-restart');
    const up = await watch();
    expect(up.resolved).toEqual(['health-http-api']);
    expect((await dev.client.workflow.getHandle<typeof incident>('incident/health-http-api').result()).resolved).toMatchObject({ by: 'health-watch', auto: true });
  });
});
