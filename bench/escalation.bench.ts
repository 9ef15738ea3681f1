import { type Client } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { parse, stringify } from 'yaml';
import { createActivities } from '../src/activities';
import { type NotifyInput, type NotifyResult } from '../src/activities/notify';
import { openIncident } from '../src/client/incidents';
import { dataConverterOptions } from '../src/config/codec';
import { parseConfig } from '../src/config/load';
import { alertResolvedSignal } from '../src/workflows/incident-definitions';
import { testConfig, uniqueName } from '../test/support/servers';
import { useDevServer, workflowBundle } from '../test/support/temporal';
import { report } from './support/report';

/**
 * Escalation at scale: N concurrent incidents on the dev server, each escalating to level 2 after a durable
 * timer. Measured: how late each timer-driven page goes out (the notify activity's start against the time the
 * policy said), p50/p99, and the worker's peak RSS. The notify activity records instead of sending (this
 * measures Temporal timers and our workflow, not an SMTP server); everything else is the product's code.
 */
const SMOKE = process.env.BENCH_SMOKE === '1';
const INCIDENTS = Number(process.env.BENCH_INCIDENTS ?? (SMOKE ? 100 : 1_000));
const LEVEL_2_AFTER_S = 20;

const dev = useDevServer();

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function inBatches<T>(items: T[], size: number, fn: (t: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn));
}

test(`${INCIDENTS} concurrent incidents: lateness of the timer-driven level-2 page, worker RSS`, async () => {
  const taskQueue = uniqueName('esc-bench');
  const base = parse(testConfig({ taskQueue }).yaml);
  base.notifications = { email: { host: '127.0.0.1', port: 2525, from: 'runbooks@example.test', to: ['ops@example.test'] } };
  base.escalation = {
    people: { alice: { email: 'alice@example.test' }, bob: { email: 'bob@example.test' } },
    policies: {
      bench: {
        levels: [
          { targets: ['alice'], channels: ['email'], after: `${LEVEL_2_AFTER_S}s` },
          { targets: ['bob'], channels: ['email'], after: '1h' },
        ],
      },
    },
    severities: { critical: 'bench' },
  };
  const config = parseConfig(stringify(base), 'bench.yaml');

  const pages = new Map<string, { level: number; at: number; openedAt: number }[]>();
  const activities = {
    ...createActivities({ config }),
    // Records the page instead of sending it.
    notify: (input: NotifyInput): Promise<NotifyResult> => {
      const list = pages.get(input.incident.id) ?? [];
      list.push({ level: input.incident.level, at: Date.now(), openedAt: Date.parse(input.incident.openedAt) });
      pages.set(input.incident.id, list);
      return Promise.resolve({ channel: input.channel, delivered: true, ref: input.idempotencyKey });
    },
  };
  const rssBefore = process.memoryUsage().rss;
  let rssPeak = rssBefore;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 250);
  const worker = await Worker.create({
    connection: dev.workerConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities,
    ...dataConverterOptions(config),
  });
  const client: Client = dev.client;
  const ids = Array.from({ length: INCIDENTS }, (_, i) => `bench${uniqueName('i').replace(/_/g, '')}n${i}`);

  try {
    await worker.runUntil(async () => {
      await inBatches(ids, 50, (fp) => openIncident(client, config, { fingerprint: fp, title: `bench ${fp}`, severity: 'critical', source: 'manual' }));
      const deadline = Date.now() + (LEVEL_2_AFTER_S + 240) * 1000;
      while ([...pages.values()].filter((l) => l.some((p) => p.level === 2)).length < INCIDENTS && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 500));
      }
      await inBatches(ids, 50, (fp) => client.workflow.getHandle(`incident/${fp}`).signal(alertResolvedSignal, {}));
    });
  } finally {
    clearInterval(sampler);
  }

  const lateness = [...pages.values()].flatMap((l) => l.filter((p) => p.level === 2).map((p) => p.at - (p.openedAt + LEVEL_2_AFTER_S * 1000)));
  expect(lateness).toHaveLength(INCIDENTS); // every incident escalated, once
  const sizes = `${INCIDENTS} incidents opened together (signal-with-start, 50 at a time), level 2 due ${LEVEL_2_AFTER_S} s after each opened; dev server (SQLite) + one worker`;
  report({ bench: 'escalation', metric: 'level-2 page lateness p50', unit: 'ms', ours: percentile(lateness, 50), baseline: 1000, baselineName: 'target p99 < 1 s', sizes });
  report({ bench: 'escalation', metric: 'level-2 page lateness p99', unit: 'ms', ours: percentile(lateness, 99), baseline: 1000, baselineName: 'target p99 < 1 s', target: '< 1', sizes });
  report({ bench: 'escalation', metric: 'worker peak RSS', unit: 'MB', ours: rssPeak / 1e6, baseline: rssBefore / 1e6, baselineName: 'the same process before the worker started', sizes });
});
