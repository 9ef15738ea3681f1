import { readFileSync, rmSync } from 'node:fs';
import { stopPid } from '../../src/client/local-servers';
import { stopDocker } from '../../src/client/local-docker';
import { stopTrackedPids } from './tracked-pids';
import { type TestServers, STATE_ENV } from './servers';

/** Stop exactly the servers global setup started, by pid, and remove their folders. */
export default async function globalTeardown(): Promise<void> {
  const file = process.env[STATE_ENV];
  if (!file) return;
  const state = JSON.parse(readFileSync(file, 'utf8')) as TestServers;
  await stopTrackedPids(state.root); // servers a fault test started for itself and did not get to stop
  await Promise.all([
    stopPid(state.temporal.pid, 'SIGTERM'),
    stopPid(state.postgres.pid, 'SIGINT', 30_000),
    stopPid(state.redis.pid, 'SIGTERM'),
    stopDocker({ pid: state.docker.pid, dockerHost: state.docker.host, dir: state.docker.dir }),
  ]);
  if (!process.env.KEEP_TEST_DIRS) rmSync(state.root, { recursive: true, force: true });
}
