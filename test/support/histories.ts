import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { temporalBinary } from '../../src/client/local-servers';
import { temporal } from '@temporalio/proto';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { ENCRYPTED_ENCODING, KEY_ID_METADATA, open } from '../../src/config/codec';
import { leakedIn } from './history-scan';
import { servers } from './servers';
import { testCodec } from './temporal';

/**
 * The history with every encrypted payload replaced by the payload inside it: test runs encrypt with a
 * key made for the run, and a recorded history must replay later without it.
 */
export function decryptHistory(history: unknown): unknown {
  const codec = testCodec();
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (!v || typeof v !== 'object') return v;
    const o = v as Record<string, unknown>;
    const meta = o.metadata as Record<string, string> | undefined;
    if (meta?.encoding && Buffer.from(meta.encoding, 'base64').toString() === ENCRYPTED_ENCODING && typeof o.data === 'string') {
      const key = codec.key(Buffer.from(meta[KEY_ID_METADATA] ?? '', 'base64').toString());
      const inner = temporal.api.common.v1.Payload.decode(open(Buffer.from(o.data, 'base64'), key));
      return {
        metadata: Object.fromEntries(Object.entries(inner.metadata ?? {}).map(([k, b]) => [k, Buffer.from(b).toString('base64')])),
        ...(inner.data?.length ? { data: Buffer.from(inner.data).toString('base64') } : {}),
      };
    }
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, walk(x)]));
  };
  return walk(history);
}

export const HISTORIES_DIR = path.join(__dirname, '..', 'histories');

/**
 * The secrets a test run knows: the shared servers' passwords and codec key, and every environment variable
 * named like a secret (the tests hand their SMTP, Redis... passwords to the workers that way).
 */
function knownSecrets(): string[] {
  const s = servers();
  const env = Object.entries(process.env).filter(([k, v]) => /PASSWORD|SECRET|TOKEN|KEY/i.test(k) && v && v.length >= 8).map(([, v]) => v!);
  return [...new Set([s.postgres.password, s.redis.password, s.codecKey, ...env])];
}

/** Writes the (decrypted) history, refusing one that carries a secret: recorded histories are committed. */
function writeHistory(name: string, history: unknown): void {
  const json = `${JSON.stringify(decryptHistory(history), null, 2)}\n`;
  const leaked = leakedIn(json, knownSecrets());
  if (leaked.length) throw new Error(`history ${name} carries ${leaked.length} secret value(s) of this run; not recorded`);
  mkdirSync(HISTORIES_DIR, { recursive: true });
  writeFileSync(path.join(HISTORIES_DIR, `${name}.json`), json);
}

/**
 * With RECORD_HISTORIES=1, keep the history of a real run under test/histories/ so test/replay.test.ts
 * replays it against every later change of the workflow code (a non-deterministic change then fails CI).
 */
export async function recordHistory(workflowId: string, name: string): Promise<void> {
  if (!process.env.RECORD_HISTORIES) return;
  const r = await execa(temporalBinary('temporal'), [
    'workflow', 'show', '--workflow-id', workflowId, '--address', servers().temporal.address, '--output', 'json',
  ]);
  writeHistory(name, JSON.parse(String(r.stdout)));
}

/** recordHistory for a run on another server (e.g. a time-skipping test server): its history through the client. */
export async function recordHandleHistory(handle: { fetchHistory(): Promise<temporal.api.history.v1.IHistory> }, name: string): Promise<void> {
  if (!process.env.RECORD_HISTORIES) return;
  writeHistory(name, JSON.parse(historyToJSON(await handle.fetchHistory())) as unknown);
}
