import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { type RotationPlan, type RunbookActivities } from '../src/activities';
import { temporalBinary } from '../src/client/local-servers';
import { uniqueName } from './support/servers';
import { workflowBundle } from './support/temporal';

// The rollback's own logic (which undo steps run after one failed, what the failure says) with mocked
// activities; test/rotate-secrets.test.ts runs a real one against PostgreSQL, Redis and the GitHub API.

let env: TestWorkflowEnvironment;

beforeAll(async () => {
  env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: temporalBinary('temporal-test-server') } },
  });
}, 60_000);

afterAll(async () => {
  await env?.teardown();
});

const PLAN: RotationPlan = {
  set: 'shop-db',
  rotationId: 'r1',
  kind: 'postgres',
  oldRole: 'app_a',
  newRole: 'app_b',
  envFiles: 2,
  envFilePaths: ['/srv/a/.env', '/srv/b/.env'],
  githubSecrets: ['DB_PASSWORD'],
  services: ['app'],
};

/** Every rotation activity succeeding and recording its call, except those `override` replaces. */
function activities(calls: string[], override: Partial<Record<keyof RunbookActivities, () => Promise<unknown>>>): Partial<RunbookActivities> {
  const ok = (name: keyof RunbookActivities, result: unknown = undefined) => () => {
    calls.push(name);
    const fn = override[name];
    return fn ? fn() : Promise.resolve(result);
  };
  return {
    beginRotation: ok('beginRotation', PLAN),
    applyNewCredential: ok('applyNewCredential'),
    verifyNewCredential: ok('verifyNewCredential'),
    writeEnvFiles: ok('writeEnvFiles', 2),
    updateGithubSecrets: ok('updateGithubSecrets', ['DB_PASSWORD']),
    restartConsumers: ok('restartConsumers', ['app-1']),
    retireOldCredential: ok('retireOldCredential'),
    verifyOldRetired: ok('verifyOldRetired'),
    unretireOldCredential: ok('unretireOldCredential'),
    restoreEnvFiles: ok('restoreEnvFiles', 2),
    restoreGithubSecrets: ok('restoreGithubSecrets', { restored: ['DB_PASSWORD'], unknown: [] }),
    revertNewCredential: ok('revertNewCredential'),
    finishRotation: ok('finishRotation'),
  } as Partial<RunbookActivities>;
}

async function failedRotation(acts: Partial<RunbookActivities>): Promise<string> {
  const taskQueue = uniqueName('rot');
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: await workflowBundle(), activities: acts });
  const err = await worker.runUntil(
    env.client.workflow.execute('rotateSecrets', { taskQueue, workflowId: `rotate/${uniqueName('set')}`, args: [{ set: 'shop-db' }] }).then(() => undefined, (e: unknown) => e),
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  return String((err as WorkflowFailedError).cause?.message);
}

test('the old credential cannot be put back: nobody is moved back to it, the new one is not withdrawn, the lock is kept', async () => {
  const calls: string[] = [];
  let restarts = 0;
  const message = await failedRotation(
    activities(calls, {
      restartConsumers: () => Promise.resolve([`app-${++restarts}`]),
      verifyOldRetired: () => Promise.reject(ApplicationFailure.nonRetryable('role app_a can still log in', 'OldCredentialStillValid')),
      unretireOldCredential: () => Promise.reject(ApplicationFailure.nonRetryable('permission denied to alter role', 'PermissionDenied')),
    }),
  );
  expect(calls.slice(calls.indexOf('verifyOldRetired'))).toEqual(['verifyOldRetired', 'unretireOldCredential']);
  expect(restarts).toBe(1); // only the forward restart
  expect(message).toContain('rollback incomplete: old credential back: permission denied to alter role');
  expect(message).toContain('Consumers: .env file /srv/a/.env: new; .env file /srv/b/.env: new; GitHub secret DB_PASSWORD: new; service app: new.');
  expect(message).toContain('make sure the old credential is refused (ALTER ROLE "app_a" NOLOGIN), then delete <rotation.stateDir>/shop-db.state');
});

test('one .env file cannot be restored: the others and GitHub go back, the services restart, the new credential stays valid and the failure says which file holds it', async () => {
  const calls: string[] = [];
  let restarts = 0;
  const message = await failedRotation(
    activities(calls, {
      restartConsumers: () =>
        ++restarts === 1 ? Promise.reject(ApplicationFailure.nonRetryable('container(s) not found: app-2', 'ContainerMissing')) : Promise.resolve(['app-1']),
      restoreEnvFiles: () =>
        Promise.reject(ApplicationFailure.create({ message: '.env file(s) not restored: /srv/b/.env (EROFS: read-only file system)', type: 'EnvRestoreFailed', nonRetryable: true, details: [{ notRestored: ['/srv/b/.env'] }] })),
    }),
  );
  expect(calls.slice(calls.indexOf('restoreEnvFiles'))).toEqual(['restoreEnvFiles', 'restoreGithubSecrets', 'restartConsumers']);
  expect(message).toContain('rollback incomplete: restore .env files: .env file(s) not restored: /srv/b/.env (EROFS: read-only file system)');
  expect(message).toContain('Consumers: .env file /srv/a/.env: old; .env file /srv/b/.env: new; GitHub secret DB_PASSWORD: old; service app: new.');
  expect(message).toContain('withdraw the new credential (ALTER ROLE "app_b" NOLOGIN) and delete <rotation.stateDir>/shop-db.state');
});
