import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';

/**
 * Backup files on local (or mounted) storage. Layout: `<root>/<target>/<backupId>.<ext>` plus
 * `<backupId>.manifest.json`. An artifact is only ever visible under its final name once it is complete
 * and fsynced; a manifest is written after its artifact, so "has a valid manifest" means "complete".
 */

export const manifestSchema = z.object({
  version: z.literal(1),
  id: z.string().min(1),
  target: z.string().min(1),
  kind: z.enum(['postgres', 'redis']),
  file: z.string().min(1),
  format: z.enum(['pg_dump-custom', 'redis-rdb']),
  sizeBytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  createdAt: z.string().datetime(),
  completedAt: z.string().datetime(),
  durationMs: z.number().nonnegative(),
  serverVersion: z.string(),
  database: z.string().optional(),
  workflowId: z.string().optional(),
  runId: z.string().optional(),
  /** "safety": taken by a restore just before it replaced the database; never what "latest" means, kept for backups.safetyKeep outside retention. */
  purpose: z.enum(['backup', 'safety']).optional(),
});
export type BackupManifest = z.infer<typeof manifestSchema>;

export const MANIFEST_SUFFIX = '.manifest.json';
const TOMBSTONE_SUFFIX = '.manifest.json.deleting';

/** Backups hold the whole database: only the worker's user may list the folders or read the files. */
export const BACKUP_DIR_MODE = 0o700;
export const BACKUP_FILE_MODE = 0o600;

export function targetDir(root: string, target: string): string {
  return path.join(root, target);
}

/**
 * Create a target's backup folder 0700 (and any missing parent, whatever the umask) and tighten one that an
 * older version left 0755. Idempotent: mkdir -p and chmod to a fixed mode.
 */
export async function ensureBackupDir(dir: string): Promise<void> {
  const first = await fs.mkdir(dir, { recursive: true, mode: BACKUP_DIR_MODE });
  // mkdir's mode is cut by the umask: set it on every folder this call created, from the first one down.
  if (first) {
    for (let d = dir; ; d = path.dirname(d)) {
      await fs.chmod(d, BACKUP_DIR_MODE);
      if (path.resolve(d) === path.resolve(first) || path.dirname(d) === d) break;
    }
  } else {
    await fs.chmod(dir, BACKUP_DIR_MODE);
  }
}

/**
 * Create a new, empty file for a backup to be written into: mode 0600 whatever the umask, O_EXCL so that
 * nothing already at that name (a symlink planted there, a stale file) is followed or reused.
 */
export async function createPrivateFile(file: string): Promise<fs.FileHandle> {
  const fh = await fs.open(file, 'wx', BACKUP_FILE_MODE);
  try {
    await fh.chmod(BACKUP_FILE_MODE);
  } catch (err) {
    await fh.close();
    throw err;
  }
  return fh;
}

export function manifestPathFor(dir: string, id: string): string {
  return path.join(dir, `${id}${MANIFEST_SUFFIX}`);
}

