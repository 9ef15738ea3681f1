import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { stopPid } from '../../src/client/local-servers';
import { servers } from './servers';
import { trackPid, untrackPid } from './tracked-pids';

const CLI = path.join(__dirname, '..', '..', 'dist', 'client', 'cli.js');

export interface CodecServerProcess {
  pid: number;
  /** What it printed: `codec server on <url> ...`. */
  url: string;
  output(): string;
  stop(): Promise<void>;
}

/**
 * The real `runbook codec-server` (dist/client/cli.js) as its own process, with the config's
 * observability.codecServer and temporal.encryption (the product's AES-GCM codec). Ready once it says where it listens.
 */
export async function startCodecServerProcess(configFile: string, env: Record<string, string> = {}): Promise<CodecServerProcess> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does)`);
  const child: ChildProcess = spawn(process.execPath, [CLI, '--config', configFile, 'codec-server'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pid = child.pid;
  if (!pid) throw new Error('codec server did not start');
  trackPid(servers().root, pid, 'runbook codec-server');
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`codec server not ready in 20 s:\n${output}`)), 20_000);
    const check = (): void => {
      const m = /codec server on (http:\/\/\S+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout?.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`codec server exited with ${code}:\n${output}`));
    });
  }).catch(async (err: unknown) => {
    untrackPid(servers().root, pid);
    await stopPid(pid, 'SIGKILL', 5_000);
    throw err;
  });
  child.removeAllListeners('exit');
  return {
    pid,
    url,
    output: () => output,
    stop: async () => {
      await stopPid(pid, 'SIGTERM', 10_000);
      untrackPid(servers().root, pid);
    },
  };
}
