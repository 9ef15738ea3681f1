import { defaultPayloadConverter } from '@temporalio/common';
import { stringify } from 'yaml';
import { type CodecServer, startCodecServer } from '../src/client/codec-server';
import { runCli, writeConfigFile } from './support/processes';
import { testConfig, uniqueName } from './support/servers';
import { MASKED, MaskingCodec } from './support/test-codec';

/** The codec server as the Web UI and the Temporal CLI call it: real HTTP, CORS preflights, the token. */

const UI = 'http://localhost:8233';
const TOKEN = 'codec-token-3f9a';
let server: CodecServer;
const requests: Array<{ path: string; status: number }> = [];

beforeAll(async () => {
  server = await startCodecServer({ codecs: [new MaskingCodec()], corsOrigins: [UI], token: TOKEN, onRequest: (e) => requests.push(e) });
});
afterAll(() => server.close());

const json = (p: { metadata?: Record<string, Uint8Array | null | undefined> | null; data?: Uint8Array | null }) => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? []).toString('base64')])),
  data: Buffer.from(p.data ?? []).toString('base64'),
});

async function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Namespace': 'default', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

test('decode turns an encoded payload back into the original JSON; encode is its inverse', async () => {
  const original = defaultPayloadConverter.toPayload({ target: 'shop', reason: 'orders table damaged' });
  const [encoded] = await new MaskingCodec().encode([original]);
  expect(Buffer.from(encoded!.data!).toString()).not.toContain('orders table damaged');

  const r = await post('/decode', { payloads: [json(encoded!)] }, { Authorization: `Bearer ${TOKEN}` });
  expect(r.status).toBe(200);
  const [decoded] = ((await r.json()) as { payloads: Array<{ metadata: Record<string, string>; data: string }> }).payloads;
  expect(Buffer.from(decoded!.metadata.encoding!, 'base64').toString()).toBe('json/plain');
  expect(JSON.parse(Buffer.from(decoded!.data, 'base64').toString())).toEqual({ target: 'shop', reason: 'orders table damaged' });

  // The token as the first path segment, for a UI that cannot send headers (the dev server's --ui-codec-endpoint).
  const e = await post(`/${TOKEN}/encode`, { payloads: [json(original)] });
  expect(e.status).toBe(200);
  const [reencoded] = ((await e.json()) as { payloads: Array<{ metadata: Record<string, string> }> }).payloads;
  expect(Buffer.from(reencoded!.metadata.encoding!, 'base64').toString()).toBe(MASKED);
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
  const [encoded] = await new MaskingCodec().encode([defaultPayloadConverter.toPayload('secret input')]);
  const body = { payloads: [json(encoded!)] };
  for (const r of [await post('/decode', body), await post('/decode', body, { Authorization: 'Bearer wrong' }), await post('/wrong/decode', body)]) {
    expect(r.status).toBe(401);
    expect(await r.text()).toBe('{"error":"missing or wrong token"}');
  }
  const bad = await post('/decode', '{"payload": []}', { Authorization: `Bearer ${TOKEN}` });
  expect(bad.status).toBe(400);
  expect(await bad.text()).toContain('body.payloads: expected an array');
  const notJson = await post('/decode', 'nope', { Authorization: `Bearer ${TOKEN}` });
  expect(notJson.status).toBe(400);
  expect(JSON.stringify(requests)).not.toContain(TOKEN);
});

describe('bad observability config: exit 2, the field named, nothing started', () => {
  test.each([
    [{ metricsAddress: 'nine-four-six-four' }, 'observability.metricsAddress: must be host:port'],
    [{ codecServer: { corsOrigins: ['not a url'] } }, 'observability.codecServer.corsOrigins[0]'],
    [{ codecServer: { token: 'inline-token' } }, 'observability.codecServer.token: must be a secret reference'],
    [{}, 'observability.codecServer: not configured'],
  ])('runbook codec-server with observability %j', async (observability, message) => {
    const { yaml } = testConfig({ taskQueue: uniqueName('codec') });
    const r = await runCli(['--config', writeConfigFile(`${yaml}${stringify({ observability })}`), 'codec-server']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stderr).not.toContain('inline-token');
  });
});
