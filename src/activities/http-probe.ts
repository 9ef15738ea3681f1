/** One HTTP GET as a health probe: what it answered and how fast, or why it did not. Never throws. */
export interface HttpProbe {
  /** The HTTP status; undefined when nothing answered. */
  status?: number;
  ms: number;
  /** "HTTP 200 in 12 ms", "no answer within 10 s", "connect ECONNREFUSED 127.0.0.1:8080". */
  detail: string;
}

/** GET `url` once (the body is read and dropped). `timeout` is shown as given ("10s") in the detail, else as "10 s". */
export async function probeHttp(url: string, timeoutMs: number, opts: { redirect?: 'follow' | 'manual'; timeout?: string } = {}): Promise<HttpProbe> {
  const t0 = Date.now();
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: opts.redirect ?? 'follow' });
    await res.arrayBuffer();
    const ms = Date.now() - t0;
    return { status: res.status, ms, detail: `HTTP ${res.status} in ${ms} ms` };
  } catch (err) {
    const e = err as Error;
    const given = opts.timeout ?? (timeoutMs % 1000 === 0 ? `${timeoutMs / 1000} s` : `${timeoutMs} ms`);
    const why = e.name === 'TimeoutError' ? `no answer within ${given}` : ((e.cause as Error | undefined)?.message ?? e.message);
    return { ms: Date.now() - t0, detail: why };
  }
}
