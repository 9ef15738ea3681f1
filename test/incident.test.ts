import { type Server } from 'node:http';
import { type AddressInfo } from 'node:net';
import { WorkflowNotFoundError } from '@temporalio/client';
import { type Worker } from '@temporalio/worker';
import { signAckLink } from '../src/activities/ack-link';
import { createIncidentServer } from '../src/client/alertmanager';
import { openIncident } from '../src/client/incidents';
import { freePort } from '../src/client/local-servers';
import { parse, stringify } from 'yaml';
import { type NotifyInput, createActivities } from '../src/activities';
import { parseConfig } from '../src/config/load';
import { type Config } from '../src/config/schema';
import { createRunbookWorker } from '../src/workers/worker';
import { type incident } from '../src/workflows/incident';
import { timelineQuery } from '../src/workflows/incident-definitions';
import { testConfig, uniqueName } from './support/servers';
import { type FakeSlack, startFakeSlack } from './support/slack-api';
import { type FakeSms, startFakeSms } from './support/sms-api';
import { startSmtp } from './support/smtp';
import { recordHistory } from './support/histories';
import { runCli, writeConfigFile } from './support/processes';
import { abuse } from './support/slow-clients';
import { useDevServer, workflowBundle } from './support/temporal';

// WF-08 end to end on the shared dev server with the real notify activity: a real SMTP server (AUTH) receives
// the emails, a local Slack Web API the thread, a local Twilio-style API the SMS; Alertmanager's v4 webhook
// JSON goes to the real receiver over HTTP; the signed acknowledge link from the email acknowledges.

const dev = useDevServer();
let smtp: Awaited<ReturnType<typeof startSmtp>>;
let slack: FakeSlack;
let sms: FakeSms;
let config: Config;
let configYaml: string;
let worker: Worker;
let running: Promise<void>;
let receiver: Server;
let base: string;
const BEARER = 'am-bearer-token-0123';

