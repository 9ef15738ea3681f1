import { readFileSync } from 'node:fs';
import path from 'node:path';
import { type Worker } from '@temporalio/worker';
import { execa } from 'execa';
import { WorkflowFailedError } from '@temporalio/client';
import { type DeployResult, type DeployStatus } from '../src/workflows/deploy';
import { createRunbookWorker } from '../src/workers/worker';
import { createDockerHostWorker } from '../src/workers/docker-host';
import { type Config } from '../src/config/schema';
import { recordHistory } from './support/histories';
import { runCli, writeConfigFile } from './support/processes';
import { servers, tempDir, testConfig, uniqueName } from './support/servers';
import { parseMail, startSmtp } from './support/smtp';
import { useDevServer, workflowBundle } from './support/temporal';
import {
  type RunningNginx,
  buildAppImage,
  deployTargets,
  freePortRange,
  serviceContainers,
  startLoad,
  startNginx,
  stopLoads,
  versionsSeen,
} from './support/deploy-fixture';

const dev = useDevServer();
const dockerHost = servers().docker.host;
const host = uniqueName('h');
const service = uniqueName('web').replace(/_/g, '-');
const repo = `localhost/${service}`;
const taskQueue = uniqueName('deploy');
let nginx: RunningNginx;
let config: Config;
let configFile: string;
let workers: Worker[] = [];
let running: Promise<unknown>[] = [];
let smtp: Awaited<ReturnType<typeof startSmtp>>;

