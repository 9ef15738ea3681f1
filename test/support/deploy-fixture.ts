import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { freePort, stopPid } from '../../src/client/local-servers';
import { BASE_IMAGE } from '../../src/client/local-docker';

/**
 * What the deploy tests need besides the shared servers: app images built locally FROM localhost/base:1 (a
 * busybox httpd serving /version and /health, with a Docker HEALTHCHECK), a real nginx (Debian's) in front,
 * started by pid with its own -c/-p on a free loopback port, and a constant load from wrk.
 */

/**
 * Build `<repo>:<tag>` serving `tag` at /version. A "bad" image serves /version but has no /health, so its
 * HEALTHCHECK fails (and the HTTP probe gets 404).
 */
export async function buildAppImage(dockerHost: string, repo: string, tag: string, opts: { bad?: boolean } = {}): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rb-app-'));
  mkdirSync(path.join(dir, 'www'));
  writeFileSync(path.join(dir, 'www', 'version'), `${tag}\n`);
  if (!opts.bad) writeFileSync(path.join(dir, 'www', 'health'), 'ok\n');
  writeFileSync(
    path.join(dir, 'Dockerfile'),
    [
      `FROM ${BASE_IMAGE}`,
      'COPY www /www',
      'ENV PORT=8080',
      'HEALTHCHECK --interval=1s --timeout=1s --retries=2 CMD wget -q -O /dev/null http://127.0.0.1:$PORT/health || exit 1',
      'CMD ["sh", "-c", "exec httpd -f -p 127.0.0.1:$PORT -h /www"]',
      '',
    ].join('\n'),
  );
  const ref = `${repo}:${tag}`;
  await execa('docker', ['build', '-q', '-t', ref, dir], { env: { DOCKER_HOST: dockerHost } });
  return ref;
}

export interface RunningNginx {
  pid: number;
  port: number;
  conf: string;
  prefix: string;
  upstreamFile: string;
  /** GET /version through nginx: the body is the version that answered. */
  url: string;
  stop(): Promise<void>;
}

/** nginx in front of one service: the upstream's `server` lines live in `upstreamFile` (written by the runbooks). */
export async function startNginx(dir: string, initialUpstream = 'server 127.0.0.1:1 down;\n'): Promise<RunningNginx> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const upstreamFile = path.join(dir, 'upstream.conf');
  const conf = path.join(dir, 'nginx.conf');
  writeFileSync(upstreamFile, initialUpstream);
  // The seed's LB settings (D4 §10.4): proxy_next_upstream on errors, so a request that meets a closing
  // instance is retried on another; connect timeout short on loopback.
  writeFileSync(
    conf,
    `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/tmp-body;
  proxy_temp_path ${dir}/tmp-proxy;
  fastcgi_temp_path ${dir}/tmp-fastcgi;
  uwsgi_temp_path ${dir}/tmp-uwsgi;
  scgi_temp_path ${dir}/tmp-scgi;
  upstream app {
    include ${upstreamFile};
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://app;
      proxy_next_upstream error timeout invalid_header http_500 http_502 http_503;
      proxy_connect_timeout 2s;
      proxy_read_timeout 10s;
    }
  }
}
`,
  );
  const child: ChildProcess = spawn('nginx', ['-c', conf, '-p', dir, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const pid = child.pid;
  if (!pid) throw new Error('nginx did not start (run scripts/setup.sh)');
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${err}`);
    try {
      if (Number(readFileSync(path.join(dir, 'nginx.pid'), 'utf8').trim()) === pid) break;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`nginx not ready: ${err}`);
    await sleep(50);
  }
  return { pid, port, conf, prefix: dir, upstreamFile, url: `http://127.0.0.1:${port}/version`, stop: () => stopPid(pid, 'SIGTERM', 10_000) };
}

export interface LoadResult {
  requests: number;
  /** Socket errors (connect, read, write, timeout) and non-2xx answers: every request a user would have seen fail. */
  failed: number;
  socketErrors: number;
  non2xx: number;
}

/**
 * Constant load from wrk (1 thread, `connections` connections) against `url` until stop() (SIGINT: wrk prints
 * its totals and exits). With `keepAlive: false` every request sends `Connection: close` and so comes on a new
 * connection: nginx's graceful reload closes idle keep-alive connections, and a request a client writes at that
 * very moment is lost on any nginx reload (a retrying HTTP client resends it); the benchmark shows that count.
 */
const loads = new Set<number>();

/** Stop (by pid) any load a failed test left running. */
export async function stopLoads(): Promise<void> {
  await Promise.all([...loads].map((pid) => stopPid(pid, 'SIGKILL', 5_000)));
}

export function startLoad(url: string, opts: { connections?: number; keepAlive?: boolean } = {}): { stop(): Promise<LoadResult> } {
  const args = ['-t1', `-c${opts.connections ?? 8}`, '-d3600s', ...(opts.keepAlive ? [] : ['-H', 'Connection: close']), url];
  const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (child.pid) loads.add(child.pid);
  void exited.then(() => child.pid && loads.delete(child.pid));
  return {
    async stop() {
      if (child.pid && child.exitCode === null) process.kill(child.pid, 'SIGINT');
      await exited;
      const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
      if (!Number.isFinite(requests)) throw new Error(`wrk gave no totals:\n${out}`);
      const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
      const socketErrors = sock ? sock.slice(1).reduce((n, x) => n + Number(x), 0) : 0;
      const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
      return { requests, failed: socketErrors + non2xx, socketErrors, non2xx };
    },
  };
}

/** GET url n times (new connection each) and count the bodies. */
export async function versionsSeen(url: string, n = 100): Promise<Record<string, number>> {
  const seen: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const body = await new Promise<string>((resolve) => {
      http
        .get(url, { agent: false }, (res) => {
          let b = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (b += c));
          res.on('end', () => resolve(res.statusCode === 200 ? b.trim() : `HTTP ${res.statusCode}`));
        })
        .on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    });
    seen[body] = (seen[body] ?? 0) + 1;
  }
  return seen;
}

