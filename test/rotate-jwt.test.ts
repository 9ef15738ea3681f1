import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
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

test('a token signed with the old key verifies during the grace period (max token TTL, 7 days) and fails after it', async () => {
  const dir = tempDir('jwt');
  const jwksFile = path.join(dir, 'jwks.json');
  writeFileSync(jwksFile, JSON.stringify({ keys: [{ kty: 'oct', kid: 'old-1', k: randomBytes(32).toString('base64url'), alg: 'HS256', use: 'sig' }] }), { mode: 0o600 });
  const oldToken = await sign(jwksFile);

  const taskQueue = uniqueName('jwt');
  const set = uniqueName('jwt').replace('_', '-');
  const raw = parse(testConfig({ taskQueue }).yaml);
  raw.rotation = { stateDir: path.join(dir, 'state'), sets: [{ name: set, jwt: { jwksFile, maxTokenTtl: '7d' } }] };
  const config = parseConfig(stringify(raw), 'jwt.yaml');
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: await workflowBundle(), activities: createActivities({ config }) });

  await worker.runUntil(async () => {
    const handle = await env.client.workflow.start<typeof rotateSecrets>('rotateSecrets', { taskQueue, workflowId: `rotate/${set}`, args: [{ set }] });
    const step = async (): Promise<string> => (await handle.query<RunbookStatus>('status')).step;
    for (let i = 0; i < 100 && (await step()) !== 'grace period'; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await step()).toBe('grace period');

    // The new key signs, the old one still verifies.
    const kids = keySet(jwksFile).map((k) => k.kid);
    expect(kids).toHaveLength(2);
    expect(kids[1]).toBe('old-1');
    const newToken = await sign(jwksFile);
    expect(await verifies(jwksFile, newToken)).toBe(true);
    expect(await verifies(jwksFile, oldToken)).toBe(true);

    await env.sleep('6d'); // still inside the grace period
    expect(await step()).toBe('grace period');
    expect(await verifies(jwksFile, oldToken)).toBe(true);

    const result = await handle.result(); // the test server skips the last day
    expect(result.plan).toMatchObject({ kind: 'jwt', oldKids: ['old-1'], graceMs: 7 * 86_400_000 });
    expect(await verifies(jwksFile, oldToken)).toBe(false);
    expect(await verifies(jwksFile, newToken)).toBe(true);
    expect(keySet(jwksFile).map((k) => k.kid)).toEqual([kids[0]]);
  });
});
