import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { WorkflowNotFoundError, type Client, type Connection } from '@temporalio/client';
import { createDatabase, pgAdmin, testConfig, uniqueName } from './support/servers';
import { seedShop } from './support/shop-data';
import { runCli, startWorkerProcess, writeConfigFile } from './support/processes';
import { devServerClient, heartbeatPid } from './support/temporal';

let client: Client;
let connection: Connection;
beforeAll(async () => ({ client, connection } = await devServerClient()));
afterAll(async () => connection.close());

/** A small seeded database, a config file for it, and the real worker binary serving it. */
async function seededTargetWithWorker(prefix: string) {
  const db = uniqueName(prefix);
  await createDatabase(db);
  await seedShop(db, 200, 2);
  const { yaml, config } = testConfig({ databases: [db], taskQueue: uniqueName('cli') });
  const file = writeConfigFile(yaml);
  return { db, target: config.targets.databases[0]!.name, config, file, worker: await startWorkerProcess(file) };
}

async function expectNotStarted(workflowId: string): Promise<void> {
  await expect(client.workflow.getHandle(workflowId).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
}

describe('bad input: exit 2, the field named, nothing started', () => {
  test('a bad config file', async () => {
    const { yaml } = testConfig({ databases: ['cli_bad'], taskQueue: uniqueName('cli') });
    const file = writeConfigFile(yaml.replace(/port: \d+/, 'port: not-a-port'));
    const id = `backup/cli-bad/${uniqueName('x')}`;
    const r = await runCli(['--config', file, 'start', 'backup', '-p', 'target=cli-bad', '--id', id]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/targets\.databases\[0\]\.port: /);
    await expectNotStarted(id);
  });

  test('a missing config file', async () => {
    const r = await runCli(['--config', '/nonexistent/runbooks.yaml', 'list']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('/nonexistent/runbooks.yaml');
    expect(r.stderr).toContain('cannot read config file (ENOENT)');
  });

  test.each([
    [['-p', 'target=nope'], 'target: unknown target "nope"'],
    [['-p', 'target=cli-ok', '-p', 'prune=maybe'], 'prune: must be true or false'],
    [['-p', 'target=cli-ok', '-p', 'colour=red'], 'colour: unknown parameter for runbook backup'],
    [['-p', 'targetcli-ok'], '--param: expected key=value, got "targetcli-ok"'],
    [[], 'target: is required'],
  ])('runbook start backup %j', async (params, message) => {
    const { yaml } = testConfig({ databases: ['cli_ok'], taskQueue: uniqueName('cli') });
    const id = `backup/${uniqueName('x')}`;
    const r = await runCli(['--config', writeConfigFile(yaml), 'start', 'backup', '--id', id, ...params]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(message);
    await expectNotStarted(id);
  });

  test('an unknown runbook', async () => {
    const { yaml } = testConfig({ taskQueue: uniqueName('cli') });
    const r = await runCli(['--config', writeConfigFile(yaml), 'start', 'reboot-the-world']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/runbook: unknown runbook "reboot-the-world" \(known: backup, restore, verify-backup, /);
  });

  test('the worker refuses to start on a bad config or a missing secret', async () => {
    const { yaml } = testConfig({ databases: ['cli_w'], taskQueue: uniqueName('cli') });
    await expect(startWorkerProcess(writeConfigFile(yaml.replace('namespace: default', 'namespace: default\n  colour: blue')))).rejects.toThrow(
      /exited with 2[\s\S]*temporal\.colour: unknown field/,
    );
    await expect(startWorkerProcess(writeConfigFile(yaml.replace(/TEST_PG_PASSWORD/g, 'UNSET_PW_VAR')))).rejects.toThrow(
      /exited with 2[\s\S]*targets\.databases\[0\]\.password: environment variable UNSET_PW_VAR is not set/,
    );
  });
});

test('an operator runs, lists and describes a backup; a second run with the same id is refused while the first runs', async () => {
  const { db, target, file, worker } = await seededTargetWithWorker('cli_run');
  try {
    const run = await runCli(['--config', file, '--json', 'start', 'backup', '-p', `target=${target}`, '--wait']);
    expect(run.stderr).toBe('');
    const [started, finished] = run.stdout.split(/\n(?=\{)/).map((s) => JSON.parse(s) as Record<string, any>);
    expect(started!.workflowId).toMatch(new RegExp(`^backup/${target}/\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ$`));
    expect(finished!.result.manifest).toMatchObject({ target, kind: 'postgres', database: db });

    const described = await runCli(['--config', file, 'describe', started!.workflowId]);
    expect(described.stdout).toContain('COMPLETED');
    expect(described.stdout).toMatch(/dump\s+completed .*\.dump: \d+ bytes/);
    expect(described.stdout).toMatch(/prune\s+completed kept 1, pruned 0/);

    const deadline = Date.now() + 15_000;
    let listed: Array<{ workflowId: string; status: string }> = [];
    while (Date.now() < deadline && listed.length === 0) {
      listed = JSON.parse((await runCli(['--config', file, '--json', 'list', '--target', target])).stdout);
    }
    expect(listed).toEqual([expect.objectContaining({ workflowId: started!.workflowId, status: 'COMPLETED' })]);

    // Hold a lock the dump needs so the first run stays running while the second is attempted.
    const locker = pgAdmin(db);
    await locker.connect();
    await locker.query('BEGIN; LOCK TABLE customers IN ACCESS EXCLUSIVE MODE');
    const id = `backup/${target}/manual-${Date.now()}`;
    try {
      expect((await runCli(['--config', file, 'start', 'backup', '-p', `target=${target}`, '--id', id])).exitCode).toBe(0);
      const again = await runCli(['--config', file, 'start', 'backup', '-p', `target=${target}`, '--id', id]);
      expect(again.exitCode).toBe(1);
      expect(again.stderr).toContain(`${id} is already running`);
      const status = await runCli(['--config', file, 'describe', id]);
      expect(status.stdout).toMatch(/RUNNING[\s\S]*step "dump"/);
    } finally {
      await locker.query('COMMIT');
      await locker.end();
    }
    await client.workflow.getHandle(id).result();
  } finally {
    await worker.stop();
  }
});

test('runbook cancel stops a backup mid-dump: pg_dump is killed and no file is left behind', async () => {
  const { db, target, config, file, worker } = await seededTargetWithWorker('cli_cancel');
  const locker = pgAdmin(db);
  await locker.connect();
  await locker.query('BEGIN; LOCK TABLE orders IN ACCESS EXCLUSIVE MODE');
  const id = `backup/${target}/cancel-${Date.now()}`;
  try {
    expect((await runCli(['--config', file, 'start', 'backup', '-p', `target=${target}`, '--id', id])).exitCode).toBe(0);
    const handle = client.workflow.getHandle(id);
    let dumpPid: number | undefined;
    for (const deadline = Date.now() + 20_000; !dumpPid && Date.now() < deadline; ) {
      dumpPid = await heartbeatPid(handle);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(dumpPid).toBeDefined();

    const cancel = await runCli(['--config', file, 'cancel', id]);
    expect(cancel.exitCode).toBe(0);
    await expect(handle.result()).rejects.toThrow(/cancel/i);
    expect((await handle.describe()).status.name).toBe('CANCELLED');
    expect(() => process.kill(dumpPid!, 0)).toThrow('ESRCH'); // pg_dump is gone
    const dir = path.join(config.backups.root, target);
    expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([]); // its temp file too
  } finally {
    await locker.query('COMMIT');
    await locker.end();
    await worker.stop();
  }
});
