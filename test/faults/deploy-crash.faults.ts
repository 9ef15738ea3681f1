import { readFileSync } from 'node:fs';
import { type WorkflowHandle, WorkflowFailedError } from '@temporalio/client';
import { execa } from 'execa';
import { parse, stringify } from 'yaml';
import { parseUpstream } from '../../src/activities/deploy';
import { type DeployResult, type DeployStatus } from '../../src/workflows/deploy';
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
} from '../support/deploy-fixture';
import { type WorkerProcess, startWorkerProcess, writeConfigFile } from '../support/processes';
import { servers, tempDir, testConfig, uniqueName } from '../support/servers';
import { parseMail, startSmtp } from '../support/smtp';
import { useDevServer } from '../support/temporal';
import { expectCutMidStep } from '../support/wait';

/**
 * The zero-downtime deploy (WF-11) under crashes, `npm run test:faults`. Real components only: the shared
 * Temporal dev server and Docker engine, an nginx per case, a real SMTP server, and both workers as their own
 * processes (dist/workers/main.js, the Docker-host one with --docker-host). A rolling deploy under constant
 * load has its Docker-host worker SIGKILLed right after each activity it runs (RUNBOOKS_CRASH_AFTER: the side
 * effect happened, Temporal never heard of it), its runbook worker killed after its own activity, and the host
 * worker killed by the test in the middle of a health gate; a failing deploy (an image whose health check
 * fails) is killed right after its rollback steps (the failed instance removed, the upstream back, the email). A healthy worker then finishes the run, and what users
 * see must be as if nothing had happened: 0 failed requests, exactly the expected containers (no duplicate,
 * no orphan), nginx serving one version, the rollback target's image kept, the failure email once.
 */
const dev = useDevServer();
const dockerHost = servers().docker.host;
let smtp: Awaited<ReturnType<typeof startSmtp>>;

beforeAll(async () => {
  process.env.TEST_DEPLOY_SMTP_PASSWORD = 'smtp-secret';
  smtp = await startSmtp('deploybot', 'smtp-secret');
});
afterAll(async () => smtp?.close());

interface Fixture {
  service: string;
  host: string;
  repo: string;
  taskQueue: string;
  file: string;
  nginx: RunningNginx;
  workers: WorkerProcess[];
  /** This case's tag for a version name ('v1' → 'v1-1a2b3c4d'): unique content, so no build is a cache hit of another case's. */
  tag(version: string): string;
  /** The image reference of a version. */
  image(version: string): string;
  /** The images, built in order in the background while the workers start. */
  built: Promise<void>;
}

let current: Fixture | undefined;

/**
 * One service per case (its own images, nginx, ports, task queue), so a case never inherits another's state.
 * keepImages 2: a successful deploy of v2 from v1 keeps exactly v2 and its rollback target v1, and prunes v0.
 */
async function fixture(versions: string[], opts: { minHealthy?: string } = {}): Promise<Fixture> {
  const host = uniqueName('h');
  const service = uniqueName('web').replace(/_/g, '-');
  const repo = `localhost/${service}`;
  // Unique tags: an image rebuilt from another case's cache would keep that case's creation time, and pruning goes by it.
  const tag = (version: string): string => `${version}-${service.slice(4)}`;
  const image = (version: string): string => `${repo}:${tag(version)}`;
  const built = (async () => {
    for (const v of versions) await buildAppImage(dockerHost, repo, tag(v), { bad: v === 'bad' }); // in order: pruning goes by creation time
  })();
  built.catch(() => undefined); // awaited by deployedV1
  const nginx = await startNginx(tempDir('nginx'));
  const taskQueue = uniqueName('deployf');
  const { yaml } = testConfig({
    taskQueue,
    redis: ['sent'],
    email: { port: smtp.port, user: 'deploybot', passwordEnv: 'TEST_DEPLOY_SMTP_PASSWORD', to: ['ops@example.test'] },
  });
  const raw = parse(yaml);
  const targets = deployTargets([{ name: host, dockerHost }], [{ name: service, host, nginx, ports: await freePortRange(4), minHealthy: opts.minHealthy ?? '1s' }]) as {
    services: Array<{ deploy: { keepImages: number } }>;
  };
  targets.services[0]!.deploy.keepImages = 2;
  raw.targets = { ...raw.targets, ...targets };
  // What sendEmail sent, by idempotency key: the operator's way to have a notification delivered once.
  raw.notifications.sentLog = { redis: 'sent' };
  current = { service, host, repo, taskQueue, file: writeConfigFile(stringify(raw)), nginx, workers: [], tag, image, built };
  return current;
}

