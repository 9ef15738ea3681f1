import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { RunbookActivities, SlackPostInput } from '../activities';
import { type ChatMemo, type RunbookStatus, type StepAnswer } from './definitions';
import { type ProgressReporter } from './progress';

type Blocks = NonNullable<SlackPostInput['blocks']>;

// Chat is best effort: a few quick tries, then the run goes on (the status query and the Web UI have it all).
const slack = proxyActivities<RunbookActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '5 seconds', maximumAttempts: 3 },
});

/** Button action ids the ChatOps service handles (src/client/chatops). */
export const ACTIONS = {
  approve: 'runbook_approve',
  reject: 'runbook_reject',
  retry: 'runbook_retry',
  skip: 'runbook_skip',
  abort: 'runbook_abort',
} as const;

const MARK: Record<string, string> = { running: '⏳', completed: '✅', failed: '❌', skipped: '⏭️' };

export function renderStatus(title: string, workflowId: string, s: RunbookStatus, link?: string): string {
  const head = `*${title}* \`${workflowId}\` — ${s.state}${s.state === 'running' ? `: ${s.step}` : ''}${link ? ` (<${link}|Web UI>)` : ''}`;
  const lines = s.timeline.map((t) => `${MARK[t.state] ?? '•'} ${t.step}${t.detail ? ` — ${t.detail}` : ''}`);
  if (s.approval) lines.push(`🔒 waiting for approval: ${s.approval.approvedBy.length}/${s.approval.quorum}${s.approval.approvedBy.length ? ` (${s.approval.approvedBy.join(', ')})` : ''}`);
  if (s.question) lines.push(`❓ ${s.question.step} failed: ${s.question.error} — ${s.question.options.join(' / ')}?`);
  return [head, ...lines].join('\n');
}

/**
 * The chat thread of a run started from chat: one progress message updated in place (the thread's parent),
 * approval requests and questions as replies with buttons. Every post carries an idempotency key made of the
 * workflow id, run id and purpose, so a retried activity never posts twice.
 */
export class ChatThread implements ProgressReporter {
  private channel: string;
  private ts?: string;
  private last?: string;
  private readonly notBefore = new Date().toISOString();
  private readonly info = workflowInfo();

  constructor(
    private readonly memo: ChatMemo,
    private readonly title: string,
  ) {
    this.channel = memo.channel;
  }

  /** The thread of this run, when it was started from chat (memo `chat`). */
  static fromMemo(title: string): ChatThread | undefined {
    const m = workflowInfo().memo?.chat as Partial<ChatMemo> | undefined;
    return m && typeof m.channel === 'string' && m.channel ? new ChatThread(m as ChatMemo, title) : undefined;
  }

  private key(purpose: string): string {
    return `${this.info.workflowId}/${this.info.runId}/${purpose}`;
  }

  async report(status: RunbookStatus): Promise<void> {
    const text = renderStatus(this.title, this.info.workflowId, status, this.memo.link);
    if (text === this.last) return;
    try {
      if (!this.ts) {
        const r = await slack.postSlackMessage({ idempotencyKey: this.key('progress'), channel: this.channel, text, notBefore: this.notBefore });
        this.channel = r.channel;
        this.ts = r.ts;
      } else {
        await slack.updateSlackMessage({ channel: this.channel, ts: this.ts, text });
      }
      this.last = text;
    } catch {
      // best effort (see above)
    }
  }

  /** A reply in the thread; undefined when chat is unreachable. */
  async reply(purpose: string, text: string, blocks?: Blocks): Promise<{ channel: string; ts: string } | undefined> {
    if (!this.ts) return undefined;
    try {
      const r = await slack.postSlackMessage({
        idempotencyKey: this.key(purpose),
        channel: this.channel,
        threadTs: this.ts,
        text,
        ...(blocks ? { blocks } : {}),
        notBefore: this.notBefore,
      });
      return { channel: r.channel, ts: r.ts };
    } catch {
      return undefined;
    }
  }

  /** Replace a reply (e.g. buttons → "approved by alice"). */
  async edit(msg: { channel: string; ts: string } | undefined, text: string): Promise<void> {
    if (!msg) return;
    try {
      await slack.updateSlackMessage({ channel: msg.channel, ts: msg.ts, text, blocks: [{ type: 'section', text: { type: 'mrkdwn', text } }] });
    } catch {
      // best effort
    }
  }

  approvalRequest(text: string): Promise<{ channel: string; ts: string } | undefined> {
    const id = this.info.workflowId;
    return this.reply('approval', text, [
      { type: 'section', text: { type: 'mrkdwn', text } },
      {
        type: 'actions',
        block_id: 'approval',
        elements: [
          { type: 'button', action_id: ACTIONS.approve, text: { type: 'plain_text', text: 'Approve' }, style: 'primary', value: id },
          { type: 'button', action_id: ACTIONS.reject, text: { type: 'plain_text', text: 'Reject' }, style: 'danger', value: id },
        ],
      },
    ]);
  }

  question(n: number, step: string, text: string, options: StepAnswer[]): Promise<{ channel: string; ts: string } | undefined> {
    const value = JSON.stringify({ workflowId: this.info.workflowId, step });
    const label: Record<StepAnswer, string> = { retry: 'Retry', skip: 'Skip', abort: 'Abort' };
    return this.reply(`question-${n}`, text, [
      { type: 'section', text: { type: 'mrkdwn', text } },
      {
        type: 'actions',
        block_id: 'question',
        elements: options.map((o) => ({
          type: 'button' as const,
          action_id: ACTIONS[o],
          text: { type: 'plain_text' as const, text: label[o] },
          ...(o === 'abort' ? { style: 'danger' as const } : o === 'retry' ? { style: 'primary' as const } : {}),
          value,
        })),
      },
    ]);
  }
}
