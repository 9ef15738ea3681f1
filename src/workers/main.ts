#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import pino from 'pino';
import { collectDefaultMetrics } from 'prom-client';
import { freePort } from '../client/local-servers';
import { ConfigError, configPath, loadConfig } from '../config/load';
import { encryptionCodec } from '../config/codec';
import { checkSecrets, redact } from '../config/secrets';
import { BUNDLE_PATH } from './bundle';
import { createRunbookMetrics, startMetricsServer } from './metrics';
import { createRunbookWorker } from './worker';

/** Log entry metadata with every resolved secret value scrubbed (and secret-looking keys by pino's redact). */
function scrub(meta: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!meta) return {};
  try {
    return JSON.parse(redact(JSON.stringify(meta))) as Record<string, unknown>;
  } catch {
    return { meta: '[unserializable]' };
  }
}

/** Worker process: `node dist/workers/main.js [--config runbooks.yaml]`. Stops gracefully on SIGINT/SIGTERM. */
async function main(): Promise<void> {
  const i = process.argv.indexOf('--config');
  const file = configPath(i > 0 ? process.argv[i + 1] : undefined);
  // JSON lines on stdout; workflow and activity entries carry workflowId, runId (and activityId, activityType).
  const log = pino({
    name: 'runbook-worker',
    level: process.env.LOG_LEVEL ?? 'info',
    redact: { paths: ['*.password', '*.PGPASSWORD', '*.pass', '*.token', '*.secret', '*.apiKey', 'password', 'token', 'secret'], censor: '[redacted]' },
  });
  let config;
  try {
    config = loadConfig(file);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const problems = checkSecrets(config);
  try {
    encryptionCodec(config); // a codec key of the wrong size is a config problem, not a crash
  } catch (err) {
    problems.push((err as Error).message);
  }
  if (problems.length > 0) {
    process.stderr.write(`cannot start the worker, secrets missing:\n${problems.map((p) => `  - ${p}`).join('\n')}\n`);
    process.exit(2);
  }
  const metricsAddress = config.observability.metricsAddress;
  // The SDK's own metrics (Temporal Core: task latencies, slots, polls, ...) on a loopback port; /metrics adds them to ours.
  const sdkMetricsPort = metricsAddress ? await freePort() : undefined;
  Runtime.install({
    logger: new DefaultLogger((process.env.LOG_LEVEL?.toUpperCase() ?? 'INFO') as 'INFO', (entry) => {
      const level = entry.level.toLowerCase() as 'trace' | 'debug' | 'info' | 'warn' | 'error';
      log[level](scrub(entry.meta), redact(entry.message));
    }),
    ...(sdkMetricsPort ? { telemetryOptions: { metrics: { prometheus: { bindAddress: `127.0.0.1:${sdkMetricsPort}` } } } } : {}),
  });
  const metrics = createRunbookMetrics();
  collectDefaultMetrics({ register: metrics.registry, prefix: 'runbook_worker_' });
  const metricsServer = metricsAddress
    ? await startMetricsServer({ address: metricsAddress, registry: metrics.registry, sdkMetricsUrl: `http://127.0.0.1:${sdkMetricsPort}/metrics` })
    : undefined;
  // The bundle `npm run build` made; without it (running from source) the worker bundles at start.
  const workflowBundle = existsSync(BUNDLE_PATH) ? { codePath: BUNDLE_PATH } : undefined;
  const worker = await createRunbookWorker({ config, workflowBundle, metrics });
  log.info({ taskQueue: config.temporal.taskQueue, namespace: config.temporal.namespace, pid: process.pid, metrics: metricsServer?.url }, 'worker started');
  await worker.run();
  await metricsServer?.close();
  log.info('worker stopped');
}

main().catch((err: unknown) => {
  process.stderr.write(`worker failed: ${redact(err instanceof Error ? (err.stack ?? err.message) : String(err))}\n`);
  process.exit(1);
});
