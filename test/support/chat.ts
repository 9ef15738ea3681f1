import { sign } from '../../src/client/chatops/signature';

/** What Slack sends: signed form posts to the ChatOps server (slash commands and block_actions buttons). */

export interface Sent {
  status: number;
  body: string;
  json(): Record<string, any>;
}

export async function signedPost(
  url: string,
  secret: string,
  body: string,
  opts: { timestamp?: number; signature?: string | null; secret?: string } = {},
): Promise<Sent> {
  const ts = String(opts.timestamp ?? Math.floor(Date.now() / 1000));
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', 'x-slack-request-timestamp': ts };
  if (opts.signature !== null) headers['x-slack-signature'] = opts.signature ?? sign(opts.secret ?? secret, ts, body);
  const res = await fetch(url, { method: 'POST', headers, body });
  const text = await res.text();
  return { status: res.status, body: text, json: () => JSON.parse(text) as Record<string, any> };
}

export function commandBody(f: { text: string; user_id: string; user_name?: string; channel_id?: string; response_url?: string; trigger_id?: string }): string {
  return new URLSearchParams({
    token: 'deprecated-verification-token',
    team_id: 'T0',
    team_domain: 'ops',
    channel_id: f.channel_id ?? 'C0OPS',
    channel_name: 'ops',
    user_id: f.user_id,
    user_name: f.user_name ?? f.user_id.toLowerCase(),
    command: '/runbook',
    text: f.text,
    api_app_id: 'A0',
    response_url: f.response_url ?? 'http://127.0.0.1:9/unused',
    trigger_id: f.trigger_id ?? `${Date.now()}.${Math.random()}`,
  }).toString();
}

export function actionBody(f: { user_id: string; action_id: string; value: string; response_url: string; channel_id?: string }): string {
  const payload = {
    type: 'block_actions',
    user: { id: f.user_id, username: f.user_id.toLowerCase(), team_id: 'T0' },
    api_app_id: 'A0',
    team: { id: 'T0' },
    channel: { id: f.channel_id ?? 'C0OPS' },
    trigger_id: `${Date.now()}.${Math.random()}`,
    response_url: f.response_url,
    actions: [{ type: 'button', action_id: f.action_id, block_id: 'b', value: f.value, action_ts: String(Date.now() / 1000) }],
  };
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}
