import { spawn } from 'node:child_process';
import { WorkflowNotFoundError } from '@temporalio/client';
import { type Worker } from '@temporalio/worker';
import { execa } from 'execa';
import { parse, stringify } from 'yaml';
import { freePort, stopPid } from '../src/client/local-servers';
import { startChatops } from '../src/client/chatops';
import { openIncident } from '../src/client/incidents';
import { type ChatopsServer } from '../src/client/chatops/server';
import { parseConfig } from '../src/config/load';
import { isoSecond } from '../src/config/runbooks';
import { type Config } from '../src/config/schema';
import { createRunbookWorker } from '../src/workers/worker';
import { type incident } from '../src/workflows/incident';
import { type RestoreOutcome } from '../src/workflows/restore-database';
import { actionBody, commandBody, signedPost } from './support/chat';
import { abuse } from './support/slow-clients';
import { recordHistory } from './support/histories';
import { writeConfigFile } from './support/processes';
import { damage, databasesLike, serviceContainer } from './support/restore-fixture';
import { restoreTimeline, startSlackOutage } from './support/chat-timeline';
import { createDatabase, servers, testConfig, uniqueName } from './support/servers';
import { fingerprint, seedShop } from './support/shop-data';
import { type FakeSlack, startFakeSlack } from './support/slack-api';
import { useDevServer, workflowBundle } from './support/temporal';

// ChatOps end to end: signed Slack requests to the real ChatOps server, runs on the real Temporal dev server and a
// real worker against the shared PostgreSQL, chat through the local Slack Web API (test/support/slack-api.ts).

const dev = useDevServer();
const SECRET = 'test-signing-secret-8f3a';
const ALICE = 'U0ALICE';
const BOB = 'U0BOB';
const CAROL = 'U0CAROL'; // an approver through the Slack user group S0LEADS
const MALLORY = 'U0MALLORY'; // no role at all

let slack: FakeSlack;
beforeAll(async () => {
  slack = await startFakeSlack();
  slack.groups.S0LEADS = [CAROL];
});
afterAll(() => slack.close());

interface Setup {
  db: string;
  target: string;
  config: Config;
  chat: ChatopsServer;
  worker: Worker;
  running: Promise<void>;
  stop(): Promise<void>;
}

/** A seeded database, a config with chatops rules for it, a worker and the ChatOps server. */
async function setup(opts: { production?: boolean; quorum?: number; tweak?: (raw: any) => void } = {}): Promise<Setup> {
  const db = uniqueName('chat');
  await createDatabase(db);
  await seedShop(db, 300, 2);
  process.env.TEST_SIGNING_SECRET = SECRET;
  const base = testConfig({ databases: [db], taskQueue: uniqueName('chat'), slack: { apiUrl: slack.apiUrl, token: slack.token, channel: 'C0OPS' } });
  const raw = parse(base.yaml);
  const target = base.config.targets.databases[0]!.name;
  raw.targets.databases[0].production = opts.production ?? false;
  raw.chatops = {
    signingSecret: { env: 'TEST_SIGNING_SECRET' },
    people: { [ALICE]: 'alice', [BOB]: 'bob', [CAROL]: 'carol' },
    roles: { ops: [ALICE, BOB], leads: [BOB, 'S0LEADS'] },
    rules: [{ runbooks: ['backup', 'restore'], targets: [target], run: ['ops'], approve: ['leads', ALICE], quorum: opts.quorum ?? 1 }],
    // These tests read the answer in the HTTP response; a loaded CI machine may take longer than the 250 ms
    // default to start a run (the response_url path has its own test in chatops-parser.test.ts).
    ackWithin: '2500ms',
  };
  opts.tweak?.(raw);
  const config = parseConfig(stringify(raw), 'chatops-test.yaml');
  const worker = await createRunbookWorker({ config, connection: dev.workerConnection, workflowBundle: await workflowBundle() });
  const running = worker.run();
  const chat = await startChatops(config, dev.client, { port: 0 });
  return {
    db,
    target,
    config,
    chat,
    worker,
    running,
    stop: async () => {
      await chat.close();
      worker.shutdown();
      await running;
    },
  };
}

