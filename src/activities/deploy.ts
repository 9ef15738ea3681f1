import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { execa } from 'execa';
import { type Config, type DockerHostConfig, type ServiceConfig, type ServiceDeployConfig, durationMs } from '../config/schema';
import { childEnv } from './process';
import { docker, dockerOk, stderrTail } from './docker';
import { FAILURES } from '../workflows/failures';

/**
 * The deploy and scale runbooks' steps on one Docker host: instances are containers on the host network,
 * one per loopback port, labelled with service / version (image) / deploy id / port, so a retry finds what an
 * earlier attempt created instead of creating it twice. Traffic goes through the nginx on the same machine,
 * whose upstream file lists the instances; every change is checked with `nginx -t` and applied with a graceful
 * `nginx -s reload`.
 */

export const LABEL = {
  service: 'runbooks.service',
  version: 'runbooks.version',
  deploy: 'runbooks.deploy',
  port: 'runbooks.port',
} as const;

/** What the workflow needs to know about a service, resolved from the config by an activity (so it is in the history). */
export interface DeploySettings {
  service: string;
  host: string;
  taskQueue: string;
  instances: number;
  ports: { from: number; to: number };
  health: { path: string; expectStatus: number; minHealthyMs: number; timeoutMs: number };
  drainMs: number;
  keepImages: number;
  /** PostgreSQL targets that list this service (backed up first when a deploy asks for it). */
  databases: string[];
}

export function hostTaskQueue(host: string): string {
  return `docker:${host}`;
}

function serviceOf(config: Config, service: string): ServiceConfig & { deploy: ServiceDeployConfig } {
  const svc = config.targets.services.find((s) => s.name === service);
  if (!svc) throw ApplicationFailure.nonRetryable(`unknown service "${service}"`, FAILURES.UnknownTarget);
  if (!svc.deploy) throw ApplicationFailure.nonRetryable(`service "${service}" has no deploy settings (targets.services[].deploy)`, FAILURES.UnknownTarget);
  return svc as ServiceConfig & { deploy: ServiceDeployConfig };
}

export function deploySettings(config: Config, service: string): DeploySettings {
  const svc = serviceOf(config, service);
  const d = svc.deploy;
  return {
    service,
    host: svc.host,
    taskQueue: hostTaskQueue(svc.host),
    instances: d.instances,
    ports: d.ports,
    health: { path: d.health.path, expectStatus: d.health.expectStatus, minHealthyMs: durationMs(d.health.minHealthy), timeoutMs: durationMs(d.health.timeout) },
    drainMs: durationMs(d.drain),
    keepImages: d.keepImages,
    databases: config.targets.databases.filter((db) => db.services.includes(service)).map((db) => db.name),
  };
}

// ---------------------------------------------------------------------------------------------------------
// docker CLI: the one client in ./docker (host, TLS, environment, timeouts, typed failures)

function beat(details?: unknown): void {
  try {
    Context.current().heartbeat(details);
  } catch {
    // outside an activity
  }
}

export interface Instance {
  name: string;
  id: string;
  /** The image reference it was started from (the service's version). */
  version: string;
  port: number;
  deployId: string;
  state: string;
  /** Docker HEALTHCHECK status: starting / healthy / unhealthy, or none without a HEALTHCHECK. */
  health: string;
}

interface InspectJson {
  Id: string;
  Name: string;
  Config: { Labels: Record<string, string> | null };
  State: { Status: string; Health?: { Status: string } };
}