async function worker(f: Fixture, kind: 'runbook' | 'host', crashAfter?: string): Promise<WorkerProcess> {
  const w = await startWorkerProcess(f.file, crashAfter ? { RUNBOOKS_CRASH_AFTER: crashAfter } : {}, kind === 'host' ? ['--docker-host', f.host] : []);
  f.workers.push(w);
  return w;
}

afterEach(async () => {
  const f = current;
  current = undefined;
  await stopLoads();
  if (!f) return;
  await dev.client.workflow.getHandle(`deploy/${f.service}`).terminate('test over').catch(() => undefined);
  for (const w of f.workers) await w.kill().catch(() => undefined);
  const env = { DOCKER_HOST: dockerHost };
  const ids = (await execa('docker', ['ps', '-aq', '--filter', `label=runbooks.service=${f.service}`], { env })).stdout.split('\n').filter(Boolean);
  if (ids.length) await execa('docker', ['rm', '-f', ...ids], { env, reject: false });
  await f.nginx.stop();
});

function startDeploy(f: Fixture, image: string, extra: Record<string, unknown> = {}): Promise<WorkflowHandle> {
  return dev.client.workflow.start('deploy', {
    taskQueue: f.taskQueue,
    workflowId: `deploy/${f.service}`,
    args: [{ service: f.service, image, strategy: 'rolling', canaryPercent: 10, canaryWindow: '30s', maxErrorPercent: 5, maxP95Ms: 2000, backup: false, ...extra }],
  });
}

/** v1 deployed by healthy workers: the state every case starts from (runbook worker left running, host worker stopped). */
async function deployedV1(f: Fixture): Promise<WorkerProcess> {
  const [runbook, host] = await Promise.all([worker(f, 'runbook'), worker(f, 'host'), f.built]);
  // Nothing serves yet (no load): a short gate will do.
  const r = (await (await startDeploy(f, f.image('v1'), { minHealthy: '200ms' })).result()) as DeployResult;
  expect(r).toMatchObject({ outcome: 'deployed', to: f.image('v1') });
  await host.stop();
  return runbook;
}

/** Resolves null when the process was SIGKILLed (the crash happened); fails the test if it did not within 2 min. */
async function killed(w: WorkerProcess): Promise<number | string | null> {
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([w.exited, new Promise<string>((r) => (timer = setTimeout(() => r('still running after 120 s'), 120_000)))]);
  clearTimeout(timer);
  return code;
}

async function outcome(handle: WorkflowHandle): Promise<DeployResult | WorkflowFailedError> {
  return (handle.result() as Promise<DeployResult>).catch((e: unknown) => {
    if (e instanceof WorkflowFailedError) return e;
    throw e;
  });
}

/** Exactly `count` containers of the service, all running `version`, exactly those in nginx's upstream, and nginx answers `version` only. */
async function servesOnly(f: Fixture, version: string, count = 2): Promise<void> {
  const containers = await serviceContainers(dockerHost, f.service);
  expect(Object.values(containers)).toEqual(Array(count).fill(`${f.image(version)} running`));
  const ports = Object.keys(containers).map((n) => Number(n.slice(f.service.length + 1))).sort();
  expect(parseUpstream(readFileSync(f.nginx.upstreamFile, 'utf8')).map((s) => s.port).sort()).toEqual(ports);
  expect(await versionsSeen(f.nginx.url, 50)).toEqual({ [f.tag(version)]: 50 });
}

/** The versions whose image is still on the engine. */
async function imagesLeft(f: Fixture): Promise<string[]> {
  const r = await execa('docker', ['images', '--format', '{{.Tag}}', '--', f.repo], { env: { DOCKER_HOST: dockerHost } });
  return r.stdout.split('\n').filter(Boolean).map((t) => t.replace(/-[0-9a-f]{8}$/, '')).sort();
}

