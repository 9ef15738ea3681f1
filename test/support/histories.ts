import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { temporalBinary } from '../../src/client/local-servers';
import { servers } from './servers';

export const HISTORIES_DIR = path.join(__dirname, '..', 'histories');

/**
 * With RECORD_HISTORIES=1, keep the history of a real run under test/histories/ so test/replay.test.ts
 * replays it against every later change of the workflow code (a non-deterministic change then fails CI).
 */
export async function recordHistory(workflowId: string, name: string): Promise<void> {
  if (!process.env.RECORD_HISTORIES) return;
  mkdirSync(HISTORIES_DIR, { recursive: true });
  const r = await execa(temporalBinary('temporal'), [
    'workflow', 'show', '--workflow-id', workflowId, '--address', servers().temporal.address, '--output', 'json',
  ]);
  writeFileSync(path.join(HISTORIES_DIR, `${name}.json`), `${String(r.stdout)}\n`);
}
