#!/usr/bin/env node
import { userInfo } from 'node:os';
import {
  type Client,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
} from '@temporalio/client';
import { Command, CommanderError, Option } from 'commander';
import { type Config } from '../config/schema';
import { ConfigError, configPath, loadConfig } from '../config/load';
import { InputError, type RunbookDefinition, findRunbook, parseRunbookInput, runbooks } from '../config/runbooks';
import { ENVIRONMENT, RUNBOOK_NAME, RUNBOOK_STATUS, RUNBOOK_TARGET, SEARCH_ATTRIBUTES, TRIGGERED_BY } from '../config/temporal';
import { checkSecrets, redact } from '../config/secrets';
import { listBackups, targetDir } from '../activities/storage';
import { type RunbookStatus, approveUpdate, rejectUpdate, rollbackUpdate, statusQuery, stepDecisionUpdate } from '../workflows/definitions';
import { acknowledgeUpdate, resolveUpdate } from '../workflows/incident-definitions';
import { UnreachableError, connectClient } from './connection';
import { desiredSchedules, syncSchedules } from './schedules';
import { runbookStartMetadata } from './start-options';
import { startConfiguredCodecServer } from './codec-server';

/**
 * `runbook`: start, inspect and steer runbooks from a terminal. Exit codes: 0 ok, 1 the operation failed,
 * 2 bad input (config, flags, parameters) — and with 2 nothing was started or changed.
 */

interface GlobalOpts {
  config?: string;
  json?: boolean;
}

function out(opts: GlobalOpts, human: string, data: unknown): void {
  process.stdout.write(opts.json ? `${JSON.stringify(data, null, 2)}\n` : `${human}\n`);
}

/** Who runs this CLI: $RUNBOOK_USER, else the login name. */
function operatorName(): string {
  return process.env.RUNBOOK_USER ?? userInfo().username;
}

function acceptsParam(def: RunbookDefinition, key: string): boolean {
  const shape = (def.input as { shape?: Record<string, unknown> }).shape;
  return shape !== undefined && key in shape;
}

function parseParams(pairs: string[]): Record<string, string> {
  const params: Record<string, string> = {};
  const problems: string[] = [];
  for (const p of pairs) {
    const eq = p.indexOf('=');
    if (eq <= 0) problems.push(`--param: expected key=value, got "${p}"`);
    else params[p.slice(0, eq)] = p.slice(eq + 1);
  }
  if (problems.length) throw new InputError(problems);
  return params;
}

/** An Update the run's validator refused (not waiting, already decided, self-approval...) is bad input: exit 2. */
function refusalAsInput(what: string): (err: unknown) => never {
  return (err) => {
    if (err instanceof WorkflowUpdateFailedError) throw new InputError([`${what}: ${err.cause?.message ?? err.message}`]);
    throw err;
  };
}

async function withClient<T>(config: Config, fn: (client: Client) => Promise<T>): Promise<T> {
  const { client, close } = await connectClient(config);
  try {
    return await fn(client);
  } finally {
    await close();
  }
}

