import {
  type Client,
  type UpdateDefinition,
  WorkflowExecutionAlreadyStartedError,
  WorkflowIdReusePolicy,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
} from '@temporalio/client';
import { type Config } from '../../config/schema';
import { InputError, type RunbookDefinition, findRunbook, isoSecond, parseRunbookInput, runbooks } from '../../config/runbooks';
import { RUNBOOK_NAME, RUNBOOK_TARGET } from '../../config/temporal';
import { redact } from '../../config/secrets';
import { ACTIONS, type ChatMemo, type RunbookStatus, type StepAnswer, approveUpdate, rejectUpdate, statusQuery, stepDecisionUpdate } from '../../workflows/definitions';
import { acknowledgeUpdate, resolveUpdate } from '../../workflows/incident-definitions';
import { type ChatCommand, parseCommand } from './parser';
import { type Actor, type Rbac, actorOf } from './rbac';
import { runbookStartMetadata } from '../start-options';

/** What Slack shows: the reply to a command, or a message posted to an interaction's response_url. */
export interface Reply {
  text: string;
  response_type?: 'ephemeral' | 'in_channel';
  replace_original?: boolean;
}

export interface CommandRequest {
  userId: string;
  userName?: string;
  channelId: string;
  text: string;
  /** X-Slack-Request-Timestamp (seconds): the clock a chat-started run's id is made from, so a replay gets the same id. */
  requestTs: number;
}

export interface ActionRequest {
  userId: string;
  userName?: string;
  actionId: string;
  value: string;
}

export interface RunInfo {
  workflowId: string;
  type: string;
  state: string;
  runbook?: string;
  target?: string;
  status?: RunbookStatus;
}

/** The Temporal side of ChatOps; a recording fake stands in for it in the parser fuzz test. */
export interface Backend {
  start(def: RunbookDefinition, input: unknown, opts: { workflowId: string; memo: { chat: ChatMemo }; rejectDuplicate: boolean }): Promise<void>;
  describe(workflowId: string): Promise<RunInfo>;
  list(limit: number, target?: string): Promise<Array<{ workflowId: string; state: string; startTime: string; runbook?: string; target?: string }>>;
  cancel(workflowId: string): Promise<void>;
  /** An Update of the workflows' own definitions (src/workflows/definitions.ts, incident-definitions.ts). */
  update(workflowId: string, update: UpdateDefinition<unknown, [unknown]>, arg: unknown): Promise<unknown>;
}

export function webUiLink(config: Config, workflowId: string): string {
  return `${config.temporal.webUiUrl}/namespaces/${encodeURIComponent(config.temporal.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

const ephemeral = (text: string): Reply => ({ response_type: 'ephemeral', text });
const refused = (problems: string[]): Reply => ephemeral(`:no_entry: ${problems.map((p) => redact(p)).join('\n')}`);

function acceptsParam(def: RunbookDefinition, key: string): boolean {
  const shape = (def.input as { shape?: Record<string, unknown> }).shape;
  return shape !== undefined && key in shape;
}

export function helpText(): string {
  const lines = Object.values(runbooks as Record<string, RunbookDefinition>).map((d) => `• \`${d.name}\` — ${d.summary}`);
  return [
    '*/runbook* — operations runbooks as durable workflows',
    '`/runbook <runbook> key=value ... [--dry-run]` start one (values with spaces in quotes)',
    '`/runbook status <id>` · `/runbook list [target]` · `/runbook cancel <id>`',
    '`/runbook approve|reject <id> [note]` · `/runbook answer <id> retry|skip|abort`',
    ...lines,
  ].join('\n');
}

function formatStatus(run: RunInfo, link: string): string {
  const head = `\`${run.workflowId}\` (${run.type}) ${run.state} — <${link}|Web UI>`;
  if (!run.status) return head;
  const s = run.status;
  const lines = s.timeline.map((t) => `${t.state.padEnd(9)} ${t.step}${t.detail ? ` — ${t.detail}` : ''}`);
  if (s.approval) lines.push(`waiting for approval ${s.approval.approvedBy.length}/${s.approval.quorum}`);
  if (s.question) lines.push(`question: ${s.question.step} failed (${s.question.error}); answer ${s.question.options.join(' / ')}`);
  return `${head}\n\`\`\`${lines.join('\n')}\`\`\``;
}

