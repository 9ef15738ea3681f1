import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { execa } from 'execa';
import { DOCKER_ENV, childEnv } from './process';
import { FAILURES } from '../workflows/failures';

/**
 * Containers on a Docker host, through the docker CLI (argument arrays, no shell) with DOCKER_HOST set to
 * the host's URL (unix://, tcp://, ssh://). Each activity reads the containers' states first and only acts
 * on the ones that need it, so running it again after a crash or a retry changes nothing more.
 */

/** Docker's own states (`docker inspect .State.Status`), plus `missing` for a container that does not exist. */
export type ContainerState = 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead' | 'missing';

// Docker's name rule (ids are hex, so they pass too); also keeps a name from ever being read as a flag.
const CONTAINER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

function checkNames(names: string[]): string[] {
  const bad = names.filter((n) => !CONTAINER_NAME.test(n));
  if (bad.length) throw ApplicationFailure.nonRetryable(`invalid container name(s): ${bad.map((n) => JSON.stringify(n)).join(', ')}`, FAILURES.BadInput);
  return [...new Set(names)];
}

/** The activity's cancellation signal when running as an activity; undefined when called directly. */
function cancelSignal(): AbortSignal | undefined {
  try {
    return Context.current().cancellationSignal;
  } catch {
    return undefined;
  }
}

async function docker(dockerHost: string, args: string[], timeoutMs = 60_000): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const r = await execa('docker', args, {
    ...childEnv({ DOCKER_HOST: dockerHost }, DOCKER_ENV),
    reject: false,
    stdin: 'ignore',
    timeout: timeoutMs,
    cancelSignal: cancelSignal(),
  });
  if (r.isCanceled) throw ApplicationFailure.retryable(`docker ${args[0]} cancelled`, FAILURES.Cancelled);
  if (r.timedOut) throw ApplicationFailure.retryable(`docker ${args[0]} on ${dockerHost} timed out after ${timeoutMs} ms`, FAILURES.DockerTimeout);
  return { exitCode: r.exitCode ?? 1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

async function dockerOk(dockerHost: string, args: string[], timeoutMs?: number): Promise<string> {
  const r = await docker(dockerHost, args, timeoutMs);
  if (r.exitCode !== 0) {
    throw ApplicationFailure.retryable(`docker ${args[0]} on ${dockerHost} failed: ${r.stderr.trim().slice(-500)}`, FAILURES.DockerCommandFailed);
  }
  return r.stdout;
}

/**
 * The state of each named container (by name or id) on `dockerHost`; `missing` when it does not exist.
 * Read-only: safe to retry.
 */
export async function containerStates(dockerHost: string, names: string[]): Promise<Record<string, ContainerState>> {
  const wanted = checkNames(names);
  const states: Record<string, ContainerState> = {};
  if (!wanted.length) return states;
  const r = await docker(dockerHost, ['inspect', '--type', 'container', '--format', '{{.Id}} {{.Name}} {{.State.Status}}', '--', ...wanted]);
  // Exit 1 with "No such container" for each missing one is an answer; anything else (daemon down...) is not.
  const errors = r.stderr.split('\n').filter((l) => l.trim() && !/No such (container|object)/i.test(l));
  if (r.exitCode !== 0 && (errors.length || !r.stderr.trim())) {
    throw ApplicationFailure.retryable(`docker inspect on ${dockerHost} failed: ${r.stderr.trim().slice(-500)}`, FAILURES.DockerCommandFailed);
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
 * containerStates first if the caller must know what was running.)
 */
export async function stopContainers(input: StopContainersInput): Promise<StopContainersResult> {
  const timeoutSeconds = input.timeoutSeconds ?? 10;
  const states = await containerStates(input.dockerHost, input.containers);
  const missing = missingFailure(input.dockerHost, states);
  if (missing) throw missing;
  const names = Object.keys(states);
  const stopped = names.filter((n) => ['running', 'paused', 'restarting'].includes(states[n] ?? ''));
  const alreadyStopped = names.filter((n) => !stopped.includes(n));
  if (stopped.length) {
    await dockerOk(input.dockerHost, ['stop', '--time', String(timeoutSeconds), '--', ...stopped], (timeoutSeconds + 60) * 1000);
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
export async function startContainers(input: StartContainersInput): Promise<StartContainersResult> {
  const states = await containerStates(input.dockerHost, input.containers);
  const missing = missingFailure(input.dockerHost, states);
  if (missing) throw missing;
  const names = Object.keys(states);
  const alreadyRunning = names.filter((n) => states[n] === 'running' || states[n] === 'restarting');
  const paused = names.filter((n) => states[n] === 'paused');
  const toStart = names.filter((n) => !alreadyRunning.includes(n) && !paused.includes(n));
  if (paused.length) await dockerOk(input.dockerHost, ['unpause', '--', ...paused]);
  if (toStart.length) await dockerOk(input.dockerHost, ['start', '--', ...toStart], 120_000);
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
export async function restartContainers(input: RestartContainersInput): Promise<RestartContainersResult> {
  const timeoutSeconds = input.timeoutSeconds ?? 10;
  const states = await containerStates(input.dockerHost, input.containers);
  const missing = missingFailure(input.dockerHost, states);
  if (missing) throw missing;
  const notBefore = Date.parse(input.notBefore);
  const result: RestartContainersResult = { restarted: [], alreadyRestarted: [] };
  for (const name of Object.keys(states)) {
    const startedAt = (await dockerOk(input.dockerHost, ['inspect', '--type', 'container', '--format', '{{.State.StartedAt}} {{.State.Status}}', '--', name])).trim();
    const [at = '', status = ''] = startedAt.split(' ');
    if (status === 'running' && Date.parse(at) >= notBefore) {
      result.alreadyRestarted.push(name);
      continue;
    }
    await dockerOk(input.dockerHost, ['restart', '--time', String(timeoutSeconds), '--', name], (timeoutSeconds + 60) * 1000);
    result.restarted.push(name);
  }
  return result;
}
