import { createHash } from 'node:crypto';
import nodemailer from 'nodemailer';
import { type Config } from '../config/schema';
import { redact, resolveSecret } from '../config/secrets';
import { withSentLog } from './sent-log';

export interface EmailMessage {
  /** Stable per logical message (e.g. workflowId/runId/purpose): becomes the Message-ID. */
  idempotencyKey: string;
  subject: string;
  text: string;
  html?: string;
  /** Defaults to notifications.email.to. */
  to?: string[];
}

/** `earlier`: an earlier attempt sent it (notifications.sentLog), nothing was sent now (accepted is then unknown: []). */
export type EmailResult = { sent: true; messageId: string; accepted: string[]; earlier?: true } | { sent: false; reason: string };

export function messageIdFor(key: string): string {
  return `<${createHash('sha256').update(key).digest('hex').slice(0, 40)}@durable-runbooks>`;
}

/**
 * Send one email through the configured SMTP server. SMTP cannot refuse a duplicate, so a retry after a
 * lost reply may deliver twice; both copies carry the same Message-ID, which mail clients collapse.
 */
export async function sendEmail(config: Config, msg: EmailMessage): Promise<EmailResult> {
  const email = config.notifications.email;
  if (!email) return { sent: false, reason: 'notifications.email is not configured' };
  const transport = nodemailer.createTransport({
    host: email.host,
    port: email.port,
    secure: email.secure,
    requireTLS: email.requireTls,
    auth: email.user && email.password ? { user: email.user, pass: resolveSecret(email.password, 'notifications.email.password') } : undefined,
    connectionTimeout: 15_000,
  });
  const messageId = messageIdFor(msg.idempotencyKey);
  try {
    const info = await transport.sendMail({
      from: email.from,
      to: msg.to ?? email.to,
      subject: redact(msg.subject),
      text: redact(msg.text),
      html: msg.html === undefined ? undefined : redact(msg.html),
      messageId,
      headers: { 'X-Runbook-Key': msg.idempotencyKey },
    });
    return { sent: true, messageId, accepted: (info.accepted as Array<string | { address: string }>).map((a) => (typeof a === 'string' ? a : a.address)) };
  } catch (err) {
    throw new Error(`SMTP ${email.host}:${email.port}: ${redact((err as Error).message)}`);
  } finally {
    transport.close();
  }
}

/**
 * The sendEmail activity: once per idempotency key when notifications.sentLog is configured (a retry after
 * the worker died between the SMTP server's "accepted" and Temporal hearing of it finds the entry and sends
 * nothing); without a sent-log, every attempt sends, with the same Message-ID.
 */
export async function sendEmailOnce(config: Config, msg: EmailMessage): Promise<EmailResult> {
  let result: EmailResult | undefined;
  const r = await withSentLog(config, msg.idempotencyKey, async () => {
    result = await sendEmail(config, msg);
    return result.sent ? { ref: result.messageId, delivered: true } : { delivered: false };
  });
  return result ?? { sent: true, messageId: r.ref ?? messageIdFor(msg.idempotencyKey), accepted: [], earlier: true };
}
