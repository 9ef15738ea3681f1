import { createHmac, timingSafeEqual } from 'node:crypto';

/** Slack's request signing (https://api.slack.com/authentication/verifying-requests-from-slack). */
export const MAX_AGE_SECONDS = 5 * 60;

export type SignatureCheck = { ok: true } | { ok: false; reason: string };

/** `v0=` + hex HMAC-SHA256 of `v0:<timestamp>:<raw body>` with the signing secret. */
export function sign(secret: string, timestamp: string, body: string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
}

/**
 * Check a request's `X-Slack-Signature` and `X-Slack-Request-Timestamp` against its raw body. Requests older (or
 * newer) than 5 minutes are refused, so a captured request cannot be replayed later; the comparison is
 * constant-time (crypto.timingSafeEqual) so the signature cannot be guessed byte by byte.
 */
export function verifySignature(
  secret: string,
  headers: { signature?: string; timestamp?: string },
  rawBody: string,
  nowMs: number = Date.now(),
): SignatureCheck {
  const { signature, timestamp } = headers;
  if (!signature || !timestamp) return { ok: false, reason: 'missing signature headers' };
  if (!/^\d{1,12}$/.test(timestamp)) return { ok: false, reason: 'bad timestamp' };
  if (Math.abs(nowMs / 1000 - Number(timestamp)) > MAX_AGE_SECONDS) return { ok: false, reason: 'stale timestamp' };
  const expected = Buffer.from(sign(secret, timestamp, rawBody), 'utf8');
  const given = Buffer.from(signature, 'utf8');
  // timingSafeEqual needs equal lengths; a length mismatch is a wrong signature (the length is not secret).
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'bad signature' };
  return { ok: true };
}
