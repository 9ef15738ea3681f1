import { timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import { type AddressInfo } from 'node:net';
import { type Payload, type PayloadCodec } from '@temporalio/common';
import { payloadCodecs } from '../config/codec';
import { InputError } from '../config/runbooks';
import { type Config } from '../config/schema';
import { resolveSecret } from '../config/secrets';
import { HttpError, createLimitedServer, readBody } from './http';

/**
 * A Temporal codec server: the Web UI (and `temporal workflow show --codec-endpoint`) POSTs encoded payloads
 * to `/decode` and gets them back readable, using the same PayloadCodec chain as the workers (encryption
 * keys never leave this process). Protocol: `{"payloads":[{"metadata":{k: base64}, "data": base64}]}` in
 * and out, namespace in the `X-Namespace` header; `/encode` is the reverse.
 *
 * Access: CORS for the configured UI origins only, and always a token (a server without one decrypts for anyone
 * who can reach it, so it refuses to start): either `Authorization: Bearer <token>` (CLI `--codec-auth`, a UI that passes its access token) or the token
 * as the first path segment (`http://host:port/<token>`) for a UI that cannot send headers (the dev
 * server's `--ui-codec-endpoint`; that URL is then as secret as the token).
 */

export interface CodecServerOptions {
  /** Applied in order on encode, in reverse on decode (as the SDK's DataConverter does). */
  codecs: PayloadCodec[];
  /** host:port; port 0 = any free port. Bind to loopback unless a proxy with TLS is in front. */
  address?: string;
  /** Browser origins allowed to call (the Web UI's origin, e.g. http://localhost:8233). */
  corsOrigins: string[];
  /** Required: every /decode and /encode must present it. */
  token: string;
  /** Called once per request (never with payload contents). */
  onRequest?: (entry: { path: string; status: number; namespace?: string; payloads?: number }) => void;
}

export interface CodecServer {
  /** Base URL to give the UI / CLI as codec endpoint (without the token). */
  url: string;
  port: number;
  close(): Promise<void>;
}

interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

const MAX_BODY = 8 * 1024 * 1024;

function fromJson(p: JsonPayload): Payload {
  return {
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
    data: p.data !== undefined ? Buffer.from(p.data, 'base64') : undefined,
  };
}

function toJson(p: Payload): JsonPayload {
  return {
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? new Uint8Array()).toString('base64')])),
    data: p.data ? Buffer.from(p.data).toString('base64') : undefined,
  };
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}



export async function startCodecServer(opts: CodecServerOptions): Promise<CodecServer> {
  if (!opts.token) throw new Error('codec server: a token is required (observability.codecServer.token)');
  const token = opts.token;
  const [host, portText] = (opts.address ?? '127.0.0.1:0').split(/:(?=\d+$)/);
  const origins = new Set(opts.corsOrigins.map((o) => o.replace(/\/$/, '')));

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<{ status: number; namespace?: string; payloads?: number }> => {
    const origin = req.headers.origin;
    if (origin && origins.has(origin)) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', 'Content-Type, X-Namespace, Authorization');
      res.setHeader('Vary', 'Origin');
    } else if (origin) {
      throw new HttpError(403, 'origin not allowed');
    }
    if (req.method === 'OPTIONS') return { status: 204 };

    let segments = (req.url ?? '/').split('?')[0]!.split('/').filter(Boolean);
    const bearer = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (bearer !== undefined && sameSecret(bearer, token)) {
      // authorized by header
    } else if (segments.length === 2 && sameSecret(safeDecode(segments[0]!), token)) {
      segments = segments.slice(1);
    } else {
      throw new HttpError(401, 'missing or wrong token');
    }
    const op = segments.length === 1 ? segments[0] : undefined;
    if (op !== 'decode' && op !== 'encode') throw new HttpError(404, 'POST /decode or /encode');
    if (req.method !== 'POST') throw new HttpError(405, 'POST only');
    const namespace = typeof req.headers['x-namespace'] === 'string' ? req.headers['x-namespace'] : undefined;
    let body: { payloads?: JsonPayload[] };
    try {
      body = JSON.parse(await readBody(req, MAX_BODY)) as { payloads?: JsonPayload[] };
    } catch (err) {
      if (err instanceof HttpError) throw err;
      throw new HttpError(400, 'body is not JSON');
    }
    if (!Array.isArray(body.payloads)) throw new HttpError(400, 'body.payloads: expected an array');
    let payloads = body.payloads.map(fromJson);
    if (op === 'encode') for (const c of opts.codecs) payloads = await c.encode(payloads);
    else for (const c of [...opts.codecs].reverse()) payloads = await c.decode(payloads);
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ payloads: payloads.map(toJson) }));
    return { status: 200, namespace, payloads: payloads.length };
  };

  const server = createLimitedServer((req, res) => {
    const last = (req.url ?? '/').split('?')[0]!.split('/').filter(Boolean).pop();
    const path = last === 'decode' || last === 'encode' ? last : 'other'; // never a path segment that may be the token
    handle(req, res).then(
      (r) => {
        if (!res.headersSent) res.writeHead(r.status).end();
        opts.onRequest?.({ path, ...r });
      },
      (err: unknown) => {
        // Never echo payloads or codec internals (a failing decrypt says nothing about the key).
        const status = err instanceof HttpError ? err.status : 500;
        const message = err instanceof HttpError ? err.message : 'codec failed';
        if (!res.headersSent) res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify({ error: message }));
        opts.onRequest?.({ path, status });
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(portText ?? 0), host, resolve);
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`,
    port,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * The codec server `observability.codecServer` asks for, with the deployment's codecs. `uiEndpoint` is
 * what to give the Web UI (`--ui-codec-endpoint`): the URL with the token as its first path segment.
 */
export async function startConfiguredCodecServer(config: Config): Promise<CodecServer & { uiEndpoint: string }> {
  const c = config.observability.codecServer;
  if (!c) throw new InputError(['observability.codecServer: not configured (address, corsOrigins, token)']);
  const token = resolveSecret(c.token, 'observability.codecServer.token');
  const server = await startCodecServer({
    codecs: payloadCodecs(config),
    address: c.address,
    corsOrigins: c.corsOrigins,
    token,
    onRequest: (e) => {
      if (e.status >= 400) process.stderr.write(`codec server: ${e.path} -> ${e.status}\n`);
    },
  });
  return { ...server, uiEndpoint: `${server.url}/${encodeURIComponent(token)}` };
}