const command = (s: Setup, user: string, text: string, opts: { timestamp?: number; signature?: string | null; secret?: string } = {}) =>
  signedPost(`${s.chat.url}/slack/commands`, SECRET, commandBody({ user_id: user, text }), opts);

async function waitFor<T>(probe: () => T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function press(s: Setup, user: string, actionId: string, value: string): Promise<string> {
  const id = uniqueName('resp');
  const r = await signedPost(`${s.chat.url}/slack/actions`, SECRET, actionBody({ user_id: user, action_id: actionId, value, response_url: slack.responseUrl(id) }));
  expect(r.status).toBe(200);
  return until(() => (slack.responses[id]?.[0] as { text?: string } | undefined)?.text);
}

async function until<T>(fn: () => T | undefined | Promise<T | undefined>, ms = 60_000): Promise<T> {
  for (const deadline = Date.now() + ms; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
    const v = await fn();
    if (v !== undefined && v !== null && v !== false) return v;
  }
  throw new Error('timed out waiting');
}

async function notStarted(workflowId: string): Promise<void> {
  await expect(dev.client.workflow.getHandle(workflowId).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
}

test('a signed /runbook backup is acknowledged with its id and link and runs; bad, missing or stale signatures get 401 and start nothing; a replay starts nothing twice', async () => {
  const s = await setup();
  try {
    const ts = Math.floor(Date.now() / 1000);
    const body = commandBody({ user_id: ALICE, text: `backup target=${s.target}` });
    const t0 = performance.now();
    const r = await signedPost(`${s.chat.url}/slack/commands`, SECRET, body, { timestamp: ts });
    const ackMs = performance.now() - t0;
    console.log(`slash command acknowledged in ${ackMs.toFixed(0)} ms (Slack waits 3000 ms)`);
    expect(r.status).toBe(200);
    const id = `backup/${s.target}/${isoSecond(new Date(ts * 1000))}`;
    expect(r.json()).toMatchObject({ response_type: 'in_channel' });
    expect(r.json().text).toContain(`\`${id}\``);
    expect(r.json().text).toContain(`http://localhost:8233/namespaces/default/workflows/${encodeURIComponent(id)}`);
    const handle = dev.client.workflow.getHandle(id);
    const firstRun = (await handle.describe()).runId;
    await handle.result();
    await recordHistory(id, 'backup-chatops');

    // Progress: one message in the channel, updated in place until the run completed.
    const progress = await until(() => slack.messages.find((m) => m.channel === 'C0OPS' && m.text?.includes(`\`${id}\``) && m.text.includes('— completed')));
    expect(progress.thread_ts).toBeUndefined();
    expect(progress.edits.length).toBeGreaterThan(2);
    expect(progress.text).toMatch(/✅ dump — .*\.dump: \d+ bytes/);
    expect(progress.text).toMatch(/✅ prune — kept 1, pruned 0/);
    expect(slack.messages.filter((m) => m.text?.includes(`\`${id}\``))).toHaveLength(1);

    // The very same request again (same body, timestamp and signature): the first reply, nothing started.
    const replay = await signedPost(`${s.chat.url}/slack/commands`, SECRET, body, { timestamp: ts });
    expect(replay.json()).toEqual(r.json());
    expect((await handle.describe()).runId).toBe(firstRun);
    // Replayed to a restarted server (its replay cache empty): the id made from the request's clock is refused.
    const again = await startChatops(s.config, dev.client, { port: 0 });
    try {
      const late = await signedPost(`${again.url}/slack/commands`, SECRET, body, { timestamp: ts });
      expect(late.json().text).toContain(`\`${id}\` was already started`);
    } finally {
      await again.close();
    }
    expect((await handle.describe()).runId).toBe(firstRun);

    // Refused before anything happens: each request has its own timestamp, so its would-be id is known.
    const cases: Array<[string, { timestamp: number; signature?: string | null; secret?: string }]> = [
      ['unsigned', { timestamp: ts - 10, signature: null }],
      ['wrong secret', { timestamp: ts - 20, secret: 'not-the-secret' }],
      ['garbage signature', { timestamp: ts - 30, signature: 'v0=deadbeef' }],
      ['stale (6 min old, correctly signed)', { timestamp: ts - 360 }],
    ];
    for (const [what, opts] of cases) {
      const bad = await command(s, ALICE, `backup target=${s.target}`, opts);
      expect([what, bad.status]).toEqual([what, 401]);
      await notStarted(`backup/${s.target}/${isoSecond(new Date(opts.timestamp * 1000))}`);
    }
  } finally {
    await s.stop();
  }
});

test('RBAC: a user without the role is refused with a clear message and nothing starts; bad parameters are shown to the user', async () => {
  const s = await setup();
  try {
    const ts = Math.floor(Date.now() / 1000);
    const r = await command(s, MALLORY, `backup target=${s.target}`, { timestamp: ts });
    expect(r.json()).toEqual({ response_type: 'ephemeral', text: `:no_entry: <@${MALLORY}> may not run backup (allowed: ops)` });
    await notStarted(`backup/${s.target}/${isoSecond(new Date(ts * 1000))}`);
    // Bad parameters from someone who may not run it: the same answer (nothing learnt about the runbook's inputs).
    const outsiderBad = await command(s, MALLORY, `backup target=${s.target} prune=maybe colour=red`, { timestamp: ts - 2 });
    expect(outsiderBad.json()).toEqual(r.json());

    const bad = await command(s, ALICE, `backup target=${s.target} prune=maybe colour=red`, { timestamp: ts - 1 });
    expect(bad.json().response_type).toBe('ephemeral');
    expect(bad.json().text).toContain('colour: unknown parameter for runbook backup');
    await notStarted(`backup/${s.target}/${isoSecond(new Date((ts - 1) * 1000))}`);

    const help = await command(s, MALLORY, 'help');
    expect(help.json().text).toContain('/runbook <runbook> key=value');
  } finally {
    await s.stop();
  }
});

test('RB-01 from chat with quorum 2: the requester, a non-approver and a second vote by the same person are refused; the second approver\'s button resumes the restore', async () => {
  const s = await setup({ production: true, quorum: 2 });
  try {
    // A real backup first, then the incident: rows deleted, a table dropped.
    const b = await command(s, BOB, `backup target=${s.target}`);
    const backupId = /`(backup\/[^`]+)`/.exec(b.json().text as string)![1]!;
    await dev.client.workflow.getHandle(backupId).result();
    const atBackup = await fingerprint(s.db);
    await damage(s.db);

    const r = await command(s, ALICE, `restore target=${s.target} reason="orders table damaged"`);
    expect(r.json().text).toContain(`\`restore/${s.target}\``);
    const handle = dev.client.workflow.getHandle(`restore/${s.target}`);

    // The approval request arrives in the run's thread with its buttons.
    const request = await until(() => slack.messages.find((m) => m.thread_ts && m.text?.includes(`Restore of *${s.target}*`)));
    expect(request.text).toContain('needs 2 approvals (requested by alice, who cannot approve it)');
    expect(JSON.stringify(request.blocks)).toContain('"action_id":"runbook_approve"');
    const parent = slack.messages.find((m) => m.ts === request.thread_ts)!;
    expect(parent.text).toContain(`\`restore/${s.target}\``);

    expect(await press(s, ALICE, 'runbook_approve', handle.workflowId)).toBe(':no_entry: by: alice requested this restore and cannot approve it');
    expect(await press(s, MALLORY, 'runbook_approve', handle.workflowId)).toContain(`<@${MALLORY}> may not approve restore on ${s.target}`);
    expect(await press(s, BOB, 'runbook_approve', handle.workflowId)).toMatch(/approved by bob at .* — 1 more approval\(s\) needed/);
    expect(await press(s, BOB, 'runbook_approve', handle.workflowId)).toContain('by: bob has already approved; 1 more approver(s) needed');
    expect(await databasesLike(s.db)).toEqual([s.db]); // still waiting: nothing touched
    expect(await press(s, CAROL, 'runbook_approve', handle.workflowId)).toMatch(/approved by carol at /);

    const result: RestoreOutcome = await handle.result();
    if (result.outcome !== 'restored') throw new Error(result.outcome);
    await recordHistory(handle.workflowId, 'restore-chatops-quorum');
    expect(result.approvals?.map((a) => [a.by, a.decision])).toEqual([
      ['bob', 'approved'],
      ['carol', 'approved'],
    ]);
    expect(result.approvals?.every((a) => !Number.isNaN(Date.parse(a.at)))).toBe(true);
    expect(await fingerprint(s.db)).toEqual(atBackup);

    // The thread shows the outcome: buttons replaced by who approved, the progress message completed.
    await until(() => slack.messages.find((m) => m.ts === request.ts)?.text?.includes('Approved by bob, carol'));
    const done = await until(() => slack.messages.find((m) => m.ts === parent.ts && m.text?.includes('— completed')));
    expect(done.text).toContain('✅ approval — approved by bob, carol');
    expect(done.text).toContain('✅ swap');
    await dev.client.workflow.getHandle(result.dropWorkflowId).terminate('test over');
  } finally {
    await s.stop();
  }
});

