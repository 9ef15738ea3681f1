import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { parse, stringify } from 'yaml';
import { temporalBinary } from '../src/client/local-servers';
import { leakedIn } from './support/history-scan';
import { startNginx, deployTargets, freePortRange } from './support/deploy-fixture';
import { type WorkerProcess, runCli, startWorkerProcess, writeConfigFile } from './support/processes';
import { restoreFixture } from './support/restore-fixture';
import { servers, tempDir, testConfig, uniqueName } from './support/servers';

/**
 * With temporal.encryption, a failure's message and stack trace are ciphertext in the history too: a restore
 * from a corrupt dump (pg_restore's stderr) and a deploy of an image the engine does not have, run by the real
 * worker processes, exported as the server keeps them (`temporal workflow show --output json`, no codec).
 * The operator still reads the reason: the CLI decrypts it.
 */

function exportedHistory(workflowId: string): Promise<string> {
  return execa(temporalBinary('temporal'), ['workflow', 'show', '--workflow-id', workflowId, '--output', 'json', '--address', servers().temporal.address]).then((r) => String(r.stdout));
}

/** Every failure in the export (events' `failure`, nested `cause`s): their plain-text message and stack trace. */
function failures(json: string): Array<{ message?: string; stackTrace?: string; encoded: boolean }> {
  const out: Array<{ message?: string; stackTrace?: string; encoded: boolean }> = [];
  const walk = (v: unknown, isFailure: boolean): void => {
    if (Array.isArray(v)) return v.forEach((x) => walk(x, false));
    if (!v || typeof v !== 'object') return;
    const o = v as Record<string, unknown>;
    if (isFailure) out.push({ message: o.message as string | undefined, stackTrace: o.stackTrace as string | undefined, encoded: Boolean(o.encodedAttributes) });
    for (const [k, x] of Object.entries(o)) walk(x, k === 'failure' || k === 'cause' || k === 'lastFailure');
  };
  walk(JSON.parse(json), false);
  return out;
}

function secrets(): string[] {
  const s = servers();
  return [s.postgres.password, s.redis.password, s.codecKey];
}

function expectSealed(json: string, plain: string[]): void {
  const fs = failures(json);
  expect(fs.length).toBeGreaterThan(0);
  for (const f of fs) {
    expect(f).toEqual({ message: 'Encoded failure', stackTrace: undefined, encoded: true });
  }
  expect(leakedIn(json, [...plain, ...secrets()])).toEqual([]);
  // No stack frame of ours anywhere (a stack trace names the worker's files).
  expect(json).not.toMatch(/dist\/(activities|workflows|workers)\//);
  expect(json).not.toContain('workflow-bundle');
}

test('a restore from a corrupt dump fails with pg_restore\'s stderr encrypted in the history; the CLI shows it decrypted', async () => {
  const f = await restoreFixture({ size: { customers: 50, ordersPerCustomer: 1 } });
  const file = writeConfigFile(f.yaml);
  const worker = await startWorkerProcess(file, {}, ['--metrics-address', 'off']);
  try {
    expect((await runCli(['--config', file, 'start', 'backup', '-p', `target=${f.target}`, '--wait'])).exitCode).toBe(0);
    // Corrupt the dump behind its manifest's back (the checksum updated too, so pg_restore is what notices).
    const dir = path.join((parse(f.yaml) as { backups: { root: string } }).backups.root, f.target);
    const dump = readdirSync(dir).find((n) => n.endsWith('.dump'))!;
    const garbage = Buffer.from('not a pg_dump archive at all\n'.repeat(100));
    writeFileSync(path.join(dir, dump), garbage);
    const manifestFile = path.join(dir, dump.replace(/\.dump$/, '.manifest.json'));
    const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as Record<string, unknown>;
    writeFileSync(manifestFile, JSON.stringify({ ...manifest, sha256: createHash('sha256').update(garbage).digest('hex'), sizeBytes: garbage.length }));

    const r = await runCli(['--config', file, 'start', 'restore', '-p', `target=${f.target}`, '-p', 'reason=failure encryption test', '--wait']);
    expect(r.exitCode).toBe(1);
    const stderrText = 'does not appear to be a valid archive';
    expect(r.stderr).toContain(stderrText); // the operator reads pg_restore's reason...
    const workflowId = /started (\S+)/.exec(r.stdout)![1]!;
    const json = await exportedHistory(workflowId);
    expect(json).toContain('WORKFLOW_EXECUTION_FAILED'); // ...the history holds the failed run...
    expectSealed(json, [stderrText, 'pg_restore --list failed', `restore of ${f.target}`]); // ...but not the reason
  } finally {
    await worker.stop();
  }
}, 180_000);

test('a deploy of an image the engine does not have fails with its reason encrypted in the history', async () => {
  const dockerHost = servers().docker.host;
  const host = uniqueName('h');
  const service = uniqueName('web').replace(/_/g, '-');
  const nginx = await startNginx(tempDir('nginx'));
  const workers: WorkerProcess[] = [];
  try {
    const made = testConfig({ taskQueue: uniqueName('deploy'), extra: { targets: deployTargets([{ name: host, dockerHost }], [{ name: service, host, nginx, ports: await freePortRange(4) }]) } });
    const file = writeConfigFile(stringify(parse(made.yaml)));
    workers.push(await startWorkerProcess(file, {}, ['--metrics-address', 'off']));
    workers.push(await startWorkerProcess(file, {}, ['--docker-host', host, '--metrics-address', 'off']));
    const image = `localhost/${uniqueName('missing').replace(/_/g, '-')}:v9`;
    const r = await runCli(['--config', file, 'start', 'deploy', '-p', `service=${service}`, '-p', `image=${image}`, '--wait']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain(`image ${image} is not on docker host ${host}`);
    const workflowId = /started (\S+)/.exec(r.stdout)![1]!;
    const json = await exportedHistory(workflowId);
    expect(json).toContain('WORKFLOW_EXECUTION_FAILED');
    expectSealed(json, ['is not on docker host']);
    // The image is the run's input: encrypted everywhere but in the RunbookStatus search attribute, which the
    // server must be able to read to index it ("start 1 × <image>").
    const withoutSearchAttributes = JSON.stringify(JSON.parse(json), (k, v: unknown) => (k === 'searchAttributes' ? undefined : v));
    expect(leakedIn(withoutSearchAttributes, [image])).toEqual([]);
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await nginx.stop();
  }
}, 180_000);
