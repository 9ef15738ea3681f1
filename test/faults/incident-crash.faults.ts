import { Client, Connection } from '@temporalio/client';
import { parse, stringify } from 'yaml';
import { openIncident } from '../../src/client/incidents';
import { dataConverterOptions } from '../../src/config/codec';
import { parseConfig } from '../../src/config/load';
import { type Config } from '../../src/config/schema';
import { type incident } from '../../src/workflows/incident';
import { resolveUpdate, timelineQuery } from '../../src/workflows/incident-definitions';
import { type PrivateTemporal, privateTemporal } from '../support/private-servers';
import { startWorkerProcess, writeConfigFile } from '../support/processes';
import { testConfig, uniqueName } from '../support/servers';
import { type FakeSlack, startFakeSlack } from '../support/slack-api';
import { type FakeSms, startFakeSms } from '../support/sms-api';
import { parseMail, startSmtp } from '../support/smtp';
import { waitUntil } from '../support/wait';

/**
 * WF-08 under crashes (`npm run test:faults`): the worker SIGKILLed right after a notification went out, and
 * the Temporal dev server (its own, SQLite file kept) restarted while a level is due. Every notification of
 * every level arrives exactly once: emails by Message-ID, SMS by idempotency key, Slack in one thread.
 */

let smtp: Awaited<ReturnType<typeof startSmtp>>;
let slack: FakeSlack;
let sms: FakeSms;
let temporal: PrivateTemporal | undefined;

beforeAll(async () => {
  process.env.TEST_SMTP_PASSWORD = 'smtp-secret-pw';
  process.env.TEST_SMS_TOKEN = 'sms-test-token';
  smtp = await startSmtp('runbooks', 'smtp-secret-pw');
  slack = await startFakeSlack();
  sms = await startFakeSms();
});
afterAll(async () => {
  await temporal?.stop();
  await Promise.all([smtp?.close(), slack?.close(), sms?.close()]);
});

/** A config whose one policy pages alice + bob on every channel: level 2 after 3 s, level 3 (alice) after 3 s more. */
function incidentConfig(address?: string): { yaml: string; config: Config } {
  const taskQueue = uniqueName('incf');
  const { yaml } = testConfig({
    taskQueue,
    redis: ['cache'],
    email: { port: smtp.port, user: 'runbooks', passwordEnv: 'TEST_SMTP_PASSWORD', to: ['ops@example.test'] },
    slack: { apiUrl: slack.apiUrl, token: slack.token, channel: 'C0FAULTS' },
  });
  const raw = parse(yaml);
  if (address) raw.temporal.address = address;
  raw.notifications.sentLog = { redis: 'cache' };
  raw.escalation = {
    people: {
      alice: { email: 'alice@example.test', slack: 'U0ALICE', phone: '+34600000001' },
      bob: { email: 'bob@example.test', slack: 'U0BOB', phone: '+34600000002' },
    },
    policies: {
      crash: {
        levels: [
          { targets: ['alice', 'bob'], channels: ['slack', 'email', 'sms'], after: '3s' },
          { targets: ['alice', 'bob'], channels: ['slack', 'email', 'sms'], after: '3s' },
          { targets: ['alice'], channels: ['slack', 'email', 'sms'], after: '1h' },
        ],
      },
    },
    severities: { critical: 'crash' },
    sms: { apiUrl: sms.apiUrl, accountSid: sms.accountSid, authToken: { env: 'TEST_SMS_TOKEN' }, from: '+15550000000' },
  };
  const text = stringify(raw);
  return { yaml: text, config: parseConfig(text, 'faults.yaml') };
}

