import { execFile, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { dockerOk } from '../activities/docker';
import { alive, stopPid } from './local-servers';

// Plain child_process for dockerd, tar and umount: this module also runs inside Jest's global setup, where
// ESM-only execa cannot load. docker CLI calls go through the product's one client (which uses child_process too).
const run = promisify(execFile);

/**
 * A private Docker engine in its own folder, for the tests and local runs: its own socket, data root and
 * exec root, no bridge and no iptables rules (containers use `--network host` on 127.0.0.1), stopped by
 * the pid it was started with. The base image `localhost/base:1` is built from the host's busybox-static,
 * so nothing is pulled from a registry.
 */

export const BASE_IMAGE = 'localhost/base:1';

export interface DockerOptions {
  /** The engine's folder (socket, data, exec root, log); removed by `stop()`. Keep it short: unix socket paths are capped at ~107 bytes. */
  dir: string;
  /** How long to wait for the daemon to answer. */
  readyTimeoutMs?: number;
}

export interface DockerEngine {
  pid: number;
  /** `unix://<dir>/docker.sock`, for `DOCKER_HOST`. */
  dockerHost: string;
  dir: string;
}

export interface RunningDocker extends DockerEngine {
  stop(): Promise<void>;
}

function docker(dockerHost: string, args: string[], timeout = 30_000): Promise<string> {
  return dockerOk({ dockerHost }, args, timeout);
}

function dockerdBinary(): string {
  for (const p of ['/usr/sbin/dockerd', '/usr/bin/dockerd']) if (existsSync(p)) return p;
  return 'dockerd';
}

function tail(file: string, lines = 30): string {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n') : '';
}

export async function startDocker(opts: DockerOptions): Promise<RunningDocker> {
  if (process.getuid?.() !== 0) throw new Error('a private dockerd needs root (run the tests as root, as CI does)');
  const dir = path.resolve(opts.dir);
  const sock = path.join(dir, 'docker.sock');
  // containerd puts its own sockets deeper in the exec root; leave them room under the limit.
  if (Buffer.byteLength(path.join(dir, 'exec', 'containerd', 'containerd.sock.ttrpc')) > 100) {
    throw new Error(`docker folder path too long for unix sockets: ${dir} (use something like /tmp/rb-docker-XXXX)`);
  }
  mkdirSync(path.join(dir, 'data'), { recursive: true });
  mkdirSync(path.join(dir, 'exec'), { recursive: true });
  const logFile = path.join(dir, 'dockerd.log');
  const dockerHost = `unix://${sock}`;
  const out = openSync(logFile, 'a');
  const child = spawn(
    dockerdBinary(),
    [
      '--host', dockerHost,
      '--data-root', path.join(dir, 'data'),
      '--exec-root', path.join(dir, 'exec'),
      '--pidfile', path.join(dir, 'docker.pid'),
      '--bridge=none',
      '--iptables=false',
    ],
    { stdio: ['ignore', out, out], detached: true },
  );
  closeSync(out);
  child.on('error', () => undefined); // reported below through pid / readiness
  child.unref();
  const pid = child.pid;
  if (!pid) throw new Error('dockerd did not start (run scripts/setup.sh)');
  const engine: DockerEngine = { pid, dockerHost, dir };
  try {
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 30_000);
    for (;;) {
      if (!alive(pid)) throw new Error(`dockerd exited during startup\n${tail(logFile)}`);
      const ok = await docker(dockerHost, ['version', '--format', '{{.Server.Version}}'], 5_000).then(
        () => true,
        () => false,
      );
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`dockerd did not answer on ${sock} in time\n${tail(logFile)}`);
      await sleep(100);
    }
    await ensureBaseImage(dockerHost);
  } catch (err) {
    await stopDocker(engine);
    throw err;
  }
  return { ...engine, stop: () => stopDocker(engine) };
}

function busyboxBinary(): string {
  for (const p of ['/bin/busybox', '/usr/bin/busybox']) if (existsSync(p)) return p;
  throw new Error('busybox not found (install busybox-static: run scripts/setup.sh)');
}

/** Import `localhost/base:1` (busybox with every applet linked in /bin) unless the engine already has it. */
export async function ensureBaseImage(dockerHost: string): Promise<void> {
  const present = await docker(dockerHost, ['image', 'inspect', '--format', '{{.Id}}', BASE_IMAGE]).then(
    () => true,
    () => false,
  );
  if (present) return;
  const busybox = busyboxBinary();
  const work = mkdtempSync(path.join(os.tmpdir(), 'rb-base-'));
  try {
    const root = path.join(work, 'root');
    for (const d of ['bin', 'etc', 'tmp', 'root', 'proc', 'sys', 'dev']) mkdirSync(path.join(root, d), { recursive: true });
    chmodSync(path.join(root, 'tmp'), 0o1777);
    copyFileSync(busybox, path.join(root, 'bin', 'busybox'));
    chmodSync(path.join(root, 'bin', 'busybox'), 0o755);
    const { stdout } = await run(busybox, ['--list']);
    for (const applet of stdout.split('\n').map((a) => a.trim())) {
      if (!applet || applet === 'busybox' || applet.includes('/')) continue;
      symlinkSync('/bin/busybox', path.join(root, 'bin', applet));
    }
    writeFileSync(path.join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
    writeFileSync(path.join(root, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
    const tarball = path.join(work, 'base.tar');
    await run('tar', ['-C', root, '-cf', tarball, '.']);
    await docker(dockerHost, ['import', '-c', 'ENV PATH=/bin', '-c', 'CMD ["/bin/sh"]', tarball, BASE_IMAGE], 120_000);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The pid in `file` if that process is alive and its command line names `dir` (so a recycled pid is never signalled). */
function ownedPid(file: string, dir: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes(`${dir}/`) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Mount points at or under `dir`, deepest first. */
function mountsUnder(dir: string): string[] {
  let text: string;
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return text
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m): m is string => !!m)
    .map(unescape)
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/**
 * Stop an engine started by `startDocker`: remove its containers, SIGTERM its dockerd by pid and wait,
 * stop the containerd it managed if that outlived it, unmount what it left mounted, remove its folder.
 */
export async function stopDocker(engine: DockerEngine): Promise<void> {
  const dir = path.resolve(engine.dir);
  if (alive(engine.pid)) {
    try {
      const ids = (await docker(engine.dockerHost, ['ps', '-aq'], 10_000)).split('\n').filter(Boolean);
      if (ids.length) await docker(engine.dockerHost, ['rm', '-f', '-v', ...ids], 60_000);
    } catch {
      // the daemon is going away anyway; its containers go with its data root
    }
  }
  const containerd = ownedPid(path.join(dir, 'exec', 'containerd', 'containerd.pid'), dir);
  await stopPid(engine.pid, 'SIGTERM', 20_000);
  if (containerd !== undefined && ownedPid(path.join(dir, 'exec', 'containerd', 'containerd.pid'), dir) === containerd) {
    await stopPid(containerd, 'SIGTERM', 10_000);
  }
  // dockerd leaves the default netns mounted (and, if killed, its data-root bind mount).
  for (const m of mountsUnder(dir)) {
    await run('umount', [m]).catch(() => run('umount', ['-l', m]).catch(() => undefined));
  }
  rmSync(dir, { recursive: true, force: true });
}
