import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { execa } from 'execa';
import { listInstances, pruneImages, removeInstances, startInstance } from '../src/activities/deploy';
import { containerStates, docker, dockerOk, restartContainers, startContainers, stopContainers } from '../src/activities/docker';
import { containerCpu, remediationPlan } from '../src/activities/remediation';
import { BASE_IMAGE } from '../src/client/local-docker';
import { type Config } from '../src/config/schema';
import { registerSecret } from '../src/config/secrets';
import { servers, tempDir, uniqueName } from './support/servers';

/**
 * `targets.dockerHosts[].tls` is honoured by every docker call of every runbook: the test's private engine is
 * put behind a mutual-TLS front (its own CA, a server certificate for 127.0.0.1, a client certificate) that
 * refuses any connection without the client certificate, and logs each API request it forwards. Each
 * activity that talks to a docker host runs against it (restore/rotation's stop/start/restart, remediation's
 * ps/stats, deploy's ps/inspect/run/stop/rm/images), so a call that leaves out the TLS settings fails.
 */

async function makeCerts(dir: string): Promise<Record<'ca' | 'serverCert' | 'serverKey' | 'clientCert' | 'clientKey', string>> {
  const f = (n: string) => path.join(dir, n);
  const ssl = (args: string[]) => execa('openssl', args, { cwd: dir });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await ssl(['req', '-x509', ...ec, '-keyout', f('ca-key.pem'), '-out', f('ca.pem'), '-days', '1', '-subj', '/CN=runbooks-test-ca']);
  for (const [who, ext] of [['server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n'], ['client', 'extendedKeyUsage=clientAuth\n']] as const) {
    writeFileSync(f(`${who}.ext`), ext);
    await ssl(['req', ...ec, '-keyout', f(`${who}-key.pem`), '-out', f(`${who}.csr`), '-subj', `/CN=runbooks-${who}`]);
    await ssl(['x509', '-req', '-in', f(`${who}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca-key.pem'), '-CAcreateserial', '-out', f(`${who}.pem`), '-days', '1', '-extfile', f(`${who}.ext`)]);
  }
  return { ca: f('ca.pem'), serverCert: f('server.pem'), serverKey: f('server-key.pem'), clientCert: f('client.pem'), clientKey: f('client-key.pem') };
}

describe('docker calls to a host with tls', () => {
  const engine = servers().docker.host;
  const plain = (args: string[]) => execa('docker', args, { env: { DOCKER_HOST: engine } });
  const requests: string[] = [];
  let refused = 0;
  let front: tls.Server;
  let tcp = '';
  let host: { name: string; dockerHost: string; tls: { caFile: string; certFile: string; keyFile: string } };
  const web = uniqueName('tlsweb');
  const service = uniqueName('tlssvc').replace(/_/g, '-');

  beforeAll(async () => {
    const certs = await makeCerts(tempDir('docker-tls'));
    front = tls.createServer(
      { key: readFileSync(certs.serverKey), cert: readFileSync(certs.serverCert), ca: readFileSync(certs.ca), requestCert: true, rejectUnauthorized: true },
      (sock) => {
        const up = net.connect(engine.replace(/^unix:\/\//, ''));
        sock.on('data', (chunk: Buffer) => {
          for (const m of chunk.toString('latin1').matchAll(/^(GET|HEAD|POST|PUT|DELETE) (\S+) HTTP\/1\.1\r$/gm)) requests.push(`${m[1]} ${(m[2] ?? '').replace(/^\/v[\d.]+/, '').replace(/\?.*/, '')}`);
        });
        sock.pipe(up).pipe(sock);
        sock.on('error', () => up.destroy());
        up.on('error', () => sock.destroy());
      },
    );
    front.on('tlsClientError', () => refused++);
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    tcp = `tcp://127.0.0.1:${(front.address() as net.AddressInfo).port}`;
    host = { name: 'tls1', dockerHost: tcp, tls: { caFile: certs.ca, certFile: certs.clientCert, keyFile: certs.clientKey } };
    await plain(['run', '-d', '--init', '--name', web, '--network', 'host', BASE_IMAGE, 'sleep', '600']);
  });

  afterAll(async () => {
    await plain(['rm', '-f', web]).catch(() => undefined);
    await new Promise((resolve) => front.close(resolve));
  });

  test('the front refuses a call without the client certificate (the control: leaving TLS out fails)', async () => {
    const before = refused;
    await expect(containerStates({ dockerHost: tcp }, [web])).rejects.toMatchObject({ type: 'DockerCommandFailed', message: expect.stringMatching(/^docker inspect on tcp:\/\/127\.0\.0\.1:\d+ failed: /) });
    expect(refused).toBeGreaterThan(before);
  });

  test('restore / rotation / remediation steps: inspect, stop, start, restart, stats, ps all go over TLS', async () => {
    requests.length = 0;
    const hosts = [host];
    expect(await stopContainers({ dockerHost: tcp, containers: [web], timeoutSeconds: 1 }, hosts)).toEqual({ stopped: [web], alreadyStopped: [] });
    expect(await startContainers({ dockerHost: tcp, containers: [web] }, hosts)).toEqual({ started: [web], alreadyRunning: [] });
    expect(await restartContainers({ dockerHost: tcp, containers: [web], notBefore: new Date(Date.now() + 60_000).toISOString(), timeoutSeconds: 1 }, hosts)).toEqual({ restarted: [web], alreadyRestarted: [] });
    expect(Object.keys((await containerCpu({ dockerHost: tcp, containers: [web] }, hosts)).byContainer)).toEqual([web]);
    const config = {
      targets: { dockerHosts: hosts, services: [{ name: service, host: 'tls1', containers: [], deploy: { portEnv: 'PORT' } }] },
      remediation: { services: {}, approvalTimeout: '5m' },
    } as unknown as Config;
    expect(await remediationPlan(config, { service })).toMatchObject({ dockerHost: tcp, containers: [] });
    const kinds = new Set(requests.map((r) => r.replace(/\/containers\/[^/]+\//, '/containers/ID/')));
    for (const k of ['GET /containers/ID/json', 'POST /containers/ID/stop', 'POST /containers/ID/start', 'POST /containers/ID/restart', 'GET /containers/ID/stats', 'GET /containers/json']) {
      expect([...kinds]).toContain(k);
    }
  });

  test('deploy steps: ps, inspect, run, stop, rm, images all go over TLS', async () => {
    requests.length = 0;
    const config = {
      targets: { dockerHosts: [host], services: [{ name: service, host: 'tls1', containers: [], deploy: { portEnv: 'PORT' } }] },
    } as unknown as Config;
    const deps = { config, host: 'tls1' };
    const inst = await startInstance(deps, { service, image: BASE_IMAGE, port: 1, deployId: 'tls-test' });
    expect(inst).toMatchObject({ name: `${service}-1`, version: BASE_IMAGE, deployId: 'tls-test' });
    expect((await listInstances(deps, { service })).map((i) => i.name)).toEqual([`${service}-1`]);
    expect(await removeInstances(deps, { service, names: [`${service}-1`], stopSeconds: 1 })).toEqual({ removed: [`${service}-1`] });
    expect(await pruneImages(deps, { service, repository: 'localhost/none-such-tls', current: 'localhost/none-such-tls:1', keep: 1 })).toEqual({ removed: [], kept: [] });
    const kinds = new Set(requests.map((r) => r.replace(/\/containers\/[^/]+\//, '/containers/ID/').replace(/\/images\/.+\/json$/, '/images/ID/json')));
    for (const k of ['POST /containers/create', 'POST /containers/ID/start', 'GET /containers/ID/json', 'GET /images/ID/json', 'GET /containers/json', 'POST /containers/ID/stop', 'GET /images/json']) {
      expect([...kinds]).toContain(k);
    }
    expect([...kinds].some((k) => k.startsWith('DELETE /containers/'))).toBe(true);
  });

  test('the client\'s failures: a call that does not finish in time is a retryable DockerTimeout naming the host; stderr in an error is redacted', async () => {
    // `docker events` streams until stopped: the timeout ends it.
    await expect(docker(host, ['events'], 500)).rejects.toMatchObject({ type: 'DockerTimeout', nonRetryable: false, message: 'docker events on tls1 timed out after 500 ms' });
    const secret = `pw-${uniqueName('s')}`;
    registerSecret(secret);
    const err = (await dockerOk(host, ['inspect', '--type', 'container', '--', `c${secret}`]).catch((e: unknown) => e)) as Error & { type?: string };
    expect(err.type).toBe('DockerCommandFailed');
    expect(err.message).toMatch(/^docker inspect on tls1 failed: .*No such container: c\[redacted\]/);
    expect(err.message).not.toContain(secret);
  });
});