/**
 * The ChatOps commands and buttons. Bad input and refusals come back as a reply naming the problem, and nothing is
 * started or changed; every decision is an Update the workflow validates and records (who, when).
 */
export class ChatOps {
  constructor(
    private readonly config: Config,
    private readonly backend: Backend,
    private readonly rbac: Rbac,
  ) {}

  async command(req: CommandRequest): Promise<Reply> {
    const actor = actorOf(this.config, req.userId);
    const cmd = parseCommand(req.text);
    try {
      return await this.run(cmd, actor, req);
    } catch (err) {
      return this.failure(err);
    }
  }

  private failure(err: unknown): Reply {
    if (err instanceof InputError) return refused(err.issues);
    if (err instanceof WorkflowNotFoundError) return ephemeral(`:grey_question: no run with id \`${err.workflowId}\``);
    if (err instanceof WorkflowUpdateFailedError) return refused([err.cause?.message ?? err.message]);
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      return ephemeral(`:warning: \`${err.workflowId}\` was already started (one run per id): \`/runbook status ${err.workflowId}\``);
    }
    return ephemeral(`:x: ${redact(err instanceof Error ? err.message : String(err))}`);
  }

  private async run(cmd: ChatCommand, actor: Actor, req: CommandRequest): Promise<Reply> {
    switch (cmd.kind) {
      case 'invalid':
        return refused(cmd.problems);
      case 'help':
        return ephemeral(helpText());
      case 'list': {
        if (!(await this.rbac.maySeeSome(actor, cmd.target))) {
          return refused([`<@${actor.userId}> may not list runs${cmd.target ? ` of ${cmd.target}` : ''}: no chatops rule lets you run or approve anything${cmd.target ? ` on ${cmd.target}` : ''}`]);
        }
        // Only the runs of runbooks and targets the user may run or approve (the newest 200 looked at, 10 shown).
        const rows: Awaited<ReturnType<Backend['list']>> = [];
        for (const r of await this.backend.list(200, cmd.target)) {
          if (rows.length < 10 && r.runbook && r.target && (await this.rbac.maySee(actor, r.runbook, r.target))) rows.push(r);
        }
        return ephemeral(rows.length ? rows.map((r) => `${r.startTime}  ${r.state.padEnd(10)} \`${r.workflowId}\``).join('\n') : 'no runs yet');
      }
      case 'status': {
        // One answer for a run the user may not see and for no run at all, unless some rule lets them see runs.
        const hidden = refused([`<@${actor.userId}> may not see \`${cmd.workflowId}\`: it is not a run of a runbook and target you may run or approve`]);
        let run: RunInfo;
        try {
          run = await this.backend.describe(cmd.workflowId);
        } catch (err) {
          if (err instanceof WorkflowNotFoundError && !(await this.rbac.maySeeSome(actor))) return hidden;
          throw err;
        }
        if (!run.runbook || !run.target || !(await this.rbac.maySee(actor, run.runbook, run.target))) return hidden;
        return ephemeral(formatStatus(run, webUiLink(this.config, run.workflowId)));
      }
      case 'cancel': {
        const run = await this.allowedOn(actor, 'run', cmd.workflowId);
        await this.backend.cancel(run.workflowId);
        return { response_type: 'in_channel', text: `:octagonal_sign: <@${actor.userId}> asked \`${run.workflowId}\` to cancel (it undoes what it did)` };
      }
      case 'approve':
      case 'reject':
        return this.decide(actor, cmd.kind, cmd.workflowId, cmd.note);
      case 'answer':
        return this.answer(actor, cmd.workflowId, cmd.answer, undefined, cmd.note);
      case 'start':
        return this.start(cmd, actor, req);
    }
  }

  private async start(cmd: Extract<ChatCommand, { kind: 'start' }>, actor: Actor, req: CommandRequest): Promise<Reply> {
    const def = findRunbook(cmd.runbook);
    // Permission first: who may not run this runbook anywhere gets the same answer for any parameters.
    const some = await this.rbac.mayRunSome(actor, def.name);
    if (!some.ok) return refused([some.reason]);
    const params: Record<string, unknown> = { ...cmd.params };
    if ('requestedBy' in params) throw new InputError(['requestedBy: set from who you are, not a parameter']);
    if (cmd.dryRun) {
      if (!acceptsParam(def, 'dryRun')) throw new InputError([`--dry-run: runbook ${def.name} has no dry run`]);
      if ('dryRun' in params) throw new InputError(['dryRun: give --dry-run or dryRun=..., not both']);
      params.dryRun = 'true';
    }
    // Runbooks with approval gates record who asked, so nobody approves their own request.
    if (acceptsParam(def, 'requestedBy')) params.requestedBy = actor.name;
    const input = parseRunbookInput(def, params, this.config);
    const target = def.target(input);
    const verdict = await this.rbac.may(actor, 'run', def.name, target);
    if (!verdict.ok) return refused([verdict.reason]);
    const now = new Date(req.requestTs * 1000);
    const workflowId = def.workflowId(input, now);
    const link = webUiLink(this.config, workflowId);
    await this.backend.start(def, input, {
      workflowId,
      memo: { chat: { channel: req.channelId, requestedBy: actor.name, link } },
      // An id made from the request's clock is that request's: never started twice, even after the first run ended.
      rejectDuplicate: workflowId.includes(isoSecond(now)),
    });
    return {
      response_type: 'in_channel',
      text: `:rocket: <@${actor.userId}> started *${def.name}* on *${target}*${cmd.dryRun ? ' (dry run)' : ''}: \`${workflowId}\` — <${link}|Web UI>. Progress follows in this channel.`,
    };
  }

  /** The run's runbook and target (search attributes), and the actor's right to act on it. */
  private async allowedOn(actor: Actor, action: 'run' | 'approve', workflowId: string): Promise<RunInfo> {
    const run = await this.backend.describe(workflowId);
    if (!run.runbook || !run.target) throw new InputError([`${workflowId}: not a runbook run (no RunbookName/RunbookTarget)`]);
    const verdict = await this.rbac.may(actor, action, run.runbook, run.target);
    if (!verdict.ok) throw new InputError([verdict.reason]);
    return run;
  }

  /** The backend's update, typed by the Update's definition (its argument and result). */
  private update<Ret, Arg>(workflowId: string, update: UpdateDefinition<Ret, [Arg]>, arg: Arg): Promise<Ret> {
    return this.backend.update(workflowId, update, arg) as Promise<Ret>;
  }

  private async decide(actor: Actor, kind: 'approve' | 'reject', workflowId: string, note?: string): Promise<Reply> {
    await this.allowedOn(actor, 'approve', workflowId);
    const r = await this.update(workflowId, kind === 'approve' ? approveUpdate : rejectUpdate, { by: actor.name, ...(note ? { note } : {}) });
    const more = r.pending ? ` — ${r.pending} more approval(s) needed` : '';
    return { response_type: 'in_channel', text: `${kind === 'approve' ? ':white_check_mark:' : ':no_entry_sign:'} \`${workflowId}\` ${r.decision} by ${r.by} at ${r.at}${more}` };
  }

  private async answer(actor: Actor, workflowId: string, answer: StepAnswer, step?: string, note?: string): Promise<Reply> {
    await this.allowedOn(actor, 'run', workflowId);
    const r = await this.update(workflowId, stepDecisionUpdate, { answer, by: actor.name, ...(step ? { step } : {}), ...(note ? { note } : {}) });
    return { response_type: 'in_channel', text: `:speech_balloon: \`${workflowId}\`: ${r.answer} "${r.step}" (by ${r.by})` };
  }

  /** A button press (block_actions). */
  async action(req: ActionRequest): Promise<Reply> {
    const actor = actorOf(this.config, req.userId);
    try {
      switch (req.actionId) {
        case ACTIONS.approve:
          return await this.decide(actor, 'approve', req.value);
        case ACTIONS.reject:
          return await this.decide(actor, 'reject', req.value);
        case ACTIONS.retry:
        case ACTIONS.skip:
        case ACTIONS.abort: {
          const v = parseQuestionValue(req.value);
          if (!v) return refused(['this button carries no question']);
          const answer: StepAnswer = req.actionId === ACTIONS.retry ? 'retry' : req.actionId === ACTIONS.skip ? 'skip' : 'abort';
          return await this.answer(actor, v.workflowId, answer, v.step);
        }
        case ACTIONS.incidentAck:
        case ACTIONS.incidentResolve: {
          // The incident workflow's `acknowledge` / `resolve` Update with { by, note? } on value = its id.
          const verdict = await this.rbac.mayHandleIncidents(actor);
          if (!verdict.ok) return refused([verdict.reason]);
          const ack = req.actionId === ACTIONS.incidentAck;
          await this.update(req.value, ack ? acknowledgeUpdate : resolveUpdate, { by: actor.name });
          return { response_type: 'in_channel', text: `${ack ? ':eyes: acknowledged' : ':white_check_mark: resolved'} by ${actor.name}` };
        }
        default:
          return refused([`unknown button "${req.actionId}"`]);
      }
    } catch (err) {
      return this.failure(err);
    }
  }
}

