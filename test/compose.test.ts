import { execa } from 'execa';
import { parse } from 'yaml';
import { projectRoot } from '../src/client/local-servers';

/**
 * The production-like stack. Images cannot be pulled here, so `docker-compose config` (the real parser,
 * with interpolation, overrides and profiles) checks what would run; README "Running in production" says how.
 */

const ROOT = projectRoot();

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  depends_on?: Record<string, { condition: string }>;
  environment?: Record<string, string>;
  ports?: Array<{ published: number; target: number; host_ip?: string } | string>;
  volumes?: Array<{ source?: string; target: string; type: string } | string>;
  group_add?: string[];
  profiles?: string[];
  command?: string[];
}

async function composeConfig(files: string[], env: Record<string, string>): Promise<{ exitCode: number; services: Record<string, Service>; stderr: string }> {
  const r = await execa('docker-compose', [...files.flatMap((f) => ['-f', f]), 'config'], {
    cwd: ROOT,
    env: { ...env, PATH: process.env.PATH ?? '' },
    extendEnv: false,
    reject: false,
  });
  return { exitCode: r.exitCode ?? -1, services: r.exitCode === 0 ? (parse(String(r.stdout)) as { services: Record<string, Service> }).services : {}, stderr: String(r.stderr) };
}

const targets = (s: Service): string[] => (s.volumes ?? []).map((v) => (typeof v === 'string' ? v.split(':')[1]! : v.target));

test('the stack: PostgreSQL, the schema job, server, setup job, UI on 8080 and our worker with its config and the Docker socket', async () => {
  const { exitCode, services, stderr } = await composeConfig(['docker-compose.temporal.yml'], { POSTGRES_PASSWORD: 'Secret123', DOCKER_GID: '998' });
  expect(stderr).not.toMatch(/error/i);
  expect(exitCode).toBe(0);
  expect(Object.keys(services).sort()).toEqual(['postgresql', 'runbooks-codec', 'runbooks-worker', 'temporal', 'temporal-schema', 'temporal-setup', 'temporal-ui']);

  expect(services.temporal!.depends_on).toMatchObject({ 'temporal-schema': { condition: 'service_completed_successfully' } });
  expect(services.temporal!.environment).toMatchObject({ DB: 'postgres12', POSTGRES_SEEDS: 'postgresql', POSTGRES_PWD: 'Secret123' });
  expect(JSON.stringify(services.temporal!.ports)).toContain('7233');
  expect(JSON.stringify(services['temporal-ui']!.ports)).toContain('8080');
  expect(services.postgresql!.ports).toBeUndefined(); // never published

  const worker = services['runbooks-worker']!;
  expect(worker.build).toMatchObject({ dockerfile: 'Dockerfile' });
  expect(worker.depends_on).toMatchObject({ 'temporal-setup': { condition: 'service_completed_successfully' } });
  expect(targets(worker)).toEqual(expect.arrayContaining(['/etc/runbooks/runbooks.yaml', '/var/run/docker.sock', '/run/secrets/runbooks', '/var/lib/runbooks/backups']));
  expect(worker.group_add).toEqual(['998']);
  // The codec server only with --profile codec, from the same image.
  expect(services['runbooks-codec']).toMatchObject({ profiles: ['codec'], image: worker.image, command: ['dist/client/cli.js', 'codec-server'] });
});

test('without POSTGRES_PASSWORD nothing is configured and the message says what to set', async () => {
  const r = await composeConfig(['docker-compose.temporal.yml'], {});
  expect(r.exitCode).not.toBe(0);
  expect(r.stderr).toContain('set POSTGRES_PASSWORD');
});

test('the OpenSearch override moves visibility: index set up by the schema job, the server told to use it', async () => {
  const { exitCode, services } = await composeConfig(['docker-compose.temporal.yml', 'docker-compose.temporal.opensearch.yml'], { POSTGRES_PASSWORD: 'Secret123' });
  expect(exitCode).toBe(0);
  expect(services.opensearch).toBeDefined();
  expect(services['temporal-schema']!.environment).toMatchObject({ ES_HOST: 'opensearch', ES_VISIBILITY_INDEX: 'temporal_visibility_v1' });
  expect(services['temporal-schema']!.depends_on).toMatchObject({ opensearch: { condition: 'service_healthy' }, postgresql: { condition: 'service_healthy' } });
  expect(services.temporal!.environment).toMatchObject({ ENABLE_ES: 'true', ES_SEEDS: 'opensearch', ES_VIS_INDEX: 'temporal_visibility_v1' });
});