/** Every notification of the three levels, each exactly once. */
function expectEachOnce(id: string, rootTs: string): void {
  const mails = smtp.received.filter((m) => m.raw.includes(id)).map((m) => parseMail(m.raw).headers);
  const ids = mails.map((h) => h.get('message-id'));
  expect(new Set(ids).size).toBe(ids.length);
  expect(mails.map((h) => h.get('to')).sort()).toEqual(['alice@example.test', 'alice@example.test', 'alice@example.test', 'bob@example.test', 'bob@example.test']);
  const texts = sms.messages.filter((m) => m.body.includes(id));
  expect(new Set(texts.map((m) => m.idempotencyKey)).size).toBe(texts.length);
  expect(texts.map((m) => m.to).sort()).toEqual(['+34600000001', '+34600000001', '+34600000001', '+34600000002', '+34600000002']);
  const roots = slack.messages.filter((m) => !m.thread_ts && (m.blocks as Array<{ elements?: Array<{ value?: string }> }> | undefined)?.some((b) => b.elements?.some((e) => e.value === id)));
  expect(roots.map((m) => m.ts)).toEqual([rootTs]);
  expect(slack.messages.filter((m) => m.thread_ts === rootTs).map((m) => m.text)).toEqual([
    'Escalation level 2 (round 1): <@U0ALICE> <@U0BOB>, please acknowledge',
    'Escalation level 3 (round 1): <@U0ALICE>, please acknowledge',
  ]);
}

async function atLevel3(client: Client, id: string): Promise<{ slack?: { ts: string } }> {
  const h = client.workflow.getHandle<typeof incident>(id);
  return waitUntil('level 3 notified', async () => {
    const v = await h.query(timelineQuery);
    return v.timeline.filter((e) => e.event === 'notified' && e.detail?.includes('level 3')).length === 3 ? v : undefined;
  });
}

// After the policy was read, and after level 1's Slack message (sent alone: it opens the thread) went out but
// before Temporal heard of it.
test.each(['escalationPolicy', 'notify:1'])('worker SIGKILLed right after %s: the escalation goes on, nothing lost, nothing sent twice', async (step) => {
  const { yaml, config } = incidentConfig();
  const connection = await Connection.connect({ address: config.temporal.address });
  // Payloads are encrypted (the test config turns the codec on): the client needs the same codec.
  const client = new Client({ connection, ...dataConverterOptions(config) });
  try {
    const file = writeConfigFile(yaml);
    const fp = uniqueName('crash').replace('_', '');
    const id = `incident/${fp}`;
    const crashing = await startWorkerProcess(file, { RUNBOOKS_CRASH_AFTER: step });
    await openIncident(client, config, { fingerprint: fp, title: 'checkout down', severity: 'critical', source: 'manual' });
    const code = await Promise.race([crashing.exited, new Promise((r) => setTimeout(() => r('still running'), 60_000))]);
    expect(code).toBeNull();
    const healthy = await startWorkerProcess(file);
    try {
      const view = await atLevel3(client, id);
      expectEachOnce(id, view.slack!.ts);
      await client.workflow.getHandle<typeof incident>(id).executeUpdate(resolveUpdate, { args: [{ by: 'alice' }] });
      expect((await client.workflow.getHandle<typeof incident>(id).result()).resolved.by).toBe('alice');
    } finally {
      await healthy.stop();
    }
  } finally {
    await connection.close();
  }
});

test('Temporal dev server restarted (SQLite kept) while level 2 is due: levels 2 and 3 arrive once each', async () => {
  temporal = await privateTemporal();
  const { yaml, config } = incidentConfig(temporal.address);
  const file = writeConfigFile(yaml);
  const worker = await startWorkerProcess(file);
  let connection = await Connection.connect({ address: temporal.address });
  try {
    const fp = uniqueName('restart').replace('_', '');
    const id = `incident/${fp}`;
    await openIncident(new Client({ connection, ...dataConverterOptions(config) }), config, { fingerprint: fp, title: 'payments down', severity: 'critical', source: 'manual' });
    await waitUntil('level 1 sent', () => Promise.resolve(smtp.received.filter((m) => m.raw.includes(id)).length === 2 && sms.messages.filter((m) => m.body.includes(id)).length === 2 ? true : undefined));
    await connection.close();
    await temporal.restart(4_000); // level 2 falls due while the server is down
    connection = await Connection.connect({ address: temporal.address });
    const client = new Client({ connection, ...dataConverterOptions(config) });
    const view = await atLevel3(client, id);
    expectEachOnce(id, view.slack!.ts);
    await client.workflow.getHandle<typeof incident>(id).executeUpdate(resolveUpdate, { args: [{ by: 'bob' }] });
    expect((await client.workflow.getHandle<typeof incident>(id).result()).resolved.by).toBe('bob');
  } finally {
    await connection.close().catch(() => undefined);
    await worker.stop();
    await temporal.stop();
    temporal = undefined;
  }
});