function toInstance(c: InspectJson): Instance {
  const labels = c.Config.Labels ?? {};
  return {
    name: c.Name.replace(/^\//, ''),
    id: c.Id.slice(0, 12),
    version: labels[LABEL.version] ?? '',
    port: Number(labels[LABEL.port] ?? 0),
    deployId: labels[LABEL.deploy] ?? '',
    state: c.State.Status,
    health: c.State.Health?.Status ?? 'none',
  };
}

async function inspect(h: DockerHostConfig, ids: string[]): Promise<InspectJson[]> {
  if (!ids.length) return [];
  const r = await docker(h, ['inspect', '--type', 'container', '--', ...ids]);
  if (r.exitCode !== 0 && !/No such (container|object)/i.test(r.stderr)) {
    throw ApplicationFailure.retryable(`docker inspect on ${h.name} failed: ${stderrTail(r.stderr)}`, FAILURES.DockerCommandFailed);
  }
  return r.stdout.trim() ? (JSON.parse(r.stdout) as InspectJson[]) : [];
}

/** The host this worker serves; a task meant for another host is refused (it would act on the wrong engine). */
export interface HostDeps {
  config: Config;
  host: string;
}

function hostOf(deps: HostDeps, service: string): { h: DockerHostConfig; svc: ServiceConfig & { deploy: ServiceDeployConfig } } {
  const svc = serviceOf(deps.config, service);
  if (svc.host !== deps.host) {
    throw ApplicationFailure.nonRetryable(`service "${service}" runs on docker host "${svc.host}", this worker serves "${deps.host}"`, FAILURES.WrongHost);
  }
  const h = deps.config.targets.dockerHosts.find((x) => x.name === deps.host);
  if (!h) throw ApplicationFailure.nonRetryable(`unknown docker host "${deps.host}"`, FAILURES.UnknownTarget);
  return { h, svc };
}

/** Every container labelled with the service, running or not. Read-only. */
export async function listInstances(deps: HostDeps, input: { service: string }): Promise<Instance[]> {
  const { h } = hostOf(deps, input.service);
  const ids = (await dockerOk(h, ['ps', '-aq', '--no-trunc', '--filter', `label=${LABEL.service}=${input.service}`])).split('\n').filter(Boolean);
  return (await inspect(h, ids)).map(toInstance).sort((a, b) => a.port - b.port);
}

export interface StartInstanceInput {
  service: string;
  image: string;
  port: number;
  deployId: string;
}

export function instanceName(service: string, port: number): string {
  return `${service}-${port}`;
}

/**
 * Run one instance of `image` on `port`. Idempotent by (service, port, image, deploy id): the name is
 * `<service>-<port>`, and a container by that name with the same labels (an earlier attempt's, even one cut
 * between create and start) is started and returned instead of a new one. A stopped leftover of another
 * version on that port is replaced; a running one is never touched (PortTaken).
 */
export async function startInstance(deps: HostDeps, input: StartInstanceInput): Promise<Instance> {
  const { h, svc } = hostOf(deps, input.service);
  const name = instanceName(input.service, input.port);
  const [existing] = await inspect(h, [name]);
  if (existing) {
    const inst = toInstance(existing);
    const ours = inst.version === input.image && inst.deployId === input.deployId && existing.Config.Labels?.[LABEL.service] === input.service;
    if (ours) {
      if (inst.state !== 'running') await dockerOk(h, ['start', '--', name]);
      return toInstance((await inspect(h, [name]))[0] ?? existing);
    }
    if (inst.state === 'running') {
      throw ApplicationFailure.nonRetryable(`port ${input.port} of ${input.service} is taken by running container ${name} (${inst.version})`, FAILURES.PortTaken);
    }
    await dockerOk(h, ['rm', '-f', '--', name]);
  }
  const img = await docker(h, ['image', 'inspect', '--format', '{{.Id}}', '--', input.image]);
  if (img.exitCode !== 0) throw ApplicationFailure.nonRetryable(`image ${input.image} is not on docker host ${h.name}`, FAILURES.ImageMissing);
  await dockerOk(h, [
    'run', '-d', '--init', '--network', 'host', '--restart', 'unless-stopped',
    '--name', name,
    '--label', `${LABEL.service}=${input.service}`,
    '--label', `${LABEL.version}=${input.image}`,
    '--label', `${LABEL.deploy}=${input.deployId}`,
    '--label', `${LABEL.port}=${input.port}`,
    '--env', `${svc.deploy.portEnv}=${input.port}`,
    '--', input.image,
  ], 120_000);
  const [created] = await inspect(h, [name]);
  if (!created) throw ApplicationFailure.retryable(`container ${name} vanished right after docker run`, FAILURES.DockerCommandFailed);
  return toInstance(created);
}

export interface AwaitHealthyInput {
  service: string;
  name: string;
  port: number;
  path: string;
  expectStatus: number;
  minHealthyMs: number;
  timeoutMs: number;
}

export interface ProbeResult {
  status: number | string;
  ms: number;
  body: string;
}

/** GET http://127.0.0.1:port/path once; the status, or the connection error's code. */
export function probe(port: number, urlPath: string, timeoutMs = 2000): Promise<ProbeResult> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, timeout: timeoutMs, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c.length < 4096 ? c : ''));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: Date.now() - t0, body: body.trim() }));
      res.on('error', (err: NodeJS.ErrnoException) => resolve({ status: err.code ?? err.message, ms: Date.now() - t0, body: '' }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ status: err.code ?? err.message, ms: Date.now() - t0, body: '' }));
  });
}