describe('deploy and scale against real Docker, nginx and Temporal', () => {
beforeAll(async () => {
  smtp = await startSmtp('deploybot', 'smtp-secret');
  process.env.TEST_DEPLOY_SMTP_PASSWORD = 'smtp-secret';
  // One after the other, as releases are: pruning keeps images by creation time, so v4 must be newer than v3.
  for (const t of ['v1', 'v2', 'v3', 'v4']) await buildAppImage(dockerHost, repo, t);
  await buildAppImage(dockerHost, repo, 'bad', { bad: true });
  nginx = await startNginx(tempDir('nginx'));
  const ports = await freePortRange(8);
  const made = testConfig({
    taskQueue,
    email: { port: smtp.port, user: 'deploybot', passwordEnv: 'TEST_DEPLOY_SMTP_PASSWORD', to: ['ops@example.test'] },
    extra: { targets: deployTargets([{ name: host, dockerHost }], [{ name: service, host, nginx, ports }]) },
  });
  config = made.config;
  configFile = writeConfigFile(made.yaml);
  workers = [
    await createRunbookWorker({ config, connection: dev.workerConnection, workflowBundle: await workflowBundle() }),
    await createDockerHostWorker({ config, host, connection: dev.workerConnection }),
  ];
  running = workers.map((w) => w.run());
});

// A failed test must not leave its run holding the service's lock for the next one.
afterEach(async () => {
  await stopLoads();
  await dev.client.workflow.getHandle(`deploy/${service}`).terminate('test over').catch(() => undefined);
});

afterAll(async () => {
  for (const w of workers) w.shutdown();
  await Promise.allSettled(running);
  await nginx?.stop();
  await smtp?.close();
});

function nginxErrors(): string {
  return readFileSync(path.join(nginx.prefix, 'error.log'), 'utf8').split('\n').filter((l) => !l.includes('[notice]')).slice(-15).join('\n');
}

function deploy(image: string, extra: Record<string, unknown> = {}): Promise<DeployResult> {
  return dev.client.workflow.execute('deploy', {
    taskQueue,
    workflowId: `deploy/${service}`,
    args: [{ service, image, strategy: 'rolling', canaryPercent: 10, canaryWindow: '30s', maxErrorPercent: 5, maxP95Ms: 2000, backup: false, ...extra }],
  });
}

async function onlyVersion(tag: string): Promise<void> {
  expect(await versionsSeen(nginx.url, 100)).toEqual({ [tag]: 100 });
  const containers = Object.values(await serviceContainers(dockerHost, service));
  expect(containers).toEqual([`${repo}:${tag} running`, `${repo}:${tag} running`]);
}

test('first deploy from nothing: two gated instances behind nginx', async () => {
  const r = await deploy(`${repo}:v1`);
  expect(r).toMatchObject({ outcome: 'deployed', to: `${repo}:v1`, strategy: 'rolling' });
  expect(r).not.toHaveProperty('from');
  await onlyVersion('v1');
});

test('rolling deploy under constant load: 0 failed requests, then every response is the new version', async () => {
  const load = startLoad(nginx.url);
  const r = await deploy(`${repo}:v2`);
  const seen = await load.stop();
  console.log(`rolling v1→v2 under load: ${JSON.stringify(seen)}\n${nginxErrors()}`);
  expect(r).toMatchObject({ outcome: 'deployed', from: `${repo}:v1`, to: `${repo}:v2` });
  expect(seen.requests).toBeGreaterThan(1000);
  expect(seen).toMatchObject({ failed: 0 });
  await onlyVersion('v2');
  await recordHistory(`deploy/${service}`, 'deploy-rolling');
});

test('blue-green deploy under constant load: 0 failed requests, then every response is the new version', async () => {
  const load = startLoad(nginx.url);
  const r = await deploy(`${repo}:v3`, { strategy: 'blue-green', drain: '1s' });
  const seen = await load.stop();
  console.log(`blue-green v2→v3 under load: ${JSON.stringify(seen)}\n${nginxErrors()}`);
  expect(r).toMatchObject({ outcome: 'deployed', from: `${repo}:v2`, to: `${repo}:v3`, strategy: 'blue-green' });
  expect(seen.requests).toBeGreaterThan(1000);
  expect(seen).toMatchObject({ failed: 0 });
  await onlyVersion('v3');
  await recordHistory(`deploy/${service}`, 'deploy-blue-green');
});

test('an image that fails its health check is rolled back: old version serves 100 %, load saw 0 failures, operators told why', async () => {
  const load = startLoad(nginx.url);
  const err = await deploy(`${repo}:bad`).then(
    () => undefined,
    (e: unknown) => e,
  );
  const seen = await load.stop();
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const message = String((err as WorkflowFailedError).cause?.message);
  expect(message).toContain('failed its health gate');
  expect(message).toContain(`rolled back to ${repo}:v3`);
  expect(seen.requests).toBeGreaterThan(500);
  expect(seen).toMatchObject({ failed: 0 });
  await onlyVersion('v3');
  const mail = smtp.received.map((m) => parseMail(m.raw)).find((m) => m.headers.get('subject')?.includes(`deploy of ${service} FAILED`));
  expect(mail?.headers.get('subject')).toContain(`rolled back to ${repo}:v3`);
  expect(mail?.body).toContain('docker HEALTHCHECK reports unhealthy');
  await recordHistory(`deploy/${service}`, 'deploy-health-gate-rolled-back');
});

test('canary: a second deploy of the service meanwhile is refused by the CLI; status shows the step; the canary is promoted', async () => {
  const handle = await dev.client.workflow.start('deploy', {
    taskQueue,
    workflowId: `deploy/${service}`,
    args: [{ service, image: `${repo}:v4`, strategy: 'canary', canaryPercent: 20, canaryWindow: '4s', maxErrorPercent: 5, maxP95Ms: 2000, backup: false }],
  });
  // While the canary is watched, both versions answer through nginx.
  const deadline = Date.now() + 30_000;
  let status = await handle.query<DeployStatus>('status');
  while (status.step !== 'watch canary' && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    status = await handle.query<DeployStatus>('status');
  }
  expect(status).toMatchObject({ runbook: 'deploy', step: 'watch canary', from: `${repo}:v3`, to: `${repo}:v4` });
  expect(status.upstream.map((u) => u.weight).sort()).toEqual([40, 80, 80]);
  const mixed = await versionsSeen(nginx.url, 100);
  expect(Object.keys(mixed).sort()).toEqual(['v3', 'v4']);

  const second = await runCli(['--config', configFile, 'start', 'deploy', '-p', `service=${service}`, '-p', `image=${repo}:v2`]);
  expect(second.exitCode).toBe(1);
  expect(second.stderr).toContain(`deploy/${service} is already running`);

  expect(await handle.result()).toMatchObject({ outcome: 'deployed', from: `${repo}:v3`, to: `${repo}:v4`, strategy: 'canary' });
  await onlyVersion('v4');
  // keepImages 3: v4 (running), v3 (the rollback target) and v2; "bad" was built after v4 and is a candidate
  // for a next deploy, so it stays too. v1 was pruned.
  const tags = (await execa('docker', ['images', '--format', '{{.Tag}}', '--', repo], { env: { DOCKER_HOST: dockerHost } })).stdout.split('\n').sort();
  expect(tags).toEqual(['bad', 'v2', 'v3', 'v4']);
  await recordHistory(`deploy/${service}`, 'deploy-canary');
});

test('manual rollback during a canary puts the old version back', async () => {
  // Built now, so it is newer than what runs (older images past keepImages were pruned by the deploys above).
  await buildAppImage(dockerHost, repo, 'v5');
  const handle = await dev.client.workflow.start('deploy', {
    taskQueue,
    workflowId: `deploy/${service}`,
    args: [{ service, image: `${repo}:v5`, strategy: 'canary', canaryPercent: 10, canaryWindow: '60s', maxErrorPercent: 5, maxP95Ms: 2000, backup: false }],
  });
  for (let i = 0; i < 150 && (await handle.query<DeployStatus>('status')).step !== 'watch canary'; i++) await new Promise((r) => setTimeout(r, 200));
  await expect(handle.executeUpdate('rollback', { args: [{ by: ' ' }] })).rejects.toMatchObject({ cause: { message: expect.stringContaining('by: who asks') } });
  const cli = await runCli(['--config', configFile, 'rollback', `deploy/${service}`, '--by', 'alice', '--reason', 'latency looks odd']);
  expect(cli).toMatchObject({ exitCode: 0, stdout: expect.stringContaining(`rollback of deploy/${service} requested by alice`) });
  const err = await handle.result().then(
    () => undefined,
    (e: unknown) => e as WorkflowFailedError,
  );
  expect(String(err?.cause?.message)).toContain('rollback requested by alice: latency looks odd');
  expect(String(err?.cause?.message)).toContain(`rolled back to ${repo}:v4`);
  await onlyVersion('v4');
  await recordHistory(`deploy/${service}`, 'deploy-manual-rollback');
});

test('scale up and down behind the same upstream under load: 0 failed requests', async () => {
  const load = startLoad(nginx.url);
  const up = await dev.client.workflow.execute('scale', { taskQueue, workflowId: `deploy/${service}`, args: [{ service, instances: 3, requestedBy: 'test' }] });
  await recordHistory(`deploy/${service}`, 'scale-up');
  const down = await dev.client.workflow.execute('scale', { taskQueue, workflowId: `deploy/${service}`, args: [{ service, instances: 1, requestedBy: 'test' }] });
  const seen = await load.stop();
  expect(up).toMatchObject({ outcome: 'scaled', from: 2, to: 3, version: `${repo}:v4` });
  expect(down).toMatchObject({ outcome: 'scaled', from: 3, to: 1 });
  expect(seen.requests).toBeGreaterThan(500);
  expect(seen).toMatchObject({ failed: 0 });
  expect(Object.values(await serviceContainers(dockerHost, service))).toEqual([`${repo}:v4 running`]);
  expect(await versionsSeen(nginx.url, 20)).toEqual({ v4: 20 });
  await recordHistory(`deploy/${service}`, 'scale-down');
});

test('bad parameters are refused naming the field, and nothing starts', async () => {
  const noTag = await runCli(['--config', configFile, 'start', 'deploy', '-p', `service=${service}`, '-p', `image=${repo}`]);
  expect(noTag.exitCode).toBe(2);
  expect(noTag.stderr).toContain('image: must name a tag or a digest');
  const badStrategy = await runCli(['--config', configFile, 'start', 'deploy', '-p', `service=${service}`, '-p', `image=${repo}:v1`, '-p', 'strategy=yolo']);
  expect(badStrategy.exitCode).toBe(2);
  expect(badStrategy.stderr).toContain('strategy');
  const unknown = await runCli(['--config', configFile, 'start', 'scale', '-p', 'service=nope', '-p', 'instances=2']);
  expect(unknown.exitCode).toBe(2);
  expect(unknown.stderr).toContain('service: unknown deployable service "nope"');
  const zero = await runCli(['--config', configFile, 'start', 'scale', '-p', `service=${service}`, '-p', 'instances=0']);
  expect(zero.exitCode).toBe(2);
  expect(zero.stderr).toContain('instances');
});
});
