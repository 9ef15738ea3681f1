import { postSlackMessage, updateSlackMessage } from '../src/activities/slack';
import { testConfig, uniqueName } from './support/servers';
import { type FakeSlack, startFakeSlack } from './support/slack-api';

let slack: FakeSlack;
beforeAll(async () => {
  slack = await startFakeSlack();
});
afterAll(() => slack.close());

function config(token = slack.token) {
  return testConfig({ taskQueue: uniqueName('slack'), slack: { apiUrl: slack.apiUrl, token, channel: 'C0OPS' } }).config;
}

test('a message posted twice with the same key reaches the channel once; replies land in its thread', async () => {
  const cfg = config();
  const notBefore = new Date().toISOString();
  const first = await postSlackMessage(cfg, { idempotencyKey: 'incident/abc/level-1', text: 'DB down', notBefore });
  // A retry after a lost reply: the same key finds the earlier post instead of posting again.
  const again = await postSlackMessage(cfg, { idempotencyKey: 'incident/abc/level-1', text: 'DB down', notBefore });
  expect(first.posted).toBe(true);
  expect(again).toEqual({ channel: 'C0OPS', ts: first.ts, posted: false });
  expect(slack.messages.filter((m) => m.text === 'DB down')).toHaveLength(1);

  const reply = await postSlackMessage(cfg, { idempotencyKey: 'incident/abc/level-2', threadTs: first.ts, text: 'escalated', notBefore });
  const replyAgain = await postSlackMessage(cfg, { idempotencyKey: 'incident/abc/level-2', threadTs: first.ts, text: 'escalated', notBefore });
  expect(replyAgain.ts).toBe(reply.ts);
  expect(slack.messages.filter((m) => m.thread_ts === first.ts).map((m) => m.text)).toEqual(['escalated']);

  await updateSlackMessage(cfg, { channel: first.channel, ts: first.ts, text: 'DB down (acknowledged by alice)' });
  expect(slack.messages.find((m) => m.ts === first.ts)?.edits.map((e) => e.text)).toEqual(['DB down', 'DB down (acknowledged by alice)']);
});

test('a Slack error fails the call with its reason and without the token; the retry posts once', async () => {
  const bad = config('xoxb-wrong-token-1234');
  await expect(postSlackMessage(bad, { idempotencyKey: 'k1', text: 'x', notBefore: new Date().toISOString() })).rejects.toThrow(/invalid_auth/);
  await expect(postSlackMessage(bad, { idempotencyKey: 'k1', text: 'x', notBefore: new Date().toISOString() })).rejects.not.toThrow(/xoxb-wrong/);

  const cfg = config();
  slack.failNext('chat.postMessage', 'internal_error');
  await expect(postSlackMessage(cfg, { idempotencyKey: 'k2', text: 'retry me', notBefore: new Date().toISOString() })).rejects.toThrow(/internal_error/);
  const ok = await postSlackMessage(cfg, { idempotencyKey: 'k2', text: 'retry me', notBefore: new Date().toISOString() });
  expect(ok.posted).toBe(true);
  expect(slack.messages.filter((m) => m.text === 'retry me')).toHaveLength(1);
});
