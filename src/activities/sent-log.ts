import { createHash } from 'node:crypto';
import { type Config, durationMs } from '../config/schema';
import { findRedis, redisClient } from './redis';

/**
 * What email / SMS sent, by idempotency key, in a Redis of the config (notifications.sentLog). Checked before
 * sending and written right after: a retry (worker killed, reply lost) finds the entry and sends nothing.
 * The remaining window is between the provider's "accepted" and the write (milliseconds); a crash exactly
 * there sends twice, with the same Message-ID for email. Paging twice beats not paging: a missing entry
 * never blocks a send.
 */
export interface SentEntry {
  ref?: string;
  at: string;
}

const keyFor = (idempotencyKey: string): string => `runbooks:sent:${createHash('sha256').update(idempotencyKey).digest('hex')}`;

export async function withSentLog(config: Config, idempotencyKey: string, send: () => Promise<{ ref?: string; delivered: boolean }>): Promise<{ ref?: string; delivered: boolean; earlier: boolean }> {
  const log = config.notifications.sentLog;
  if (!log) return { ...(await send()), earlier: false };
  const { target, field } = findRedis(config, log.redis);
  const redis = redisClient(target, field);
  redis.on('error', () => undefined); // surfaced by the command that fails
  try {
    await redis.connect();
    const found = await redis.get(keyFor(idempotencyKey));
    if (found) return { ...(JSON.parse(found) as SentEntry), delivered: true, earlier: true };
    const r = await send();
    if (r.delivered) {
      const entry: SentEntry = { ref: r.ref, at: new Date().toISOString() };
      await redis.set(keyFor(idempotencyKey), JSON.stringify(entry), 'PX', durationMs(log.ttl));
    }
    return { ...r, earlier: false };
  } finally {
    redis.disconnect();
  }
}
