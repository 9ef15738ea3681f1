import { ConfigError, parseConfig } from '../src/config/load';
import { InputError, findRunbook, parseRunbookInput } from '../src/config/runbooks';
import { createdNs, imagesToKeep, parseUpstream, renderUpstream } from '../src/activities/deploy';

const yaml = (deploy: string) => `
targets:
  dockerHosts:
    - { name: app1, dockerHost: unix:///var/run/docker.sock }
  services:
    - name: web
      host: app1
      deploy:
${deploy}`;

const goodDeploy = `        ports: { from: 18080, to: 18089 }
        nginx: { upstreamFile: /etc/nginx/up/web.conf, conf: /etc/nginx/nginx.conf }`;

function issuesOf(text: string): string[] {
  try {
    parseConfig(text, 'bad.yaml');
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  throw new Error('config was accepted');
}

function inputIssues(runbook: string, params: Record<string, string>): string[] {
  const config = parseConfig(yaml(goodDeploy), 'ok.yaml');
  try {
    parseRunbookInput(findRunbook(runbook), params, config);
  } catch (err) {
    if (err instanceof InputError) return err.issues;
    throw err;
  }
  return [];
}

test('a deployable service gets the documented defaults', () => {
  const svc = parseConfig(yaml(goodDeploy), 'ok.yaml').targets.services[0]!;
  expect(svc.deploy).toMatchObject({ instances: 2, portEnv: 'PORT', drain: '3s', keepImages: 3, health: { path: '/health', expectStatus: 200, minHealthy: '2s', timeout: '60s' } });
});

test.each([
  ['ports backwards', `        ports: { from: 18089, to: 18080 }\n        nginx: { upstreamFile: /u, conf: /c }`, 'targets.services[0].deploy.ports.to: must be >= from'],
  ['no nginx', `        ports: { from: 18080, to: 18089 }`, 'targets.services[0].deploy.nginx: is required'],
  ['a bad duration', `${goodDeploy}\n        drain: soon`, 'targets.services[0].deploy.drain: must be a duration'],
])('bad deploy settings (%s) are refused naming the field', (_what, deploy, expected) => {
  expect(issuesOf(yaml(deploy)).join('\n')).toContain(expected);
});

test.each([
  ['web:1.4.2', true],
  ['registry.example.com:5000/shop/web:1.4.2', true],
  [`localhost/web@sha256:${'a'.repeat(64)}`, true],
  ['web', false],
  ['registry.example.com:5000/shop/web', false],
  ['Web:1', false],
  ['web:1 ; rm -rf /', false],
  ['--privileged', false],
])('image %s accepted: %s', (image, ok) => {
  const issues = inputIssues('deploy', { service: 'web', image });
  if (ok) expect(issues).toEqual([]);
  else expect(issues.join('\n')).toMatch(/^image: /);
});

test('deploy and scale parameters are checked and named', () => {
  expect(inputIssues('deploy', { service: 'web', image: 'web:1', strategy: 'yolo' }).join('\n')).toMatch(/^strategy: /);
  expect(inputIssues('deploy', { service: 'web', image: 'web:1', canaryPercent: '100' }).join('\n')).toMatch(/^canaryPercent: /);
  expect(inputIssues('deploy', { service: 'api', image: 'web:1' })).toEqual(['service: unknown deployable service "api" (known: web)']);
  expect(inputIssues('scale', { service: 'web', instances: 'two' }).join('\n')).toMatch(/^instances: /);
  expect(inputIssues('scale', { service: 'web', instances: '3', reason: 'cpu > 80 %' })).toEqual([]);
});

test('the upstream file round-trips, and placeholders marked down are not instances', () => {
  const servers = [{ port: 18080, weight: 90 }, { port: 18081 }];
  expect(parseUpstream(renderUpstream('web', servers))).toEqual(servers);
  expect(parseUpstream('server 127.0.0.1:1 down;\n')).toEqual([]);
});

test('image creation times are read to the nanosecond, with or without a fraction or offset', () => {
  expect(createdNs('2026-11-24T09:16:44.123456789Z')).toBe(1795511804123456789n);
  expect(createdNs('2026-11-24T09:16:44Z')).toBe(1795511804000000000n);
  expect(createdNs('2026-11-24T10:16:44.5+01:00')).toBe(1795511804500000000n);
  expect(() => createdNs('yesterday')).toThrow('"yesterday"');
});

describe('which images a prune keeps', () => {
  const at = (s: number, ns = 0) => BigInt(s) * 1_000_000_000n + BigInt(ns);
  const none = new Set<string>();

  test('an image built in the same second as the deployed one, just after it, is a next release and stays', () => {
    // docker images rounds both to 09:16:44: the old code sorted "bad" below v3 by name and removed it.
    const images = [
      { ref: 'web:v1', createdNs: at(40) },
      { ref: 'web:v2', createdNs: at(42) },
      { ref: 'web:v3', createdNs: at(44, 100) },
      { ref: 'web:bad', createdNs: at(44, 900) },
    ];
    expect([...imagesToKeep(images, 'web:v3', 2, none, 'web:v2')].sort()).toEqual(['web:bad', 'web:v2', 'web:v3']);
  });

  test('the image the deploy replaced stays even when it was built before others', () => {
    const images = [
      { ref: 'web:v1', createdNs: at(10) },
      { ref: 'web:v2', createdNs: at(20) },
      { ref: 'web:v3', createdNs: at(30) },
      { ref: 'web:v4', createdNs: at(40) },
    ];
    // v4 replaced v1 (v2 and v3 were never deployed): the rollback target is v1.
    expect([...imagesToKeep(images, 'web:v4', 2, none, 'web:v1')].sort()).toEqual(['web:v1', 'web:v4']);
    expect([...imagesToKeep(images, 'web:v4', 3, none, 'web:v1')].sort()).toEqual(['web:v1', 'web:v3', 'web:v4']);
    expect([...imagesToKeep(images, 'web:v4', 1, new Set(['web:v2']), 'web:v1')].sort()).toEqual(['web:v1', 'web:v2', 'web:v4']);
  });

  test('nothing is removed when the deployed image is not in the list', () => {
    const images = [{ ref: 'web:v1', createdNs: at(10) }];
    expect([...imagesToKeep(images, 'web:v9', 1, none)]).toEqual(['web:v1']);
  });
});
