import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { pgBinDir } from '../../src/client/local-servers';
import { type BackupResult } from '../../src/workflows/backup';
import { writeConfigFile } from './processes';
import { createDatabase, servers, testConfig, uniqueName } from './servers';
import { type Fingerprint, fingerprint, seedShop } from './shop-data';

export function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** The target's backup folder: exactly one dump and its manifest, nothing else (no temp or partial files). */
export function assertOneCleanBackup(root: string, target: string, result: BackupResult): void {
  const dir = path.join(root, target);
  const files = readdirSync(dir).sort();
  expect(files).toEqual([result.manifest.file, `${result.backupId}.manifest.json`].sort());
  expect(sha256(path.join(dir, result.manifest.file))).toBe(result.manifest.sha256);
}

/** pg_restore the dump into a scratch database: it must hold exactly `expected`. */
export async function restoresTo(file: string, expected: Fingerprint): Promise<void> {
  const s = servers().postgres;
  const env = { PGHOST: s.host, PGPORT: String(s.port), PGUSER: s.user, PGPASSWORD: s.password };
  const scratch = uniqueName('check');
  await createDatabase(scratch);
  await execa(path.join(pgBinDir(), 'pg_restore'), ['--no-owner', '-d', scratch, file], { env });
  expect(await fingerprint(scratch)).toEqual(expected);
}

export interface BackupFixture {
  db: string;
  target: string;
  root: string;
  /** The config's YAML, written to `file`. */
  yaml: string;
  file: string;
  atSeed: Fingerprint;
}

/** A seeded database (`rows` customers, 3 orders each) and a config (file) that backs it up. */
export async function backupFixture(rows = 2000, edit: (yaml: string) => string = (y) => y): Promise<BackupFixture> {
  const db = uniqueName('bkf');
  await createDatabase(db);
  await seedShop(db, rows, 3);
  const { yaml: base, config } = testConfig({ databases: [db], taskQueue: uniqueName('bkf') });
  const yaml = edit(base);
  return { db, target: config.targets.databases[0]!.name, root: config.backups.root, yaml, file: writeConfigFile(yaml), atSeed: await fingerprint(db) };
}

/** Run `fn` with the process umask set to `mask` (e.g. 0o000: the product must set its own file modes), then restore it. */
export async function underUmask<T>(mask: number, fn: () => Promise<T>): Promise<T> {
  const before = process.umask(mask);
  try {
    return await fn();
  } finally {
    process.umask(before);
  }
}
