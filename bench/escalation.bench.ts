import { type Client } from '@temporalio/client';
import { parse, stringify } from 'yaml';
import { openIncident } from '../src/client/incidents';
import { createRunbookWorker } from '../src/workers/worker';
import { parseConfig } from '../src/config/load';
import { alertResolvedSignal } from '../src/workflows/incident-definitions';
import { testConfig, uniqueName } from '../test/support/servers';
import { type Received, startSmtp } from '../test/support/smtp';
import { useDevServer, workflowBundle } from '../test/support/temporal';
import { report } from './support/report';

/**
 * Escalation at scale: N concurrent incidents on the dev server, each escalating to level 2 after a durable
 * timer. Measured: how late each timer-driven page arrives (the level-2 email accepted by a real SMTP server,
 * against the time the policy said: opened + 20 s), p50/p99, and the peak RSS of the process that runs the
 * worker (the product's runbook worker: createRunbookWorker, the real notify activity and nodemailer).
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

/** The level-2 pages among the received emails: incident id → lateness (accepted − (opened + after)). */
function level2Lateness(received: Received[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of received) {
    const id = /^Incident: (incident\/\S+)/m.exec(m.raw)?.[1];
    const opened = /^Opened: (\S+)/m.exec(m.raw)?.[1];
    if (!id || !opened || !/^Escalation: level 2,/m.test(m.raw)) continue;
    if (!out.has(id)) out.set(id, m.at - (Date.parse(opened) + LEVEL_2_AFTER_S * 1000));
  }
  return out;
}

test(`${INCIDENTS} concurrent incidents: lateness of the timer-driven level-2 email, worker RSS`, async () => {
  const smtp = await startSmtp('pager', 'bench-smtp');
  process.env.BENCH_SMTP_PASSWORD = 'bench-smtp';
  const taskQueue = uniqueName('esc-bench');
  const base = parse(testConfig({ taskQueue, email: { port: smtp.port, user: 'pager', passwordEnv: 'BENCH_SMTP_PASSWORD', to: ['ops@example.test'] } }).yaml);
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

  const rssBefore = process.memoryUsage().rss;
  let rssPeak = rssBefore;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 250);
  const worker = await createRunbookWorker({ config, connection: dev.workerConnection, workflowBundle: await workflowBundle() });
  const client: Client = dev.client;
  const ids = Array.from({ length: INCIDENTS }, (_, i) => `bench${uniqueName('i').replace(/_/g, '')}n${i}`);

  let late = new Map<string, number>();
  try {
    await worker.runUntil(async () => {
      await inBatches(ids, 50, (fp) => openIncident(client, config, { fingerprint: fp, title: `bench ${fp}`, severity: 'critical', source: 'manual' }));
      const deadline = Date.now() + (LEVEL_2_AFTER_S + 240) * 1000;
      while ((late = level2Lateness(smtp.received)).size < INCIDENTS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500));
      await inBatches(ids, 50, (fp) => client.workflow.getHandle(`incident/${fp}`).signal(alertResolvedSignal, {}));
    });
  } finally {
    clearInterval(sampler);
    await smtp.close();
  }

  expect(late.size).toBe(INCIDENTS); // every incident escalated
  const lateness = [...late.values()];
  const sizes = `${INCIDENTS} incidents opened together (signal-with-start, 50 at a time), level 2 due ${LEVEL_2_AFTER_S} s after each opened; emails to a real SMTP server; dev server (SQLite) + the runbook worker (maxConcurrentActivities ${config.temporal.maxConcurrentActivities})`;
  report({ bench: 'escalation', metric: 'level-2 email lateness p50', unit: 'ms', ours: percentile(lateness, 50), baseline: 1000, baselineName: 'target p99 < 1 s', sizes });
  report({ bench: 'escalation', metric: 'level-2 email lateness p99', unit: 'ms', ours: percentile(lateness, 99), baseline: 1000, baselineName: 'target p99 < 1 s', target: '< 1', sizes });
  report({ bench: 'escalation', metric: 'worker peak RSS', unit: 'MB', ours: rssPeak / 1e6, baseline: rssBefore / 1e6, baselineName: 'the same process before the worker started', sizes });
});
