import { randomBytes } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import {
  type BackupManifest,
  type EmailMessage,
  type EmailResult,
  type PruneBackupsInput,
  type PruneResult,
  type RunbookActivities,
  createActivities,
} from '../src/activities';
import { messageIdFor } from '../src/activities/email';
import { type DumpPostgresInput } from '../src/activities/postgres';
import { type BackupInput } from '../src/config/runbooks';
import { type BackupResult } from '../src/workflows/backup';
import { temporalBinary } from '../src/client/local-servers';
import { servers, testConfig, uniqueName } from './support/servers';
import { workflowBundle } from './support/temporal';
import { parseMail, startSmtp } from './support/smtp';

// The backup workflow's own logic (retries with backoff, the workflow clock, the failure email) on the
// time-skipping test server: hours of retry backoff pass in moments of wall time.

let env: TestWorkflowEnvironment;

beforeAll(async () => {
  env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: temporalBinary('temporal-test-server') } },
  });
}, 60_000);

afterAll(async () => {
  await env?.teardown();
});

/** Retry backoff of dumpPostgres/snapshotRedis: 10 s initial, coefficient 2, at most 6 attempts. */
const BACKOFFS_MS = [10_000, 20_000, 40_000, 80_000, 160_000];
const MAX_ATTEMPTS = 6;

function fakeManifest(input: DumpPostgresInput): BackupManifest {
  return {
    version: 1,
    id: input.backupId,
    target: input.target,
    kind: 'postgres',
    file: `${input.backupId}.dump`,
    format: 'pg_dump-custom',
    sizeBytes: 1234,
    sha256: 'ab'.repeat(32),
    createdAt: input.createdAt,
    completedAt: input.createdAt,
    durationMs: 5,
    serverVersion: '15.0',
    database: input.target,
    workflowId: input.workflowId,
    runId: input.runId,
  };
}

/** The activities the backup workflow calls (mocks need not implement the other runbooks'). */
type BackupActivities = Pick<RunbookActivities, 'dumpPostgres' | 'snapshotRedis' | 'pruneBackups' | 'sendEmail'>;

interface Recorded {
  dumps: Array<{ input: DumpPostgresInput; attempt: number; serverMs: number }>;
  prunes: PruneBackupsInput[];
  emails: EmailMessage[];
}

/** Activities that record their calls; dumpPostgres fails (retryably) on the first `failures` attempts. */
function mockActivities(failures: number): { activities: BackupActivities; calls: Recorded } {
  const calls: Recorded = { dumps: [], prunes: [], emails: [] };
  const activities: BackupActivities = {
    dumpPostgres: async (input) => {
      // The test server's clock when this attempt runs. (Its currentAttemptScheduledTimestamp is the time the
      // previous attempt failed, before the backoff, so it cannot show the backoff.)
      calls.dumps.push({ input, attempt: Context.current().info.attempt, serverMs: await env.currentTimeMs() });
      if (calls.dumps.length <= failures) {
        throw ApplicationFailure.retryable(`pg_dump of ${input.target} failed (exit 1): connection refused`, 'PgDumpFailed');
      }
      return fakeManifest(input);
    },
    snapshotRedis: () => Promise.reject(new Error('snapshotRedis must not be called for a postgres backup')),
    pruneBackups: (input): Promise<PruneResult> => {
      calls.prunes.push(input);
      return Promise.resolve({ kept: ['kept-1'], pruned: ['old-1'], untouched: [], dryRun: false });
    },
    sendEmail: (msg): Promise<EmailResult> => {
      calls.emails.push(msg);
      return Promise.resolve({ sent: true, messageId: messageIdFor(msg.idempotencyKey), accepted: ['oncall@example.test'] });
    },
  };
  return { activities, calls };
}

async function worker(taskQueue: string, activities: BackupActivities): Promise<Worker> {
  return Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle: await workflowBundle(), activities });
}

/**
 * Attempt n+1 ran the configured backoff after attempt n (less than the next, doubled one), so
 * the first `retries` backoffs (10 s + 20 s + ...) of server time passed between the start and the last attempt.
 */
