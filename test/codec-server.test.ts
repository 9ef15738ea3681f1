import { randomBytes } from 'node:crypto';
import { defaultPayloadConverter } from '@temporalio/common';
import { parse, stringify } from 'yaml';
import { freePort } from '../src/client/local-servers';
import { EncryptionCodec, parseCodecKey } from '../src/config/codec';
import { type CodecServerProcess, startCodecServerProcess } from './support/codec-server-process';
import { runCli, writeConfigFile } from './support/processes';
import { testConfig, uniqueName } from './support/servers';
import { testCodec } from './support/temporal';

/**
 * The real `runbook codec-server` process with the product's AES-GCM codec (temporal.encryption of the test
 * config), called as the Web UI and the Temporal CLI call it: real HTTP, CORS preflights, the token.
 */

const UI = 'http://localhost:8233';
const TOKEN = `codec-token-${randomBytes(6).toString('hex')}`;
let server: CodecServerProcess;

beforeAll(async () => {
  const { yaml } = testConfig({ taskQueue: uniqueName('codec') });
  const raw = parse(yaml) as Record<string, unknown>;
  raw.observability = { codecServer: { address: `127.0.0.1:${await freePort()}`, corsOrigins: [UI], token: { env: 'TEST_CODEC_SERVER_TOKEN' } } };
  server = await startCodecServerProcess(writeConfigFile(stringify(raw)), { TEST_CODEC_SERVER_TOKEN: TOKEN });
}, 30_000);
afterAll(() => server?.stop());

const json = (p: { metadata?: Record<string, Uint8Array | null | undefined> | null; data?: Uint8Array | null }) => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? []).toString('base64')])),
  data: Buffer.from(p.data ?? []).toString('base64'),
});
const fromJson = (p: { metadata: Record<string, string>; data: string }) => ({
  metadata: Object.fromEntries(Object.entries(p.metadata).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
  data: Buffer.from(p.data, 'base64'),
});
type Payloads = { payloads: Array<{ metadata: Record<string, string>; data: string }> };

async function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Namespace': 'default', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

test('decode turns an AES-GCM payload back into the original JSON; encode is its inverse', async () => {
  const original = defaultPayloadConverter.toPayload({ target: 'shop', reason: 'orders table damaged' });
  // What a worker with temporal.encryption stores: ciphertext under the configured key id.
  const [encoded] = await testCodec().encode([original]);
  expect(Buffer.from(encoded!.metadata!.encoding!).toString()).toBe('binary/encrypted');
  expect(Buffer.from(encoded!.data!).toString('latin1')).not.toContain('orders table damaged');

  const r = await post('/decode', { payloads: [json(encoded!)] }, { Authorization: `Bearer ${TOKEN}` });
  expect(r.status).toBe(200);
  const [decoded] = ((await r.json()) as Payloads).payloads;
  expect(Buffer.from(decoded!.metadata.encoding!, 'base64').toString()).toBe('json/plain');
  expect(JSON.parse(Buffer.from(decoded!.data, 'base64').toString())).toEqual({ target: 'shop', reason: 'orders table damaged' });

  // The token as the first path segment, for a UI that cannot send headers (the dev server's --ui-codec-endpoint).
  const e = await post(`/${TOKEN}/encode`, { payloads: [json(original)] });
  expect(e.status).toBe(200);
  const [reencoded] = ((await e.json()) as Payloads).payloads;
  expect(Buffer.from(reencoded!.metadata.encoding!, 'base64').toString()).toBe('binary/encrypted');
  expect(Buffer.from(reencoded!.data, 'base64').toString('latin1')).not.toContain('orders table damaged');
  // A worker with the same key reads what the server encoded.
  const [back] = await testCodec().decode([fromJson(reencoded!)]);
  expect(defaultPayloadConverter.fromPayload(back!)).toEqual({ target: 'shop', reason: 'orders table damaged' });
});

test('a payload sealed with another key is refused without a word about keys or contents', async () => {
  const stranger = new EncryptionCodec([parseCodecKey('test-1', randomBytes(32).toString('base64'), 'k')]);
  const [encoded] = await stranger.encode([defaultPayloadConverter.toPayload('someone else\'s secret')]);
  const r = await post('/decode', { payloads: [json(encoded!)] }, { Authorization: `Bearer ${TOKEN}` });
  expect(r.status).toBe(500);
  expect(await r.text()).toBe('{"error":"codec failed"}');
});

test('the Web UI origin passes the CORS preflight; another origin is refused', async () => {
  const ok = await fetch(`${server.url}/decode`, {
    method: 'OPTIONS',
    headers: { Origin: UI, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type,x-namespace,authorization' },
  });
  expect(ok.status).toBe(204);
  expect(ok.headers.get('access-control-allow-origin')).toBe(UI);
  expect(ok.headers.get('access-control-allow-headers')).toMatch(/X-Namespace/i);
  expect(ok.headers.get('access-control-allow-credentials')).toBe('true');

  const evil = await fetch(`${server.url}/decode`, { method: 'OPTIONS', headers: { Origin: 'http://evil.example', 'Access-Control-Request-Method': 'POST' } });
  expect(evil.status).toBe(403);
  expect(evil.headers.get('access-control-allow-origin')).toBeNull();
});

test('no token, a wrong token or a bad body: refused with a reason, nothing decoded, the token never logged', async () => {
  const [encoded] = await testCodec().encode([defaultPayloadConverter.toPayload('secret input')]);
  const body = { payloads: [json(encoded!)] };
  for (const r of [
    await post('/decode', body),
    await post('/decode', body, { Authorization: 'Bearer wrong' }),
    await post('/wrong/decode', body),
    await post('/encode', body),
  ]) {
    expect(r.status).toBe(401);
    expect(await r.text()).toBe('{"error":"missing or wrong token"}');
  }
  const bad = await post('/decode', '{"payload": []}', { Authorization: `Bearer ${TOKEN}` });
  expect(bad.status).toBe(400);
  expect(await bad.text()).toContain('body.payloads: expected an array');
  const notJson = await post('/decode', 'nope', { Authorization: `Bearer ${TOKEN}` });
  expect(notJson.status).toBe(400);
  expect(server.output()).toContain('codec server: decode -> 401');
  expect(server.output()).not.toContain(TOKEN);
});

describe('bad observability config: exit 2, the field named, nothing started', () => {
  test.each([
    [{ metricsAddress: 'nine-four-six-four' }, 'observability.metricsAddress: must be host:port'],
    [{ codecServer: { corsOrigins: ['not a url'], token: { env: 'T' } } }, 'observability.codecServer.corsOrigins[0]'],
    [{ codecServer: { token: 'inline-token' } }, 'observability.codecServer.token: must be a secret reference'],
    // A codec server decrypts for whoever reaches it: without a token the config does not load.
    [{ codecServer: { address: '127.0.0.1:8888' } }, 'observability.codecServer.token: required'],
    [{}, 'observability.codecServer: not configured'],
  ])('runbook codec-server with observability %j', async (observability, message) => {
    const { yaml } = testConfig({ taskQueue: uniqueName('codec') });
    const r = await runCli(['--config', writeConfigFile(`${yaml}${stringify({ observability })}`), 'codec-server']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stderr).not.toContain('inline-token');
  });

  test('any command refuses the same token-less config at load (runbook config check)', async () => {
    const { yaml } = testConfig({ taskQueue: uniqueName('codec') });
    const r = await runCli(['--config', writeConfigFile(`${yaml}${stringify({ observability: { codecServer: {} } })}`), 'config', 'check']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('observability.codecServer.token: required');
  });
});
