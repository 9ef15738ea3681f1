import { createHash } from 'node:crypto';
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
  /** "safety": taken by a restore just before it replaced the database; never what "latest" means. */
  purpose: z.enum(['backup', 'safety']).optional(),
});
export type BackupManifest = z.infer<typeof manifestSchema>;

export const MANIFEST_SUFFIX = '.manifest.json';
const TOMBSTONE_SUFFIX = '.manifest.json.deleting';

export function targetDir(root: string, target: string): string {
  return path.join(root, target);
}

export function manifestPathFor(dir: string, id: string): string {
  return path.join(dir, `${id}${MANIFEST_SUFFIX}`);
}

async function fsyncPath(p: string, flags = 'r'): Promise<void> {
  const fh = await fs.open(p, flags);
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

/** Write a small file atomically: temp name, fsync, rename, fsync the directory. */
export async function writeFileAtomic(file: string, data: string | Buffer, mode = 0o640): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  const fh = await fs.open(tmp, 'w', mode);
  try {
    await fh.chmod(mode); // a leftover temp file of the same name (a crashed attempt) may have had another mode
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fs.rename(tmp, file);
  await fsyncDir(path.dirname(file));
}

/** Make a finished temp file durable and give it its final name; returns its size and checksum. */
export async function publishArtifact(partial: string, final: string): Promise<{ sizeBytes: number; sha256: string }> {
  await fsyncPath(partial, 'r+');
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
