import net from 'node:net';

/**
 * Hostile clients against a real HTTP server: slowloris sockets that trickle header lines and never finish
 * them, more sockets than the server's connection cap, and an oversized body. What a user cares about: the
 * server cuts the slow ones off (408 or a closed socket), refuses the big one with 413, and keeps answering
 * a normal request.
 */

export interface SlowSocket {
  /** Everything the server wrote back. */
  received(): string;
  /** Set once the server (not us) closed it. */
  closed: boolean;
  destroy(): void;
}

/** A client that sends a request line and then one header line every `everyMs`, never the blank line. */
export function slowloris(port: number, host = '127.0.0.1', everyMs = 500): SlowSocket {
  const socket = net.connect(port, host);
  let data = '';
  const s: SlowSocket = { received: () => data, closed: false, destroy: () => socket.destroy() };
  socket.on('data', (d: Buffer) => (data += d.toString()));
  socket.on('error', () => undefined);
  socket.on('connect', () => socket.write(`POST /x HTTP/1.1\r\nHost: ${host}\r\n`));
  let n = 0;
  const timer = setInterval(() => {
    if (!socket.destroyed && socket.writable) socket.write(`X-Slow-${n++}: ${'a'.repeat(10)}\r\n`);
  }, everyMs);
  socket.on('close', () => {
    clearInterval(timer);
    s.closed = true;
  });
  return s;
}

export async function until(what: string, probe: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface AbuseReport {
  /** Sockets over the connection cap that the server closed without an answer. */
  droppedAtCap: number;
  /** Slow sockets the server answered 408 (Request Timeout) before closing. */
  timedOut: number;
  /** The status of the oversized request. */
  oversized: number;
}

/**
 * `normal()` must succeed (a 2xx answer) while slow clients hang, after an oversized request, and after the
 * slow clients are cut off. Opens `slow` slowloris sockets, then `flood` more (past a cap of `cap`).
 */
export async function abuse(opts: {
  port: number;
  host?: string;
  normal: () => Promise<Response>;
  oversized: () => Promise<Response>;
  slow?: number;
  flood?: number;
  cap?: number;
}): Promise<AbuseReport> {
  const { port, host = '127.0.0.1', slow = 20, flood = 300, cap = 256 } = opts;
  const ok = async (when: string): Promise<void> => {
    const r = await opts.normal();
    if (r.status < 200 || r.status >= 300) throw new Error(`${when}: the normal request got ${r.status} ${await r.text()}`);
  };
  const sockets = Array.from({ length: slow }, () => slowloris(port, host));
  try {
    await new Promise((r) => setTimeout(r, 300));
    await ok('while slow clients hang');
    const big = await opts.oversized().catch((err: unknown) => {
      throw new Error(`the oversized request got no answer: ${String(err)}`);
    });
    const oversized = big.status;
    await big.text().catch(() => '');
    await ok('after an oversized request');
    // More sockets than the cap: the server drops the ones over it at once, without an answer.
    const more = Array.from({ length: flood }, () => slowloris(port, host));
    sockets.push(...more);
    // The ones admitted are cut off by the headers timeout (408). On a busy machine the first slow sockets may
    // time out while the flood is still connecting, freeing slots: so the drops are counted once all are closed,
    // and bounded by what a cap allows: every socket is dropped or timed out, and at most cap + slow got in.
    await until('the server to cut off every slowloris socket', () => sockets.every((s) => s.closed), 60_000);
    const droppedAtCap = sockets.filter((s) => s.received() === '').length;
    const timedOut = sockets.filter((s) => /^HTTP\/1\.1 408 /.test(s.received())).length;
    if (droppedAtCap + timedOut !== sockets.length) throw new Error(`${sockets.length - droppedAtCap - timedOut} slow socket(s) got another answer than a drop or 408`);
    if (timedOut > cap + slow) throw new Error(`${timedOut} slow sockets were admitted past a cap of ${cap}`);
    await ok('after the slow clients were cut off');
    return { droppedAtCap, timedOut, oversized };
  } finally {
    for (const s of sockets) s.destroy();
  }
}
