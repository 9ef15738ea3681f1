// Stop the servers of Jest runs that were killed before their global teardown (their pids are in
// <tmp>/runbooks-test-*/servers.json), by pid, and remove their folders. A run whose Jest process is still
// alive is left alone. Usage: npm run test:cleanup
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { alive, stopPid } from '../dist/client/local-servers.js';
import { stopDocker } from '../dist/client/local-docker.js';

const tmp = os.tmpdir();
let stopped = 0;
for (const entry of readdirSync(tmp)) {
  if (!entry.startsWith('runbooks-test-')) continue;
  const root = path.join(tmp, entry);
  let state;
  try {
    state = JSON.parse(readFileSync(path.join(root, 'servers.json'), 'utf8'));
  } catch {
    continue; // a run that never got its servers up, or not ours
  }
  if (state.owner && alive(state.owner)) {
    console.log(`${root}: Jest process ${state.owner} is still running; left alone`);
    continue;
  }
  // Servers a fault test started for itself (test/support/private-servers.ts): one file per pid under pids/.
  let extra = [];
  try {
    extra = readdirSync(path.join(root, 'pids')).filter((p) => /^\d+$/.test(p)).map(Number);
  } catch {
    // none recorded
  }
  if (extra.length) console.log(`${root}: stopping the private servers ${extra.join(', ')}`);
  await Promise.all(extra.map((pid) => stopPid(pid, 'SIGTERM')));
  console.log(`${root}: stopping temporal ${state.temporal.pid}, postgres ${state.postgres.pid}, redis ${state.redis.pid}, dockerd ${state.docker.pid}`);
  await Promise.all([
    stopPid(state.temporal.pid, 'SIGTERM'),
    stopPid(state.postgres.pid, 'SIGINT', 30_000),
    stopPid(state.redis.pid, 'SIGTERM'),
    stopDocker({ pid: state.docker.pid, dockerHost: state.docker.host, dir: state.docker.dir }),
  ]);
  rmSync(root, { recursive: true, force: true });
  stopped += 1;
}
console.log(stopped ? `stopped the servers of ${stopped} killed run(s)` : 'nothing to clean up');
