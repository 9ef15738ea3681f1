import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { type DockerHostConfig } from '../config/schema';
import { redact } from '../config/secrets';
import { DOCKER_ENV, childEnv } from './child-env';
import { FAILURES } from '../workflows/failures';

/**
 * The one Docker client: every docker CLI call of the product (activities and the local test/dev engine) goes
 * through `docker()` here, so each gets the host's address (DOCKER_HOST) and TLS (`targets.dockerHosts[].tls`
 * as --tlsverify/--tlscacert/--tlscert/--tlskey), a minimal environment (childEnv: never the worker's
 * secrets), a timeout, the activity's cancellation, redacted stderr in its errors, and typed failures
 * (DockerTimeout, Cancelled, DockerCommandFailed). Argument arrays, no shell. Plain child_process, not
 * execa: the local engine also runs inside Jest's global setup, where ESM-only execa cannot load.
 */

/** Where a docker CLI call goes: a `targets.dockerHosts` entry, or just an address (no TLS) for the local engine. */
export type DockerEndpoint = Pick<DockerHostConfig, 'dockerHost'> & Partial<Pick<DockerHostConfig, 'name' | 'tls'>>;

/** The host's config entry for an address an activity input carries (inputs carry the URL, the config says TLS). */
export function endpointFor(hosts: readonly DockerEndpoint[], dockerHost: string): DockerEndpoint {
  return hosts.find((h) => h.dockerHost === dockerHost) ?? { dockerHost };
}

/** The docker CLI's global TLS flags for the host (before the subcommand); none without `tls`. */
export function tlsArgs(h: DockerEndpoint): string[] {
  if (!h.tls) return [];
  return [
    '--tlsverify',
    ...(h.tls.caFile ? ['--tlscacert', h.tls.caFile] : []),
    ...(h.tls.certFile ? ['--tlscert', h.tls.certFile] : []),
    ...(h.tls.keyFile ? ['--tlskey', h.tls.keyFile] : []),
  ];
}

/** Exactly what runs for `docker <args>` on the host: the file, its argv and its whole environment. */
export function dockerCommand(h: DockerEndpoint, args: string[]): { file: 'docker'; args: string[]; env: Record<string, string> } {
  const { env } = childEnv({ DOCKER_HOST: h.dockerHost }, DOCKER_ENV);
  // With `tls` in the config, the flags are the whole TLS story: a DOCKER_CERT_PATH / DOCKER_TLS_VERIFY of the worker must not mix in.
  if (h.tls) {
    delete env.DOCKER_CERT_PATH;
    delete env.DOCKER_TLS_VERIFY;
  }
  return { file: 'docker', args: [...tlsArgs(h), ...args], env };
}

/** The activity's cancellation signal when running as an activity; undefined when called directly. */
function cancelSignal(): AbortSignal | undefined {
  try {
    return Context.current().cancellationSignal;
  } catch {
    return undefined;
  }
}

const run = promisify(execFile);

function label(h: DockerEndpoint): string {
  return h.name ?? h.dockerHost;
}

