import { type Client, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { parse, stringify } from 'yaml';
import { type RestorePlan, type RunbookActivities, createActivities } from '../src/activities';
import { ChatOps, temporalBackend } from '../src/client/chatops/commands';
import { Rbac } from '../src/client/chatops/rbac';
import { startChatopsServer } from '../src/client/chatops/server';
import { temporalBinary } from '../src/client/local-servers';
import { parseConfig } from '../src/config/load';
import { type Config } from '../src/config/schema';
import { type RunbookStatus, type StepQuestion, stepDecisionUpdate } from '../src/workflows/definitions';
import { type BackupResult } from '../src/workflows/backup';
import { type RestoreOutcome } from '../src/workflows/restore-database';
import { actionBody, signedPost } from './support/chat';
import { runCli, writeConfigFile } from './support/processes';
import { testConfig, uniqueName } from './support/servers';
import { type FakeSlack, startFakeSlack } from './support/slack-api';
import { workflowBundle } from './support/temporal';

// "A failed step becomes a question, not a dead run" (src/workflows/ask-on-failure.ts), on the time-skipping test
// server: the steps' activities are mocked to fail after all their retries (minutes of backoff skipped); the chat
// activities are the real ones, against the local Slack Web API; answers come from a button, the CLI, an Update.

let env: TestWorkflowEnvironment;
let plain: Client;
let slack: FakeSlack;

beforeAll(async () => {
  slack = await startFakeSlack();
});
afterAll(() => slack.close());
beforeEach(async () => {
  env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: temporalBinary('temporal-test-server') } },
  });
  plain = env.client; // (the handles below poll; they do not await results until the end)
}, 60_000);
afterEach(async () => {
  await env?.teardown();
});

function config(taskQueue: string): { config: Config; yaml: string } {
  process.env.TEST_SIGNING_SECRET = 'ask-secret';
  const raw = parse(testConfig({ taskQueue, slack: { apiUrl: slack.apiUrl, token: slack.token, channel: 'C0OPS' } }).yaml);
  raw.temporal.address = env.address;
  delete raw.temporal.encryption; // the time-skipping server's clients and workers here use no payload codec
  raw.chatops = { signingSecret: { env: 'TEST_SIGNING_SECRET' }, people: { U0ALICE: 'alice' }, roles: { ops: ['U0ALICE'] }, rules: [{ runbooks: ['*'], run: ['ops'] }] };
  const yaml = stringify(raw);
  return { config: parseConfig(yaml, 'ask.yaml'), yaml };
}

/** Skip server time a minute at a time until the run asks a question (the failing step's retries take minutes). */
async function question(handle: WorkflowHandle): Promise<StepQuestion> {
  for (let i = 0; i < 60; i++) {
    const s = await handle.query<RunbookStatus>('status');
    if (s.question) return s.question;
    if (s.state !== 'running' && !s.question && s.timeline.at(-1)?.state !== 'running') throw new Error(`run ended without a question: ${JSON.stringify(s)}`);
    await env.sleep('1 minute');
  }
  throw new Error('no question after 60 minutes of server time');
}

const retryable = (msg: string) => ApplicationFailure.retryable(msg, 'Flaky');