function webUiLink(config: Config, workflowId: string): string {
  return `${config.temporal.webUiUrl}/namespaces/${encodeURIComponent(config.temporal.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

function formatStatus(s: RunbookStatus): string {
  const lines = [`runbook ${s.runbook}: ${s.state}, step "${s.step}"`];
  for (const t of s.timeline) {
    lines.push(`  ${t.startedAt}  ${t.step.padEnd(12)} ${t.state.padEnd(9)} ${t.detail ?? ''}`.trimEnd());
  }
  if (s.approval) lines.push(`  waiting for approval: ${s.approval.approvedBy.length}/${s.approval.quorum}${s.approval.approvedBy.length ? ` (${s.approval.approvedBy.join(', ')})` : ''}`);
  if (s.question) lines.push(`  QUESTION: "${s.question.step}" failed: ${s.question.error}\n  answer with: runbook answer <id> ${s.question.options.join('|')}`);
  return lines.join('\n');
}

export function buildProgram(): Command {
  const program = new Command('runbook')
    .description('Operations runbooks as durable Temporal workflows')
    .option('-c, --config <file>', 'config file (default: $RUNBOOKS_CONFIG or ./runbooks.yaml)')
    .option('--json', 'machine-readable output')
    .showHelpAfterError()
    .exitOverride();

  const globals = (): GlobalOpts => program.opts<GlobalOpts>();
  const config = (): Config => loadConfig(configPath(globals().config));

  program
    .command('start <runbook>')
    .description(`start a runbook (${Object.keys(runbooks).join(', ')})`)
    .option('-p, --param <key=value>', 'runbook parameter, repeatable', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--id <workflowId>', 'workflow id (default: readable id with the business key)')
    .option('--wait', 'wait for the result')
    .action(async (name: string, o: { param: string[]; id?: string; wait?: boolean }) => {
      const cfg = config();
      const def = findRunbook(name);
      const params: Record<string, unknown> = parseParams(o.param);
      // Runbooks with approval gates record who asked, so nobody approves their own request.
      if (acceptsParam(def, 'requestedBy')) params.requestedBy ??= operatorName();
      const input = parseRunbookInput(def, params, cfg);
      const workflowId = o.id ?? def.workflowId(input, new Date());
      await withClient(cfg, async (client) => {
        const handle = await client.workflow.start(def.workflowType, {
          taskQueue: cfg.temporal.taskQueue,
          workflowId,
          args: [input],
          ...runbookStartMetadata(cfg, def, input, `cli:${operatorName()}`),
        });
        out(globals(), `started ${workflowId}\n  ${webUiLink(cfg, workflowId)}`, { workflowId, runId: handle.firstExecutionRunId });
        if (o.wait) {
          const result: unknown = await handle.result();
          out(globals(), JSON.stringify(result, null, 2), { workflowId, result });
        }
      });
    });

  program
    .command('list')
    .description('list runbook runs, newest first')
    .option('--runbook <name>', 'only this runbook')
    .option('--target <name>', 'only runs against this target')
    .addOption(new Option('--environment <env>', 'only runs against production or non-production targets').choices(['production', 'non-production']))
    .option('--triggered-by <who>', 'only runs started by this (cli:<user>, schedule:<id>, ...)')
    .addOption(new Option('--status <status>', 'only runs in this state').choices(['running', 'completed', 'failed', 'canceled', 'terminated', 'timed_out']))
    .option('--limit <n>', 'at most this many', (v) => Number.parseInt(v, 10), 20)
    .action(async (o: { runbook?: string; target?: string; environment?: string; triggeredBy?: string; status?: string; limit: number }) => {
      const cfg = config();
      const clauses: string[] = [];
      if (o.runbook) clauses.push(`${RUNBOOK_NAME.name} = ${JSON.stringify(o.runbook)}`);
      if (o.target) clauses.push(`${RUNBOOK_TARGET.name} = ${JSON.stringify(o.target)}`);
      if (o.environment) clauses.push(`${ENVIRONMENT.name} = ${JSON.stringify(o.environment)}`);
      if (o.triggeredBy) clauses.push(`${TRIGGERED_BY.name} = ${JSON.stringify(o.triggeredBy)}`);
      if (o.status) {
        const pascal = o.status.replace(/(^|_)([a-z])/g, (_m, _s, c: string) => c.toUpperCase());
        clauses.push(`ExecutionStatus = ${JSON.stringify(pascal)}`);
      }
      await withClient(cfg, async (client) => {
        const rows: Array<{ workflowId: string; type: string; status: string; startTime: string; step?: string }> = [];
        for await (const wf of client.workflow.list({ query: clauses.join(' AND ') || undefined, pageSize: o.limit })) {
          // RunbookStatus: the step a running run is in (or how it ended), as the workflow last upserted it.
          const step = wf.typedSearchAttributes.get(RUNBOOK_STATUS);
          rows.push({ workflowId: wf.workflowId, type: wf.type, status: wf.status.name, startTime: wf.startTime.toISOString(), ...(step ? { step } : {}) });
          if (rows.length >= o.limit) break;
        }
        const human = rows.length
          ? rows.map((r) => `${r.startTime}  ${r.status.padEnd(10)} ${r.workflowId}${r.status === 'RUNNING' && r.step ? `  (${r.step})` : ''}`).join('\n')
          : 'no runs match';
        out(globals(), human, rows);
      });
    });

  const describe = async (cfg: Config, client: Client, workflowId: string): Promise<void> => {
    const handle = client.workflow.getHandle(workflowId);
    const d = await handle.describe();
    let status: RunbookStatus | undefined;
    let statusError: string | undefined;
    try {
      status = await handle.query(statusQuery);
    } catch (err) {
      statusError = `status query not answered: ${(err as Error).message}`;
    }
    let outcome: unknown;
    if (d.status.name === 'COMPLETED') outcome = { result: (await handle.result()) as unknown };
    else if (d.status.name === 'FAILED') {
      outcome = await handle.result().then(
        () => undefined,
        (err: unknown) => ({ failure: err instanceof WorkflowFailedError ? (err.cause?.message ?? err.message) : String(err) }),
      );
    }
    const human = [
      `${d.workflowId} (${d.type}) ${d.status.name}`,
      `  run ${d.runId}, started ${d.startTime.toISOString()}${d.closeTime ? `, closed ${d.closeTime.toISOString()}` : ''}`,
      `  ${webUiLink(cfg, d.workflowId)}`,
      status ? formatStatus(status) : `  (${statusError})`,
      outcome ? JSON.stringify(outcome, null, 2) : '',
    ]
      .filter(Boolean)
      .join('\n');
    out(globals(), human, { workflowId: d.workflowId, runId: d.runId, type: d.type, state: d.status.name, status, ...(outcome as object) });
  };

  program
    .command('describe <workflowId>')
    .description('show a run: state, current step and timeline')
    .action(async (workflowId: string) => {
      const cfg = config();
      await withClient(cfg, (client) => describe(cfg, client, workflowId));
    });

  program
    .command('last <runbook> <target>')
    .description('describe the newest run of a runbook against a target (e.g. the last restore drill)')
    .action(async (name: string, target: string) => {
      const cfg = config();
      const def = findRunbook(name);
      await withClient(cfg, async (client) => {
        const query = `${RUNBOOK_NAME.name} = ${JSON.stringify(def.name)} AND ${RUNBOOK_TARGET.name} = ${JSON.stringify(target)}`;
        for await (const wf of client.workflow.list({ query, pageSize: 1 })) return describe(cfg, client, wf.workflowId);
        throw new InputError([`no ${def.name} run against ${target} yet`]);
      });
    });

  program
    .command('signal <workflowId> <signal>')
    .description('send a signal to a run')
    .option('--arg <json>', 'signal argument as JSON')
    .action(async (workflowId: string, signal: string, o: { arg?: string }) => {
      const cfg = config();
      let arg: unknown;
      if (o.arg !== undefined) {
        try {
          arg = JSON.parse(o.arg);
        } catch {
          throw new InputError([`--arg: not valid JSON`]);
        }
      }
      await withClient(cfg, async (client) => {
        await client.workflow.getHandle(workflowId).signal(signal, ...(o.arg === undefined ? [] : [arg]));
        out(globals(), `signalled ${signal} to ${workflowId}`, { workflowId, signal });
      });
    });

  for (const kind of ['approve', 'reject'] as const) {
    program
      .command(`${kind} <workflowId>`)
      .description(`${kind} a run waiting at its approval gate (e.g. a production restore)`)
      .requiredOption('--by <name>', 'who decides (recorded in the run)')
      .option('--note <text>', 'why')
      .action(async (workflowId: string, o: { by: string; note?: string }) => {
        const cfg = config();
        await withClient(cfg, async (client) => {
          const record = await client.workflow
            .getHandle(workflowId)
            .executeUpdate(kind === 'approve' ? approveUpdate : rejectUpdate, { args: [{ by: o.by, note: o.note }] })
            .catch(refusalAsInput(kind));
          out(globals(), `${record.decision} by ${record.by} at ${record.at}${record.pending ? ` (${record.pending} more approval(s) needed)` : ''}`, record);
        });
      });
  }

  // --- deploy (issue 6) ---
  program
    .command('rollback <workflowId>')
    .description('roll a running deploy back to the previous version at its next step (e.g. during a canary)')
    .requiredOption('--by <name>', 'who asks (recorded in the run)')
    .option('--reason <text>', 'why')
    .action(async (workflowId: string, o: { by: string; reason?: string }) => {
      const cfg = config();
      await withClient(cfg, async (client) => {
        const r = await client.workflow
          .getHandle(workflowId)
          .executeUpdate(rollbackUpdate, { args: [{ by: o.by, reason: o.reason }] })
          .catch(refusalAsInput('rollback'));
        out(globals(), `rollback of ${workflowId} requested by ${r.by}`, { workflowId, ...r });
      });
    });
  // --- end deploy ---

  program
    .command('answer <workflowId> <answer>')
    .description('answer a failed step\'s question: retry, skip (where the step allows it) or abort')
    .option('--by <name>', 'who answers (recorded in the run; default $RUNBOOK_USER or the login name)')
    .option('--step <step>', 'the step the answer is for (refused if another step is waiting)')
    .option('--note <text>', 'why')
    .action(async (workflowId: string, answer: string, o: { by?: string; step?: string; note?: string }) => {
      if (answer !== 'retry' && answer !== 'skip' && answer !== 'abort') throw new InputError([`answer: must be retry, skip or abort, got "${answer}"`]);
      const cfg = config();
      await withClient(cfg, async (client) => {
        const record = await client.workflow
          .getHandle(workflowId)
          .executeUpdate(stepDecisionUpdate, { args: [{ answer, by: o.by ?? operatorName(), ...(o.step ? { step: o.step } : {}), ...(o.note ? { note: o.note } : {}) }] })
          .catch(refusalAsInput('answer'));
        out(globals(), `${record.answer} "${record.step}" by ${record.by} at ${record.at}`, record);
      });
    });

  // Incidents (WF-08): the same Updates as the Slack buttons and the email links.
  for (const [verb, update] of [
    ['ack', acknowledgeUpdate],
    ['resolve', resolveUpdate],
  ] as const) {
    program
      .command(`${verb} <incidentId>`)
      .description(`${verb === 'ack' ? 'acknowledge (stops the escalation)' : 'resolve (closes)'} an incident, e.g. incident/<fingerprint>`)
      .option('--by <name>', 'who (default: $RUNBOOK_USER or the login name)')
      .option('--note <text>', 'what was done')
      .action(async (incidentId: string, o: { by?: string; note?: string }) => {
        const cfg = config();
        await withClient(cfg, async (client) => {
          const record = await client.workflow
            .getHandle(incidentId)
            .executeUpdate(update, { args: [{ by: o.by ?? operatorName(), note: o.note }] })
            .catch(refusalAsInput(verb));
          out(globals(), `${verb === 'ack' ? 'acknowledged' : 'resolved'} by ${record.by} at ${record.at}`, record);
        });
      });
  }

  program
    .command('backups <target>')
    .description('backups of a target, newest first (ids for `runbook start restore -p backup=ID`)')
    .action(async (target: string) => {
      const cfg = config();
      const listing = await listBackups(targetDir(cfg.backups.root, target));
      const rows = listing.valid.map((b) => ({ id: b.manifest.id, createdAt: b.manifest.createdAt, sizeBytes: b.manifest.sizeBytes, kind: b.manifest.kind, purpose: b.manifest.purpose ?? 'backup' }));
      const line = (r: (typeof rows)[number]): string => `${r.createdAt}  ${String(r.sizeBytes).padStart(12)}  ${r.id}${r.purpose === 'safety' ? '  (safety snapshot taken by a restore)' : ''}`;
      out(globals(), rows.map(line).join('\n') || `no backups of ${target}`, rows);
    });

  program
    .command('cancel <workflowId>')
    .description('ask a run to cancel (it runs its compensations)')
    .action(async (workflowId: string) => {
      const cfg = config();
      await withClient(cfg, async (client) => {
        await client.workflow.getHandle(workflowId).cancel();
        out(globals(), `cancellation requested for ${workflowId}`, { workflowId, cancelRequested: true });
      });
    });

  const schedules = program.command('schedules').description('Temporal Schedules from the config');
  schedules
    .command('sync')
    .description('create, update and delete schedules so the server matches the config')
    .option('--dry-run', 'show what would change')
    .action(async (o: { dryRun?: boolean }) => {
      const cfg = config();
      desiredSchedules(cfg); // bad parameters stop here, before connecting
      await withClient(cfg, async (client) => {
        const r = await syncSchedules(client, cfg, { dryRun: o.dryRun });
        const line = (label: string, ids: string[]): string => (ids.length ? `${label}: ${ids.join(', ')}` : '');
        const human = [
          o.dryRun ? '(dry run: nothing changed)' : '',
          line('created', r.created),
          line('updated', r.updated),
          line('unchanged', r.unchanged),
          line('deleted', r.deleted),
        ]
          .filter(Boolean)
          .join('\n');
        out(globals(), human || 'no schedules in the config', r);
      });
    });
  schedules
    .command('list')
    .description('schedules the config asks for')
    .action(() => {
      const d = desiredSchedules(config());
      out(globals(), d.map((s) => `${s.scheduleId.padEnd(24)} ${s.cron.padEnd(14)} ${s.timezone.padEnd(16)} ${s.runbook}`).join('\n'), d);
    });

  program
    .command('config')
    .description('validate the config file')
    .command('check')
    .option('--secrets', 'also resolve every secret reference (as the worker does)')
    .action((o: { secrets?: boolean }) => {
      const cfg = config();
      desiredSchedules(cfg);
      const problems = o.secrets ? checkSecrets(cfg) : [];
      if (problems.length) throw new InputError(problems);
      out(globals(), 'config ok', { ok: true });
    });

  program
    .command('setup')
    .description('register the search attributes runbooks use (once per namespace of a real cluster)')
    .action(async () => {
      const cfg = config();
      await withClient(cfg, async (client) => {
        const existing = await client.connection.operatorService.listSearchAttributes({ namespace: cfg.temporal.namespace });
        const missing = SEARCH_ATTRIBUTES.filter((k) => !existing.customAttributes[k.name]);
        if (missing.length) {
          await client.connection.operatorService.addSearchAttributes({
            namespace: cfg.temporal.namespace,
            searchAttributes: Object.fromEntries(missing.map((k) => [k.name, 2 /* KEYWORD */])),
          });
        }
        out(globals(), missing.length ? `registered ${missing.map((k) => k.name).join(', ')}` : 'search attributes already registered', {
          registered: missing.map((k) => k.name),
        });
      });
    });

  program
    .command('codec-server')
    .description('serve /decode and /encode for the Web UI with the configured payload codecs (observability.codecServer)')
    .action(async () => {
      const cfg = config();
      const server = await startConfiguredCodecServer(cfg);
      out(globals(), `codec server on ${server.url} for ${cfg.observability.codecServer?.corsOrigins.join(', ') ?? ''}`, { url: server.url });
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await server.close();
    });

  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? 0 : 2; // --help / --version exit 0; usage errors were printed by commander
    }
    if (err instanceof ConfigError || err instanceof InputError) {
      process.stderr.write(`error: ${err instanceof InputError ? `invalid input:\n${err.issues.map((i) => `  - ${i}`).join('\n')}` : err.message}\n`);
      return 2;
    }
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      process.stderr.write(`error: ${err.workflowId} is already running (one run per id); see: runbook describe ${err.workflowId}\n`);
      return 1;
    }
    if (err instanceof WorkflowFailedError) {
      process.stderr.write(`error: ${redact(err.cause?.message ?? err.message)}\n`);
      return 1;
    }
    if (err instanceof WorkflowNotFoundError) {
      process.stderr.write(`error: no run with id ${err.workflowId}\n`);
      return 1;
    }
    if (err instanceof UnreachableError) {
      process.stderr.write(`error: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`error: ${redact(err instanceof Error ? err.message : String(err))}\n`);
    return 1;
  }
}

if (require.main === module) {
  void main(process.argv).then((code) => {
    process.exitCode = code;
  });
}