async function fsyncPath(p: string): Promise<void> {
  const fh = await fs.open(p, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** fsync a directory so a rename or unlink inside it survives a power cut. */
export async function fsyncDir(dir: string): Promise<void> {
  await fsyncPath(dir);
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Write a small file atomically: a new temp file with a random name (O_CREAT|O_EXCL, so a symlink or file
 * planted at that name is never followed or written through), `mode` whatever the umask, fsync, rename over
 * `file`, fsync the directory. A failed write removes its temp file.
 */
export async function writeFileAtomic(file: string, data: string | Buffer, mode = BACKUP_FILE_MODE): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(8).toString('hex')}.tmp`);
  const fh = await fs.open(tmp, 'wx', mode);
  try {
    try {
      await fh.chmod(mode); // open's mode is cut by the umask
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(path.dirname(file));
}

/** Make a finished temp file private (0600) and durable and give it its final name; returns its size and checksum. */
export async function publishArtifact(partial: string, final: string): Promise<{ sizeBytes: number; sha256: string }> {
  const fh = await fs.open(partial, 'r+');
  try {
    await fh.chmod(BACKUP_FILE_MODE); // whatever created it (pg_dump, a copy) used the umask or the source's mode
    await fh.sync();
  } finally {
    await fh.close();
  }
  const [{ size }, sha256] = await Promise.all([fs.stat(partial), sha256File(partial)]);
  await fs.rename(partial, final);
  await fsyncDir(path.dirname(final));
  return { sizeBytes: size, sha256 };
}

export async function readManifest(file: string): Promise<BackupManifest | undefined> {
  try {
    const parsed = manifestSchema.safeParse(JSON.parse(await fs.readFile(file, 'utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** The backup a previous attempt already published under this id (manifest present, checksum matching), if any. */
export async function publishedBackup(dir: string, id: string): Promise<BackupManifest | undefined> {
  const manifest = await readManifest(manifestPathFor(dir, id));
  if (!manifest) return undefined;
  const ok = await sha256File(path.join(dir, manifest.file)).then((h) => h === manifest.sha256, () => false);
  return ok ? manifest : undefined;
}

export interface StoredBackup {
  manifest: BackupManifest;
  manifestPath: string;
  artifactPath: string;
}

export interface BackupListing {
  /** Manifest parses and its artifact exists with the recorded size. */
  valid: StoredBackup[];
  /** Manifests that do not parse or whose artifact is missing or has the wrong size. */
  invalidManifests: string[];
  /** Files that no valid manifest claims (never deleted by retention). */
  unclaimed: string[];
}

/** What is in a target's backup folder, newest first. A missing folder is an empty listing. */
export async function listBackups(dir: string): Promise<BackupListing> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { valid: [], invalidManifests: [], unclaimed: [] };
    throw err;
  }
  const valid: StoredBackup[] = [];
  const invalidManifests: string[] = [];
  const claimed = new Set<string>();
  for (const name of names.filter((n) => n.endsWith(MANIFEST_SUFFIX))) {
    const manifestPath = path.join(dir, name);
    claimed.add(name);
    const manifest = await readManifest(manifestPath);
    const artifactPath = manifest ? path.join(dir, manifest.file) : '';
    const size = manifest ? await fs.stat(artifactPath).then((s) => s.size, () => -1) : -1;
    // A manifest must be named after its own id and point inside this folder, or retention will not touch it.
    const consistent =
      manifest !== undefined &&
      name === `${manifest.id}${MANIFEST_SUFFIX}` &&
      !/[/\\]|^\.\.?$/.test(manifest.id) &&
      !manifest.file.includes('/') &&
      manifest.file.startsWith(`${manifest.id}.`);
    if (!manifest || !consistent || size !== manifest.sizeBytes) {
      invalidManifests.push(manifestPath);
      continue;
    }
    claimed.add(manifest.file);
    valid.push({ manifest, manifestPath, artifactPath });
  }
  valid.sort((a, b) => Date.parse(b.manifest.createdAt) - Date.parse(a.manifest.createdAt) || b.manifest.id.localeCompare(a.manifest.id));
  const unclaimed = names.filter((n) => !claimed.has(n) && !n.startsWith('.')).map((n) => path.join(dir, n));
  return { valid, invalidManifests, unclaimed };
}

/**
 * Delete one backup so that a crash at any point leaves no artifact without a record of why:
 * the manifest is first renamed to a tombstone, then the artifact goes, then the tombstone.
 */
export async function deleteBackup(dir: string, b: { id: string }): Promise<void> {
  const manifest = manifestPathFor(dir, b.id);
  const tombstone = path.join(dir, `${b.id}${TOMBSTONE_SUFFIX}`);
  // If neither manifest nor tombstone exists, an earlier attempt already finished: nothing is left to do.
  await fs.rename(manifest, tombstone).catch(ignoreMissing);
  await fsyncDir(dir);
  await finishDeletion(dir, `${b.id}${TOMBSTONE_SUFFIX}`);
}

async function finishDeletion(dir: string, tombstoneName: string): Promise<void> {
  const tombstone = path.join(dir, tombstoneName);
  const id = tombstoneName.slice(0, -TOMBSTONE_SUFFIX.length);
  const text = await fs.readFile(tombstone, 'utf8').catch(() => undefined);
  if (text === undefined) return;
  // The tombstone is the old manifest: it names the artifact (which must carry the backup's id).
  const file = /"file":\s*"([^"/]+)"/.exec(text)?.[1];
  if (file?.startsWith(id)) await fs.unlink(path.join(dir, file)).catch(ignoreMissing);
  await fs.unlink(tombstone).catch(ignoreMissing);
  await fsyncDir(dir);
}

/** Finish deletions a crash interrupted. */
export async function finishInterruptedDeletions(dir: string): Promise<number> {
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  const tombstones = names.filter((n) => n.endsWith(TOMBSTONE_SUFFIX));
  for (const t of tombstones) await finishDeletion(dir, t);
  return tombstones.length;
}

/**
 * Remove what crashed or failed attempts of one backup left: hidden partials (`.<id>.attemptN.partial`) and an
 * artifact that never got its manifest. `keep` names files to spare (the artifact just published).
 */
export async function removeLeftovers(dir: string, id: string, keep: string[] = []): Promise<void> {
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  for (const n of names) {
    if (keep.includes(n)) continue;
    if (n.startsWith(`.${id}.`) || (n.startsWith(`${id}.`) && !n.endsWith(MANIFEST_SUFFIX))) {
      await fs.rm(path.join(dir, n), { force: true });
    }
  }
}

function ignoreMissing(err: NodeJS.ErrnoException): void {
  if (err.code !== 'ENOENT') throw err;
}
