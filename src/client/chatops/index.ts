import { type Client } from '@temporalio/client';
import { type Config, durationMs } from '../../config/schema';
import { resolveSecret } from '../../config/secrets';
import { slackClient } from '../../activities/slack';
import { ChatOps, temporalBackend } from './commands';
import { type GroupMembers, Rbac } from './rbac';
import { type ChatopsServer, startChatopsServer } from './server';

export { ChatOps } from './commands';
export { startChatopsServer } from './server';

/** Slack user group members (usergroups.users.list) through the bot token, cached for a minute. */
export function slackGroupMembers(config: Config): GroupMembers {
  const cache = new Map<string, { at: number; members: Promise<string[]> }>();
  return (group) => {
    const hit = cache.get(group);
    if (hit && Date.now() - hit.at < 60_000) return hit.members;
    if (!config.notifications.slack) return Promise.resolve([]);
    const members = slackClient(config)
      .usergroups.users.list({ usergroup: group })
      .then((r) => r.users ?? []);
    cache.set(group, { at: Date.now(), members });
    members.catch(() => cache.delete(group));
    return members;
  };
}

/** The ChatOps server for a config (its `chatops` section) on a Temporal client. */
export async function startChatops(
  config: Config,
  client: Client,
  opts: { port?: number; log?: (msg: string, fields?: Record<string, unknown>) => void } = {},
): Promise<ChatopsServer> {
  const chat = config.chatops;
  if (!chat) throw new Error('chatops is not configured (add a chatops section to the config)');
  const chatops = new ChatOps(config, temporalBackend(client, config), new Rbac(config, slackGroupMembers(config)));
  return startChatopsServer({
    chatops,
    signingSecret: resolveSecret(chat.signingSecret, 'chatops.signingSecret'),
    host: chat.host,
    port: opts.port ?? chat.port,
    log: opts.log,
    ackWithinMs: durationMs(chat.ackWithin),
  });
}
