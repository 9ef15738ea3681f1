import { spawn } from 'node:child_process';
import { type Client, type Connection } from '@temporalio/client';
import { type Payload, defaultPayloadConverter } from '@temporalio/common';
import { payloadCodecs } from '../src/config/codec';
import { type Config } from '../src/config/schema';
import { freePort, stopPid } from '../src/client/local-servers';
import { ENVIRONMENT, RUNBOOK_NAME, RUNBOOK_STATUS, RUNBOOK_TARGET, TRIGGERED_BY } from '../src/config/search-attributes';
import { createDatabase, servers, testConfig, uniqueName } from './support/servers';
import { seedShop } from './support/shop-data';
import { type WorkerProcess, runCli, startWorkerProcess, writeConfigFile } from './support/processes';
import { abuse, until } from './support/slow-clients';
import { devServerClient } from './support/temporal';
import { startSmtp } from './support/smtp';
import { waitUntil } from './support/wait';

/**
 * What an operator inspecting runs sees: the real CLI starts runbooks on the real worker binary; the run
 * carries its story (search attributes, summary, memo, step names on each activity), the worker's /metrics
 * counts it with the right labels, and its JSON logs name the run and the activity but never a secret.
 */

let client: Client;
let connection: Connection;
let worker: WorkerProcess;
let metricsUrl: string;
let file: string;
let target: string;
let backupId: string;
let restoreId: string;
let cfg: Config;
let missingTarget: string;
let smtp: Awaited<ReturnType<typeof startSmtp>>;

beforeAll(async () => {
  ({ client, connection } = await devServerClient());
  const db = uniqueName('obs');
  await createDatabase(db);
  await seedShop(db, 200, 2);
  const port = await freePort();
  process.env.TEST_SMTP_PASSWORD = 'obs-smtp-pw';
  smtp = await startSmtp('runbooks', 'obs-smtp-pw');
  // A second target whose database was never created: its backup fails with DatabaseMissing.
  const { yaml, config } = testConfig({
    databases: [db, uniqueName('obs_gone')],
    taskQueue: uniqueName('obs'),
    email: { port: smtp.port, user: 'runbooks', passwordEnv: 'TEST_SMTP_PASSWORD', to: ['ops@example.test'] },
    extra: {
      observability: { metricsAddress: `127.0.0.1:${port}` },
      escalation: {
        people: { alice: { email: 'alice@example.test' }, bob: { email: 'bob@example.test' } },
        policies: {
          quick: {
            levels: [
              { targets: ['alice'], channels: ['email'], after: '2s' },
              { targets: ['bob'], channels: ['email'], after: '1h' },
            ],
          },
        },
      },
    },
  });
  target = config.targets.databases[0]!.name;
  missingTarget = config.targets.databases[1]!.name;
  cfg = config;
  metricsUrl = `http://127.0.0.1:${port}/metrics`;
  file = writeConfigFile(yaml);
  worker = await startWorkerProcess(file);
  const env = { RUNBOOK_USER: 'alice' };
  backupId = `backup/${target}/observed`;
  const backup = await runCli(['--config', file, 'start', 'backup', '--id', backupId, '-p', `target=${target}`, '-p', 'reason=before the migration', '--wait'], env);
  expect(backup).toMatchObject({ exitCode: 0 });
  const restore = await runCli(['--config', file, 'start', 'restore', '-p', `target=${target}`, '-p', 'reason=show the plan', '-p', 'dryRun=true', '--wait'], env);
  expect(restore).toMatchObject({ exitCode: 0 });
  restoreId = `restore/${target}`;
});

afterAll(async () => {
  await worker?.stop();
  await connection?.close();
  await smtp?.close();
});