function parseQuestionValue(value: string): { workflowId: string; step: string } | undefined {
  try {
    const v = JSON.parse(value) as { workflowId?: unknown; step?: unknown };
    return typeof v.workflowId === 'string' && typeof v.step === 'string' ? { workflowId: v.workflowId, step: v.step } : undefined;
  } catch {
    return undefined;
  }
}

/** The Backend on a Temporal client. */
export function temporalBackend(client: Client, config: Config): Backend {
  return {
    async start(def, input, opts) {
      // The same story in the Web UI as a CLI start (search attributes, summary, redacted memo), plus the chat memo.
      const meta = runbookStartMetadata(config, def, input, `chatops:${opts.memo.chat.requestedBy}`);
      await client.workflow.start(def.workflowType, {
        taskQueue: config.temporal.taskQueue,
        workflowId: opts.workflowId,
        args: [input],
        ...meta,
        memo: { ...meta.memo, ...opts.memo },
        ...(opts.rejectDuplicate ? { workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE } : {}),
      });
    },
    async describe(workflowId) {
      const handle = client.workflow.getHandle(workflowId);
      const d = await handle.describe();
      const status = d.status.name === 'RUNNING' ? await handle.query(statusQuery).catch(() => undefined) : undefined;
      return {
        workflowId: d.workflowId,
        type: d.type,
        state: d.status.name,
        runbook: d.typedSearchAttributes.get(RUNBOOK_NAME),
        target: d.typedSearchAttributes.get(RUNBOOK_TARGET),
        ...(status ? { status } : {}),
      };
    },
    async list(limit, target) {
      const rows: Awaited<ReturnType<Backend['list']>> = [];
      const query = target ? `${RUNBOOK_TARGET.name} = ${JSON.stringify(target)}` : undefined;
      for await (const wf of client.workflow.list({ pageSize: limit, query })) {
        rows.push({
          workflowId: wf.workflowId,
          state: wf.status.name,
          startTime: wf.startTime.toISOString(),
          runbook: wf.typedSearchAttributes.get(RUNBOOK_NAME),
          target: wf.typedSearchAttributes.get(RUNBOOK_TARGET),
        });
        if (rows.length >= limit) break;
      }
      return rows;
    },
    async cancel(workflowId) {
      await client.workflow.getHandle(workflowId).cancel();
    },
    async update(workflowId, update, arg) {
      return client.workflow.getHandle(workflowId).executeUpdate(update, { args: [arg] });
    },
  };
}