function expectBackoffs(dumps: Recorded['dumps'], startServerMs: number, retries: number): void {
  expect(dumps).toHaveLength(retries + 1);
  const gaps = dumps.slice(1).map((d, i) => d.serverMs - dumps[i]!.serverMs);
  gaps.forEach((gap, i) => {
    expect(gap).toBeGreaterThanOrEqual(BACKOFFS_MS[i]!);
    expect(gap).toBeLessThan(2 * BACKOFFS_MS[i]!); // this backoff, not the next one (doubled)
  });
  const total = BACKOFFS_MS.slice(0, retries).reduce((a, b) => a + b, 0);
  expect(dumps[retries]!.serverMs - startServerMs).toBeGreaterThanOrEqual(total);
}

/** The failure a failed workflow run reports (WorkflowFailedError -> ApplicationFailure thrown by the workflow). */
async function failureOf(p: Promise<unknown>): Promise<Error> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  return cause!;
}

test('a dump that fails three times is retried with backoff on skipped time; prune judges ages by the start time', async () => {
  const { activities, calls } = mockActivities(3);
  const taskQueue = uniqueName('bwf');
  const target = 'shop';
  const workflowId = uniqueName('backup-retry');
  const w = await worker(taskQueue, activities);

  const before = await env.currentTimeMs();
  const handle = await env.client.workflow.start('backup', {
    taskQueue,
    workflowId,
    args: [{ target, kind: 'postgres', prune: true } satisfies BackupInput],
  });
  const result: BackupResult = await w.runUntil(handle.result());

  expect(calls.dumps.map((d) => d.attempt)).toEqual([1, 2, 3, 4]);
  // Every attempt gets the same input: the idempotency key and the workflow clock do not move between retries.
  const first = calls.dumps[0]!.input;
  for (const d of calls.dumps) expect(d.input).toEqual(first);
  expect(first).toMatchObject({ target, workflowId, runId: handle.firstExecutionRunId });
  // Each retry waited its backoff in server time (10 s, 20 s, 40 s), which the test server skipped rather
  // than waited out. (Server time is read in the activity: once a run closes, the test server may skip far ahead.)
  expectBackoffs(calls.dumps, before, 3);

  expect(result.manifest).toEqual(fakeManifest(first));
  expect(result.backupId).toBe(first.backupId);
  expect(result.backupId).toMatch(new RegExp(`^${target}-\\d{8}T\\d{6}Z-${handle.firstExecutionRunId.slice(-8)}$`));
  expect(result.retention).toEqual({ kept: ['kept-1'], pruned: ['old-1'], untouched: [], dryRun: false });

  // Prune runs once, with the instant the run started (the manifest's createdAt), not the time after the retries.
  expect(calls.prunes).toEqual([{ target, now: first.createdAt }]);
  const startedMs = Date.parse(first.createdAt);
  const { startTime } = await handle.describe();
  expect(Math.abs(startedMs - startTime.getTime())).toBeLessThan(BACKOFFS_MS[0]!); // the start, before any retry's backoff
  expect(calls.dumps[3]!.serverMs - startedMs).toBeGreaterThanOrEqual(70_000);
  expect(calls.emails).toEqual([]);
});