test('backup: a prune failing after its retries asks in the run\'s thread; the Skip button finishes the run with the backup kept', async () => {
  const taskQueue = uniqueName('ask');
  const { config: cfg } = config(taskQueue);
  const real = createActivities({ config: cfg });
  let prunes = 0;
  const activities: Partial<RunbookActivities> = {
    postSlackMessage: real.postSlackMessage,
    updateSlackMessage: real.updateSlackMessage,
    dumpPostgres: (input) => Promise.resolve({ id: input.backupId, target: input.target, kind: 'postgres', file: `${input.backupId}.dump`, sizeBytes: 10, sha256: 'ab'.repeat(32), createdAt: input.createdAt } as never),
    pruneBackups: () => {
      prunes += 1;
      throw retryable('backup folder is on a read-only filesystem');
    },
  };
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: await workflowBundle(), activities });
  const backend = temporalBackend(plain, cfg);
  // The time-skipping server keeps no search attributes; ChatOps reads runbook and target from them.
  const chatops = new ChatOps(cfg, { ...backend, describe: async (id) => ({ ...(await backend.describe(id)), runbook: 'backup', target: 'shop' }) }, new Rbac(cfg, () => Promise.resolve([])));
  const server = await startChatopsServer({ chatops, signingSecret: 'ask-secret' });
  try {
    await worker.runUntil(async () => {
      const workflowId = `backup/shop/${uniqueName('t')}`;
      const handle = await plain.workflow.start('backup', {
        taskQueue,
        workflowId,
        args: [{ target: 'shop', kind: 'postgres', prune: true }],
        memo: { chat: { channel: 'C0OPS', requestedBy: 'alice' } },
      });
      const q = await question(handle);
      expect(q).toMatchObject({ step: 'prune', error: 'backup folder is on a read-only filesystem', options: ['retry', 'skip', 'abort'] });
      expect(prunes).toBe(10); // every retry ran first

      const parent = slack.messages.find((m) => m.text?.includes(`\`${workflowId}\``))!;
      const asked = slack.messages.find((m) => m.thread_ts === parent.ts && m.text?.includes('*prune* failed after its retries'))!;
      const buttons: Array<{ action_id: string; value: string }> = (asked.blocks as any[]).find((b) => b.type === 'actions').elements;
      expect(buttons.map((b) => b.action_id)).toEqual(['runbook_retry', 'runbook_skip', 'runbook_abort']);

      const responseId = uniqueName('r');
      const skip = buttons.find((b) => b.action_id === 'runbook_skip')!;
      const body = actionBody({ user_id: 'U0ALICE', action_id: 'runbook_skip', value: skip.value, response_url: slack.responseUrl(responseId) });
      expect((await signedPost(`${server.url}/slack/actions`, 'ask-secret', body)).status).toBe(200);
      // The button is acknowledged at once; the answer's outcome follows on response_url.
      for (const deadline = Date.now() + 30_000; !slack.responses[responseId] && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50));
      expect((slack.responses[responseId]?.[0] as { text: string }).text).toContain('skip "prune" (by alice)');
      const result: BackupResult = await handle.result();
      expect(result.retention).toBeUndefined();
      expect(result.manifest.id).toBe(result.backupId);

      const status = await handle.query<RunbookStatus>('status');
      expect(status.question).toBeUndefined();
      expect(status.timeline.map((t) => `${t.step}: ${t.state}${t.step.startsWith('question') ? ` (${t.detail})` : ''}`)).toEqual([
        'dump: completed',
        'prune: failed',
        'question: prune: completed (skip by alice)',
      ]);
      // The question's buttons were replaced by the answer; the progress message says completed.
      expect(slack.messages.find((m) => m.ts === asked.ts)?.text).toContain('→ skip by alice');
      expect(slack.messages.find((m) => m.ts === parent.ts)?.text).toContain('— completed');
    });
  } finally {
    await server.close();
  }
});

function plan(target: string): RestorePlan {
  return {
    target,
    database: target,
    production: false,
    backup: { id: `${target}-20260101T000000Z-aaaa`, file: 'x.dump', sha256: 'ab'.repeat(32), sizeBytes: 10, createdAt: '2026-01-01T00:00:00.000Z' },
    asideDb: `${target}__restore_abcd1234`,
    oldDb: `${target}__pre_restore_abcd1234`,
    failedDb: `${target}__failed_restore_abcd1234`,
    services: [],
    jobs: 1,
    keepOldForMs: 1000,
    approvalTimeoutMs: 1000,
    checks: [],
  };
}

/** RB-01 with mocked steps: `failing` fails (retryably) until `fixed()`; the rest succeed. */
function restoreActivities(failing: 'restoreAside' | 'dumpPostgres') {
  let broken = true;
  const calls: string[] = [];
  const ok = <T>(name: string, v: T) => () => {
    calls.push(name);
    return Promise.resolve(v);
  };
  const activities: Partial<RunbookActivities> = {
    planRestore: (input) => Promise.resolve(plan(input.target)),
    validateBackup: ok('validate', { entries: 3 }) as never,
    dumpPostgres: ok('dumpPostgres', { id: 'safety', file: 'safety.dump', sizeBytes: 1 }) as never,
    restoreAside: ok('restoreAside', { reused: false, durationMs: 5 }),
    verifyRestoredCopy: ok('verify', []),
    swapDatabases: ok('swap', { state: 'swapped', terminatedSessions: 0 }) as never,
    swapBack: ok('swapBack', {}) as never,
    checkProductionHealth: ok('health', []),
    dropScratchDatabase: ok('drop', { dropped: true }),
  };
  const original = activities[failing] as () => Promise<unknown>;
  activities[failing] = (() => {
    if (broken) {
      calls.push(`${failing} failed`);
      throw retryable(`${failing}: disk full`);
    }
    return original();
  }) as never;
  return { activities, calls, fix: () => (broken = false) };
}

