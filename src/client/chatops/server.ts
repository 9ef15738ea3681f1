import { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo } from 'node:net';
import { type ChatOps, type Reply } from './commands';
import { MAX_AGE_SECONDS, verifySignature } from './signature';
import { HttpError, createLimitedServer, readBody } from '../http';

/**
 * The HTTP side of ChatOps, Slack's request shapes (Mattermost sends the same slash-command form):
 *   POST /slack/commands  application/x-www-form-urlencoded slash command → the reply in the response body
 *   POST /slack/actions   form field `payload` = block_actions JSON (buttons) → 200 at once, result to response_url
 *   GET  /healthz
 * Written on node:http rather than @slack/bolt: we need the raw body for the signature (crypto.timingSafeEqual),
 * a replay cache, the 3 s acknowledgement and response_url follow-ups, and nothing else of Bolt (no OAuth, events,
 * socket mode); it also keeps a non-Slack receiver (Mattermost) possible without Bolt's token checks.
 */

/** Slack waits 3 s for the response; we answer before that and send a slower result to response_url. */
const ACK_WITHIN_MS = 250;
/** Slack's slash command and block_actions bodies are a few KiB: nothing larger is read before the signature check. */
export const MAX_BODY = 64 * 1024;

export interface ChatopsServerOptions {
  chatops: ChatOps;
  signingSecret: string;
  host?: string;
  port?: number;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
  /** For tests: the clock the signature timestamps are judged by. */
  now?: () => number;
  /** Answer a command in the response body if it is done within this time (default 250 ms), else on response_url. */
  ackWithinMs?: number;
}

export interface ChatopsServer {
  url: string;
  port: number;
  close(): Promise<void>;
}



function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

async function postToResponseUrl(url: string | undefined, reply: Reply): Promise<void> {
  if (!url || !/^https?:\/\//.test(url)) return;
  await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(reply), signal: AbortSignal.timeout(10_000) });
}

export async function startChatopsServer(opts: ChatopsServerOptions): Promise<ChatopsServer> {
  const log = opts.log ?? (() => undefined);
  const now = opts.now ?? Date.now;
  // Replays: a request is known by its timestamp + signature (unique per body). Within the 5-minute window a replay
  // gets the first reply and does nothing; after it, the signature check refuses it anyway.
  const seen = new Map<string, { at: number; reply: Promise<Reply | undefined> }>();
  const forget = (): void => {
    for (const [k, v] of seen) if (now() - v.at > 2 * MAX_AGE_SECONDS * 1000) seen.delete(k);
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const arrived = performance.now();
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method === 'GET' && url.pathname === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      return;
    }
    const route = url.pathname === '/slack/commands' ? 'command' : ['/slack/actions', '/slack/interactions'].includes(url.pathname) ? 'action' : undefined;
    if (!route || req.method !== 'POST') throw new HttpError(404, 'not found');
    const raw = await readBody(req, MAX_BODY);
    const signature = header(req, 'x-slack-signature');
    const timestamp = header(req, 'x-slack-request-timestamp');
    const check = verifySignature(opts.signingSecret, { signature, timestamp }, raw, now());
    if (!check.ok) {
      log('request refused', { path: url.pathname, reason: check.reason });
      throw new HttpError(401, check.reason);
    }
    forget();
    const key = `${timestamp}:${signature}`;
    const replay = seen.get(key);
    const form = new URLSearchParams(raw);

    if (route === 'command') {
      if (replay) {
        log('replayed command ignored', { timestamp });
        return reply(res, (await replay.reply) ?? { response_type: 'ephemeral', text: 'already handled' });
      }
      const work = opts.chatops.command({
        userId: form.get('user_id') ?? '',
        userName: form.get('user_name') ?? undefined,
        channelId: form.get('channel_id') ?? '',
        text: form.get('text') ?? '',
        requestTs: Number(timestamp),
      });
      seen.set(key, { at: now(), reply: work });
      const late = Symbol('late');
      // The budget counts from the request's arrival (reading and checking it under a burst takes time too).
      const budget = Math.max(0, (opts.ackWithinMs ?? ACK_WITHIN_MS) - (performance.now() - arrived));
      const first = await Promise.race([work, new Promise<typeof late>((r) => setTimeout(() => r(late), budget).unref())]);
      if (first !== late) return reply(res, first);
      // Slower than Slack waits: acknowledge now, the result follows on response_url.
      reply(res, { response_type: 'ephemeral', text: ':hourglass: working on it…' });
      const responseUrl = form.get('response_url') ?? undefined;
      void work.then((r) => postToResponseUrl(responseUrl, r)).catch((err: unknown) => log('response_url failed', { err: String(err) }));
      return;
    }

    // A button: acknowledge at once (Slack ignores the body of a block_actions response), answer on response_url.
    res.writeHead(200).end();
    if (replay) return;
    let payload: { type?: string; user?: { id?: string; username?: string; name?: string }; actions?: Array<{ action_id?: string; value?: string }>; response_url?: string };
    try {
      payload = JSON.parse(form.get('payload') ?? '') as typeof payload;
    } catch {
      log('action without a JSON payload');
      return;
    }
    const action = payload.actions?.[0];
    if (payload.type !== 'block_actions' || !action?.action_id || !payload.user?.id) return;
    const work = opts.chatops.action({
      userId: payload.user.id,
      userName: payload.user.username ?? payload.user.name,
      actionId: action.action_id,
      value: action.value ?? '',
    });
    seen.set(key, { at: now(), reply: work });
    const r = await work;
    log('action', { action: action.action_id, user: payload.user.id, reply: r.text.slice(0, 200) });
    await postToResponseUrl(payload.response_url, { ...r, replace_original: false });
  }

  function reply(res: ServerResponse, body: Reply): void {
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
  }

  const server: Server = createLimitedServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : 500;
      if (status === 500) log('request failed', { err: err instanceof Error ? err.message : String(err) });
      if (!res.headersSent) res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 401 ? 'invalid request signature' : err instanceof HttpError ? err.message : 'error');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${opts.host ?? '127.0.0.1'}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