describe('incidents over HTTP, SMTP, Slack and SMS', () => {
beforeAll(async () => {
  process.env.TEST_SMTP_PASSWORD = 'smtp-secret-pw';
  process.env.TEST_SMS_TOKEN = 'sms-test-token';
  process.env.TEST_ACK_SECRET = 'ack-hmac-secret-0123456789';
  process.env.TEST_AM_TOKEN = BEARER;
  smtp = await startSmtp('runbooks', 'smtp-secret-pw');
  slack = await startFakeSlack();
  sms = await startFakeSms();
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const taskQueue = uniqueName('incident');
  const { yaml } = testConfig({
    taskQueue,
    redis: ['cache'],
    email: { port: smtp.port, user: 'runbooks', passwordEnv: 'TEST_SMTP_PASSWORD', to: ['ops@example.test'] },
    slack: { apiUrl: slack.apiUrl, token: slack.token, channel: 'C0INCIDENTS' },
    extra: {
      escalation: {
        people: {
          alice: { email: 'alice@example.test', slack: 'U0ALICE', phone: '+34600000001' },
          bob: { email: 'bob@example.test', slack: 'U0BOB', phone: '+34600000002' },
        },
        policies: {
          quick: {
            levels: [
              { targets: ['alice'], channels: ['email', 'slack', 'sms'], after: '4s' },
              { targets: ['alice', 'bob'], channels: ['email', 'slack', 'sms'], after: '1h' },
            ],
          },
        },
        severities: { critical: 'quick', high: 'quick', medium: 'quick', low: 'quick' },
        sms: { apiUrl: sms.apiUrl, accountSid: sms.accountSid, authToken: { env: 'TEST_SMS_TOKEN' }, from: '+15550000000' },
      },
      incidents: { listen: { port }, publicUrl: base, ackSecret: { env: 'TEST_ACK_SECRET' }, auth: { bearerToken: { env: 'TEST_AM_TOKEN' } } },
    },
  });
  const raw = parse(yaml);
  raw.notifications.sentLog = { redis: 'cache' };
  configYaml = stringify(raw);
  config = parseConfig(configYaml, 'incident.yaml');
  worker = await createRunbookWorker({ config, connection: dev.workerConnection, workflowBundle: await workflowBundle() });
  running = worker.run();
  receiver = createIncidentServer({ client: dev.client, config });
  await new Promise<void>((resolve) => receiver.listen(port, '127.0.0.1', () => resolve()));
  expect((receiver.address() as AddressInfo).port).toBe(port);
});

afterAll(async () => {
  await new Promise<void>((resolve) => receiver?.close(() => resolve()));
  worker?.shutdown();
  await running;
  await Promise.all([smtp?.close(), slack?.close(), sms?.close()]);
});

async function waitUntil<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

/** Alertmanager's webhook body (version 4), as it POSTs it. */
function payload(status: 'firing' | 'resolved', fingerprint: string, extra: Record<string, unknown> = {}) {
  const alert = {
    status,
    labels: { alertname: 'ServiceDown', severity: 'critical', instance: 'api:3000', job: 'api' },
    annotations: { summary: 'api is down', description: 'up == 0 for 1m' },
    startsAt: '2026-11-24T09:00:00.000Z',
    endsAt: status === 'resolved' ? '2026-11-24T09:20:00.000Z' : '0001-01-01T00:00:00Z',
    generatorURL: 'http://prometheus:9090/graph?g0.expr=up+%3D%3D+0',
    fingerprint,
  };
  return {
    receiver: 'runbooks',
    status,
    alerts: [alert],
    groupLabels: { alertname: 'ServiceDown' },
    commonLabels: alert.labels,
    commonAnnotations: alert.annotations,
    externalURL: 'http://alertmanager:9093',
    version: '4',
    groupKey: '{}:{alertname="ServiceDown"}',
    truncatedAlerts: 0,
    ...extra,
  };
}

/** `auth` null: no Authorization header. */
function post(body: unknown, auth: string | null = `Bearer ${BEARER}`): Promise<Response> {
  return fetch(`${base}/alertmanager`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

const fp = (): string => uniqueName('a1b2c3d4').replace('_', '');
const mailsTo = (address: string, id: string) => smtp.received.filter((m) => m.rcptTo.includes(address) && m.raw.includes(id));

test('Alertmanager firing twice makes one incident; it pages level 1 then level 2 in one Slack thread, then resolved closes it', async () => {
  const f = fp();
  const id = `incident/${f}`;
  for (let i = 0; i < 2; i++) {
    const res = await post(payload('firing', f));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, incidents: [{ fingerprint: f, workflowId: id, action: 'firing' }] });
  }
  const runs = [];
  for await (const w of dev.client.workflow.list({ query: `WorkflowId = "${id}"` })) runs.push(w);
  expect(runs).toHaveLength(1);

  const h = dev.client.workflow.getHandle<typeof incident>(id);
  // Level 2 (alice + bob) after 4 s without an acknowledgement.
  await waitUntil('level 2', async () => (await h.query(timelineQuery)).timeline.filter((e) => e.event === 'notified').length >= 3 + 4 || undefined);
  const view = await h.query(timelineQuery);
  expect(view).toMatchObject({ title: 'ServiceDown: api is down', severity: 'critical', status: 'open' });
  expect(view.timeline.filter((e) => e.event === 'alert firing')).toHaveLength(1); // the repeat is recorded, not re-paged

  const thread = slack.messages.filter((m) => m.text?.includes('ServiceDown') || m.thread_ts === view.slack?.ts);
  const root = thread.find((m) => !m.thread_ts)!;
  expect(root.channel).toBe('C0INCIDENTS');
  expect(view.slack).toEqual({ channel: 'C0INCIDENTS', ts: root.ts });
  const actions = (root.blocks as Array<{ type: string; elements?: Array<{ action_id: string; value: string }> }>).find((b) => b.type === 'actions')!;
  expect(actions.elements!.map((e) => [e.action_id, e.value])).toEqual([
    ['incident_ack', id],
    ['incident_resolve', id],
  ]);
  const replies = slack.messages.filter((m) => m.thread_ts === root.ts);
  expect(replies.map((m) => m.text)).toEqual(['Escalation level 2 (round 1): <@U0ALICE> <@U0BOB>, please acknowledge']);

  expect(mailsTo('alice@example.test', id)).toHaveLength(2);
  expect(mailsTo('bob@example.test', id)).toHaveLength(1);
  expect(smtp.received.find((m) => m.raw.includes(id))!.user).toBe('runbooks');
  const texts = sms.messages.filter((m) => m.body.includes(id));
  expect(texts.map((m) => m.to).sort()).toEqual(['+34600000001', '+34600000001', '+34600000002']);
  expect(new Set(texts.map((m) => m.idempotencyKey)).size).toBe(3);

  const res = await post(payload('resolved', f));
  expect(await res.json()).toEqual({ ok: true, incidents: [{ fingerprint: f, workflowId: id, action: 'resolved' }] });
  const outcome = await h.result();
  expect(outcome.resolved).toMatchObject({ by: 'alertmanager', auto: true });
  expect(slack.messages.find((m) => m.ts === root.ts)!.edits.at(-1)!.text).toMatch(/resolved by alertmanager/);
  await recordHistory(id, 'incident-alertmanager');
  // Resolved again (Alertmanager repeats): nothing open, nothing started.
  expect(await (await post(payload('resolved', f))).json()).toEqual({ ok: true, incidents: [{ fingerprint: f, workflowId: id, action: 'not open' }] });
});

test('a malformed, oversized or unauthenticated webhook gets 400/413/401 with the reason, and no incident starts', async () => {
  const f = fp();
  const cases: Array<[unknown, number, RegExp, (string | null)?]> = [
    ['{"version": "4", ', 400, /^body: not valid JSON$/],
    [payload('firing', f, { version: '3' }), 400, /^version: must be "4"/],
    [payload('firing', f, { alerts: [] }), 400, /^alerts: must hold at least one alert/],
    [{ ...payload('firing', f), alerts: [{ ...payload('firing', f).alerts[0], fingerprint: '../x' }] }, 400, /^alerts\[0\]\.fingerprint: must be an Alertmanager fingerprint/],
    [{ ...payload('firing', f), alerts: [{ ...payload('firing', f).alerts[0], labels: { severity: 'critical' } }] }, 400, /^alerts\[0\]\.labels: must contain alertname/],
    [{ ...payload('firing', f), padding: 'x'.repeat(1_100_000) }, 413, /^body: larger than 1048576 bytes$/],
    [payload('firing', f), 401, /^unauthorized$/, 'Bearer wrong'],
    [payload('firing', f), 401, /^unauthorized$/, null],
    [payload('firing', f), 401, /^unauthorized$/, `Basic ${Buffer.from(`x:${BEARER}`).toString('base64')}`],
  ];
  for (const [body, status, reason, auth] of cases) {
    const res = auth === undefined ? await post(body) : await post(body, auth);
    expect([res.status, ((await res.json()) as { error: string }).error]).toEqual([status, expect.stringMatching(reason)]);
  }
  await expect(dev.client.workflow.getHandle(`incident/${f}`).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
});

test('alert text reaches Slack escaped: no @channel / @here / user mention, no link that the alert smuggled in', async () => {
  const f = fp();
  const id = `incident/${f}`;
  const body = payload('firing', f);
  body.alerts[0]!.annotations = { summary: '<!channel> <@U0BOSS> see <https://evil.example/x|the runbook>', description: '<!here> log in at https://evil.example/login <!subteam^S0ALL>' };
  expect((await post(body)).status).toBe(200);
  const h = dev.client.workflow.getHandle<typeof incident>(id);
  const root = await waitUntil('the incident\'s Slack message', () => slack.messages.find((m) => !m.thread_ts && JSON.stringify(m.blocks ?? []).includes(id)));
  const shown = JSON.stringify({ text: root.text, blocks: root.blocks });
  for (const smuggled of ['<!channel>', '<!here>', '<@U0BOSS>', '<!subteam', '<https://evil', 'https://evil']) expect(shown).not.toContain(smuggled);
  // What the alert said is still there for people to read, and the policy's own mention still pages alice.
  expect(root.text).toContain('ServiceDown: &lt;!channel&gt; &lt;@U0BOSS&gt; see &lt;https[:]//evil.example/x|the runbook&gt;');
  expect(shown).toContain('&lt;!here&gt; log in at https[:]//evil.example/login');
  expect(root.text).toMatch(/<@U0ALICE>$/);
  await h.terminate('test over');
});

test('the receiver cuts off slowloris clients, caps its connections, refuses an oversized webhook, and keeps answering', async () => {
  const port = Number(new URL(base).port);
  const report = await abuse({
    port,
    normal: () => fetch(`${base}/healthz`),
    oversized: () => post(JSON.stringify({ ...payload('firing', fp()), padding: 'x'.repeat(4 << 20) })),
  });
  expect(report.oversized).toBe(413);
  expect(report.droppedAtCap).toBeGreaterThanOrEqual(1); // refused at the cap (bounded in abuse())
  expect(report.timedOut).toBeGreaterThan(0);
}, 90_000);

test('the signed acknowledge link in the email acknowledges the incident; a tampered or expired link is refused', async () => {
  const f = fp();
  const id = `incident/${f}`;
  await openIncident(dev.client, config, { fingerprint: f, title: 'disk full on db-1', severity: 'high', source: 'manual' });
  const mail = await waitUntil('the level-1 email', () => mailsTo('alice@example.test', id)[0]);
  expect(mail.raw).toMatch(/Content-Type: multipart\/alternative/i);
  expect(mail.raw).toMatch(/Content-Type: text\/html/i);
  const decoded = mail.raw.replace(/=\r\n/g, '').replace(/=3D/g, '=');
  const link = new URL(/(http:\/\/127\.0\.0\.1:\d+\/ack\?[^\s"<]+)/.exec(decoded)![1]!.replace(/&amp;/g, '&'));
  expect(link.searchParams.get('i')).toBe(id);
  expect(link.searchParams.get('by')).toBe('alice');

  const tampered = new URL(link);
  tampered.searchParams.set('by', 'mallory');
  const expired = signAckLink(config, { id, key: link.searchParams.get('k')! }, 'alice', Date.now() - 25 * 3_600_000);
  for (const [url, reason] of [
    [tampered.toString(), 'invalid signature'],
    [expired, 'link expired'],
  ] as const) {
    for (const method of ['GET', 'POST']) {
      const res = await fetch(url, { method });
      expect([res.status, ((await res.json()) as { error: string }).error]).toEqual([403, `acknowledge link refused: ${reason}`]);
    }
  }
  const h = dev.client.workflow.getHandle<typeof incident>(id);
  // GET only shows a confirmation (a mail scanner fetching the link acknowledges nothing).
  const confirm = await fetch(link);
  expect(confirm.status).toBe(200);
  expect(await confirm.text()).toMatch(/<form method="post"[^>]*>.*Acknowledge as alice/s);
  expect((await h.query(timelineQuery)).status).toBe('open');

  const ack = await fetch(link, { method: 'POST' });
  expect(ack.status).toBe(200);
  expect(await ack.text()).toMatch(/acknowledged by alice/);
  const view = await h.query(timelineQuery);
  expect(view).toMatchObject({ status: 'acknowledged', acknowledged: { by: 'alice', note: 'acknowledged from the email link' } });
  const again = await fetch(link, { method: 'POST' });
  expect([again.status, ((await again.json()) as { error: string }).error]).toEqual([409, expect.stringMatching(/already acknowledged by alice/)]);
  await h.terminate('test over');
});

test('an acknowledge link acknowledges only its own incident: after it resolved, it cannot acknowledge a newer incident with the same fingerprint', async () => {
  const f = fp();
  const id = `incident/${f}`;
  const linkOf = (raw: string): URL => new URL(/(http:\/\/127\.0\.0\.1:\d+\/ack\?[^\s"<]+)/.exec(raw.replace(/=\r\n/g, '').replace(/=3D/g, '='))![1]!.replace(/&amp;/g, '&'));
  const h = dev.client.workflow.getHandle<typeof incident>(id);

  // Incident A pages alice, then the alert resolves it.
  const a = await openIncident(dev.client, config, { fingerprint: f, title: 'replica lag', severity: 'high', source: 'manual' });
  const linkA = linkOf((await waitUntil('A\'s email', () => mailsTo('alice@example.test', id)[0])).raw);
  expect((await post(payload('resolved', f))).status).toBe(200);
  expect((await h.result()).resolved).toMatchObject({ auto: true });

  // Incident B: the same fingerprint, so the same workflow id, a new run.
  const b = await openIncident(dev.client, config, { fingerprint: f, title: 'replica lag again', severity: 'high', source: 'manual' });
  expect(b.runId).not.toBe(a.runId);
  const linkB = linkOf((await waitUntil('B\'s email', () => mailsTo('alice@example.test', id).find((m) => m.raw.includes('replica lag again')))).raw);

  const stale = await fetch(linkA, { method: 'POST' });
  expect([stale.status, ((await stale.json()) as { error: string }).error]).toEqual([409, 'not acknowledged: incidentKey: this link belongs to an earlier incident with the same id, which is closed; this incident has its own link']);
  expect((await h.query(timelineQuery)).status).toBe('open');
  expect((await h.query(timelineQuery)).timeline.filter((e) => e.event === 'acknowledged')).toEqual([]);

  expect(linkB.searchParams.get('k')).not.toBe(linkA.searchParams.get('k'));

  // B's own link does acknowledge B.
  const ack = await fetch(linkB, { method: 'POST' });
  expect(ack.status).toBe(200);
  expect(await h.query(timelineQuery)).toMatchObject({ status: 'acknowledged', acknowledged: { by: 'alice' } });
  await h.terminate('test over');
});

test('notify retried with the same key (a lost reply) sends nothing twice: email by the sent-log, SMS by the provider\'s list', async () => {
  const { notify } = createActivities({ config });
  const id = `incident/${fp()}`;
  const base = {
    kind: 'page' as const,
    incident: { id, title: 'retry', severity: 'high' as const, openedAt: new Date().toISOString(), level: 1, round: 1 },
    notBefore: new Date().toISOString(),
    to: [{ name: 'alice', email: 'alice@example.test', phone: '+34600000001' }],
  };
  const email: NotifyInput = { ...base, channel: 'email', idempotencyKey: `${id}/r1/l1/email/alice` };
  const text: NotifyInput = { ...base, channel: 'sms', idempotencyKey: `${id}/r1/l1/sms/alice` };
  const first = [await notify(email), await notify(text)];
  const again = [await notify(email), await notify(text)];
  expect(again).toEqual(first);
  expect(mailsTo('alice@example.test', id)).toHaveLength(1);
  expect(sms.messages.filter((m) => m.body.includes(id))).toHaveLength(1);
  // Another step of the same incident is another message.
  await notify({ ...text, idempotencyKey: `${id}/r1/l2/sms/alice` });
  expect(sms.messages.filter((m) => m.body.includes(id))).toHaveLength(2);
});

test('the SMS provider refusing a number fails the notification at once, without the token in the error', async () => {
  const { notify } = createActivities({ config });
  const n: NotifyInput = {
    kind: 'page',
    channel: 'sms',
    idempotencyKey: `bad-number/${fp()}`,
    incident: { id: 'incident/x', title: 'x', severity: 'high', openedAt: new Date().toISOString(), level: 1, round: 1 },
    notBefore: new Date().toISOString(),
    to: [{ name: 'eve', phone: '+1' }],
  };
  const err = await notify(n).then(() => undefined, (e: unknown) => e as Error);
  expect(err?.message).toMatch(/HTTP 400 .*not a valid phone number/);
  expect(err?.message).not.toContain('sms-test-token');
  expect((err as { nonRetryable?: boolean }).nonRetryable).toBe(true);
});

test('runbook ack / resolve from a terminal: the same Updates; a refusal exits 2 with the reason', async () => {
  const f = fp();
  const id = `incident/${f}`;
  await openIncident(dev.client, config, { fingerprint: f, title: 'queue backlog', severity: 'medium', source: 'manual' });
  const file = writeConfigFile(configYaml);
  const ack = await runCli(['--config', file, 'ack', id, '--by', 'carol', '--note', 'draining'], { RUNBOOK_USER: 'carol' });
  expect([ack.exitCode, ack.stdout]).toEqual([0, expect.stringMatching(/^acknowledged by carol at /)]);
  const again = await runCli(['--config', file, 'ack', id, '--by', 'dan']);
  expect([again.exitCode, again.stderr]).toEqual([2, expect.stringContaining('ack: incident already acknowledged by carol')]);
  const resolved = await runCli(['--config', file, 'resolve', id], { RUNBOOK_USER: 'erin' });
  expect([resolved.exitCode, resolved.stdout]).toEqual([0, expect.stringMatching(/^resolved by erin at /)]);
  const outcome = await dev.client.workflow.getHandle<typeof incident>(id).result();
  expect(outcome).toMatchObject({ acknowledged: { by: 'carol', note: 'draining' }, resolved: { by: 'erin' } });
});
});