function failureMails(f: Fixture): Array<{ headers: Map<string, string>; body: string }> {
  return smtp.received.map((m) => parseMail(m.raw)).filter((m) => m.headers.get('subject')?.includes(`deploy of ${f.service} FAILED`));
}

function expectNoFailures(seen: LoadResult): void {
  expect(seen.requests).toBeGreaterThan(100);
  expect(seen).toMatchObject({ failed: 0 });
}

/** A successful rolling deploy v1 → v2 ended as if nothing had happened. */
async function expectDeployedV2(f: Fixture, result: DeployResult | WorkflowFailedError, seen: LoadResult): Promise<void> {
  if (result instanceof WorkflowFailedError) throw result;
  expect(result).toMatchObject({ outcome: 'deployed', from: f.image('v1'), to: f.image('v2') });
  expectNoFailures(seen);
  await servesOnly(f, 'v2');
  expect(await imagesLeft(f)).toEqual(['v1', 'v2']); // v0 pruned, the rollback target v1 kept
  expect(failureMails(f)).toEqual([]);
}

// Every activity a rolling deploy runs on the docker host's queue (src/workflows/fleet.ts), in order of first use.
const HOST_STEPS = ['listInstances', 'readUpstream', 'startInstance', 'awaitHealthy', 'setUpstream', 'removeInstances', 'pruneImages'];

test.each(HOST_STEPS)('rolling deploy under load, host worker killed right after %s: deployed once, 0 failed requests, no duplicate or orphan container', async (step) => {
  const f = await fixture(['v0', 'v1', 'v2']);
  await deployedV1(f);
  const crashing = await worker(f, 'host', step);
  const load = startLoad(f.nginx.url);
  const handle = await startDeploy(f, f.image('v2'));
  expect(await killed(crashing)).toBeNull();
  await worker(f, 'host');
  const result = await outcome(handle);
  const seen = await load.stop();
  console.log(`host worker killed after ${step}: ${JSON.stringify(seen)}`);
  await expectDeployedV2(f, result, seen);
});

// The later boundaries of the same deploy (the test.each above kills after the first call of each type): the
// second instance's start, gate, switch and the stop of the second old one, then the final inspection. One
// deploy, five crashes in a row: each host worker dies right after the next of these calls (counted from its
// own start, the retry of its predecessor's call included), and the next one takes over.
const LATER_CALLS = ['startInstance:2', 'awaitHealthy', 'setUpstream', 'removeInstances', 'listInstances'];

test('rolling deploy under load, host worker killed after each later call in turn (five crashes in one deploy): deployed once, 0 failed requests', async () => {
  const f = await fixture(['v0', 'v1', 'v2']);
  await deployedV1(f);
  const load = startLoad(f.nginx.url);
  let handle: WorkflowHandle | undefined;
  for (const [i, step] of LATER_CALLS.entries()) {
    const crashing = await worker(f, 'host', step);
    handle ??= await startDeploy(f, f.image('v2'));
    expect([i, step, await killed(crashing)]).toEqual([i, step, null]);
  }
  await worker(f, 'host');
  const result = await outcome(handle!);
  const seen = await load.stop();
  console.log(`host worker killed after ${LATER_CALLS.join(', ')}: ${JSON.stringify(seen)}`);
  await expectDeployedV2(f, result, seen);
});

// The runbook worker's own activity in a successful deploy (sendEmail, its other one, only runs on failure: below).
test('rolling deploy under load, runbook worker killed right after deploySettings: deployed once, 0 failed requests', async () => {
  const f = await fixture(['v0', 'v1', 'v2']);
  const first = await deployedV1(f);
  await first.stop();
  await worker(f, 'host');
  const crashing = await worker(f, 'runbook', 'deploySettings');
  const load = startLoad(f.nginx.url);
  const handle = await startDeploy(f, f.image('v2'));
  expect(await killed(crashing)).toBeNull();
  await worker(f, 'runbook');
  const result = await outcome(handle);
  const seen = await load.stop();
  await expectDeployedV2(f, result, seen);
});

