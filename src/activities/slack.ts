import { WebClient, type KnownBlock } from '@slack/web-api';
import { type Config, type SlackConfig } from '../config/schema';
import { redact, redactValue, resolveSecret } from '../config/secrets';

/**
 * Slack Web API (chat.postMessage / chat.update) through @slack/web-api, pointed at `notifications.slack.apiUrl`
 * (Slack, a Slack-compatible server, or the tests' local fake).
 *
 * Idempotency: Slack has no idempotency key, so every message carries one in its metadata
 * (`event_type: runbook_message`, `event_payload.key`). Before posting, the activity looks for a message with
 * that key in the channel (or in the thread) since `notBefore`, and returns it instead of posting again. A retry
 * after a lost reply therefore finds the first post.
 */
export const METADATA_EVENT_TYPE = 'runbook_message';

export interface SlackPostInput {
  /** Stable per logical message (e.g. incident id + level + attempt). */
  idempotencyKey: string;
  /** Defaults to notifications.slack.channel. */
  channel?: string;
  /** Post as a reply in this thread. */
  threadTs?: string;
  text: string;
  blocks?: KnownBlock[];
  /** When the message was first decided (the workflow's clock): the search for an earlier post starts here. */
  notBefore: string;
}

export interface SlackPostResult {
  channel: string;
  ts: string;
  /** false when an earlier attempt had already posted it. */
  posted: boolean;
}

export interface SlackUpdateInput {
  channel: string;
  ts: string;
  text: string;
  blocks?: KnownBlock[];
}

export function slackConfig(config: Config): SlackConfig {
  const slack = config.notifications.slack;
  if (!slack) throw new Error('notifications.slack is not configured');
  return slack;
}

export function slackClient(config: Config): WebClient {
  const slack = slackConfig(config);
  // Retries are Temporal's job (with the idempotency lookup in between), not the client's.
  return new WebClient(resolveSecret(slack.botToken, 'notifications.slack.botToken'), {
    slackApiUrl: slack.apiUrl,
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
  });
}

/** The message an earlier attempt posted with this key, if any. */
async function findPosted(client: WebClient, channel: string, input: SlackPostInput): Promise<string | undefined> {
  const oldest = String(Math.floor(new Date(input.notBefore).getTime() / 1000) - 60);
  const found = input.threadTs
    ? await client.conversations.replies({ channel, ts: input.threadTs, oldest, include_all_metadata: true, limit: 200 })
    : await client.conversations.history({ channel, oldest, include_all_metadata: true, limit: 200 });
  const match = (found.messages ?? []).find(
    (m) => m.metadata?.event_type === METADATA_EVENT_TYPE && (m.metadata.event_payload as Record<string, unknown> | undefined)?.key === input.idempotencyKey,
  );
  return match?.ts;
}

export async function postSlackMessage(config: Config, input: SlackPostInput): Promise<SlackPostResult> {
  const client = slackClient(config);
  const channel = input.channel ?? slackConfig(config).channel;
  try {
    const earlier = await findPosted(client, channel, input);
    if (earlier) return { channel, ts: earlier, posted: false };
    const res = await client.chat.postMessage({
      channel,
      text: redact(input.text),
      ...(input.blocks ? { blocks: redactValue(input.blocks) as KnownBlock[] } : {}),
      ...(input.threadTs ? { thread_ts: input.threadTs } : {}),
      metadata: { event_type: METADATA_EVENT_TYPE, event_payload: { key: input.idempotencyKey } },
      unfurl_links: false,
    });
    if (!res.ts) throw new Error('chat.postMessage returned no ts');
    return { channel: res.channel ?? channel, ts: res.ts, posted: true };
  } catch (err) {
    throw new Error(`Slack ${channel}: ${redact((err as Error).message)}`);
  }
}

export async function updateSlackMessage(config: Config, input: SlackUpdateInput): Promise<void> {
  const client = slackClient(config);
  try {
    await client.chat.update({
      channel: input.channel,
      ts: input.ts,
      text: redact(input.text),
      ...(input.blocks ? { blocks: redactValue(input.blocks) as KnownBlock[] } : {}),
    });
  } catch (err) {
    throw new Error(`Slack ${input.channel}: ${redact((err as Error).message)}`);
  }
}
