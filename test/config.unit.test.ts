import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, parseConfig } from '../src/config/load';
import { checkSecrets, redact, resolveSecret } from '../src/config/secrets';

function issuesOf(yaml: string): string[] {
  try {
    parseConfig(yaml, 'bad.yaml');
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  throw new Error('config was accepted');
}

const db = (extra: string) => `
targets:
  databases:
    - name: shop
      database: shop
      user: backup
      password: { env: SHOP_PW }
${extra}`;

test('the example config is valid and keeps the seed numbers', () => {
  const text = readFileSync(path.join(__dirname, '..', 'runbooks.example.yaml'), 'utf8');
  const config = parseConfig(text, 'runbooks.example.yaml', '/etc/runbooks');
  expect(config.backups.retention).toEqual({ gfs: { daily: 7, weekly: 4, monthly: 12 } });
  expect(config.backups.schedule).toEqual({ cron: '0 2 * * *', timezone: 'UTC' });
  expect(config.targets.databases[0]).toMatchObject({ name: 'shop', port: 5432, password: { env: 'SHOP_DB_PASSWORD' } });
});

test('an empty config gets the documented defaults', () => {
  const config = parseConfig('', 'empty.yaml', '/srv');
  expect(config.temporal).toMatchObject({ address: '127.0.0.1:7233', namespace: 'default', taskQueue: 'runbooks' });
  expect(config.backups.root).toBe('/srv/.runbooks/backups');
  expect(config.backups.retention).toEqual({ gfs: { daily: 7, weekly: 4, monthly: 12 } });
});

test.each([
  ['a wrong type', db('').replace('database: shop', 'database: shop\n      port: "5432x"'), 'targets.databases[0].port: '],
  ['a missing field', db('').replace('      user: backup\n', ''), 'targets.databases[0].user: is required'],
  ['an unknown field', db('').replace('user: backup', 'user: backup\n      pasword: { env: X }'), 'targets.databases[0].pasword: unknown field'],
  ['an inline secret', db('').replace('password: { env: SHOP_PW }', 'password: hunter2-inline'), 'targets.databases[0].password: must be a secret reference'],
  ['a bad timezone', db('backups:\n  schedule: { cron: "0 2 * * *", timezone: Mars/Olympus }'), 'backups.schedule.timezone: unknown IANA timezone'],
  ['a 6-field cron', db('backups:\n  schedule: { cron: "0 0 2 * * *" }'), 'backups.schedule.cron: cron must have 5 fields'],
  ['an empty retention', db('backups:\n  retention: {}'), 'backups.retention: give at least one of keepDays, keepLast, gfs'],
  ['a negative keepLast', db('backups:\n  retention: { keepLast: -1 }'), 'backups.retention.keepLast: '],
  ['a duplicate target', db('  redis:\n    - name: shop').replace('\n\n', '\n'), 'targets.redis[0].name: duplicate target name "shop"'],
  ['a bad email address', db('notifications:\n  email: { host: smtp, from: a@b.c, to: [not-an-address] }'), 'notifications.email.to[0]: '],
  ['a service on an unknown docker host', db('  services:\n    - { name: api, host: nowhere }').replace('\n\n', '\n'), 'targets.services[0].host: unknown docker host "nowhere"'],
  ['a database name over 63 bytes (32 × "ä")', db('').replace('database: shop', `database: ${'ä'.repeat(32)}`), 'targets.databases[0].database: must be at most 63 bytes'],
  ['broken YAML', 'targets: [unclosed', 'YAML: '],
  ['an inline chatops signing secret', db('chatops: { signingSecret: abc123 }'), 'chatops.signingSecret: must be a secret reference'],
  ['a chatops rule naming an unknown role', db('chatops:\n  signingSecret: { env: S }\n  rules: [{ runbooks: [restore], run: [dbas] }]'), 'chatops.rules[0].run[0]: unknown role "dbas"'],
  ['a chatops quorum of 0', db('chatops:\n  signingSecret: { env: S }\n  rules: [{ runbooks: [restore], quorum: 0 }]'), 'chatops.rules[0].quorum: '],
  ['a chatops person that is not a Slack user id', db('chatops:\n  signingSecret: { env: S }\n  people: { alice: alice }'), 'chatops.people.alice: '],
])('%s is refused with the path of the field', (_what, yaml, expected) => {
  const issues = issuesOf(yaml);
  expect(issues.some((i) => i.startsWith(expected))).toBe(true);
});

test('an inline secret is refused without echoing it', () => {
  const issues = issuesOf(db('').replace('password: { env: SHOP_PW }', 'password: hunter2-inline'));
  expect(issues.join('\n')).not.toContain('hunter2-inline');
});

test('secret references resolve from env and file; failures name the field, never a value; redact scrubs values', () => {
  process.env.CONFIG_TEST_SECRET = 's3cret-value-123';
  expect(resolveSecret({ env: 'CONFIG_TEST_SECRET' }, 'x.password')).toBe('s3cret-value-123');
  expect(redact('auth failed for s3cret-value-123!')).toBe('auth failed for [redacted]!');
  expect(() => resolveSecret({ env: 'CONFIG_TEST_UNSET' }, 'targets.redis[0].password')).toThrow(
    'targets.redis[0].password: environment variable CONFIG_TEST_UNSET is not set or empty',
  );
  expect(() => resolveSecret({ file: '/nonexistent/secret' }, 'notifications.email.password')).toThrow(
    'notifications.email.password: cannot read file /nonexistent/secret (ENOENT)',
  );
  const config = parseConfig(db(''), 'x.yaml');
  expect(checkSecrets(config)).toEqual(['targets.databases[0].password: environment variable SHOP_PW is not set or empty']);
});