export interface DockerResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Run `docker <args>` on the host; a non-zero exit is returned (some callers read it), a timeout or cancellation thrown. */
export async function docker(h: DockerEndpoint, args: string[], timeoutMs = 60_000): Promise<DockerResult> {
  const cmd = dockerCommand(h, args);
  const signal = cancelSignal();
  try {
    const p = run(cmd.file, cmd.args, { env: cmd.env, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 << 20, encoding: 'utf8', ...(signal ? { signal } : {}) });
    p.child.stdin?.end();
    const { stdout, stderr } = await p;
    return { exitCode: 0, stdout, stderr };
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { killed?: boolean; signal?: string; stdout?: string; stderr?: string };
    if (e.name === 'AbortError' || signal?.aborted) throw ApplicationFailure.retryable(`docker ${args[0]} cancelled`, FAILURES.Cancelled);
    if (e.killed && e.signal === 'SIGKILL') throw ApplicationFailure.retryable(`docker ${args[0]} on ${label(h)} timed out after ${timeoutMs} ms`, FAILURES.DockerTimeout);
    if (typeof e.code === 'number') return { exitCode: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    // Not an exit: the CLI is missing (ENOENT), its output too large, or it died of a signal.
    throw ApplicationFailure.retryable(`docker ${args[0]} on ${label(h)} failed: ${redact(e.code ?? e.signal ?? e.message)}`, FAILURES.DockerCommandFailed);
  }
}

/** The CLI's stderr for an error message: redacted (a value the config resolved never leaves), its last 500 characters. */
export function stderrTail(stderr: string): string {
  return redact(stderr).trim().slice(-500);
}

/** Run `docker <args>` and return its stdout; a non-zero exit is a (retryable) DockerCommandFailed naming the host. */
export async function dockerOk(h: DockerEndpoint, args: string[], timeoutMs?: number): Promise<string> {
  const r = await docker(h, args, timeoutMs);
  if (r.exitCode !== 0) throw ApplicationFailure.retryable(`docker ${args[0]} on ${label(h)} failed: ${stderrTail(r.stderr)}`, FAILURES.DockerCommandFailed);
  return r.stdout;
}

// ---------------------------------------------------------------------------------------------------------
// Containers on a Docker host, by name: stop, start, rolling restart (restore, rotation, remediation).
// Each activity reads the containers' states first and only acts on the ones that need it, so running it
// again after a crash or a retry changes nothing more.

/** Docker's own states (`docker inspect .State.Status`), plus `missing` for a container that does not exist. */
export type ContainerState = 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead' | 'missing';

// Docker's name rule (ids are hex, so they pass too); also keeps a name from ever being read as a flag.
const CONTAINER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

function checkNames(names: string[]): string[] {
  const bad = names.filter((n) => !CONTAINER_NAME.test(n));
  if (bad.length) throw ApplicationFailure.nonRetryable(`invalid container name(s): ${bad.map((n) => JSON.stringify(n)).join(', ')}`, FAILURES.BadInput);
  return [...new Set(names)];
}

/**
 * The state of each named container (by name or id) on `dockerHost`; `missing` when it does not exist.
 * Read-only: safe to retry.
 */
export async function containerStates(host: DockerEndpoint | string, names: string[]): Promise<Record<string, ContainerState>> {
  const h = typeof host === 'string' ? { dockerHost: host } : host;
  const wanted = checkNames(names);
  const states: Record<string, ContainerState> = {};
  if (!wanted.length) return states;
  const r = await docker(h, ['inspect', '--type', 'container', '--format', '{{.Id}} {{.Name}} {{.State.Status}}', '--', ...wanted]);
  // Exit 1 with "No such container" for each missing one is an answer; anything else (daemon down...) is not.
  const errors = r.stderr.split('\n').filter((l) => l.trim() && !/No such (container|object)/i.test(l));
  if (r.exitCode !== 0 && (errors.length || !r.stderr.trim())) {
    throw ApplicationFailure.retryable(`docker inspect on ${label(h)} failed: ${stderrTail(r.stderr)}`, FAILURES.DockerCommandFailed);
  }
  const found = r.stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [id = '', name = '', status = ''] = line.trim().split(' ');
      return { id, name: name.replace(/^\//, ''), status: status as ContainerState };
    });
  for (const n of wanted) {
    states[n] = found.find((c) => c.name === n || c.id.startsWith(n))?.status ?? 'missing';
  }
  return states;
}

function missingFailure(dockerHost: string, states: Record<string, ContainerState>): ApplicationFailure | undefined {
  const missing = Object.keys(states).filter((n) => states[n] === 'missing');
  if (!missing.length) return undefined;
  return ApplicationFailure.create({
    message: `container(s) not found on ${dockerHost}: ${missing.join(', ')}`,
    type: FAILURES.ContainerMissing,
    nonRetryable: true,
    details: [missing],
  });
}

export interface StopContainersInput {
  dockerHost: string;
  containers: string[];
  /** Seconds docker waits after SIGTERM before SIGKILL (docker stop -t); default 10. */
  timeoutSeconds?: number;
}

export interface StopContainersResult {
  /** Were running (or paused/restarting) and are now stopped by this call. */
  stopped: string[];
  /** Were not running when this call looked (including ones an earlier attempt of it stopped). */
  alreadyStopped: string[];
}

/**
 * Stop the containers that run; a missing container fails the activity (non-retryable ContainerMissing)
 * before anything is stopped. Retry-safe: it stops only what still runs, and `docker stop` of a stopped
 * container is a no-op. (A retry reports what an earlier attempt stopped as alreadyStopped: read
 * containerStates first if the caller must know what was running.) `hosts`: the config's docker hosts, for the
 * TLS of the one at input.dockerHost.
 */
export async function stopContainers(input: StopContainersInput, hosts: readonly DockerEndpoint[] = []): Promise<StopContainersResult> {
  const timeoutSeconds = input.timeoutSeconds ?? 10;
  const h = endpointFor(hosts, input.dockerHost);
  const states = await containerStates(h, input.containers);
  const missing = missingFailure(input.dockerHost, states);
  if (missing) throw missing;
  const names = Object.keys(states);
  const stopped = names.filter((n) => ['running', 'paused', 'restarting'].includes(states[n] ?? ''));
  const alreadyStopped = names.filter((n) => !stopped.includes(n));
  if (stopped.length) {
    await dockerOk(h, ['stop', '--time', String(timeoutSeconds), '--', ...stopped], (timeoutSeconds + 60) * 1000);
  }
  return { stopped, alreadyStopped };
}

export interface StartContainersInput {
  dockerHost: string;
  containers: string[];
}

export interface StartContainersResult {
  /** Were not running and were started (or unpaused) by this call. */
  started: string[];
  /** Were running (or restarting) when this call looked. */
  alreadyRunning: string[];
}

/**
 * Start the containers that do not run (unpause paused ones); a missing container fails the activity
 * (non-retryable ContainerMissing) before anything is started. Retry-safe: it starts only what is not
 * running, and `docker start` of a running container is a no-op.
 */
export async function startContainers(input: StartContainersInput, hosts: readonly DockerEndpoint[] = []): Promise<StartContainersResult> {
  const h = endpointFor(hosts, input.dockerHost);
  const states = await containerStates(h, input.containers);
  const missing = missingFailure(input.dockerHost, states);
  if (missing) throw missing;
  const names = Object.keys(states);
  const alreadyRunning = names.filter((n) => states[n] === 'running' || states[n] === 'restarting');
  const paused = names.filter((n) => states[n] === 'paused');
  const toStart = names.filter((n) => !alreadyRunning.includes(n) && !paused.includes(n));
  if (paused.length) await dockerOk(h, ['unpause', '--', ...paused]);
  if (toStart.length) await dockerOk(h, ['start', '--', ...toStart], 120_000);
  return { started: names.filter((n) => !alreadyRunning.includes(n)), alreadyRunning };
}

export interface RestartContainersInput {
  dockerHost: string;
  containers: string[];
  /** Containers started at or after this instant (ISO) are already restarted: the idempotency key. */
  notBefore: string;
  /** Seconds docker waits after SIGTERM before SIGKILL; default 10. */
  timeoutSeconds?: number;
}

export interface RestartContainersResult {
  restarted: string[];
  /** Already started after notBefore (by an earlier attempt of this call, or by someone else). */
  alreadyRestarted: string[];
}

/**
 * A rolling restart: one container at a time, each running again before the next goes down, so a service
 * with two or more containers keeps serving. A missing container fails (non-retryable ContainerMissing)
 * before anything restarts. Retry-safe: a container started at or after `notBefore` is left alone.
 */
export async function restartContainers(input: RestartContainersInput, hosts: readonly DockerEndpoint[] = []): Promise<RestartContainersResult> {
  const timeoutSeconds = input.timeoutSeconds ?? 10;
  const h = endpointFor(hosts, input.dockerHost);
  const states = await containerStates(h, input.containers);
  const missing = missingFailure(input.dockerHost, states);
  if (missing) throw missing;
  const notBefore = Date.parse(input.notBefore);
  const result: RestartContainersResult = { restarted: [], alreadyRestarted: [] };
  for (const name of Object.keys(states)) {
    const startedAt = (await dockerOk(h, ['inspect', '--type', 'container', '--format', '{{.State.StartedAt}} {{.State.Status}}', '--', name])).trim();
    const [at = '', status = ''] = startedAt.split(' ');
    if (status === 'running' && Date.parse(at) >= notBefore) {
      result.alreadyRestarted.push(name);
      continue;
    }
    await dockerOk(h, ['restart', '--time', String(timeoutSeconds), '--', name], (timeoutSeconds + 60) * 1000);
    result.restarted.push(name);
  }
  return result;
}
