import { readFileSync } from 'node:fs';
import { type Client } from '@temporalio/client';
import { parse, stringify } from 'yaml';
import { openIncident } from '../src/client/incidents';
import { parseConfig } from '../src/config/load';
import { alertResolvedSignal } from '../src/workflows/incident-definitions';
import { startWorkerProcess, writeConfigFile } from '../test/support/processes';
import { testConfig, uniqueName } from '../test/support/servers';
import { type Received, startSmtp } from '../test/support/smtp';
import { useDevServer } from '../test/support/temporal';
import { report } from './support/report';

/**
 * Escalation at scale: N concurrent incidents on the dev server, each escalating to level 2 after a durable
 * timer. Measured: how late each timer-driven page arrives (the level-2 email accepted by a real SMTP server,
 * against the time the policy said: opened + 20 s), p50/p99, and the memory of the worker itself: the product's
 * worker binary (dist/workers/main.js, the real notify activity and nodemailer) in its own process, whose peak
 * RSS (VmHWM) and RSS are read from /proc, so neither Jest, the bench's client nor the SMTP server count.
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

/** A /proc/<pid>/status field in bytes (VmRSS: now; VmHWM: the kernel's peak RSS of the process). */
function procBytes(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const kb = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  if (!kb) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(kb) * 1024;
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
  const yaml = stringify(base);
  const config = parseConfig(yaml, 'bench.yaml');

  const worker = await startWorkerProcess(writeConfigFile(yaml));
  const client: Client = dev.client;
  const ids = Array.from({ length: INCIDENTS }, (_, i) => `bench${uniqueName('i').replace(/_/g, '')}n${i}`);
  // The worker started and polling, no incident yet; then its RSS while all of them are open and their pages go out.
  await new Promise((r) => setTimeout(r, 2000));
  const rssIdle = procBytes(worker.pid, 'VmRSS');
  let rssOpen = rssIdle;
  const sampler = setInterval(() => (rssOpen = Math.max(rssOpen, procBytes(worker.pid, 'VmRSS'))), 250);

  let late = new Map<string, number>();
  let rssPeak = rssIdle;
  try {
    await inBatches(ids, 50, (fp) => openIncident(client, config, { fingerprint: fp, title: `bench ${fp}`, severity: 'critical', source: 'manual' }));
    const deadline = Date.now() + (LEVEL_2_AFTER_S + 240) * 1000;
    while ((late = level2Lateness(smtp.received)).size < INCIDENTS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500));
    rssPeak = procBytes(worker.pid, 'VmHWM');
    await inBatches(ids, 50, (fp) => client.workflow.getHandle(`incident/${fp}`).signal(alertResolvedSignal, {}));
  } finally {
    clearInterval(sampler);
    await worker.stop();
    await smtp.close();
  }

  expect(late.size).toBe(INCIDENTS); // every incident escalated
  const lateness = [...late.values()];
  const sizes = `${INCIDENTS} incidents opened together (signal-with-start, 50 at a time), level 2 due ${LEVEL_2_AFTER_S} s after each opened; emails to a real SMTP server; dev server (SQLite) + the runbook worker (maxConcurrentActivities ${config.temporal.maxConcurrentActivities})`;
  const target = { baseline: 1000, baselineName: 'goal p99 < 1 s', baselineKind: 'target' as const };
  report({ bench: 'escalation', metric: 'level-2 email lateness p50', unit: 'ms', ours: percentile(lateness, 50), ...target, sizes });
  report({ bench: 'escalation', metric: 'level-2 email lateness p99', unit: 'ms', ours: percentile(lateness, 99), ...target, target: '< 1', sizes });
  const memory = `${sizes}; the worker binary in its own process (dist/workers/main.js), VmHWM and VmRSS from /proc/<pid>/status`;
  report({ bench: 'escalation', metric: 'worker peak RSS (its own process)', unit: 'MB', ours: rssPeak / 1e6, baseline: rssIdle / 1e6, baselineName: 'the same worker started, before any incident', sizes: memory });
  report({ bench: 'escalation', metric: 'worker RSS per open incident', unit: 'bytes', ours: Math.round((rssOpen - rssIdle) / INCIDENTS), sizes: memory, notes: `(highest RSS sampled every 250 ms while all ${INCIDENTS} were open − RSS before) / ${INCIDENTS}` });
});
