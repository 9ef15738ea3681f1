import { dockerCommand, endpointFor } from '../src/activities/docker';
import { parseConfig } from '../src/config/load';

/** The one docker client's command line and environment (no engine needed; test/docker-tls.test.ts runs them against a TLS engine). */

const tlsHost = { name: 'app1', dockerHost: 'tcp://10.0.0.5:2376', tls: { caFile: '/etc/rb/ca.pem', certFile: '/etc/rb/cert.pem', keyFile: '/etc/rb/key.pem' } };
const TLS_FLAGS = ['--tlsverify', '--tlscacert', '/etc/rb/ca.pem', '--tlscert', '/etc/rb/cert.pem', '--tlskey', '/etc/rb/key.pem'];

// Every subcommand the runbooks and the local engine use.
const CALLS = [
  ['ps', '-aq', '--no-trunc', '--filter', 'label=runbooks.service=api'],
  ['inspect', '--type', 'container', '--', 'api-1'],
  ['run', '-d', '--init', '--network', 'host', '--name', 'api-8001', '--', 'localhost/api:2'],
  ['start', '--', 'api-1'],
  ['stop', '--time', '10', '--', 'api-1'],
  ['restart', '--time', '10', '--', 'api-1'],
  ['unpause', '--', 'api-1'],
  ['stats', '--no-stream', '--format', '{{.Name}} {{.CPUPerc}}', '--', 'api-1'],
  ['rm', '-f', '--', 'api-1'],
  ['images', '--format', '{{.Repository}}:{{.Tag}}', '--', 'localhost/api'],
  ['image', 'inspect', '--format', '{{.Created}}', '--', 'localhost/api:1'],
  ['rmi', '--', 'localhost/api:1'],
  ['version', '--format', '{{.Server.Version}}'],
];

describe('dockerCommand', () => {
  const saved = { ...process.env };
  beforeEach(() => Object.assign(process.env, { DOCKER_CERT_PATH: '/home/op/.docker', DOCKER_TLS_VERIFY: '1', DOCKER_CONFIG: '/home/op/.docker', RUNBOOK_SECRET: 's3cret' }));
  afterEach(() => {
    for (const k of ['DOCKER_CERT_PATH', 'DOCKER_TLS_VERIFY', 'DOCKER_CONFIG', 'RUNBOOK_SECRET']) delete process.env[k];
    Object.assign(process.env, saved);
  });

  test.each(CALLS)('a host with tls: the TLS flags come before `docker %s`, the address is DOCKER_HOST', (...args) => {
    const cmd = dockerCommand(tlsHost, args);
    expect(cmd.file).toBe('docker');
    expect(cmd.args).toEqual([...TLS_FLAGS, ...args]);
    expect(cmd.env.DOCKER_HOST).toBe('tcp://10.0.0.5:2376');
    // The config's TLS is the whole story: the worker's own cert path / verify switch do not mix in.
    expect(cmd.env).not.toHaveProperty('DOCKER_CERT_PATH');
    expect(cmd.env).not.toHaveProperty('DOCKER_TLS_VERIFY');
    expect(cmd.env.DOCKER_CONFIG).toBe('/home/op/.docker');
    expect(Object.values(cmd.env)).not.toContain('s3cret');
  });

  test('tls with only a CA: --tlsverify and --tlscacert, no client certificate flags', () => {
    expect(dockerCommand({ dockerHost: 'tcp://h:2376', tls: { caFile: '/ca.pem' } }, ['ps']).args).toEqual(['--tlsverify', '--tlscacert', '/ca.pem', 'ps']);
  });

  test('a host without tls: no flags; the worker\'s DOCKER_CERT_PATH / DOCKER_TLS_VERIFY pass through; nothing else of its environment', () => {
    const cmd = dockerCommand({ name: 'local', dockerHost: 'unix:///run/docker.sock' }, ['ps']);
    expect(cmd.args).toEqual(['ps']);
    expect(cmd.env).toMatchObject({ DOCKER_HOST: 'unix:///run/docker.sock', DOCKER_CERT_PATH: '/home/op/.docker', DOCKER_TLS_VERIFY: '1' });
    expect(Object.values(cmd.env)).not.toContain('s3cret');
  });

  test('an activity input\'s address finds its host in the config, so its tls applies; an unknown address gets none', () => {
    expect(endpointFor([tlsHost], 'tcp://10.0.0.5:2376')).toBe(tlsHost);
    expect(endpointFor([tlsHost], 'unix:///other.sock')).toEqual({ dockerHost: 'unix:///other.sock' });
  });
});

test('a docker host\'s tls.serverName is refused, naming the field (the docker CLI cannot override the name it checks)', () => {
  const yaml = (tls: string) => `targets:\n  dockerHosts:\n    - { name: app1, dockerHost: "tcp://10.0.0.5:2376", tls: ${tls} }\n`;
  expect(parseConfig(yaml('{ caFile: /ca.pem, certFile: /c.pem, keyFile: /k.pem }'), 'ok.yaml').targets.dockerHosts[0]?.tls).toEqual({ caFile: '/ca.pem', certFile: '/c.pem', keyFile: '/k.pem' });
  expect(() => parseConfig(yaml('{ caFile: /ca.pem, serverName: docker.internal }'), 'bad.yaml')).toThrow(/targets\.dockerHosts\[0\]\.tls\.serverName: not supported for a docker host/);
});