test('a run started from the CLI carries its story: search attributes, summary, details, memo without secrets', async () => {
  const d = await client.workflow.getHandle(backupId).describe();
  expect(d.typedSearchAttributes.get(RUNBOOK_NAME)).toBe('backup');
  expect(d.typedSearchAttributes.get(RUNBOOK_TARGET)).toBe(target);
  expect(d.typedSearchAttributes.get(ENVIRONMENT)).toBe('non-production');
  expect(d.typedSearchAttributes.get(TRIGGERED_BY)).toBe('cli:alice');
  // Upserted by the workflow as it went; the last value says how it ended.
  expect(d.typedSearchAttributes.get(RUNBOOK_STATUS)).toBe('completed');
  expect(await d.staticSummary()).toBe(`backup ${target} (non-production) by cli:alice: before the migration`);
  expect(await d.staticDetails()).toContain('| reason | before the migration |');
  expect(d.memo).toMatchObject({ runbook: 'backup', target, triggeredBy: 'cli:alice', params: { target, kind: 'postgres', reason: 'before the migration' } });
  expect(JSON.stringify(d.memo)).not.toContain(servers().postgres.password);

  // The Web UI's query: runs of a runbook by the new attributes.
  const ids: string[] = [];
  for await (const wf of client.workflow.list({ query: `RunbookName = "backup" AND TriggeredBy = "cli:alice" AND RunbookTarget = "${target}"` })) ids.push(wf.workflowId);
  expect(ids).toEqual([backupId]);
});

test('runbook list filters by the new attributes and shows how each run ended', async () => {
  const list = async (...args: string[]) => {
    const r = await runCli(['--config', file, '--json', 'list', '--target', target, ...args]);
    expect(r.exitCode).toBe(0);
    return (JSON.parse(r.stdout) as Array<{ workflowId: string; step?: string }>).map((x) => [x.workflowId, x.step]);
  };
  expect(await list('--environment', 'non-production', '--triggered-by', 'cli:alice', '--runbook', 'backup')).toEqual([[backupId, 'completed']]);
  expect(await list('--environment', 'production')).toEqual([]);
  expect(await list('--triggered-by', 'cli:bob')).toEqual([]);
  const bad = await runCli(['--config', file, 'list', '--environment', 'staging']);
  expect(bad.exitCode).toBe(2);
  expect(bad.stderr).toContain("argument 'staging' is invalid");
});

test('each activity in the history is labelled with its runbook step', async () => {
  const summaries = async (workflowId: string): Promise<Array<[string, string]>> => {
    const history = await client.workflow.getHandle(workflowId).fetchHistory();
    // Summaries are payloads: stored encrypted like everything else (the test config turns encryption on).
    const decode = async (p: Payload): Promise<string> => {
      let payloads = [p];
      for (const c of [...payloadCodecs(cfg)].reverse()) payloads = await c.decode(payloads);
      return defaultPayloadConverter.fromPayload<string>(payloads[0]!);
    };
    const scheduled = (history.events ?? []).filter((e) => e.activityTaskScheduledEventAttributes);
    expect(scheduled.every((e) => e.userMetadata?.summary?.metadata?.encoding && Buffer.from(e.userMetadata.summary.metadata.encoding).toString() === 'binary/encrypted')).toBe(true);
    return Promise.all(scheduled.map(async (e): Promise<[string, string]> => [e.activityTaskScheduledEventAttributes!.activityType!.name!, await decode(e.userMetadata!.summary!)]));
  };
  expect(await summaries(backupId)).toEqual([
    ['dumpPostgres', 'dump'],
    ['pruneBackups', 'prune'],
  ]);
  expect(await summaries(restoreId)).toEqual([
    ['planRestore', 'plan'],
    ['validateBackup', 'validate'],
  ]);
});