// Killed by the test (SIGKILL, by pid) while the health gate waits: the host worker running the gate (its
// activity times out on heartbeats and runs again on the new worker), or the runbook worker (the workflow goes
// on, from its history, on the new one).
test.each(['host', 'runbook'] as const)('%s worker SIGKILLed by the test in the middle of a health gate: deployed once, 0 failed requests', async (kind) => {
  const f = await fixture(['v0', 'v1', 'v2'], { minHealthy: '3s' });
  const runbook = await deployedV1(f);
  const host = await worker(f, 'host');
  const load = startLoad(f.nginx.url);
  const handle = await startDeploy(f, f.image('v2'));
  let status = await handle.query<DeployStatus>('status');
  for (const deadline = Date.now() + 60_000; !status.step.startsWith('health gate') && Date.now() < deadline; ) {
    await new Promise((r) => setTimeout(r, 100));
    status = await handle.query<DeployStatus>('status');
  }
  expect(status).toMatchObject({ state: 'running', step: expect.stringMatching(/^health gate \d+$/) });
  const victim = kind === 'host' ? host : runbook;
  await victim.kill();
  const killedAt = Date.now();
  expect(await victim.exited).toBeNull();
  await worker(f, kind);
  const result = await outcome(handle);
  const seen = await load.stop();
  console.log(`${kind} worker killed mid-gate (${status.step}): ${JSON.stringify(seen)}`);
  await expectDeployedV2(f, result, seen);
  // The kill fell inside the gate (scheduled before, closed after); the host worker's gate ran again, the runbook
  // worker's death did not cut the activity (it runs on the host worker).
  await expectCutMidStep(handle, 'awaitHealthy', killedAt, { retried: kind === 'host' });
  // The step was cut, not repeated: one record of it in the timeline.
  expect((await handle.query<DeployStatus>('status')).timeline.filter((s) => s.step === status.step)).toHaveLength(1);
});

// watchInstance is the one host activity only a canary runs.
test('canary deploy under load, host worker killed right after watchInstance: promoted once, 0 failed requests', async () => {
  const f = await fixture(['v0', 'v1', 'v2']);
  await deployedV1(f);
  const crashing = await worker(f, 'host', 'watchInstance');
  const load = startLoad(f.nginx.url);
  const handle = await startDeploy(f, f.image('v2'), { strategy: 'canary', canaryPercent: 20, canaryWindow: '3s' });
  expect(await killed(crashing)).toBeNull();
  await worker(f, 'host');
  const result = await outcome(handle);
  const seen = await load.stop();
  console.log(`canary, host worker killed after watchInstance: ${JSON.stringify(seen)}`);
  await expectDeployedV2(f, result, seen);
});

// A deploy of an image whose health check fails: the rolling deploy's first gate fails, the new instance is
// removed (removeInstances), the upstream is written back to v1 (setUpstream), the failure email goes out
// (sendEmail, on the runbook worker). Killed right after each of those.
test.each([
  ['host', 'removeInstances'],
  ['host', 'setUpstream'],
  ['runbook', 'sendEmail'],
] as const)('failing deploy rolled back, %s worker killed right after %s: v1 serves, 0 failed requests, one email', async (kind, step) => {
  const f = await fixture(['v1', 'bad']);
  const first = await deployedV1(f);
  if (kind === 'runbook') await first.stop();
  const crashing = await worker(f, kind, step);
  if (kind === 'runbook') await worker(f, 'host');
  const load = startLoad(f.nginx.url);
  const handle = await startDeploy(f, f.image('bad'));
  expect(await killed(crashing)).toBeNull();
  await worker(f, kind);
  const result = await outcome(handle);
  const seen = await load.stop();
  console.log(`bad image, ${kind} worker killed after ${step}: ${JSON.stringify(seen)}`);
  expect(result).toBeInstanceOf(WorkflowFailedError);
  const message = String((result as WorkflowFailedError).cause?.message);
  expect(message).toContain('failed its health gate');
  expect(message).toContain(`rolled back to ${f.image('v1')}`);
  expectNoFailures(seen);
  await servesOnly(f, 'v1');
  expect(await imagesLeft(f)).toEqual(['bad', 'v1']); // a failed deploy prunes nothing
  const mails = failureMails(f);
  expect(mails).toHaveLength(1);
  expect(mails[0]!.headers.get('subject')).toContain(`rolled back to ${f.image('v1')}`);
  expect(mails[0]!.body).toContain('docker HEALTHCHECK reports unhealthy');
});
