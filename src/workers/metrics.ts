import { createLimitedServer } from '../client/http';
import { type AddressInfo } from 'node:net';
import type { Context } from '@temporalio/activity';
import { type ActivityInterceptorsFactory, type InjectedSinks } from '@temporalio/worker';
import { Counter, Histogram, Registry } from 'prom-client';
import type { RunbookMetricsSinks } from '../workflows/interceptors';

/**
 * The worker's Prometheus metrics: runbook runs by runbook and outcome, step and activity durations,
 * escalations and rollbacks (prom-client), next to the SDK's own runtime metrics (the Temporal
 * Core exporter, scraped through by `/metrics` so one scrape target has everything).
 */

const SECONDS = [0.05, 0.25, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600];

export interface RunbookMetrics {
  registry: Registry;
  sinks: InjectedSinks<RunbookMetricsSinks>;
  activityInterceptor: ActivityInterceptorsFactory;
}

export function createRunbookMetrics(registry = new Registry()): RunbookMetrics {
  const runs = new Counter({ name: 'runbook_runs_total', help: 'Finished runbook runs by runbook and outcome', labelNames: ['runbook', 'outcome'], registers: [registry] });
  const runSeconds = new Histogram({
    name: 'runbook_run_duration_seconds',
    help: 'Runbook run duration (workflow clock) by runbook and outcome',
    labelNames: ['runbook', 'outcome'],
    buckets: SECONDS,
    registers: [registry],
  });
  const stepSeconds = new Histogram({
    name: 'runbook_step_duration_seconds',
    help: 'Runbook step duration (workflow clock) by runbook, step and outcome',
    labelNames: ['runbook', 'step', 'outcome'],
    buckets: SECONDS,
    registers: [registry],
  });
  const activitySeconds = new Histogram({
    name: 'runbook_activity_duration_seconds',
    help: 'Activity attempt duration on this worker by activity type and outcome',
    labelNames: ['activity', 'outcome'],
    buckets: SECONDS,
    registers: [registry],
  });
  // Fed by countEvent() in the workflows (src/workflows/observe.ts): incident.ts, deploy.ts, restore-database.ts, rotate-secrets.ts.
  const escalations = new Counter({ name: 'runbook_escalations_total', help: 'Incidents escalated to the next on-call level (or the next round of the ladder)', labelNames: ['runbook'], registers: [registry] });
  const rollbacks = new Counter({
    name: 'runbook_rollbacks_total',
    help: 'Failed runs that put the previous state back: a deploy to the previous image, a restore swapped back, a rotation undone',
    labelNames: ['runbook'],
    registers: [registry],
  });
  const events = new Counter({ name: 'runbook_events_total', help: 'Other countable runbook moments by name', labelNames: ['runbook', 'event'], registers: [registry] });

  // Sinks are not called during replay: a run replayed after a worker restart is not counted twice.
  const sinks: InjectedSinks<RunbookMetricsSinks> = {
    runbookMetrics: {
      stepFinished: { fn: (_info, runbook, step, outcome, ms) => stepSeconds.observe({ runbook, step, outcome }, ms / 1000) },
      runFinished: {
        fn: (_info, runbook, outcome, ms) => {
          runs.inc({ runbook, outcome });
          runSeconds.observe({ runbook, outcome }, ms / 1000);
        },
      },
      event: {
        fn: (_info, runbook, event) => {
          if (event === 'escalation') escalations.inc({ runbook });
          else if (event === 'rollback') rollbacks.inc({ runbook });
          else events.inc({ runbook, event });
        },
      },
    },
  };

  const activityInterceptor: ActivityInterceptorsFactory = (ctx: Context) => ({
    inbound: {
      async execute(input, next) {
        const started = performance.now();
        let outcome = 'failed';
        try {
          const result = await next(input);
          outcome = 'completed';
          return result;
        } catch (err) {
          outcome = ctx.cancellationSignal.aborted ? 'cancelled' : 'failed';
          throw err;
        } finally {
          const ms = performance.now() - started;
          activitySeconds.observe({ activity: ctx.info.activityType, outcome }, ms / 1000);
          // The context logger adds workflowId, runId, activityId, activityType and attempt to the entry.
          ctx.log.info('activity finished', { outcome, durationMs: Math.round(ms) });
        }
      },
    },
  });

  return { registry, sinks, activityInterceptor };
}

export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

/**
 * Serve GET /metrics: our registry, then the SDK runtime's exporter (`sdkMetricsUrl`, bound to loopback by
 * the worker) appended, so Prometheus scrapes one endpoint. An unreachable SDK exporter is reported in a comment.
 */
export async function startMetricsServer(opts: { address: string; registry: Registry; sdkMetricsUrl?: string }): Promise<MetricsServer> {
  const [host, portText] = splitAddress(opts.address);
  const server = createLimitedServer((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try GET /metrics\n');
      return;
    }
    void (async () => {
      let body = await opts.registry.metrics();
      if (opts.sdkMetricsUrl) {
        try {
          const r = await fetch(opts.sdkMetricsUrl, { signal: AbortSignal.timeout(5_000) });
          body += `\n# Temporal SDK runtime metrics\n${await r.text()}`;
        } catch (err) {
          body += `\n# Temporal SDK runtime metrics unavailable: ${(err as Error).message}\n`;
        }
      }
      res.writeHead(200, { 'content-type': opts.registry.contentType }).end(body);
    })().catch((err: unknown) => res.writeHead(500).end(String(err)));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(portText), host, resolve);
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/metrics`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** "0.0.0.0:9464" → ["0.0.0.0", "9464"]; "[::1]:9464" → ["::1", "9464"]. */
export function splitAddress(address: string): [string, string] {
  const m = /^\[?([^\]]*)\]?:(\d+)$/.exec(address);
  if (!m?.[1] || !m[2]) throw new Error(`not a host:port address: ${address}`);
  return [m[1], m[2]];
}
