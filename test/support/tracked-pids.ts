import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stopPid } from '../../src/client/local-servers';

/**
 * Servers a fault test starts for itself are recorded as `<run root>/pids/<pid>` while they run, so the
 * global teardown and `npm run test:cleanup` stop them by pid even when the test never reached its cleanup.
 */
export function trackPid(root: string, pid: number, what: string): void {
  mkdirSync(path.join(root, 'pids'), { recursive: true });
  writeFileSync(path.join(root, 'pids', String(pid)), `${what}\n`);
}

export function untrackPid(root: string, pid: number): void {
  rmSync(path.join(root, 'pids', String(pid)), { force: true });
}

/** Stop every recorded private server of a run, by pid. */
export async function stopTrackedPids(root: string): Promise<void> {
  let pids: string[];
  try {
    pids = readdirSync(path.join(root, 'pids'));
  } catch {
    return;
  }
  await Promise.all(pids.filter((p) => /^\d+$/.test(p)).map((p) => stopPid(Number(p), 'SIGTERM')));
}
