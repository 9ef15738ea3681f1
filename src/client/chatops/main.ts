#!/usr/bin/env node
import pino from 'pino';
import { ConfigError, configPath, loadConfig } from '../../config/load';
import { redact, resolveSecret } from '../../config/secrets';
import { connectClient } from '../connection';
import { startChatops } from './index';

/** ChatOps process: `node dist/client/chatops/main.js [--config runbooks.yaml]`. Stops on SIGINT/SIGTERM. */
async function main(): Promise<void> {
  const i = process.argv.indexOf('--config');
  const log = pino({ name: 'runbook-chatops', level: process.env.LOG_LEVEL ?? 'info' });
  let config;
  try {
    config = loadConfig(configPath(i > 0 ? process.argv[i + 1] : undefined));
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  if (!config.chatops) {
    process.stderr.write('chatops: not configured (add a chatops section with signingSecret and rules)\n');
    process.exit(2);
  }
  try {
    resolveSecret(config.chatops.signingSecret, 'chatops.signingSecret');
  } catch (err) {
    process.stderr.write(`cannot start ChatOps: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const { client, close } = await connectClient(config);
  const server = await startChatops(config, client, { log: (msg, fields) => log.info(fields ?? {}, msg) });
  log.info({ url: server.url, pid: process.pid }, 'chatops started');
  const stop = (): void => {
    void server
      .close()
      .then(close)
      .then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`chatops failed: ${redact(err instanceof Error ? err.message : String(err))}\n`);
  process.exit(1);
});