/** `n` consecutive loopback ports that are free now (instances of one service take them one by one). */
export async function freePortRange(n: number): Promise<{ from: number; to: number }> {
  const net = await import('node:net');
  const free = (p: number) =>
    new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(p, '127.0.0.1', () => s.close(() => resolve(true)));
    });
  for (let attempt = 0; attempt < 50; attempt++) {
    // Below the ephemeral range (32768+): a client socket on a port makes a later bind there fail.
    const from = 12_000 + Math.floor(Math.random() * 18_000);
    let ok = true;
    for (let p = from; p < from + n && ok; p++) ok = await free(p);
    if (ok) return { from, to: from + n - 1 };
  }
  throw new Error(`no ${n} consecutive free ports`);
}

export interface DeployServiceSpec {
  name: string;
  host: string;
  nginx: RunningNginx;
  ports: { from: number; to: number };
  instances?: number;
  drain?: string;
  minHealthy?: string;
}

/** The `targets` block of a config with these docker hosts and deployable services. */
export function deployTargets(hosts: Array<{ name: string; dockerHost: string }>, services: DeployServiceSpec[]): Record<string, unknown> {
  return {
    dockerHosts: hosts,
    services: services.map((s) => ({
      name: s.name,
      host: s.host,
      deploy: {
        instances: s.instances ?? 2,
        ports: s.ports,
        drain: s.drain ?? '1s',
        health: { path: '/health', expectStatus: 200, minHealthy: s.minHealthy ?? '1s', timeout: '20s' },
        keepImages: 3,
        nginx: { upstreamFile: s.nginx.upstreamFile, conf: s.nginx.conf, prefix: s.nginx.prefix },
      },
    })),
  };
}

/** The service's containers on an engine: name → version label (only labelled ones). */
export async function serviceContainers(dockerHost: string, service: string): Promise<Record<string, string>> {
  const r = await execa('docker', ['ps', '-a', '--filter', `label=runbooks.service=${service}`, '--format', '{{.Names}} {{.State}} {{.Label "runbooks.version"}}'], {
    env: { DOCKER_HOST: dockerHost },
  });
  const out: Record<string, string> = {};
  for (const line of String(r.stdout).split('\n').filter(Boolean)) {
    const [name = '', state = '', version = ''] = line.split(' ');
    out[name] = `${version} ${state}`;
  }
  return out;
}
