import { type RetentionPolicy } from '../config/schema';
import { deleteBackup, finishInterruptedDeletions, listBackups } from './storage';

export interface Dated {
  id: string;
  /** ISO-8601 instant the backup was taken. */
  createdAt: string;
  /** "safety": a restore's snapshot of the state it replaced; kept by its own TTL, never counted by the policy. */
  purpose?: 'backup' | 'safety';
}

export interface RetentionDecision {
  keep: Array<{ id: string; reasons: string[] }>;
  prune: string[];
}

const DAY_MS = 86_400_000;
/** `backups.safetyKeep`'s default. */
export const DEFAULT_SAFETY_KEEP_MS = 7 * DAY_MS;

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
 *
 * Safety snapshots (`purpose: safety`, taken by a restore) are outside the policy: they take no keepLast or GFS
 * slot (so they never push a real restore point out) and are kept while younger than `safetyKeepMs`. Only when a
 * target has no real backup at all is its newest safety snapshot kept past that, as its last restore point.
 */
export function selectRetained(
  backups: readonly Dated[],
  policy: RetentionPolicy,
  now: Date,
  safetyKeepMs: number = DEFAULT_SAFETY_KEEP_MS,
): RetentionDecision {
  // Instants, not strings: "…02:00:00Z" and "…02:00:00.500Z" do not sort as text does.
  const all = [...backups].sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt) || b.id.localeCompare(a.id));
  const sorted = all.filter((b) => b.purpose !== 'safety');
  const reasons = new Map<string, string[]>();
  const keep = (id: string, why: string): void => {
    const list = reasons.get(id) ?? [];
    list.push(why);
    reasons.set(id, list);
  };

  const safetyCutoff = now.getTime() - safetyKeepMs;
  const safety = all.filter((b) => b.purpose === 'safety');
  for (const b of safety) if (Date.parse(b.createdAt) > safetyCutoff) keep(b.id, `safety snapshot younger than ${formatSpan(safetyKeepMs)}`);
  if (!sorted[0] && safety[0]) keep(safety[0].id, 'newest (no other backup)');
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
    keep: all.filter((b) => reasons.has(b.id)).map((b) => ({ id: b.id, reasons: reasons.get(b.id) ?? [] })),
    prune: all.filter((b) => !reasons.has(b.id)).map((b) => b.id),
  };
}

/** 604800000 → "7d", 5400000 → "90m": the largest unit that divides the span. */
function formatSpan(ms: number): string {
  for (const [unit, size] of [['d', DAY_MS], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
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
export async function pruneDirectory(
  dir: string,
  policy: RetentionPolicy,
  now: Date,
  dryRun = false,
  safetyKeepMs: number = DEFAULT_SAFETY_KEEP_MS,
): Promise<PruneResult> {
  if (!dryRun) await finishInterruptedDeletions(dir);
  const listing = await listBackups(dir);
  const decision = selectRetained(
    listing.valid.map((b) => ({ id: b.manifest.id, createdAt: b.manifest.createdAt, purpose: b.manifest.purpose })),
    policy,
    now,
    safetyKeepMs,
  );
  if (!dryRun) for (const id of decision.prune) await deleteBackup(dir, { id });
  return {
    kept: decision.keep.map((k) => k.id),
    pruned: decision.prune,
    untouched: [...listing.unclaimed, ...listing.invalidManifests],
    dryRun,
  };
}