test('a restore from chat while the Slack API is down: no chat activity is scheduled while services are down, and it completes', async () => {
  const outage = await startSlackOutage();
  const service = await serviceContainer();
  const s = await setup({
    tweak: (raw) => {
      raw.notifications.slack.apiUrl = outage.apiUrl;
      raw.targets.dockerHosts = [{ name: 'local', dockerHost: servers().docker.host }];
      raw.targets.services = [{ name: 'api', host: 'local', containers: [service.name], healthUrl: service.healthUrl }];
      raw.targets.databases[0].services = ['api'];
    },
  });
  try {
    const taskQueue = s.config.temporal.taskQueue;
    await dev.client.workflow.execute('backup', { taskQueue, workflowId: `backup/${s.target}/${Date.now()}`, args: [{ target: s.target, kind: 'postgres', prune: false }] });
    const atBackup = await fingerprint(s.db);
    await damage(s.db);

    const r = await command(s, ALICE, `restore target=${s.target} reason="orders table damaged"`);
    expect(r.json().text).toContain(`\`restore/${s.target}\``);
    const handle = dev.client.workflow.getHandle(`restore/${s.target}`);
    const result: RestoreOutcome = await handle.result();
    if (result.outcome !== 'restored') throw new Error(result.outcome);
    await dev.client.workflow.getHandle(result.dropWorkflowId).terminate('test over');
    await recordHistory(handle.workflowId, 'restore-chatops-slack-down');
    expect(await fingerprint(s.db)).toEqual(atBackup);
    expect(await service.running()).toBe(true);

    const fromChat = restoreTimeline(await handle.fetchHistory());

    // The same restore started by the client (no chat): downtime and duration from both histories, for the report.
    const plain = await dev.client.workflow.start('restoreDatabase', { taskQueue, workflowId: `restore/${s.target}`, args: [{ target: s.target, backup: 'latest', dryRun: false, reason: 'test: compare' }] });
    const again: RestoreOutcome = await plain.result();
    if (again.outcome !== 'restored') throw new Error(again.outcome);
    await dev.client.workflow.getHandle(again.dropWorkflowId).terminate('test over');
    const fromClient = restoreTimeline(await plain.fetchHistory());
    console.log(
      `restore from chat with the Slack API down: downtime ${fromChat.downtimeMs.toFixed(0)} ms, duration ${fromChat.durationMs.toFixed(0)} ms, ${fromChat.chatScheduled} chat activities; ` +
        `from the client: downtime ${fromClient.downtimeMs.toFixed(0)} ms, duration ${fromClient.durationMs.toFixed(0)} ms`,
    );
    expect(fromChat.chatScheduled).toBeGreaterThan(0); // the run did report to chat (and Slack refused)
    expect(outage.calls()).toBeGreaterThan(0);
    expect(fromChat.chatInWindow).toEqual([]);
  } finally {
    await s.stop();
    await service.remove();
    await outage.close();
  }
});

