import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { stopPid } from '../../src/client/local-servers';
import { tempDir } from './servers';

const ROOT = path.resolve(__dirname, '..', '..');
const WORKER = path.join(ROOT, 'dist', 'workers', 'main.js');
const CLI = path.join(ROOT, 'dist', 'client', 'cli.js');

function requireBuild(file: string): void {
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` first (npm test does)`);
}

export function writeConfigFile(yaml: string): string {
  const file = path.join(tempDir('config'), 'runbooks.yaml');
  writeFileSync(file, yaml);
  return file;
}

export interface WorkerProcess {
  pid: number;
  /** Resolves with the exit code (null when killed by a signal) when the process ends. */
  exited: Promise<number | null>;
  output(): string;
  /** SIGKILL: the crash case, no cleanup runs. */
  kill(): Promise<void>;
  /** SIGTERM: graceful shutdown. */
  stop(): Promise<void>;
}

/** The real worker binary (dist/workers/main.js) as its own process, ready once it logs "worker started". */
export async function startWorkerProcess(configFile: string, env: Record<string, string> = {}, args: string[] = []): Promise<WorkerProcess> {
  requireBuild(WORKER);
  const child: ChildProcess = spawn(process.execPath, [WORKER, '--config', configFile, ...args], {
    env: { ...process.env, ...env, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const pid = child.pid;
  if (!pid) throw new Error('worker did not start');
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker not ready in 30 s:\n${output}`)), 30_000);
    const check = (): void => {
      if (output.includes('"worker started"')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`worker exited with ${code}:\n${output}`));
    });
  });
  child.removeAllListeners('exit');
  const exited = new Promise<number | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
  return {
    pid,
    exited,
    output: () => output,
    kill: () => stopPid(pid, 'SIGKILL', 5_000),
    stop: () => stopPid(pid, 'SIGTERM', 30_000),
  };
}

/** Run the real CLI (dist/client/cli.js) and capture what an operator would see. */
export async function runCli(args: string[], env: Record<string, string> = {}): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  requireBuild(CLI);
  const r = await execa(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, reject: false, timeout: 120_000 });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}