test('restore: "restore aside" failing after its retries waits for an answer; skip is not offered; `runbook answer … retry` (CLI) resumes it and the restore completes', async () => {
  const taskQueue = uniqueName('ask');
  const { yaml } = config(taskQueue);
  const { activities, calls, fix } = restoreActivities('restoreAside');
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: await workflowBundle(), activities });
  await worker.runUntil(async () => {
    const handle = await plain.workflow.start('restoreDatabase', {
      taskQueue,
      workflowId: `restore/${uniqueName('db')}`,
      args: [{ target: 'shop', backup: 'latest', dryRun: false, reason: 'test' }],
    });
    const q = await question(handle);
    expect(q).toMatchObject({ step: 'restore aside', error: 'restoreAside: disk full', options: ['retry', 'abort'] });
    expect(calls.filter((c) => c === 'restoreAside failed')).toHaveLength(5);
    expect(calls).not.toContain('swap'); // production untouched while it waits

    // Refused answers change nothing: skipping a restore step is not offered, an answer to another step is stale.
    await expect(handle.executeUpdate(stepDecisionUpdate, { args: [{ answer: 'skip', by: 'bob' }] })).rejects.toMatchObject({ cause: { message: 'answer: "skip" is not possible here (choose retry, abort)' } });
    await expect(handle.executeUpdate(stepDecisionUpdate, { args: [{ answer: 'retry', by: 'bob', step: 'validate' }] })).rejects.toMatchObject({ cause: { message: 'step: "validate" is not waiting (waiting: "restore aside")' } });
    const file = writeConfigFile(yaml);
    const refused = await runCli(['--config', file, 'answer', handle.workflowId, 'skip', '--by', 'bob']);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain('answer: "skip" is not possible here (choose retry, abort)');
    const described = await runCli(['--config', file, 'describe', handle.workflowId]);
    expect(described.stdout).toContain('QUESTION: "restore aside" failed: restoreAside: disk full');

    fix();
    const answered = await runCli(['--config', file, 'answer', handle.workflowId, 'retry', '--by', 'bob', '--note', 'freed some space']);
    expect(answered.stderr).toBe('');
    expect(answered.stdout).toMatch(/^retry "restore aside" by bob at /);
    const result: RestoreOutcome = await handle.result();
    expect(result.outcome).toBe('restored');
    const status = await handle.query<RunbookStatus>('status');
    expect(status.timeline.find((t) => t.step === 'question: restore aside')?.detail).toBe('retry by bob: freed some space');
    expect(status.timeline.filter((t) => t.step === 'restore aside').map((t) => t.state)).toEqual(['failed', 'completed']);
  });
});

test('restore: abort ends the run as failed, saying who aborted; with no answer in 24 h the run aborts by itself', async () => {
  const taskQueue = uniqueName('ask');
  const { activities, calls } = restoreActivities('dumpPostgres');
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: await workflowBundle(), activities });
  await worker.runUntil(async () => {
    const start = () =>
      plain.workflow.start('restoreDatabase', { taskQueue, workflowId: `restore/${uniqueName('db')}`, args: [{ target: 'shop', backup: 'latest', dryRun: false, reason: 'test' }] });
    const aborted = await start();
    expect((await question(aborted)).step).toBe('safety snapshot');
    await aborted.executeUpdate(stepDecisionUpdate, { args: [{ answer: 'abort', by: 'bob', step: 'safety snapshot' }] });
    const err = await aborted.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect((err as WorkflowFailedError).cause?.message).toBe(
      'restore of shop failed and was rolled back (production was not touched): safety snapshot failed: dumpPostgres: disk full (aborted by bob)',
    );
    // The copy restored alongside the snapshot was dropped again; production was never swapped.
    expect(calls).toContain('restoreAside');
    expect(calls).toContain('drop');
    expect(calls).not.toContain('swap');

    const unanswered = await start();
    await question(unanswered);
    const late = await unanswered.result().catch((e: unknown) => e); // the client skips time: 24 h pass
    expect((late as WorkflowFailedError).cause?.message).toBe(
      'restore of shop failed and was rolled back (production was not touched): safety snapshot failed: dumpPostgres: disk full (aborted by timeout)',
    );
    expect(calls).not.toContain('swap');
  });
});
