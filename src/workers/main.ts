#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import pino from 'pino';
import { ConfigError, configPath, loadConfig } from '../config/load';
import { checkSecrets, redact } from '../config/secrets';
import { BUNDLE_PATH } from './bundle';
import { hostTaskQueueName } from '../activities';
import { createDockerHostWorker } from './docker-host';
import { createRunbookWorker } from './worker';

/** Worker process: `node dist/workers/main.js [--config runbooks.yaml]`. Stops gracefully on SIGINT/SIGTERM. */
async function main(): Promise<void> {
  const i = process.argv.indexOf('--config');
  const file = configPath(i > 0 ? process.argv[i + 1] : undefined);
  const log = pino({ name: 'runbook-worker', level: process.env.LOG_LEVEL ?? 'info', redact: ['*.password', '*.PGPASSWORD', '*.pass'] });
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
  if (problems.length > 0) {
    process.stderr.write(`cannot start the worker, secrets missing:\n${problems.map((p) => `  - ${p}`).join('\n')}\n`);
    process.exit(2);
  }
  Runtime.install({
    logger: new DefaultLogger((process.env.LOG_LEVEL?.toUpperCase() ?? 'INFO') as 'INFO', (entry) => {
      const level = entry.level.toLowerCase() as 'trace' | 'debug' | 'info' | 'warn' | 'error';
      log[level]({ ...entry.meta }, redact(entry.message));
    }),
  });
  // The bundle `npm run build` made; without it (running from source) the worker bundles at start.
  const workflowBundle = existsSync(BUNDLE_PATH) ? { codePath: BUNDLE_PATH } : undefined;
  // `--docker-host NAME`: this process is that docker host's worker (its docker and nginx steps), not the main one.
  const h = process.argv.indexOf('--docker-host');
  const dockerHost = h > 0 ? process.argv[h + 1] : undefined;
  if (h > 0 && !config.targets.dockerHosts.some((d) => d.name === dockerHost)) {
    process.stderr.write(`--docker-host: unknown docker host "${dockerHost ?? ''}" (known: ${config.targets.dockerHosts.map((d) => d.name).join(', ') || 'none'})\n`);
    process.exit(2);
  }
  const worker = dockerHost
    ? await createDockerHostWorker({ config, host: dockerHost })
    : await createRunbookWorker({ config, workflowBundle });
  const taskQueue = dockerHost ? hostTaskQueueName(dockerHost) : config.temporal.taskQueue;
  log.info({ taskQueue, namespace: config.temporal.namespace, pid: process.pid }, 'worker started');
  await worker.run();
  log.info('worker stopped');
}

main().catch((err: unknown) => {
  process.stderr.write(`worker failed: ${redact(err instanceof Error ? (err.stack ?? err.message) : String(err))}\n`);
  process.exit(1);
});
