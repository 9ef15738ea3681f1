import http from 'node:http';
import { type AddressInfo } from 'node:net';
import sodium from 'libsodium-wrappers';

/**
 * A local stand-in for the GitHub REST API's Actions secrets endpoints, speaking its real shapes:
 * `GET /repos/{owner}/{repo}/actions/secrets/public-key` → { key_id, key } (a real Curve25519 key pair held
 * here), `PUT /repos/{owner}/{repo}/actions/secrets/{name}` with { encrypted_value, key_id } → 201 new /
 * 204 updated. It opens each sealed box with its private key and keeps the plain value, so a test can
 * compare it with what the rotation generated. Requests without the bearer token get 401.
 */
export interface FakeGitHub {
  /** The API base URL (what a GitHub Enterprise config would hold). */
  url: string;
  token: string;
  /** Decrypted secrets by "owner/repo/NAME". */
  secrets: Map<string, string>;
  /** Every request: method, path, status. */
  requests: Array<{ method: string; path: string; status: number }>;
  /** Answer the next PUT(s) of this secret name with an error: name → { status, times }, after letting `after` PUTs of it through. */
  failPut: Map<string, { status: number; times: number; after?: number }>;
  close(): Promise<void>;
}

export async function startFakeGitHub(token = 'ghp_test_token_for_the_fake'): Promise<FakeGitHub> {
  await sodium.ready;
  const pair = sodium.crypto_box_keypair();
  const keyId = '3380204578043523366';
  const secrets = new Map<string, string>();
  const requests: FakeGitHub['requests'] = [];
  const failPut: FakeGitHub['failPut'] = new Map();

  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const reply = (status: number, json?: unknown): void => {
        requests.push({ method: req.method ?? '', path: req.url ?? '', status });
        res.writeHead(status, json === undefined ? {} : { 'content-type': 'application/json' });
        res.end(json === undefined ? undefined : JSON.stringify(json));
      };
      const auth = req.headers.authorization ?? '';
      if (auth !== `token ${token}` && auth !== `Bearer ${token}` && auth !== `bearer ${token}`) {
        return reply(401, { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' });
      }
      const key = /^\/repos\/([^/]+)\/([^/]+)\/actions\/secrets\/public-key$/.exec(req.url ?? '');
      if (req.method === 'GET' && key) return reply(200, { key_id: keyId, key: sodium.to_base64(pair.publicKey, sodium.base64_variants.ORIGINAL) });
      const put = /^\/repos\/([^/]+)\/([^/]+)\/actions\/secrets\/([A-Za-z0-9_]+)$/.exec(req.url ?? '');
      if (req.method === 'PUT' && put) {
        const name = put[3]!;
        const fail = failPut.get(name);
        if (fail?.after) fail.after--;
        else if (fail && fail.times > 0) {
          fail.times--;
          return reply(fail.status, { message: 'Validation Failed (injected by the test)' });
        }
        const { encrypted_value, key_id } = JSON.parse(body || '{}') as { encrypted_value?: string; key_id?: string };
        if (key_id !== keyId || !encrypted_value) return reply(422, { message: 'Validation Failed' });
        let plain: string;
        try {
          const sealed = sodium.from_base64(encrypted_value, sodium.base64_variants.ORIGINAL);
          plain = sodium.to_string(sodium.crypto_box_seal_open(sealed, pair.publicKey, pair.privateKey));
        } catch {
          return reply(422, { message: 'encrypted_value is not a sealed box for this key' });
        }
        const id = `${put[1]}/${put[2]}/${name}`;
        const existed = secrets.has(id);
        secrets.set(id, plain);
        return reply(existed ? 204 : 201, existed ? undefined : {});
      }
      return reply(404, { message: 'Not Found' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    token,
    secrets,
    requests,
    failPut,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