test('status, list and cancel from chat: a production restore waiting for approval is shown, a user without the role cannot cancel it, an operator can', async () => {
  const s = await setup({ production: true });
  try {
    const b = await command(s, BOB, `backup target=${s.target}`);
    await dev.client.workflow.getHandle(/`(backup\/[^`]+)`/.exec(b.json().text as string)![1]!).result();
    await command(s, ALICE, `restore target=${s.target} reason="cancel me"`);
    const id = `restore/${s.target}`;
    const status = await until(async () => {
      const r = (await command(s, CAROL, `status ${id}`)).json().text as string;
      return r.includes('waiting for approval 0/1') ? r : undefined;
    });
    expect(status).toContain(`\`${id}\` (restoreDatabase) RUNNING`);
    expect(status).toMatch(/completed +validate/);
    expect(await until(async () => ((await command(s, BOB, `list ${s.target}`)).json().text as string).includes(`RUNNING    \`${id}\``))).toBe(true);
    // Somebody no rule lets run or approve it sees neither the run nor the list, and cannot tell it from no run at all.
    expect((await command(s, MALLORY, `status ${id}`)).json().text).toBe(`:no_entry: <@${MALLORY}> may not see \`${id}\`: it is not a run of a runbook and target you may run or approve`);
    expect((await command(s, MALLORY, 'status restore/no-such-run')).json().text).toBe(`:no_entry: <@${MALLORY}> may not see \`restore/no-such-run\`: it is not a run of a runbook and target you may run or approve`);
    expect((await command(s, MALLORY, `list ${s.target}`)).json().text).toBe(`:no_entry: <@${MALLORY}> may not list runs of ${s.target}: no chatops rule lets you run or approve anything on ${s.target}`);

    expect((await command(s, MALLORY, `cancel ${id}`)).json().text).toContain(`<@${MALLORY}> may not run restore on ${s.target}`);
    expect((await dev.client.workflow.getHandle(id).describe()).status.name).toBe('RUNNING');
    expect((await command(s, BOB, `cancel ${id}`)).json()).toMatchObject({ response_type: 'in_channel', text: expect.stringContaining(`asked \`${id}\` to cancel`) });
    await expect(dev.client.workflow.getHandle(id).result()).rejects.toThrow('Workflow execution cancelled');
    expect((await dev.client.workflow.getHandle(id).describe()).status.name).toBe('CANCELLED');
    expect(await databasesLike(s.db)).toEqual([s.db]);
    expect((await command(s, BOB, 'status restore/no-such-run')).json().text).toBe(':grey_question: no run with id `restore/no-such-run`');
  } finally {
    await s.stop();
  }
});