test('/metrics counts runs by runbook and outcome, step and activity durations, next to the SDK runtime metrics', async () => {
  const text = await (await fetch(metricsUrl)).text();
  expect(text).toContain('runbook_runs_total{runbook="backup",outcome="completed"} 1');
  // The restore's own outcome, from its result.
  expect(text).toContain('runbook_runs_total{runbook="restore",outcome="dry-run"} 1');
  expect(text).toContain('runbook_step_duration_seconds_count{runbook="backup",step="dump",outcome="completed"} 1');
  expect(text).toContain('runbook_step_duration_seconds_count{runbook="restore",step="validate",outcome="completed"} 1');
  expect(text).toContain('runbook_activity_duration_seconds_count{activity="dumpPostgres",outcome="completed"} 1');
  expect(text).toMatch(/^runbook_worker_process_cpu_seconds_total /m);
  // Scraped through from the Temporal Core exporter.
  expect(text).toMatch(/^temporal_workflow_completed\{.*workflow_type="backup".*\} 1$/m);
  expect(text).toMatch(/^temporal_activity_execution_latency_count\{/m);
});

test('worker logs are JSON lines naming the run and the activity, with no secret value', () => {
  const lines = worker
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const dump = lines.find((l) => l.msg === 'activity finished' && l.activityType === 'dumpPostgres');
  expect(dump).toMatchObject({ workflowId: backupId, workflowRunId: expect.any(String), activityId: expect.any(String), outcome: 'completed', level: 30 });
  // dumpPostgres resolved the database password; none of the worker's output carries it.
  expect(worker.output()).not.toContain(servers().postgres.password);
});

test('the worker\'s /metrics and the `runbook codec-server` process cut off slowloris clients, cap connections, refuse oversized bodies, and keep answering', async () => {
  const metricsPort = Number(new URL(metricsUrl).port);
  const metrics = await abuse({
    port: metricsPort,
    normal: () => fetch(metricsUrl),
    // /metrics takes no body: a big one is refused (the headers announce it) rather than read.
    oversized: () => fetch(metricsUrl, { method: 'POST', body: 'x'.repeat(2 << 20) }),
  });
  expect(metrics.droppedAtCap).toBeGreaterThanOrEqual(1); // refused at the cap (bounded in abuse())
  expect(metrics.timedOut).toBeGreaterThan(0);
  expect(metrics.oversized).toBe(404);
  expect(worker.output()).toContain('"worker started"');
  await expect(fetch(metricsUrl).then((r) => r.status)).resolves.toBe(200);

  const codecPort = await freePort();
  process.env.TEST_CODEC_TOKEN = 'codec-token-for-the-abuse-test';
  const { yaml } = testConfig({ taskQueue: uniqueName('codec-abuse'), extra: { observability: { codecServer: { address: `127.0.0.1:${codecPort}`, token: { env: 'TEST_CODEC_TOKEN' } } } } });
  const child = spawn(process.execPath, ['dist/client/cli.js', '--config', writeConfigFile(yaml), 'codec-server'], { env: { ...process.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  try {
    await until('the codec server to listen', () => output.includes('codec server on'), 30_000);
    const decode = `http://127.0.0.1:${codecPort}/decode`;
    const auth = { authorization: 'Bearer codec-token-for-the-abuse-test', 'content-type': 'application/json' };
    const codec = await abuse({
      port: codecPort,
      normal: () => fetch(decode, { method: 'POST', headers: auth, body: JSON.stringify({ payloads: [] }) }),
      oversized: () => fetch(decode, { method: 'POST', headers: auth, body: JSON.stringify({ payloads: [{ metadata: {}, data: 'a'.repeat(9 << 20) }] }) }),
    });
    expect(codec.oversized).toBe(413);
    expect(codec.droppedAtCap).toBeGreaterThanOrEqual(1); // refused at the cap (bounded in abuse())
    expect(codec.timedOut).toBeGreaterThan(0);
    expect(child.exitCode).toBeNull();
  } finally {
    await stopPid(child.pid!, 'SIGTERM', 10_000);
  }
}, 120_000);

/** Every JSON log line of the worker so far. */
function logLines(): Array<Record<string, unknown>> {
  return worker
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Every value under a key named like a task token, anywhere in a log line. */
function taskTokenValues(v: unknown, out: string[] = []): string[] {
  if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      if (/task_?token/i.test(k)) out.push(JSON.stringify(x));
      taskTokenValues(x, out);
    }
  }
  return out;
}

test('a worker stopped with SIGTERM finishes and exits by itself (code 0), not killed at the end of the grace period', async () => {
  const second = await startWorkerProcess(file, {}, ['--metrics-address', 'off']);
  await second.stop(); // SIGTERM, then SIGKILL if it is still alive after 30 s
  expect(await second.exited).toBe(0); // a SIGKILLed process has no exit code (null)
  expect(second.output()).toContain('"worker stopped"');
});

test('a failed activity logs its failure type and message; no log line carries a task token', async () => {
  const r = await runCli(['--config', file, 'start', 'backup', '--id', `backup/${missingTarget}/gone`, '-p', `target=${missingTarget}`, '-p', 'reason=no such database', '--wait']);
  expect(r.exitCode).not.toBe(0);
  expect(r.stdout + r.stderr).toContain('does not exist');
  const failed = await waitUntil('the failed dumpPostgres in the worker log', () =>
    Promise.resolve(logLines().find((l) => l.msg === 'Activity failed' && l.activityType === 'dumpPostgres' && l.workflowId === `backup/${missingTarget}/gone`)),
  );
  expect(failed).toMatchObject({ level: 40, error: { name: 'ApplicationFailure', type: 'DatabaseMissing', nonRetryable: true, message: expect.stringMatching(/^targets\.databases\[1\]\.database: database ".+" does not exist$/) } });
  // The workflow it failed ends failed too, and its log line says why.
  const wf = await waitUntil('the failed run in the worker log', () => Promise.resolve(logLines().find((l) => l.msg === 'Workflow failed' && l.workflowId === `backup/${missingTarget}/gone`)));
  expect(wf).toMatchObject({ level: 40, failure: { message: expect.stringContaining('does not exist'), cause: { name: 'ApplicationFailure', type: 'DatabaseMissing', message: expect.stringContaining('does not exist') } } });

  // Activity lines still tell tasks apart, by a short hash of the token, never the token (it completes the task).
  const tokens = logLines().flatMap((l) => taskTokenValues(l));
  expect(tokens.length).toBeGreaterThan(0);
  for (const t of tokens) expect(t).toMatch(/^"sha256:[0-9a-f]{12}"$/);
  // A task token is a protobuf of the namespace, workflow, run and activity ids: as base64 well over 80 characters.
  expect(worker.output()).not.toMatch(/[A-Za-z0-9+/]{80,}={0,2}/);
  expect(worker.output()).not.toContain(servers().postgres.password);
});

test('an incident that escalates to level 2 is counted in /metrics', async () => {
  const r = await runCli(['--config', file, 'start', 'incident', '-p', 'title=disk full on db1', '-p', 'policy=quick']);
  expect(r.exitCode).toBe(0);
  // Level 2 is bob: his page means the ladder moved on once.
  await waitUntil('the level 2 page to bob', () => Promise.resolve(smtp.received.find((m) => m.rcptTo.includes('bob@example.test'))), 60_000);
  const text = await (await fetch(metricsUrl)).text();
  expect(text).toContain('runbook_escalations_total{runbook="incident"} 1');
  const resolved = await runCli(['--config', file, 'resolve', 'incident/manual-disk-full-on-db1', '--by', 'alice']);
  expect(resolved.exitCode).toBe(0);
});

test('a failed workflow task logs why as a JSON line, and Temporal Core\'s line about it is JSON too', async () => {
  // No such workflow: every workflow task of this run fails (and is retried) until someone fixes the worker.
  const h = await client.workflow.start('noSuchRunbook', { taskQueue: cfg.temporal.taskQueue, workflowId: uniqueName('obs-wft'), args: [] });
  try {
    const mine = (l: Record<string, unknown>) => l.runId === h.firstExecutionRunId || l.run_id === h.firstExecutionRunId;
    const sdk = await waitUntil('the SDK line for the failed activation', () => Promise.resolve(logLines().find((l) => mine(l) && l.msg === 'Failed to process Workflow Activation')), 30_000);
    expect(sdk).toMatchObject({ level: 50, error: { message: "Failed to initialize workflow of type 'noSuchRunbook': no such function is exported by the workflow bundle" } });
    const core = await waitUntil('Core\'s line for the failed workflow task', () => Promise.resolve(logLines().find((l) => mine(l) && l.msg === 'Failing workflow task')), 30_000);
    // Core sees the failure as it goes to the server: encrypted (temporal.encryption), so the SDK line above is the readable one.
    expect(core).toMatchObject({ level: 40, sdkComponent: 'core', failure: expect.stringContaining('Encoded failure') });
  } finally {
    await h.terminate('test done');
  }
});