/**
 * The health gate: the container's own HEALTHCHECK says healthy (when the image has one), the HTTP probe
 * answers `expectStatus`, and both stay so for `minHealthyMs`. Unhealthy, exited, or not healthy in time:
 * HealthGateFailed (non-retryable, the deploy rolls back). Unlike the seed's poll, running out is a failure.
 * Read-only: safe to retry.
 */
export async function awaitHealthy(deps: HostDeps, input: AwaitHealthyInput): Promise<{ healthyAfterMs: number }> {
  const { h } = hostOf(deps, input.service);
  const t0 = Date.now();
  const deadline = t0 + input.timeoutMs;
  let healthySince: number | undefined;
  let last = 'not checked yet';
  const fail = (why: string): never => {
    throw ApplicationFailure.nonRetryable(`${input.name} failed its health gate: ${why}`, FAILURES.HealthGateFailed);
  };
  for (;;) {
    beat({ last });
    const [c] = await inspect(h, [input.name]);
    if (!c) fail('the container is gone');
    const inst = toInstance(c as InspectJson);
    if (inst.state === 'exited' || inst.state === 'dead') fail(`the container ${inst.state}`);
    if (inst.health === 'unhealthy') fail('docker HEALTHCHECK reports unhealthy');
    const p = inst.state === 'running' && inst.health !== 'starting' ? await probe(input.port, input.path) : undefined;
    const ok = p !== undefined && p.status === input.expectStatus;
    last = p ? `GET ${input.path} → ${p.status}, docker health ${inst.health}` : `container ${inst.state}, docker health ${inst.health}`;
    if (ok) {
      healthySince ??= Date.now();
      if (Date.now() - healthySince >= input.minHealthyMs) return { healthyAfterMs: Date.now() - t0 };
    } else if (healthySince !== undefined) {
      fail(`was healthy, then ${last}`);
    }
    if (Date.now() > deadline) fail(`not healthy after ${Math.round(input.timeoutMs / 1000)} s (${last})`);
    await sleep(250);
  }
}

export interface WatchInput {
  service: string;
  port: number;
  path: string;
  durationMs: number;
  intervalMs?: number;
}

export interface WatchResult {
  requests: number;
  errors: number;
  p95Ms: number;
}

/** Probe one instance for a while and report its error count and p95 latency (the canary's evidence). Read-only. */
export async function watchInstance(deps: HostDeps, input: WatchInput): Promise<WatchResult> {
  hostOf(deps, input.service);
  const until = Date.now() + input.durationMs;
  const times: number[] = [];
  let errors = 0;
  while (Date.now() < until) {
    const p = await probe(input.port, input.path, 5000);
    times.push(p.ms);
    if (typeof p.status !== 'number' || p.status >= 500) errors++;
    beat({ requests: times.length, errors });
    await sleep(input.intervalMs ?? 100);
  }
  times.sort((a, b) => a - b);
  const p95Ms = times.length ? (times[Math.min(times.length - 1, Math.floor(times.length * 0.95))] ?? 0) : 0;
  return { requests: times.length, errors, p95Ms };
}

/**
 * Stop (SIGTERM, then SIGKILL after stopSeconds) and remove instances of the service. Idempotent: a
 * container that is already gone is done; a name that is not labelled with this service is refused.
 */
