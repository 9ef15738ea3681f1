import { randomBytes } from 'node:crypto';
import { type Server, createServer } from 'node:http';
import { type AddressInfo } from 'node:net';

/**
 * A local stand-in for a Twilio-style SMS API: POST /2010-04-01/Accounts/{sid}/Messages.json with a form body
 * (To, From, Body) and Basic auth sid:token; answers 201 with the message resource ({ sid, status, ... }) or a
 * Twilio error body ({ code, message, status }). Records every accepted request with its Idempotency-Key header.
 */
export interface SmsMessage {
  sid: string;
  to: string;
  from: string;
  body: string;
  idempotencyKey?: string;
}

export interface FakeSms {
  apiUrl: string;
  accountSid: string;
  token: string;
  messages: SmsMessage[];
  /** Fail the next n requests with this HTTP status. */
  failNext(status: number, n?: number): void;
  close(): Promise<void>;
}

export async function startFakeSms(accountSid = 'AC0000000000test', token = 'sms-test-token'): Promise<FakeSms> {
  const messages: SmsMessage[] = [];
  let failing = { status: 0, n: 0 };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const reply = (status: number, body: unknown): void => void res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      const url = new URL(req.url ?? '/', 'http://sms');
      const m = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/.exec(url.pathname);
      if (!m || (req.method !== 'POST' && req.method !== 'GET')) return reply(404, { code: 20404, message: 'The requested resource was not found', status: 404 });
      const auth = req.headers.authorization ?? '';
      if (m[1] !== accountSid || auth !== `Basic ${Buffer.from(`${accountSid}:${token}`).toString('base64')}`) {
        return reply(401, { code: 20003, message: 'Authenticate', status: 401 });
      }
      if (req.method === 'GET') {
        // Twilio's list resource: newest first, filtered by To.
        const to = url.searchParams.get('To');
        const list = messages.filter((x) => !to || x.to === to).reverse();
        return reply(200, { messages: list.map((x) => ({ sid: x.sid, to: x.to, from: x.from, body: x.body, status: 'delivered' })), page: 0 });
      }
      if (failing.n > 0) {
        failing.n--;
        return reply(failing.status, { code: 20500, message: 'Internal Server Error', status: failing.status });
      }
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      const to = form.get('To');
      if (!to || !/^\+[1-9]\d{6,14}$/.test(to)) return reply(400, { code: 21211, message: `The 'To' number ${to} is not a valid phone number.`, status: 400 });
      const msg: SmsMessage = {
        sid: `SM${randomBytes(16).toString('hex')}`,
        to,
        from: form.get('From') ?? '',
        body: form.get('Body') ?? '',
        idempotencyKey: req.headers['idempotency-key'] as string | undefined,
      };
      messages.push(msg);
      reply(201, { sid: msg.sid, account_sid: accountSid, to: msg.to, from: msg.from, body: msg.body, status: 'queued' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    apiUrl: `http://127.0.0.1:${port}/2010-04-01`,
    accountSid,
    token,
    messages,
    failNext(status, n = 1) {
      failing = { status, n };
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