test('a dump that always fails fails the run after 6 attempts and emails the operators exactly once', async () => {
  const { activities, calls } = mockActivities(Number.POSITIVE_INFINITY);
  const taskQueue = uniqueName('bwf');
  const target = 'billing';
  const workflowId = uniqueName('backup-fail');
  const w = await worker(taskQueue, activities);

  const before = await env.currentTimeMs();
  const handle = await env.client.workflow.start('backup', {
    taskQueue,
    workflowId,
    args: [{ target, kind: 'postgres', prune: true, reason: 'before the schema migration' } satisfies BackupInput],
  });
  const failure = await failureOf(w.runUntil(handle.result()));
  const runId = handle.firstExecutionRunId;

  expect(failure.message).toBe(`backup of ${target} failed: pg_dump of ${target} failed (exit 1): connection refused`);
  expect(calls.dumps.map((d) => d.attempt)).toEqual([1, 2, 3, 4, 5, 6]);
  expect(calls.dumps).toHaveLength(MAX_ATTEMPTS);
  expectBackoffs(calls.dumps, before, 5);
  expect(calls.prunes).toEqual([]);

  expect(calls.emails).toHaveLength(1);
  const email = calls.emails[0]!;
  expect(email.idempotencyKey).toBe(`${workflowId}/${runId}/backup-failed`);
  expect(email.subject).toContain(target);
  expect(email.subject).toContain('FAILED');
  expect(email.text).toContain('Reason: pg_dump of billing failed (exit 1): connection refused');
  expect(email.text).toContain('Requested because: before the schema migration');
  expect(email.text).toContain(`${workflowId} (run ${runId})`);

  const { status } = await handle.describe();
  expect(status.name).toBe('FAILED');
});

// --- real SMTP --------------------------------------------------------------------------------------------

test('with the real activities, a backup of a database that does not exist emails one failure report over authenticated SMTP', async () => {
  const smtpUser = 'runbooks';
  const smtpPassword = `smtp-${randomBytes(12).toString('hex')}`;
  const passwordEnv = 'TEST_SMTP_PASSWORD_BACKUP_WORKFLOW';
  process.env[passwordEnv] = smtpPassword;
  const smtp = await startSmtp(smtpUser, smtpPassword);
  try {
    const db = uniqueName('missing_db');
    const taskQueue = uniqueName('bwf');
    const { config } = testConfig({
      databases: [db],
      taskQueue,
      email: { port: smtp.port, user: smtpUser, passwordEnv, to: ['oncall@example.test'] },
    });
    const target = config.targets.databases[0]!.name;
    const workflowId = uniqueName('backup-smtp');
    const w = await worker(taskQueue, createActivities({ config }));

    const handle = await env.client.workflow.start('backup', {
      taskQueue,
      workflowId,
      args: [{ target, kind: 'postgres', prune: true, reason: 'nightly' } satisfies BackupInput],
    });
    const failure = await failureOf(w.runUntil(handle.result()));
    const runId = handle.firstExecutionRunId;
    expect(failure.message).toContain(`backup of ${target} failed: `);
    expect(failure.message).toContain(`database "${db}" does not exist`);

    // A missing database is a config error: no retries, one email.
    expect(smtp.received).toHaveLength(1);
    const mail = smtp.received[0]!;
    expect(smtp.auths).toEqual([smtpUser]);
    expect(mail.user).toBe(smtpUser);
    expect(mail.mailFrom).toBe('runbooks@example.test');
    expect(mail.rcptTo).toEqual(['oncall@example.test']);

    const { headers, body } = parseMail(mail.raw);
    expect(headers.get('subject')).toBe(`[runbook] backup of ${target} FAILED`);
    expect(headers.get('message-id')).toBe(messageIdFor(`${workflowId}/${runId}/backup-failed`));
    expect(headers.get('x-runbook-key')).toBe(`${workflowId}/${runId}/backup-failed`);
    expect(headers.get('to')).toBe('oncall@example.test');
    expect(body).toContain(`The postgres backup of "${target}" failed.`);
    expect(body).toMatch(new RegExp(`^Reason: .*database "${db}" does not exist`, 'm'));
    expect(body).toContain(`Workflow: ${workflowId} (run ${runId})`);
    expect(body).toContain('Requested because: nightly');

    // No secret anywhere in what went over the wire, raw or decoded.
    const pgPassword = servers().postgres.password;
    for (const secret of [pgPassword, smtpPassword]) {
      expect(mail.raw).not.toContain(secret);
      expect(body).not.toContain(secret);
      expect(mail.raw).not.toContain(Buffer.from(secret).toString('base64'));
    }
  } finally {
    await smtp.close();
    delete process.env[passwordEnv];
  }
});
