import { DurationError, durationMs, parseDuration } from '../src/config/duration';
import { ConfigError, parseConfig } from '../src/config/load';
import { InputError, findRunbook, parseRunbookInput } from '../src/config/runbooks';

/** One duration format for the config, runbook parameters and Updates: a whole number and ms, s, m, h or d. */

const config = `
targets:
  dockerHosts:
    - { name: app1, dockerHost: unix:///var/run/docker.sock }
  services:
    - name: web
      host: app1
      deploy:
        ports: { from: 18080, to: 18089 }
        nginx: { upstreamFile: /etc/nginx/up/web.conf, conf: /etc/nginx/nginx.conf }
`;

function configIssues(extra: string): string[] {
  try {
    parseConfig(`${config}${extra}`, 'bad.yaml');
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  return [];
}

function deployIssues(params: Record<string, string>): string[] {
  try {
    parseRunbookInput(findRunbook('deploy'), { service: 'web', image: 'shop/web:2', ...params }, parseConfig(config, 'ok.yaml'));
  } catch (err) {
    if (err instanceof InputError) return err.issues;
    throw err;
  }
  return [];
}

test.each([
  ['0s', 0],
  ['500ms', 500],
  ['30s', 30_000],
  ['15m', 15 * 60 * 1000],
  ['2h', 2 * 60 * 60 * 1000],
  ['7d', 7 * 24 * 60 * 60 * 1000],
  ['90m', 90 * 60 * 1000],
  ['0030s', 30_000],
])('%s is %d ms', (text, ms) => {
  expect(parseDuration(text)).toBe(ms);
  expect(durationMs(text, 'drain')).toBe(ms);
});

test.each(['', '30', 's', '1.5h', '-5m', '+5m', '1h30m', '30 s', ' 30s', '30s ', '30S', '1w', '1y', '2 hours', '30sec', 'soon'])('%j is refused, naming the field', (text) => {
  expect(parseDuration(text)).toBeUndefined();
  expect(() => durationMs(text, 'deploy.drain')).toThrow(new DurationError(`deploy.drain: must be a duration like "500ms", "30s", "15m", "2h" or "7d" (got ${JSON.stringify(text)})`));
});

test('not a string is refused', () => {
  expect(parseDuration(30)).toBeUndefined();
  expect(parseDuration(undefined)).toBeUndefined();
});

test('the config and the deploy parameters accept the same units: a day-long drain is fine in both', () => {
  expect(configIssues('backups:\n  root: /var/backups/runbooks\n  safetyKeep: 500ms\n')).toEqual([]);
  // The deploy parameters used to refuse "d" (a parser of their own: ms, s, m, h); the config always took it.
  expect(deployIssues({ drain: '1d', canaryWindow: '1d', minHealthy: '1500ms' })).toEqual([]);
});

test('a bad duration in the config or in a parameter is refused with the field and the one message', () => {
  expect(configIssues('backups:\n  root: /var/backups/runbooks\n  safetyKeep: 1w\n')).toContain('backups.safetyKeep: must be a duration like "500ms", "30s", "15m", "2h" or "7d"');
  expect(deployIssues({ canaryWindow: '1.5m' })).toEqual([expect.stringMatching(/^canaryWindow: must be a duration like "500ms", "30s", "15m", "2h" or "7d"/)]);
});