export async function removeInstances(deps: HostDeps, input: { service: string; names: string[]; stopSeconds?: number }): Promise<{ removed: string[] }> {
  const { h } = hostOf(deps, input.service);
  const found = await inspect(h, input.names);
  const foreign = found.filter((c) => c.Config.Labels?.[LABEL.service] !== input.service).map((c) => c.Name.replace(/^\//, ''));
  if (foreign.length) throw ApplicationFailure.nonRetryable(`not instances of ${input.service}: ${foreign.join(', ')}`, FAILURES.BadInput);
  const names = found.map((c) => c.Name.replace(/^\//, ''));
  if (!names.length) return { removed: [] };
  await dockerOk(h, ['stop', '--time', String(input.stopSeconds ?? 10), '--', ...names], 120_000);
  await dockerOk(h, ['rm', '-f', '--', ...names]);
  return { removed: names };
}

export interface ImageAge {
  ref: string;
  /** Creation time in ns since the epoch (Docker's RFC 3339 timestamp, kept to the nanosecond). */
  createdNs: bigint;
}

/**
 * Which images a prune keeps: the one just deployed (`current`), the one it replaced (`previous`, the
 * rollback target, whenever it was built), every image created at or after `current` (a candidate for the
 * next deploy, even one built in the same second), the newest `keep - 1` created before it (counting
 * `previous`) and any image a container uses. If `current` is not among them, everything is kept.
 */
export function imagesToKeep(images: ImageAge[], current: string, keep: number, used: Set<string>, previous?: string): Set<string> {
  const cur = images.find((i) => i.ref === current);
  if (!cur) return new Set(images.map((i) => i.ref));
  const older = images
    .filter((i) => i.ref !== current && i.ref !== previous && i.createdNs < cur.createdNs)
    .sort((a, b) => (b.createdNs > a.createdNs ? 1 : b.createdNs < a.createdNs ? -1 : 0));
  const hasPrevious = images.some((i) => i.ref === previous && i.ref !== current && i.createdNs < cur.createdNs);
  const rollback = new Set(older.slice(0, Math.max(0, keep - 1 - (hasPrevious ? 1 : 0))).map((i) => i.ref));
  return new Set(images.filter((i) => i.createdNs >= cur.createdNs || i.ref === previous || rollback.has(i.ref) || used.has(i.ref)).map((i) => i.ref));
}

/** "2026-11-24T09:16:44.123456789Z" (or with an offset) → ns since the epoch; second-only stamps get .0. */
export function createdNs(rfc3339: string): bigint {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(rfc3339.trim());
  if (!m) throw new Error(`docker reported an image creation time I cannot read: ${JSON.stringify(rfc3339)}`);
  const ms = Date.parse(`${m[1]}${m[3]}`);
  return BigInt(ms) * 1_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'));
}

/**
 * Remove old images of the service, keeping what imagesToKeep says. Creation times come from `docker image
 * inspect` to the nanosecond: `docker images` rounds to the second, and an image built in the same second as
 * the deployed one (the next release, say) used to be taken for an older one and removed. Idempotent: it
 * only ever removes, and an image already gone is skipped.
 */
export async function pruneImages(
  deps: HostDeps,
  input: { service: string; repository: string; current: string; previous?: string; keep: number },
): Promise<{ removed: string[]; kept: string[] }> {
  const { h } = hostOf(deps, input.service);
  const refs = (await dockerOk(h, ['images', '--format', '{{.Repository}}:{{.Tag}}', '--', input.repository]))
    .split('\n')
    .filter((r) => r && !r.endsWith(':<none>'));
  if (!refs.length) return { removed: [], kept: [] };
  const images = (await dockerOk(h, ['image', 'inspect', '--format', '{{.Created}}', '--', ...refs]))
    .split('\n')
    .filter(Boolean)
    .map((created, i) => ({ ref: refs[i] ?? '', createdNs: createdNs(created) }));
  const used = new Set((await dockerOk(h, ['ps', '-a', '--format', '{{.Image}}'])).split('\n').filter(Boolean));
  const keep = imagesToKeep(images, input.current, input.keep, used, input.previous);
  const kept = refs.filter((r) => keep.has(r));
  const removed: string[] = [];
  for (const ref of refs.filter((r) => !keep.has(r))) {
    const r = await docker(h, ['rmi', '--', ref]);
    if (r.exitCode === 0) removed.push(ref);
    else if (!/No such image/i.test(r.stderr)) kept.push(ref); // still referenced by something: only housekeeping
  }
  return { removed, kept };
}

// ---------------------------------------------------------------------------------------------------------
// nginx upstream

export interface UpstreamServer {
  port: number;
  weight?: number;
}

/** The servers the upstream file lists (lines `server 127.0.0.1:PORT [weight=N];`; placeholders marked `down` are skipped). */
export function parseUpstream(text: string): UpstreamServer[] {
  const out: UpstreamServer[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*server\s+127\.0\.0\.1:(\d+)([^;]*);/.exec(line);
    if (!m || /\bdown\b/.test(m[2] ?? '')) continue;
    const w = /weight=(\d+)/.exec(m[2] ?? '');
    out.push({ port: Number(m[1]), ...(w ? { weight: Number(w[1]) } : {}) });
  }
  return out;
}

export function renderUpstream(service: string, servers: UpstreamServer[]): string {
  return [
    `# ${service}: written by durable-runbooks (deploy/scale); edits are overwritten`,
    ...servers.map((s) => `server 127.0.0.1:${s.port}${s.weight && s.weight !== 1 ? ` weight=${s.weight}` : ''} max_fails=0;`),
    '',
  ].join('\n');
}

/** Read-only. */
export function readUpstream(deps: HostDeps, input: { service: string }): Promise<UpstreamServer[]> {
  const { svc } = hostOf(deps, input.service);
  const file = svc.deploy.nginx.upstreamFile;
  return Promise.resolve(existsSync(file) ? parseUpstream(readFileSync(file, 'utf8')) : []);
}

function nginxArgs(n: ServiceDeployConfig['nginx']): string[] {
  return ['-c', n.conf, ...(n.prefix ? ['-p', n.prefix] : [])];
}

function masterPid(n: ServiceDeployConfig['nginx']): number | undefined {
  // `nginx -t` output names the pid file? It does not; read it from the config's `pid` directive.
  const conf = readFileSync(n.conf, 'utf8');
  const m = /^\s*pid\s+([^;\s]+)\s*;/m.exec(conf);
  const pidFile = m?.[1] ? path.resolve(n.prefix ?? '/', m[1]) : '/run/nginx.pid';
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function workerPids(master: number): Set<number> {
  try {
    return new Set(readFileSync(`/proc/${master}/task/${master}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
  } catch {
    return new Set();
  }
}

/**
 * Make the upstream list exactly `servers` and reload nginx gracefully. Idempotent by content: the file is
 * replaced atomically, checked with `nginx -t` (a bad file is put back and nothing reloads), and the reload is
 * sent every time (harmless) so a retry after a crash between write and reload still applies it. Returns once
 * nginx runs new workers, i.e. new connections see the new list; old workers finish their requests.
 */
export async function setUpstream(deps: HostDeps, input: { service: string; servers: UpstreamServer[] }): Promise<{ servers: UpstreamServer[] }> {
  const { svc } = hostOf(deps, input.service);
  if (!input.servers.length) throw ApplicationFailure.nonRetryable('an upstream needs at least one server', FAILURES.BadInput);
  const n = svc.deploy.nginx;
  const file = n.upstreamFile;
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  const backup = `${file}.previous`;
  writeFileSync(tmp, renderUpstream(input.service, input.servers));
  if (existsSync(file)) copyFileSync(file, backup);
  renameSync(tmp, file);
  const test = await execa(n.binary, ['-t', '-q', ...nginxArgs(n)], { ...childEnv({}), reject: false, stdin: 'ignore', timeout: 30_000 });
  if (test.exitCode !== 0) {
    if (existsSync(backup)) renameSync(backup, file);
    throw ApplicationFailure.nonRetryable(`nginx -t refused the new upstream of ${input.service}: ${String(test.stderr).trim().slice(-400)}`, FAILURES.NginxConfigInvalid);
  }
  const master = masterPid(n);
  const before = master ? workerPids(master) : new Set<number>();
  const reload = await execa(n.binary, ['-s', 'reload', ...nginxArgs(n)], { ...childEnv({}), reject: false, stdin: 'ignore', timeout: 30_000 });
  if (reload.exitCode !== 0) throw ApplicationFailure.retryable(`nginx -s reload failed: ${String(reload.stderr).trim().slice(-400)}`, FAILURES.NginxReloadFailed);
  if (master) {
    const deadline = Date.now() + 15_000;
    while (![...workerPids(master)].some((p) => !before.has(p))) {
      if (Date.now() > deadline) throw ApplicationFailure.retryable('nginx did not start new workers within 15 s of the reload', FAILURES.NginxReloadFailed);
      await sleep(20);
    }
  }
  return { servers: input.servers };
}
