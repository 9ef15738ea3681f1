import { ConfigError, parseConfig } from '../src/config/load';
import { InputError, findRunbook, parseRunbookInput } from '../src/config/runbooks';
import { parseUpstream, renderUpstream } from '../src/activities/deploy';

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
