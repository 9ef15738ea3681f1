import { type WorkflowHandle } from '@temporalio/client';
import { parse, stringify } from 'yaml';
import { startChatops } from '../src/client/chatops';
import { parseConfig } from '../src/config/load';
import { createRunbookWorker } from '../src/workers/worker';
import { type RestoreOutcome } from '../src/workflows/restore-database';
import { commandBody, signedPost } from '../test/support/chat';
import { type RestoreTimeline, restoreTimeline, startSlackOutage } from '../test/support/chat-timeline';
import { damage, restoreFixture, serviceContainer } from '../test/support/restore-fixture';
import { useDevServer, workflowBundle } from '../test/support/temporal';
import { report } from './support/report';

/**
 * RB-01 started from chat while the Slack API is down (every call answers 500) against the same restore started
 * by the client: chat progress must add nothing to the downtime (services stopped → started) nor to the whole run.
 * Both read from the run's history (event times of the Temporal server), the median of RUNS pairs (alternating which goes first) after one unmeasured run of each.
 */
const RUNS = Number(process.env.BENCH_RUNS ?? (process.env.BENCH_SMOKE === '1' ? 1 : 5));
const SECRET = 'bench-chat-restore-secret';

const dev = useDevServer();

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

test(`restore from chat with the Slack API down vs from the client, ${RUNS} pair(s)`, async () => {
  const outage = await startSlackOutage();
  const service = await serviceContainer();
  try {
    const f = await restoreFixture({ service });
    const raw = parse(f.yaml);
    process.env.BENCH_SLACK_TOKEN = 'xoxb-bench';
    process.env.BENCH_SIGNING_SECRET = SECRET;
    raw.notifications = { ...raw.notifications, slack: { botToken: { env: 'BENCH_SLACK_TOKEN' }, apiUrl: outage.apiUrl, channel: 'C0OPS' } };
    raw.chatops = { signingSecret: { env: 'BENCH_SIGNING_SECRET' }, people: { U0OPS: 'ops' }, roles: { ops: ['U0OPS'] }, rules: [{ runbooks: ['*'], targets: [f.target], run: ['ops'] }] };
    const config = parseConfig(stringify(raw), 'bench-chat-restore.yaml');
    const taskQueue = config.temporal.taskQueue;
    const worker = await createRunbookWorker({ config, connection: dev.workerConnection, workflowBundle: await workflowBundle() });
    const chat = await startChatops(config, dev.client, { port: 0 });
    const fromChat: RestoreTimeline[] = [];
    const fromClient: RestoreTimeline[] = [];
    try {
      await worker.runUntil(async () => {
        await dev.client.workflow.execute('backup', { taskQueue, workflowId: `bench-backup-${f.target}`, args: [{ target: f.target, kind: 'postgres', prune: false }] });
        const finish = async (handle: WorkflowHandle): Promise<RestoreTimeline> => {
          const r: RestoreOutcome = await handle.result();
          if (r.outcome !== 'restored') throw new Error(r.outcome);
          await dev.client.workflow.getHandle(r.dropWorkflowId).terminate('bench over');
          return restoreTimeline(await handle.fetchHistory());
        };
        const viaChat = async (): Promise<RestoreTimeline> => {
          await damage(f.db);
          const sent = await signedPost(`${chat.url}/slack/commands`, SECRET, commandBody({ user_id: 'U0OPS', text: `restore target=${f.target} reason="bench"` }));
          if (!String(sent.json().text).includes(`restore/${f.target}`)) throw new Error(`not started from chat: ${sent.body}`);
          return finish(dev.client.workflow.getHandle(`restore/${f.target}`));
        };
        const viaClient = async (): Promise<RestoreTimeline> => {
          await damage(f.db);
          return finish(await dev.client.workflow.start('restoreDatabase', { taskQueue, workflowId: `restore/${f.target}`, args: [{ target: f.target, backup: 'latest', dryRun: false, reason: 'bench' }] }));
        };
        // One restore of each, not measured (the worker's first runs pay for loading the workflow code), then pairs in alternating order.
        await viaClient();
        await viaChat();
        for (let i = 0; i < RUNS; i++) {
          if (i % 2) fromClient.push(await viaClient());
          fromChat.push(await viaChat());
          if (i % 2 === 0) fromClient.push(await viaClient());
        }
      });
    } finally {
      await chat.close();
    }
    const sizes = `${RUNS} pair(s), median; 1500 customers × 4 orders, one service container; Slack API answering HTTP 500 (${outage.calls()} calls refused)`;
    const baselineName = 'the same restore started by the client (no chat)';
    const notes = `from history event times; chat activities scheduled while services were down: ${fromChat.reduce((n, t) => n + t.chatInWindow.length, 0)}`;
    report({ bench: 'chat-restore', metric: 'downtime (services stopped → started), from chat with Slack down', unit: 'ms', ours: median(fromChat.map((t) => t.downtimeMs)), baseline: median(fromClient.map((t) => t.downtimeMs)), baselineName, target: '≈ 1 (within noise)', sizes, notes });
    report({ bench: 'chat-restore', metric: 'whole restore, from chat with Slack down', unit: 'ms', ours: median(fromChat.map((t) => t.durationMs)), baseline: median(fromClient.map((t) => t.durationMs)), baselineName, target: '≈ 1 (within noise)', sizes, notes });
    expect(fromChat.every((t) => t.chatScheduled > 0)).toBe(true);
  } finally {
    await service.remove();
    await outage.close();
  }
});
