import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type WorkflowHandle } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { SignJWT, importJWK, jwtVerify, type JWK } from 'jose';
import { parse, stringify } from 'yaml';
import { createActivities } from '../src/activities';
import { temporalBinary } from '../src/client/local-servers';
import { parseConfig } from '../src/config/load';
import { type RunbookStatus } from '../src/workflows/definitions';
import { type rotateSecrets } from '../src/workflows/rotate-secrets';
import { tempDir, testConfig, uniqueName } from './support/servers';
import { workflowBundle } from './support/temporal';

// RB-02 JWT keys on the time-skipping test server with the real activities (the key set is a file): the old
// signing key keeps verifying through the grace period (a 7-day durable timer), and stops the moment it ends.

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: temporalBinary('temporal-test-server') } },
  });
}, 60_000);
afterAll(async () => env?.teardown());

interface Jwk extends JWK {
  kid: string;
}

/** What a consumer does: sign with the first key of the set, verify with whichever key the token names. */
function keySet(file: string): Jwk[] {
  return (JSON.parse(readFileSync(file, 'utf8')) as { keys: Jwk[] }).keys;
}

async function sign(file: string): Promise<string> {
  const signer = keySet(file)[0]!;
  return new SignJWT({ sub: 'user-1' }).setProtectedHeader({ alg: 'HS256', kid: signer.kid }).setIssuedAt().setExpirationTime('30d').sign(await importJWK(signer, 'HS256'));
}

async function verifies(file: string, token: string): Promise<boolean> {
  try {
    await jwtVerify(token, async (header) => {
      const key = keySet(file).find((k) => k.kid === header.kid);
      if (!key) throw new Error(`no key ${header.kid}`);
      return importJWK(key, 'HS256');
    });
    return true;
  } catch {
    return false;
  }
}

async function jwtFixture(): Promise<{ jwksFile: string; original: string; oldToken: string; worker: Worker; start: () => Promise<WorkflowHandle<typeof rotateSecrets>> }> {
  const dir = tempDir('jwt');
  const jwksFile = path.join(dir, 'jwks.json');
  const original = JSON.stringify({ keys: [{ kty: 'oct', kid: 'old-1', k: randomBytes(32).toString('base64url'), alg: 'HS256', use: 'sig' }] });
  writeFileSync(jwksFile, original, { mode: 0o600 });
  const oldToken = await sign(jwksFile);
  const taskQueue = uniqueName('jwt');
  const set = uniqueName('jwt').replace('_', '-');
  const raw = parse(testConfig({ taskQueue }).yaml);
  raw.rotation = { stateDir: path.join(dir, 'state'), sets: [{ name: set, jwt: { jwksFile, maxTokenTtl: '7d' } }] };
  const config = parseConfig(stringify(raw), 'jwt.yaml');
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: await workflowBundle(), activities: createActivities({ config }) });
  const start = async (): Promise<WorkflowHandle<typeof rotateSecrets>> => {
    const handle = await env.client.workflow.start<typeof rotateSecrets>('rotateSecrets', { taskQueue, workflowId: `rotate/${set}`, args: [{ set }] });
    for (let i = 0; i < 100 && (await step(handle)) !== 'grace period'; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await step(handle)).toBe('grace period');
    return handle;
  };
  return { jwksFile, original, oldToken, worker, start };
}

async function step(handle: WorkflowHandle): Promise<string> {
  return (await handle.query<RunbookStatus>('status')).step;
}

test('a token signed with the old key verifies during the grace period (max token TTL, 7 days) and fails after it', async () => {
  const { jwksFile, oldToken, worker, start } = await jwtFixture();
  await worker.runUntil(async () => {
    const handle = await start();

    // The new key signs, the old one still verifies.
    const kids = keySet(jwksFile).map((k) => k.kid);
    expect(kids).toHaveLength(2);
    expect(kids[1]).toBe('old-1');
    const newToken = await sign(jwksFile);
    expect(await verifies(jwksFile, newToken)).toBe(true);
    expect(await verifies(jwksFile, oldToken)).toBe(true);

    await env.sleep('6d'); // still inside the grace period
    expect(await step(handle)).toBe('grace period');
    expect(await verifies(jwksFile, oldToken)).toBe(true);

    const result = await handle.result(); // the test server skips the last day
    expect(result.plan).toMatchObject({ kind: 'jwt', oldKids: ['old-1'], graceMs: 7 * 86_400_000 });
    expect(await verifies(jwksFile, oldToken)).toBe(false);
    expect(await verifies(jwksFile, newToken)).toBe(true);
    expect(keySet(jwksFile).map((k) => k.kid)).toEqual([kids[0]]);
  });
});

test('cancelling during the grace period rolls back: the old key signs again, the new one is gone', async () => {
  const { jwksFile, original, oldToken, worker, start } = await jwtFixture();
  await worker.runUntil(async () => {
    const handle = await start();
    const newToken = await sign(jwksFile);
    await handle.cancel();
    await expect(handle.result()).rejects.toThrow('Workflow execution cancelled');
    expect(keySet(jwksFile)).toEqual((JSON.parse(original) as { keys: Jwk[] }).keys);
    expect(await verifies(jwksFile, oldToken)).toBe(true);
    expect(await verifies(jwksFile, newToken)).toBe(false);
    const steps = (await handle.query<RunbookStatus>('status')).timeline.map((s) => `${s.step}:${s.state}`);
    expect(steps.slice(-2)).toEqual(['grace period:failed', 'rollback: withdraw new credential:completed']);
  });
});