test('incident buttons on the real incident workflow: the Slack message it posted carries them; ack and resolve record who pressed', async () => {
  const s = await setup({
    tweak: (raw) => {
      raw.chatops.incidents = ['ops'];
      raw.escalation = {
        people: { alice: { slack: ALICE }, bob: { slack: BOB } },
        policies: { chat: { levels: [{ targets: ['alice', 'bob'], channels: ['slack'], after: '1h' }] } },
        severities: { critical: 'chat' },
      };
    },
  });
  try {
    const fp = uniqueName('chatinc').replace(/_/g, '');
    const { workflowId } = await openIncident(dev.client, s.config, { fingerprint: fp, title: 'checkout down', severity: 'critical', source: 'manual' });
    // The incident's own Slack message, with the buttons the handler answers to.
    const root = await waitFor(() => slack.messages.find((m) => !m.thread_ts && JSON.stringify(m.blocks ?? []).includes(workflowId)));
    const buttons = (root.blocks as Array<{ elements?: Array<{ action_id?: string; value?: string }> }>).flatMap((b) => b.elements ?? []);
    expect(buttons.filter((e) => e.value === workflowId).map((e) => e.action_id).sort()).toEqual(['incident_ack', 'incident_resolve']);

    expect(await press(s, MALLORY, 'incident_ack', workflowId)).toContain('may not acknowledge or resolve incidents');
    expect(await press(s, ALICE, 'incident_ack', workflowId)).toContain('acknowledged by alice');
    expect(await press(s, BOB, 'incident_ack', workflowId)).toMatch(/already acknowledged by alice/);
    expect(await press(s, BOB, 'incident_resolve', workflowId)).toContain('resolved by bob');
    const result = await dev.client.workflow.getHandle<typeof incident>(workflowId).result();
    expect(result.acknowledged?.by).toBe('alice');
    expect(result.resolved.by).toBe('bob');
  } finally {
    await s.stop();
  }
});

