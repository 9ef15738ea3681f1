import { readFileSync } from 'node:fs';
import { Context } from '@temporalio/activity';
import { type Result, execa } from 'execa';
import { DOCKER_ENV, PG_ENV, childEnv } from './child-env';

/** Where a child's environment comes from (see child-env.ts). */
export { DOCKER_ENV, PG_ENV, childEnv };

/** What a long-running child reports in its heartbeat, so the next attempt can find it. */
export interface ChildHeartbeat {
  pid?: number;
  /** A string on the child's command line that proves the pid is still ours (e.g. its output file). */
  marker?: string;
  progress?: unknown;
}

/** Kill a child left running by a previous attempt whose worker died, if that pid still runs our command. */
export function killOrphan(previous: ChildHeartbeat | undefined): boolean {
  if (!previous?.pid || !previous.marker) return false;
  try {
    const cmdline = readFileSync(`/proc/${previous.pid}/cmdline`, 'utf8');
    if (!cmdline.includes(previous.marker)) return false;
    process.kill(previous.pid, 'SIGKILL');
    return true;
  } catch {
    return false; // gone already, or on another host
  }
}

/**
 * Run a CLI tool (argument array, no shell) inside an activity: heartbeat its pid every second, stop it
 * when the activity is cancelled, and first kill what a dead worker's attempt left running.
 */
export async function runHeartbeated(
  file: string,
  args: string[],
  /** `env`: the tool's own variables; with `passthrough` and BASE_ENV the child's whole environment (see childEnv). */
  opts: { env: Record<string, string>; passthrough?: readonly string[]; marker: string; progress?: () => Promise<unknown> },
): Promise<Result<{ reject: false }>> {
  const ctx = Context.current();
  killOrphan(ctx.info.heartbeatDetails as ChildHeartbeat | undefined);
  const child = execa(file, args, { ...childEnv(opts.env, opts.passthrough), cancelSignal: ctx.cancellationSignal, reject: false, stdin: 'ignore' });
  const beat = (): void => {
    const base: ChildHeartbeat = { pid: child.pid, marker: opts.marker };
    if (!opts.progress) return ctx.heartbeat(base);
    void opts.progress().then(
      (progress) => ctx.heartbeat({ ...base, progress }),
      () => ctx.heartbeat(base),
    );
  };
  beat();
  const timer = setInterval(beat, 1000);
  try {
    return await child;
  } finally {
    clearInterval(timer);
  }
}

/**
 * Wrap an activity that does not heartbeat on its own: beat every 2 s while it runs, so a workflow can use a
 * short heartbeatTimeout and notice a dead worker in seconds instead of at the start-to-close timeout.
 * (Not for runHeartbeated activities: their heartbeats carry the child's pid, which this would overwrite.)
 */
export function heartbeating<A extends unknown[], R>(fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return async (...args: A) => {
    let ctx: Context | undefined;
    try {
      ctx = Context.current();
    } catch {
      return fn(...args); // called outside an activity (a script, a benchmark)
    }
    const c = ctx;
    c.heartbeat();
    const timer = setInterval(() => c.heartbeat(), 2000);
    try {
      return await fn(...args);
    } finally {
      clearInterval(timer);
    }
  };
}
