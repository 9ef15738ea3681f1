import { type RetentionPolicy } from '../config/schema';
import { deleteBackup, finishInterruptedDeletions, listBackups } from './storage';

export interface Dated {
  id: string;
  /** ISO-8601 instant the backup was taken. */
  createdAt: string;
}

export interface RetentionDecision {
  keep: Array<{ id: string; reasons: string[] }>;
  prune: string[];
}

const DAY_MS = 86_400_000;

function dayKey(d: Date): string {
  return d.toISOString().slice(0, 10);
}

/** ISO-8601 week (Monday first), e.g. "2026-W48". */
export function isoWeekKey(d: Date): string {
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const dow = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - dow); // Thursday of this week decides the year
  const year = t.getUTCFullYear();
  const week = Math.ceil(((t.getTime() - Date.UTC(year, 0, 1)) / DAY_MS + 1) / 7);
  return `${year}-W${String(week).padStart(2, '0')}`;
}

function monthKey(d: Date): string {
  return d.toISOString().slice(0, 7);
}

/**
 * Which backups a policy keeps. Rules add up (a backup kept by any rule stays):
 * - keepLast N: the N newest;
 * - keepDays N: every backup taken less than N days before `now`;
 * - gfs: the newest backup of each of the N most recent days / ISO weeks / months that have one
 *   (calendar buckets in UTC; as restic and borg count them, so a missed day does not cost a slot).
 * The newest backup is always kept, so no policy can leave a target without a backup.
 */
export function selectRetained(backups: readonly Dated[], policy: RetentionPolicy, now: Date): RetentionDecision {
  // Instants, not strings: "…02:00:00Z" and "…02:00:00.500Z" do not sort as text does.
  const sorted = [...backups].sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt) || b.id.localeCompare(a.id));
  const reasons = new Map<string, string[]>();
  const keep = (id: string, why: string): void => {
    const list = reasons.get(id) ?? [];
    list.push(why);
    reasons.set(id, list);
  };

  if (sorted[0]) keep(sorted[0].id, 'newest');
  if (policy.keepLast !== undefined) sorted.slice(0, policy.keepLast).forEach((b, i) => keep(b.id, `last ${i + 1}`));
  if (policy.keepDays !== undefined) {
    const cutoff = now.getTime() - policy.keepDays * DAY_MS;
    for (const b of sorted) if (Date.parse(b.createdAt) > cutoff) keep(b.id, `younger than ${policy.keepDays} days`);
  }
  if (policy.gfs) {
    const buckets: Array<[string, number, (d: Date) => string]> = [
      ['daily', policy.gfs.daily, dayKey],
      ['weekly', policy.gfs.weekly, isoWeekKey],
      ['monthly', policy.gfs.monthly, monthKey],
    ];
    for (const [label, count, keyOf] of buckets) {
      const seen = new Set<string>();
      for (const b of sorted) {
        if (seen.size >= count) break;
        const key = keyOf(new Date(b.createdAt));
        if (seen.has(key)) continue; // an older backup in a bucket already represented
        seen.add(key);
        keep(b.id, `${label} ${key}`);
      }
    }
  }
  return {
    keep: sorted.filter((b) => reasons.has(b.id)).map((b) => ({ id: b.id, reasons: reasons.get(b.id) ?? [] })),
    prune: sorted.filter((b) => !reasons.has(b.id)).map((b) => b.id),
  };
}

export interface PruneResult {
  kept: string[];
  pruned: string[];
  /** Files left alone because no valid manifest claims them. */
  untouched: string[];
  dryRun: boolean;
}

/**
 * Apply a policy to one target's folder. Only backups with a valid manifest are candidates;
 * a file without one is never deleted. Deleting a non-kept backup never changes which backups
 * are kept, so running this again after a crash deletes nothing more than the first run meant to.
 */
export async function pruneDirectory(dir: string, policy: RetentionPolicy, now: Date, dryRun = false): Promise<PruneResult> {
  if (!dryRun) await finishInterruptedDeletions(dir);
  const listing = await listBackups(dir);
  const decision = selectRetained(
    listing.valid.map((b) => ({ id: b.manifest.id, createdAt: b.manifest.createdAt })),
    policy,
    now,
  );
  if (!dryRun) for (const id of decision.prune) await deleteBackup(dir, { id });
  return {
    kept: decision.keep.map((k) => k.id),
    pruned: decision.prune,
    untouched: [...listing.unclaimed, ...listing.invalidManifests],
    dryRun,
  };
}
