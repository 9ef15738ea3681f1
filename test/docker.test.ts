import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApplicationFailure } from '@temporalio/common';
import { execa } from 'execa';
import { containerStates, startContainers, stopContainers } from '../src/activities/docker';
import { BASE_IMAGE } from '../src/client/local-docker';
import { freePort } from '../src/client/local-servers';
import { servers, uniqueName } from './support/servers';

/** GET http://127.0.0.1:port/health: the body, or the connection error's code (ECONNREFUSED...). */
function health(port: number): Promise<string> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/health', timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body.trim()));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

async function healthy(port: number, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    last = await health(port);
    if (last === 'ok') return last;
    await sleep(50);
  }
  return last;
}

describe('docker activities against a real engine', () => {
  const host = servers().docker.host;
  const docker = (args: string[]) => execa('docker', args, { env: { DOCKER_HOST: host } });
  const web = uniqueName('web');
  const side = uniqueName('side');
  let port = 0;
  let sidePort = 0;

  /** A busybox httpd on a loopback port of the host network, behind tini (--init) so it stops on SIGTERM. */
  const runWeb = async (name: string, p: number) =>
    docker([
      'run', '-d', '--init', '--name', name, '--network', 'host', BASE_IMAGE,
      'sh', '-c', `mkdir -p /www && echo ok > /www/health && exec httpd -f -p 127.0.0.1:${p} -h /www`,
    ]);

  beforeAll(async () => {
    port = await freePort();
    sidePort = await freePort();
    await runWeb(web, port);
    await runWeb(side, sidePort);
  });

  afterAll(async () => {
    await docker(['rm', '-f', web, side]).catch(() => undefined);
  });

  it('stops and starts containers idempotently, and the service follows', async () => {
    expect(await healthy(port)).toBe('ok');
    expect(await containerStates(host, [web])).toEqual({ [web]: 'running' });

    expect(await stopContainers({ dockerHost: host, containers: [web], timeoutSeconds: 5 })).toEqual({ stopped: [web], alreadyStopped: [] });
    // Stopped by SIGTERM (tini exits 128+15), not by the SIGKILL at the deadline (137).
    expect(String((await docker(['inspect', '-f', '{{.State.ExitCode}}', web])).stdout).trim()).toBe('143');
    expect(await health(port)).toBe('ECONNREFUSED');
    expect(await containerStates(host, [web])).toEqual({ [web]: 'exited' });

    // again: nothing to do
    expect(await stopContainers({ dockerHost: host, containers: [web], timeoutSeconds: 5 })).toEqual({ stopped: [], alreadyStopped: [web] });
    expect(await health(port)).toBe('ECONNREFUSED');

    expect(await startContainers({ dockerHost: host, containers: [web] })).toEqual({ started: [web], alreadyRunning: [] });
    expect(await healthy(port)).toBe('ok');
    expect(await containerStates(host, [web])).toEqual({ [web]: 'running' });

    // again: nothing to do
    expect(await startContainers({ dockerHost: host, containers: [web] })).toEqual({ started: [], alreadyRunning: [web] });
    expect(await health(port)).toBe('ok');
  });

  it('handles a mixed list: only what needs it is acted on', async () => {
    await stopContainers({ dockerHost: host, containers: [side] });
    expect(await stopContainers({ dockerHost: host, containers: [web, side, web] })).toEqual({ stopped: [web], alreadyStopped: [side] });
    expect(await startContainers({ dockerHost: host, containers: [side] })).toEqual({ started: [side], alreadyRunning: [] });
    expect(await startContainers({ dockerHost: host, containers: [web, side] })).toEqual({ started: [web], alreadyRunning: [side] });
    expect(await healthy(port)).toBe('ok');
    expect(await healthy(sidePort)).toBe('ok');
  });

  it('a missing container fails non-retryably, naming it, and nothing is touched', async () => {
    const ghost = uniqueName('ghost');
    expect(await containerStates(host, [web, ghost])).toEqual({ [web]: 'running', [ghost]: 'missing' });

    for (const act of [
      () => stopContainers({ dockerHost: host, containers: [web, ghost] }),
      () => startContainers({ dockerHost: host, containers: [ghost] }),
    ]) {
      const err = await act().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ApplicationFailure);
      expect(err).toMatchObject({ type: 'ContainerMissing', nonRetryable: true });
      expect((err as Error).message).toContain(ghost);
      expect((err as Error).message).not.toContain(web);
    }
    expect(await containerStates(host, [web])).toEqual({ [web]: 'running' });
    expect(await health(port)).toBe('ok');
  });

  it('refuses a name that could be read as a flag', async () => {
    await expect(stopContainers({ dockerHost: host, containers: ['--all'] })).rejects.toMatchObject({ type: 'BadInput', nonRetryable: true });
  });

  it('an unreachable engine is a retryable failure, not a missing container', async () => {
    const err = await containerStates('unix:///tmp/rb-no-such-docker.sock', [web]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ type: 'DockerCommandFailed', nonRetryable: false });
  });
});
