import { parse, stringify } from 'yaml';
import { syncSchedules } from '../src/client/schedules';
import { ConfigError, parseConfig } from '../src/config/load';
import { InputError, findRunbook, parseRunbookInput } from '../src/config/runbooks';
import { testConfig, uniqueName } from './support/servers';
import { useDevServer } from './support/temporal';

const dev = useDevServer();

function issuesOf(raw: unknown): string[] {
  try {
    parseConfig(stringify(raw), 'bad.yaml');
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  throw new Error('config was accepted');
}

describe('rotation config', () => {
  const base = (): any => {
    const raw = parse(testConfig({ databases: ['shop'], taskQueue: 'x' }).yaml);
    raw.rotation = { sets: [{ name: 'db', postgres: { target: 'shop', roles: ['app_a', 'app_b'] } }] };
    return raw;
  };

  test('each bad field is named', () => {
    const noCodec = base();
    delete noCodec.temporal.encryption;
    expect(issuesOf(noCodec)).toEqual([expect.stringMatching(/^temporal\.encryption: is required when rotation\.sets is configured/)]);

    const bad = base();
    bad.targets.redis = [{ name: 'cache', port: 6379 }];
    bad.rotation.github = { token: { env: 'GH_TOKEN' } };
    bad.rotation.sets = [
      { name: 'a', postgres: { target: 'shop', roles: ['x', 'x'] } },
      { name: 'b', redis: { target: 'cache', user: 'app' }, jwt: { jwksFile: '/k.json' } },
      { name: 'c', redis: { target: 'cache', user: 'app' }, envFiles: [{ path: '.env', keys: { kid: 'JWT_KID' } }], github: { repo: 'acme/shop', secrets: { password: 'GITHUB_PW' } } },
    ];
    expect(issuesOf(bad).sort()).toEqual(
      [
        'rotation.sets[0].postgres.roles: the two roles must differ',
        'rotation.sets[1]: give exactly one of postgres, redis, jwt (got redis, jwt)',
        'rotation.sets[2].envFiles[0].keys.kid: unknown value "kid" for a redis set (known: user, password)',
        'rotation.sets[2].github.secrets.password: GitHub secret names cannot start with GITHUB_',
      ].sort(),
    );
    const refs = base();
    refs.rotation.sets = [
      { name: 'a', postgres: { target: 'nope', roles: ['x', 'y'] }, services: ['ghost'], github: { repo: 'acme/shop', secrets: { password: 'DB_PW' } } },
      { name: 'a', redis: { target: 'nope', user: 'app' } },
    ];
    expect(issuesOf(refs).sort()).toEqual(
      [
        'rotation.sets[0].postgres.target: unknown database "nope" (not in targets.databases)',
        'rotation.sets[0].services[0]: unknown service "ghost" (not in targets.services)',
        'rotation.github: is required: rotation.sets[0] writes GitHub secrets',
        'rotation.sets[1].name: duplicate secret set "a"',
        'rotation.sets[1].redis.target: unknown redis "nope" (not in targets.redis)',
      ].sort(),
    );
  });

  test('the CLI refuses an unknown secret set by name before starting anything', () => {
    const config = parseConfig(stringify(base()));
    const def = findRunbook('rotate-secrets');
    expect(parseRunbookInput(def, { set: 'db' }, config)).toEqual({ set: 'db' });
    expect(() => parseRunbookInput(def, { set: 'nope' }, config)).toThrow(InputError);
    expect(() => parseRunbookInput(def, { set: 'nope' }, config)).toThrow('set: unknown secret set "nope" (known: db)');
    expect(def.workflowId({ set: 'db' }, new Date())).toBe('rotate/db');
  });

  test('schedules: every secret set every 90 days by default, a set may say otherwise or opt out', async () => {
    const raw = base();
    const taskQueue = uniqueName('rotsched');
    raw.temporal.taskQueue = taskQueue;
    const tag = taskQueue.slice(-8);
    raw.targets.databases[0].backup = false;
    raw.targets.databases[0].restore = { verify: false };
    raw.rotation.sets = [
      { name: `db-${tag}`, postgres: { target: 'shop', roles: ['app_a', 'app_b'] } },
      { name: `jwt-${tag}`, jwt: { jwksFile: '/srv/jwks.json' }, every: '30d' },
      { name: `manual-${tag}`, jwt: { jwksFile: '/srv/jwks2.json' }, every: false },
    ];
    const config = parseConfig(stringify(raw));
    const report = await syncSchedules(dev.client, config);
    expect(report.created).toEqual([`rotate-db-${tag}`, `rotate-jwt-${tag}`]);
    expect((await syncSchedules(dev.client, config)).unchanged).toEqual([`rotate-db-${tag}`, `rotate-jwt-${tag}`]);
    const db = await dev.client.schedule.getHandle(`rotate-db-${tag}`).describe();
    expect(db.spec.intervals).toMatchObject([{ every: 90 * 86_400_000 }]);
    expect(db.action).toMatchObject({ workflowType: 'rotateSecrets', workflowId: `rotate/db-${tag}`, args: [{ set: `db-${tag}`, reason: 'scheduled' }] });
    expect(db.policies.overlap).toBe('SKIP');
    const jwt = await dev.client.schedule.getHandle(`rotate-jwt-${tag}`).describe();
    expect(jwt.spec.intervals?.[0]?.every).toBe(30 * 86_400_000);
    for (const id of report.created) await dev.client.schedule.getHandle(id).delete();
  });
});
