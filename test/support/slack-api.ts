import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { type AddressInfo } from 'node:net';
import { readBody } from '../../src/client/http';

/**
 * A local stand-in for Slack's Web API (https://api.slack.com/web), speaking its real shapes so the product's
 * client (@slack/web-api's WebClient pointed at `apiUrl`) runs unchanged:
 *   POST /api/auth.test, chat.postMessage, chat.update, conversations.history, conversations.replies,
 *   usergroups.users.list
 *   bodies as application/x-www-form-urlencoded (what WebClient sends; nested values JSON-encoded) or JSON;
 *   the bot token in `Authorization: Bearer`; replies `{ ok: true, ... }` or `{ ok: false, error }` with HTTP 200.
 * It also records anything POSTed under /response/<id> (a Slack `response_url`), replying "ok".
 */
export interface SlackMessage {
  channel: string;
  ts: string;
  thread_ts?: string;
  text?: string;
  blocks?: unknown[];
  metadata?: { event_type: string; event_payload: Record<string, unknown> };
  /** Every version of the message, oldest first (chat.update appends). */
  edits: Array<{ text?: string; blocks?: unknown[] }>;
}

export interface SlackCall {
  method: string;
  token: string | undefined;
  args: Record<string, unknown>;
}

export interface FakeSlack {
  /** Base URL for WebClient's `slackApiUrl` / the config's `notifications.slack.apiUrl` (ends in "/"). */
  apiUrl: string;
  /** A fresh response_url; what is POSTed to it lands in `responses[id]`. */
  responseUrl(id: string): string;
  token: string;
  calls: SlackCall[];
  messages: SlackMessage[];
  responses: Record<string, unknown[]>;
  /** User groups (S... → member user ids) for usergroups.users.list. */
  groups: Record<string, string[]>;
  /** Make the next `n` calls of `method` fail with this error (e.g. "ratelimited", "internal_error"). */
  failNext(method: string, error: string, n?: number): void;
  close(): Promise<void>;
}

