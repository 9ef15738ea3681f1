import { createHash } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/activity';
import { type KnownBlock } from '@slack/web-api';
import { type Config, DEFAULT_POLICIES, type NotifyChannel, type Severity, durationMs } from '../config/schema';
import { redact, resolveSecret } from '../config/secrets';
import type { Contact, PolicySnapshot } from '../workflows/incident-definitions';
import { signAckLink } from './ack-link';
import { sendEmailOnce } from './email';
import { postSlackMessage, slackConfig, updateSlackMessage } from './slack';
import { FAILURES } from '../workflows/failures';
import { ACTIONS } from '../workflows/definitions';

/**
 * One `notify` interface for every channel of an incident: email (nodemailer, with a signed acknowledge
 * link), Slack (a thread per incident, buttons incident_ack / incident_resolve) and SMS (a Twilio-style HTTP
 * API). Every call carries an idempotency key made of incident + step + channel + person: it becomes the
 * email's Message-ID, the Slack message's metadata key, and the SMS request's Idempotency-Key header.
 */

export interface NotifyInput {
  channel: NotifyChannel;
  idempotencyKey: string;
  /** page = a level of the escalation; the others report a change in the incident's thread. */
  kind: 'page' | 'reassigned' | 'acknowledged' | 'resolved';
  /** `key`: the incident run's key (IncidentState.key), signed into acknowledge links; absent from inputs scheduled before it existed. */
  incident: { id: string; key?: string; title: string; severity: Severity; description?: string; openedAt: string; level: number; round: number };
  /** email / sms: the one person; slack: the people to mention. */
  to: Contact[];
  /** The incident's Slack thread, once it has one. */
  slack?: { channel: string; ts: string };
  notBefore: string;
  detail?: string;
}

export interface NotifyResult {
  channel: NotifyChannel;
  delivered: boolean;
  /** Message-ID, Slack ts, or SMS sid. */
  ref?: string;
  /** The Slack message that is now the incident's thread. */
  slack?: { channel: string; ts: string };
  /** Why nothing was sent (channel not configured, person without an address). */
  skipped?: string;
}

const ICON: Record<Severity, string> = { critical: '🚨', high: '🔴', medium: '🟠', low: '🟡' };

