import { patched, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { RunbookActivities, SlackPostInput } from '../activities';
import { ACTIONS, type ChatMemo, type RunbookStatus, type StepAnswer } from './definitions';
import { type ProgressReporter } from './progress';

type Blocks = NonNullable<SlackPostInput['blocks']>;

// Chat is best effort: a few quick tries, then the run goes on (the status query and the Web UI have it all).
const slack = proxyActivities<RunbookActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '5 seconds', maximumAttempts: 3 },
});

// Progress in the background (see Progress): one try per report, the next report (with the newest status) is the retry.
const slackOnce = proxyActivities<RunbookActivities>({ startToCloseTimeout: '10 seconds', retry: { maximumAttempts: 1 } });

/** Progress posts go through a background pump and never hold a step (runs started before that change awaited each post). */
export const CHAT_IN_BACKGROUND = 'chat-progress-in-background';

/** After a failed progress post, how long reports are skipped (the final one is always tried). */
const CHAT_RETRY_MS = 10_000;

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
  readonly background: boolean;
  private channel: string;
  private ts?: string;
  private last?: string;
  /** Background mode: the newest status text, the post that opens the thread (one at a time), edits under way, whether the last call failed. */
  private latest?: string;
  private opening?: Promise<void>;
  private editing = 0;
  private failed = false;
  /** Background mode: after a failed post, reports wait until then (workflow time) unless final: a chat that is down is not hammered. */
  private retryAt = 0;
  private readonly notBefore = new Date().toISOString();
  private readonly info = workflowInfo();

  constructor(
    private readonly memo: ChatMemo,
    private readonly title: string,
  ) {
    this.channel = memo.channel;
    this.background = patched(CHAT_IN_BACKGROUND);
  }

  /** The thread of this run, when it was started from chat (memo `chat`). */
  static fromMemo(title: string): ChatThread | undefined {
    const m = workflowInfo().memo?.chat as Partial<ChatMemo> | undefined;
    return m && typeof m.channel === 'string' && m.channel ? new ChatThread(m as ChatMemo, title) : undefined;
  }

  private key(purpose: string): string {
    return `${this.info.workflowId}/${this.info.runId}/${purpose}`;
  }

  async report(status: RunbookStatus, final = false): Promise<void> {
    const text = renderStatus(this.title, this.info.workflowId, status, this.memo.link);
    if (this.background) return this.reportOnce(text, final);
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

  /** Background mode: one try to show `text` (open the thread, or update its message). Never throws. */
  private async reportOnce(text: string, final: boolean): Promise<void> {
    this.latest = text;
    if (text === this.last || (this.failed && !final && Date.now() < this.retryAt)) return;
    try {
      if (!this.ts) await this.open(slackOnce);
      if (this.ts && this.last !== text) {
        await slackOnce.updateSlackMessage({ channel: this.channel, ts: this.ts, text });
        this.last = text;
      }
      this.failed = false;
    } catch {
      // Best effort: a report after CHAT_RETRY_MS (or the final one) tries again with the newest status.
      this.failed = true;
      this.retryAt = Date.now() + CHAT_RETRY_MS;
    }
  }

  /** Post the progress message that opens the thread, with the newest status (one post at a time: the same key). */
  private open(api: typeof slack): Promise<void> {
    this.opening ??= (async () => {
      const text = this.latest ?? '';
      try {
        const r = await api.postSlackMessage({ idempotencyKey: this.key('progress'), channel: this.channel, text, notBefore: this.notBefore });
        this.channel = r.channel;
        this.ts = r.ts;
        // A post an earlier try had made shows an older status: the next report updates it.
        this.last = r.posted ? text : undefined;
      } finally {
        this.opening = undefined;
      }
    })();
    return this.opening;
  }

  /** Background mode: chat calls still under way outside a report (the thread being opened, edits). */
  busy(): boolean {
    return this.opening !== undefined || this.editing > 0;
  }

  /** Background mode: the last progress post failed (chat is down: waiting for it would only delay the run). */
  failing(): boolean {
    return this.failed;
  }

  /** A reply in the thread; undefined when chat is unreachable. */
  async reply(purpose: string, text: string, blocks?: Blocks): Promise<{ channel: string; ts: string } | undefined> {
    if (this.background && !this.ts) {
      // A reply needs its thread: wait for the post under way, or open it now (with retries: a person waits for this).
      await this.opening?.catch(() => undefined);
      if (!this.ts && this.latest !== undefined) await this.open(slack).catch(() => undefined);
    }
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
    if (this.background) {
      // Nobody waits for this one: it goes on beside the run (flush waits for it, bounded).
      this.editing += 1;
      void slack
        .updateSlackMessage({ channel: msg.channel, ts: msg.ts, text, blocks: [{ type: 'section', text: { type: 'mrkdwn', text } }] })
        .catch(() => undefined)
        .finally(() => (this.editing -= 1));
      return;
    }
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