test('the ChatOps process (dist/client/chatops/main.js) serves with the config, refuses unsigned requests, and stops on SIGTERM', async () => {
  const port = await freePort();
  process.env.TEST_SIGNING_SECRET = SECRET;
  const raw = parse(testConfig({ taskQueue: uniqueName('chat'), slack: { apiUrl: slack.apiUrl, token: slack.token, channel: 'C0OPS' } }).yaml);
  raw.chatops = { signingSecret: { env: 'TEST_SIGNING_SECRET' }, port, roles: { ops: [ALICE] }, rules: [{ runbooks: ['*'], run: ['ops'] }] };
  const file = writeConfigFile(stringify(raw));
  const missing = await execa(process.execPath, ['dist/client/chatops/main.js', '--config', file], { env: { TEST_SIGNING_SECRET: '' }, reject: false, timeout: 30_000 });
  expect(missing.exitCode).toBe(2);
  expect(missing.stderr).toContain('chatops.signingSecret: environment variable TEST_SIGNING_SECRET is not set or empty');

  const child = spawn(process.execPath, ['dist/client/chatops/main.js', '--config', file], { env: { ...process.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  try {
    await until(() => output.includes('chatops started'), 30_000).catch((e: unknown) => {
      throw new Error(`${String(e)}: ${output}`);
    });
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    const unsigned = await signedPost(`http://127.0.0.1:${port}/slack/commands`, SECRET, commandBody({ user_id: ALICE, text: 'list' }), { signature: null });
    expect(unsigned.status).toBe(401);
    const signed = await signedPost(`http://127.0.0.1:${port}/slack/commands`, SECRET, commandBody({ user_id: ALICE, text: 'help' }));
    expect(signed.json().text).toContain('/runbook status <id>');
    expect(output).not.toContain(SECRET);
  } finally {
    await stopPid(child.pid!, 'SIGTERM', 10_000);
  }
  expect(child.exitCode ?? child.signalCode).toBe(0);
});

test('the ChatOps process cuts off slowloris clients, caps its connections, refuses a body over 64 KiB unread, and keeps answering', async () => {
  const port = await freePort();
  process.env.TEST_SIGNING_SECRET = SECRET;
  const raw = parse(testConfig({ taskQueue: uniqueName('chat'), slack: { apiUrl: slack.apiUrl, token: slack.token, channel: 'C0OPS' } }).yaml);
  raw.chatops = { signingSecret: { env: 'TEST_SIGNING_SECRET' }, port, roles: { ops: [ALICE] }, rules: [{ runbooks: ['*'], run: ['ops'] }] };
  const file = writeConfigFile(stringify(raw));
  const child = spawn(process.execPath, ['dist/client/chatops/main.js', '--config', file], { env: { ...process.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  try {
    await until(() => output.includes('chatops started'), 30_000);
    const url = `http://127.0.0.1:${port}/slack/commands`;
    const report = await abuse({
      port,
      normal: async () => {
        const r = await signedPost(url, SECRET, commandBody({ user_id: ALICE, text: 'help' }));
        return new Response(r.body, { status: r.status });
      },
      // Unsigned and 65 KiB + 1: refused for its size before anything looks at a signature.
      oversized: () => fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `text=${'a'.repeat(64 * 1024 - 4)}` }),
    });
    expect(report.oversized).toBe(413);
    expect(report.droppedAtCap).toBeGreaterThanOrEqual(1); // refused at the cap (bounded in abuse())
    expect(report.timedOut).toBeGreaterThan(0);
    // The signed body at the limit is still read and answered.
    const atLimit = await signedPost(url, SECRET, `${commandBody({ user_id: ALICE, text: 'help' })}&pad=${'a'.repeat(60 * 1024)}`);
    expect(atLimit.json().text).toContain('/runbook status <id>');
    expect(child.exitCode).toBeNull();
  } finally {
    await stopPid(child.pid!, 'SIGTERM', 10_000);
  }
}, 90_000);