function subject(n: NotifyInput): string {
  const what = n.kind === 'page' ? `level ${n.incident.level}` : n.kind;
  return `${ICON[n.incident.severity]} INCIDENT ${n.incident.severity.toUpperCase()} - ${n.incident.title} (${what})`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export async function notify(config: Config, n: NotifyInput): Promise<NotifyResult> {
  switch (n.channel) {
    case 'email':
      return notifyEmail(config, n);
    case 'slack':
      return notifySlack(config, n);
    case 'sms':
      // The provider's message list is the SMS sent-log (see notifySms); no second one needed.
      return notifySms(config, n);
  }
}

async function notifyEmail(config: Config, n: NotifyInput): Promise<NotifyResult> {
  const person = n.to[0];
  if (!person?.email) return { channel: 'email', delivered: false, skipped: 'no email address' };
  if (!config.notifications.email) return { channel: 'email', delivered: false, skipped: 'notifications.email is not configured' };
  const ackLink =
    config.incidents.ackSecret && n.incident.key && (n.kind === 'page' || n.kind === 'reassigned') ? signAckLink(config, { id: n.incident.id, key: n.incident.key }, person.name) : undefined;
  const lines = [
    `Incident: ${n.incident.id}`,
    `Severity: ${n.incident.severity}`,
    `Title: ${n.incident.title}`,
    ...(n.incident.description ? [`Description: ${n.incident.description}`] : []),
    `Opened: ${n.incident.openedAt}`,
    `Escalation: level ${n.incident.level}, round ${n.incident.round}`,
    ...(n.detail ? [n.detail] : []),
    ...(ackLink ? ['', `Acknowledge: ${ackLink}`] : []),
  ];
  const html =
    `<h2>${escapeHtml(subject(n))}</h2><table>` +
    lines
      .filter((l) => l && !l.startsWith('Acknowledge:'))
      .map((l) => {
        const i = l.indexOf(':');
        return `<tr><th align="left">${escapeHtml(l.slice(0, i))}</th><td>${escapeHtml(l.slice(i + 1).trim())}</td></tr>`;
      })
      .join('') +
    '</table>' +
    (ackLink ? `<p><a href="${escapeHtml(ackLink)}">Acknowledge this incident</a></p>` : '');
  // SMTP cannot refuse a duplicate and cannot be asked what it got: the sent-log remembers (Slack and SMS look theirs up).
  const r = await sendEmailOnce(config, { idempotencyKey: n.idempotencyKey, subject: subject(n), text: lines.join('\n'), html, to: [person.email] });
  return r.sent ? { channel: 'email', delivered: true, ref: r.messageId } : { channel: 'email', delivered: false, skipped: r.reason };
}

/**
 * Text from outside (an alert's summary and description, a note) as Slack mrkdwn that says only what it says:
 * &, < and > escaped as Slack asks (https://api.slack.com/reference/surfaces/formatting#escaping), so it
 * cannot mention (<!channel>, <!here>, <@U…>, <!subteam^…>) nor hide a link behind other words (<url|text>);
 * and a bare scheme://… defanged (scheme[:]//…) so Slack does not turn it into a link either.
 */
export function slackEscape(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/\b([a-z][a-z0-9+.-]*):\/\//gi, '$1[:]//');
}

function incidentBlocks(n: NotifyInput, state: 'open' | 'acknowledged' | 'resolved', status?: string): KnownBlock[] {
  const head = `${ICON[n.incident.severity]} *${n.incident.severity.toUpperCase()}*: ${slackEscape(n.incident.title)}`;
  const description = n.incident.description && slackEscape(n.incident.description);
  const blocks: KnownBlock[] = [
    { type: 'section', text: { type: 'mrkdwn', text: [head, description, `\`${slackEscape(n.incident.id)}\``, status].filter(Boolean).join('\n') } },
  ];
  const buttons = [
    ...(state === 'open' ? [{ type: 'button' as const, action_id: ACTIONS.incidentAck, text: { type: 'plain_text' as const, text: 'Acknowledge' }, value: n.incident.id, style: 'primary' as const }] : []),
    ...(state !== 'resolved' ? [{ type: 'button' as const, action_id: ACTIONS.incidentResolve, text: { type: 'plain_text' as const, text: 'Resolve' }, value: n.incident.id }] : []),
  ];
  if (buttons.length) blocks.push({ type: 'actions', block_id: 'incident_actions', elements: buttons });
  return blocks;
}

async function notifySlack(config: Config, n: NotifyInput): Promise<NotifyResult> {
  if (!config.notifications.slack) return { channel: 'slack', delivered: false, skipped: 'notifications.slack is not configured' };
  const channel = n.slack?.channel ?? config.escalation.slackChannel ?? slackConfig(config).channel;
  const mentions = n.to.map((p) => (p.slack ? `<@${p.slack}>` : p.name)).join(' ');
  const title = `${ICON[n.incident.severity]} ${n.incident.severity.toUpperCase()}: ${slackEscape(n.incident.title)}`;
  // The mentions are ours (the policy's people); everything else said about the incident came from outside.
  const detail = n.detail === undefined ? undefined : slackEscape(n.detail);
  if (!n.slack) {
    // The first message of the incident: its thread from now on, with the ack / resolve buttons.
    const text = `${title} (level ${n.incident.level}) ${mentions}`.trim();
    const r = await postSlackMessage(config, { idempotencyKey: n.idempotencyKey, channel, text, blocks: incidentBlocks(n, 'open', `Paging ${mentions || 'the channel'}`), notBefore: n.notBefore });
    return { channel: 'slack', delivered: true, ref: r.ts, slack: { channel: r.channel, ts: r.ts } };
  }
  const text =
    n.kind === 'page'
      ? `Escalation level ${n.incident.level} (round ${n.incident.round}): ${mentions}, please acknowledge`
      : n.kind === 'reassigned'
        ? `${mentions}: ${detail ?? 'reassigned to you'}`
        : `${n.kind === 'resolved' ? '✅' : '👀'} ${detail ?? n.kind}`;
  const r = await postSlackMessage(config, { idempotencyKey: n.idempotencyKey, channel: n.slack.channel, threadTs: n.slack.ts, text, notBefore: n.notBefore });
  if (n.kind === 'acknowledged' || n.kind === 'resolved') {
    // The root message shows the state and loses the buttons that no longer apply (an update replaces it whole).
    await updateSlackMessage(config, { channel: n.slack.channel, ts: n.slack.ts, text: `${title} (${detail ?? n.kind})`, blocks: incidentBlocks(n, n.kind, detail) });
  }
  return { channel: 'slack', delivered: true, ref: r.ts };
}

/** A short tag in every SMS, derived from its idempotency key: how a retry recognises an earlier send. */
export function smsRef(idempotencyKey: string): string {
  return createHash('sha256').update(idempotencyKey).digest('hex').slice(0, 10);
}

async function smsCall(sms: NonNullable<Config['escalation']['sms']>, token: string, init: { method: 'GET' | 'POST'; query?: URLSearchParams; form?: URLSearchParams; key?: string }): Promise<{ status: number; text: string }> {
  const url = `${sms.apiUrl.replace(/\/$/, '')}/Accounts/${encodeURIComponent(sms.accountSid)}/Messages.json${init.query ? `?${init.query.toString()}` : ''}`;
  try {
    const res = await fetch(url, {
      method: init.method,
      headers: {
        authorization: `Basic ${Buffer.from(`${sms.accountSid}:${token}`).toString('base64')}`,
        ...(init.form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        // A provider that honours it drops the retry of a request whose reply was lost.
        ...(init.key ? { 'idempotency-key': init.key } : {}),
      },
      body: init.form?.toString(),
      signal: AbortSignal.timeout(15_000),
    });
    return { status: res.status, text: await res.text() };
  } catch (err) {
    throw new Error(`SMS provider ${sms.apiUrl}: ${redact((err as Error).message)}`);
  }
}

async function notifySms(config: Config, n: NotifyInput): Promise<NotifyResult> {
  const person = n.to[0];
  if (!person?.phone) return { channel: 'sms', delivered: false, skipped: 'no phone number' };
  const sms = config.escalation.sms;
  if (!sms) return { channel: 'sms', delivered: false, skipped: 'escalation.sms is not configured' };
  const token = resolveSecret(sms.authToken, 'escalation.sms.authToken');
  const tag = `[ref ${smsRef(n.idempotencyKey)}]`;
  // An earlier attempt whose reply was lost: the provider's message list (newest first) has it.
  const listed = await smsCall(sms, token, { method: 'GET', query: new URLSearchParams({ To: person.phone, PageSize: '50' }) });
  if (listed.status === 200) {
    const earlier = ((JSON.parse(listed.text) as { messages?: Array<{ sid: string; body?: string }> }).messages ?? []).find((m) => m.body?.includes(tag));
    if (earlier) return { channel: 'sms', delivered: true, ref: earlier.sid };
  }
  const body = `${subject(n).slice(0, 200)} ${n.incident.id} ${tag}`;
  const res = await smsCall(sms, token, { method: 'POST', form: new URLSearchParams({ To: person.phone, From: sms.from, Body: body }), key: n.idempotencyKey });
  if (res.status < 200 || res.status >= 300) {
    const err = `SMS provider ${sms.apiUrl}: HTTP ${res.status} ${redact(res.text.slice(0, 200))}`;
    // 4xx (bad number, bad credentials) will not get better by retrying; 429 and 5xx may.
    if (res.status >= 400 && res.status < 500 && res.status !== 429) throw ApplicationFailure.nonRetryable(err, FAILURES.SmsRejected);
    throw new Error(err);
  }
  let sid: string | undefined;
  try {
    sid = (JSON.parse(res.text) as { sid?: string }).sid;
  } catch {
    sid = undefined;
  }
  return { channel: 'sms', delivered: true, ref: sid };
}

/** The policy an incident of this severity starts with, people and rotations resolved: captured once per incident. */
export function escalationPolicy(config: Config, input: { severity: Severity; policy?: string }): PolicySnapshot {
  const e = config.escalation;
  const name = input.policy ?? e.severities[input.severity] ?? (input.severity in e.policies ? input.severity : undefined);
  if (input.policy && !e.policies[input.policy]) {
    throw ApplicationFailure.nonRetryable(`policy: unknown escalation policy "${input.policy}" (known: ${Object.keys(e.policies).join(', ') || 'none'})`, FAILURES.PolicyError);
  }
  const policy = (name && e.policies[name]) || DEFAULT_POLICIES[input.severity];
  const people: Record<string, Contact> = {};
  for (const [n, p] of Object.entries(e.people)) people[n] = { name: n, ...p };
  const missing: string[] = [];
  for (const level of policy.levels) {
    for (const t of level.targets) {
      if (people[t] || e.rotations[t]) continue;
      if (t.includes('@')) people[t] = { name: t, email: t };
      else missing.push(t);
    }
  }
  let levels = policy.levels;
  if (missing.length) {
    // Only a seed default can get here (the config check refuses unknown names in its own policies). An
    // alert must never be dropped for want of a contact: the roles nobody configured become the operators
    // of notifications.email.to (and the Slack channel, which every incident message reaches anyway).
    const operators = config.notifications.email?.to ?? [];
    for (const address of operators) people[address] = { name: address, email: address };
    levels = policy.levels.map((l) => {
      const targets = [...new Set(l.targets.flatMap((t) => (missing.includes(t) ? operators : [t])))];
      return { ...l, targets };
    });
  }
  return {
    name: (name ?? `default-${input.severity}`) + (missing.length ? ` (${[...new Set(missing)].join(', ')} not configured: notifications.email.to instead)` : ''),
    levels: levels.map((l) => ({ targets: l.targets, channels: l.channels, afterMs: durationMs(l.after) })),
    repeat: policy.repeat,
    people,
    rotations: Object.fromEntries(
      Object.entries(e.rotations).map(([n, r]) => [n, { members: r.members, shiftMs: durationMs(r.shift), startMs: Date.parse(r.start) }]),
    ),
    maxTimeline: e.maxTimeline,
  };
}
