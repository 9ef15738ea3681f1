import { type IncomingMessage, type RequestListener, type Server, type ServerOptions, createServer } from 'node:http';

/** An HTTP answer other than 2xx, with the reason the client sees (never a secret) and optional headers. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** The request body as text; 413 once it passes `maxBytes` (a larger Content-Length is refused unread, the rest is not read). */
export async function readBody(req: IncomingMessage, maxBytes: number): Promise<string> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) throw new HttpError(413, `body: larger than ${maxBytes} bytes`, { connection: 'close' });
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw new HttpError(413, `body: larger than ${maxBytes} bytes`, { connection: 'close' });
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The limits every HTTP server of the product runs with (ChatOps, the incident receiver, the codec server,
 * /metrics): a client that trickles its headers (slowloris) or its body is cut off after `headersTimeout` /
 * `requestTimeout`, an idle keep-alive connection after `keepAliveTimeout`, and at most `maxConnections`
 * sockets are open at once, so neither slow nor many clients can exhaust the process.
 */
export const SERVER_LIMITS = {
  headersTimeout: 10_000,
  requestTimeout: 30_000,
  keepAliveTimeout: 5_000,
  /** How often node checks the two timeouts above (its default, 30 s, would let a slow client stay 40 s). */
  connectionsCheckingInterval: 1_000,
  maxHeaderSize: 16 * 1024,
  maxConnections: 256,
  maxHeadersCount: 100,
} as const;

/** node:http's createServer with SERVER_LIMITS (and the same handler signature). */
export function createLimitedServer(handler: RequestListener, limits: Partial<typeof SERVER_LIMITS> = {}): Server {
  const l = { ...SERVER_LIMITS, ...limits };
  const options: ServerOptions = {
    headersTimeout: l.headersTimeout,
    requestTimeout: l.requestTimeout,
    keepAliveTimeout: l.keepAliveTimeout,
    connectionsCheckingInterval: l.connectionsCheckingInterval,
    maxHeaderSize: l.maxHeaderSize,
  };
  const server = createServer(options, handler);
  server.maxConnections = l.maxConnections;
  server.maxHeadersCount = l.maxHeadersCount;
  return server;
}
