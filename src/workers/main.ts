#!/usr/bin/env node
import { DefaultLogger, Runtime, makeTelemetryFilterString } from '@temporalio/worker';
import pino from 'pino';
import { collectDefaultMetrics } from 'prom-client';
import { freePort } from '../client/local-servers';
import { ConfigError, configPath, loadConfig } from '../config/load';
import { encryptionCodec } from '../config/codec';
import { checkSecrets, redact } from '../config/secrets';
import { logFields } from './log';
import { prebuiltBundle } from './bundle';
import { createRunbookMetrics, startMetricsServer } from './metrics';
import { hostTaskQueueName } from '../activities';
import { createDockerHostWorker } from './docker-host';
import { connectWorker, createRunbookWorker } from './worker';

/**
 * Worker process: `node dist/workers/main.js [--config runbooks.yaml] [--docker-host NAME] [--metrics-address HOST:PORT|off]`.
 * Stops gracefully on SIGINT/SIGTERM.
 */
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
  // The ChatOps signing secret is the ChatOps server's and the codec server's token the codec server's, not the worker's.
  const problems = checkSecrets(config).filter((p) => !p.startsWith('chatops.') && !p.startsWith('observability.codecServer.'));
  try {
    encryptionCodec(config); // a codec key of the wrong size is a config problem, not a crash
  } catch (err) {
    problems.push((err as Error).message);
  }
  if (problems.length > 0) {
    process.stderr.write(`cannot start the worker, secrets missing:\n${problems.map((p) => `  - ${p}`).join('\n')}\n`);
    process.exit(2);
  }
  // `--docker-host NAME`: this process is that docker host's worker (its docker and nginx steps), not the main one.
  const h = process.argv.indexOf('--docker-host');
  const dockerHost = h > 0 ? process.argv[h + 1] : undefined;
  if (h > 0 && !config.targets.dockerHosts.some((d) => d.name === dockerHost)) {
    process.stderr.write(`--docker-host: unknown docker host "${dockerHost ?? ''}" (known: ${config.targets.dockerHosts.map((d) => d.name).join(', ') || 'none'})\n`);
    process.exit(2);
  }
  // `--metrics-address HOST:PORT|off` overrides observability.metricsAddress (several workers on one machine).
  const m = process.argv.indexOf('--metrics-address');
  const metricsFlag = m > 0 ? process.argv[m + 1] : undefined;
  const metricsAddress = metricsFlag === 'off' ? undefined : (metricsFlag ?? config.observability.metricsAddress);
  // The SDK's own metrics (Temporal Core: task latencies, slots, polls, ...) on a loopback port; /metrics adds them to ours.
  const sdkMetricsPort = metricsAddress ? await freePort() : undefined;
  Runtime.install({
    logger: new DefaultLogger((process.env.LOG_LEVEL?.toUpperCase() ?? 'INFO') as 'INFO', (entry) => {
      const level = entry.level.toLowerCase() as 'trace' | 'debug' | 'info' | 'warn' | 'error';
      // Errors as their failure type and message, task tokens as a short hash, secret values scrubbed.
      log[level](logFields(entry.meta), redact(entry.message));
    }),
    telemetryOptions: {
      // Temporal Core's own lines (e.g. "Failing workflow task") go through the same logger: JSON, not console text.
      logging: { forward: {}, filter: makeTelemetryFilterString({ core: 'WARN', other: 'ERROR' }) },
      ...(sdkMetricsPort ? { metrics: { prometheus: { bindAddress: `127.0.0.1:${sdkMetricsPort}` } } } : {}),
    },
  });
  const metrics = createRunbookMetrics();
  collectDefaultMetrics({ register: metrics.registry, prefix: 'runbook_worker_' });
  const metricsServer = metricsAddress
    ? await startMetricsServer({ address: metricsAddress, registry: metrics.registry, sdkMetricsUrl: `http://127.0.0.1:${sdkMetricsPort}/metrics` })
    : undefined;
  // The bundle `npm run build` made; without it (running from source) the worker bundles at start.
  const workflowBundle = prebuiltBundle(config);
  // Our own connection, closed after the worker stops: with Core's logs forwarded, the SDK runtime keeps polling
  // them (and the process alive) until its last worker and connection are gone.
  const connection = await connectWorker(config);
  const worker = dockerHost
    ? await createDockerHostWorker({ config, host: dockerHost, metrics, connection })
    : await createRunbookWorker({ config, workflowBundle, metrics, connection });
  const taskQueue = dockerHost ? hostTaskQueueName(dockerHost) : config.temporal.taskQueue;
  log.info({ taskQueue, namespace: config.temporal.namespace, pid: process.pid, metrics: metricsServer?.url }, 'worker started');
  await worker.run();
  await connection.close();
  await metricsServer?.close();
  log.info('worker stopped');
}

main().catch((err: unknown) => {
  process.stderr.write(`worker failed: ${redact(err instanceof Error ? (err.stack ?? err.message) : String(err))}\n`);
  process.exit(1);
});