export async function startFakeSlack(token = 'xoxb-test-token'): Promise<FakeSlack> {
  const calls: SlackCall[] = [];
  const messages: SlackMessage[] = [];
  const responses: Record<string, unknown[]> = {};
  const failures = new Map<string, { error: string; n: number }>();
  const groups: Record<string, string[]> = {};
  let seq = 0;
  // Like Slack's: the posting time in seconds, unique and increasing (a fixed clock would fall behind `oldest`).
  const nextTs = (): string => `${Math.floor(Date.now() / 1000)}.${String(++seq).padStart(6, '0')}`;

  const server: Server = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err));
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req, 16 << 20);
    const url = new URL(req.url ?? '/', 'http://localhost');
    const respond = url.pathname.match(/^\/response\/([^/]+)$/);
    if (respond && req.method === 'POST') {
      (responses[respond[1] as string] ??= []).push(parseBody(raw, req.headers['content-type']));
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      return;
    }
    const api = url.pathname.match(/^\/api\/([a-zA-Z.]+)$/);
    if (!api || req.method !== 'POST') {
      res.writeHead(404).end();
      return;
    }
    const method = api[1] as string;
    const args = parseBody(raw, req.headers['content-type']);
    const auth = req.headers.authorization;
    const given = auth?.startsWith('Bearer ') ? auth.slice(7) : typeof args.token === 'string' ? args.token : undefined;
    calls.push({ method, token: given, args });
    const reply = (body: Record<string, unknown>): void => {
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
    };
    if (!given) return reply({ ok: false, error: 'not_authed' });
    if (given !== token) return reply({ ok: false, error: 'invalid_auth' });
    const failure = failures.get(method);
    if (failure && failure.n > 0) {
      failure.n -= 1;
      return reply({ ok: false, error: failure.error });
    }
    switch (method) {
      case 'auth.test':
        return reply({ ok: true, url: 'https://fake.slack.com/', team: 'fake', user: 'runbooks', team_id: 'T0', user_id: 'U0', bot_id: 'B0' });
      case 'chat.postMessage': {
        const channel = str(args.channel);
        if (!channel) return reply({ ok: false, error: 'channel_not_found' });
        if (!args.text && !args.blocks) return reply({ ok: false, error: 'no_text' });
        const threadTs = str(args.thread_ts);
        if (threadTs && !messages.some((m) => m.channel === channel && m.ts === threadTs)) {
          return reply({ ok: false, error: 'thread_not_found' });
        }
        const msg: SlackMessage = {
          channel,
          ts: nextTs(),
          ...(threadTs ? { thread_ts: threadTs } : {}),
          ...(args.text !== undefined ? { text: str(args.text) } : {}),
          ...(args.blocks !== undefined ? { blocks: json(args.blocks) as unknown[] } : {}),
          ...(args.metadata !== undefined ? { metadata: json(args.metadata) as SlackMessage['metadata'] } : {}),
          edits: [],
        };
        msg.edits.push({ text: msg.text, blocks: msg.blocks });
        messages.push(msg);
        return reply({ ok: true, channel, ts: msg.ts, message: { type: 'message', text: msg.text, ts: msg.ts, thread_ts: msg.thread_ts } });
      }
      case 'chat.update': {
        const msg = messages.find((m) => m.channel === str(args.channel) && m.ts === str(args.ts));
        if (!msg) return reply({ ok: false, error: 'message_not_found' });
        if (args.text !== undefined) msg.text = str(args.text);
        if (args.blocks !== undefined) msg.blocks = json(args.blocks) as unknown[];
        msg.edits.push({ text: msg.text, blocks: msg.blocks });
        return reply({ ok: true, channel: msg.channel, ts: msg.ts, text: msg.text });
      }
      case 'conversations.history': {
        // Newest first, as Slack returns it; top-level messages only; `oldest` exclusive; metadata only on request.
        const channel = str(args.channel);
        const oldest = Number(args.oldest ?? 0);
        const limit = Number(args.limit ?? 100);
        const withMeta = args.include_all_metadata === true || args.include_all_metadata === 'true';
        const list = messages
          .filter((m) => m.channel === channel && !m.thread_ts && Number(m.ts) > oldest)
          .reverse()
          .slice(0, limit)
          .map((m) => ({ type: 'message', ts: m.ts, text: m.text, ...(withMeta && m.metadata ? { metadata: m.metadata } : {}) }));
        return reply({ ok: true, messages: list, has_more: false });
      }
      case 'conversations.replies': {
        // The parent first, then its replies, oldest first (Slack's order).
        const channel = str(args.channel);
        const parent = str(args.ts);
        const withMeta = args.include_all_metadata === true || args.include_all_metadata === 'true';
        const list = messages
          .filter((m) => m.channel === channel && (m.ts === parent || m.thread_ts === parent))
          .map((m) => ({ type: 'message', ts: m.ts, thread_ts: m.thread_ts ?? m.ts, text: m.text, ...(withMeta && m.metadata ? { metadata: m.metadata } : {}) }));
        if (list.length === 0) return reply({ ok: false, error: 'thread_not_found' });
        return reply({ ok: true, messages: list, has_more: false });
      }
      case 'usergroups.users.list': {
        const members = groups[str(args.usergroup)];
        return members ? reply({ ok: true, users: members }) : reply({ ok: false, error: 'no_such_subteam' });
      }
      default:
        return reply({ ok: false, error: 'unknown_method' });
    }
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    apiUrl: `${base}/api/`,
    responseUrl: (id) => `${base}/response/${encodeURIComponent(id)}`,
    token,
    calls,
    messages,
    responses,
    groups,
    failNext(method, error, n = 1) {
      failures.set(method, { error, n });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function parseBody(raw: string, contentType: string | undefined): Record<string, unknown> {
  if (!raw) return {};
  if (contentType?.includes('application/json')) return JSON.parse(raw) as Record<string, unknown>;
  return Object.fromEntries(new URLSearchParams(raw));
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : '';
}

/** Form bodies carry nested values as JSON text; JSON bodies carry them as they are. */
function json(v: unknown): unknown {
  if (typeof v !== 'string') return v;
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}
