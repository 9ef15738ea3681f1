import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { parseConfig } from '../src/config/load';
import { type RetentionPolicy } from '../src/config/schema';
import { type Dated, isoWeekKey, pruneDirectory, selectRetained } from '../src/activities/retention';
import { type BackupManifest, manifestSchema, writeFileAtomic } from '../src/activities/storage';

// Retention as an operator sees it: which backups survive a policy, what ends up on disk, and that
// crashes, re-runs and dry runs never delete more than intended. Every expected set below is written
// out by hand (calendar reasoning in the comments), never computed by the code under test.

const DAY_MS = 86_400_000;
const NOW = new Date('2026-11-24T03:00:00Z'); // a Tuesday, one hour after the nightly 02:00 UTC backup
const GFS: RetentionPolicy = { gfs: { daily: 7, weekly: 4, monthly: 12 } };

/** Nightly backups at 02:00 UTC from 2025-09-15 to 2026-11-24 (about 14 months), as "YYYY-MM-DD". */
function nightlyDates(from = '2025-09-15', to = '2026-11-24'): string[] {
  const dates: string[] = [];
  for (let t = Date.parse(`${from}T02:00:00Z`); t <= Date.parse(`${to}T02:00:00Z`); t += DAY_MS) {
    dates.push(new Date(t).toISOString().slice(0, 10));
  }
  return dates;
}
const ALL_DATES = nightlyDates();

/** Backup ids as the backup workflow makes them (target, compact UTC stamp). */
const idOf = (date: string): string => `shop-${date.replace(/-/g, '')}T020000Z`;
const createdAtOf = (date: string): string => `${date}T02:00:00.000Z`;
const backupOf = (date: string): Dated => ({ id: idOf(date), createdAt: createdAtOf(date) });

/**
 * GFS 7/4/12 with nightly backups and now = Tuesday 2026-11-24 03:00 UTC:
 * - daily (7 most recent days):  11-24, 11-23, 11-22, 11-21, 11-20, 11-19, 11-18;
 * - weekly (ISO weeks start Monday): W48 = Mon 11-23..Sun 11-29 -> 11-24 (also daily);
 *   W47 = 11-16..11-22 -> 11-22 (also daily); W46 = 11-09..11-15 -> 11-15; W45 = 11-02..11-08 -> 11-08;
 * - monthly (12 most recent months, newest backup = last day of the month, today for November):
 *   2026-11 -> 11-24 (also daily/weekly), 2026-10-31, 09-30, 08-31, 07-31, 06-30, 05-31, 04-30,
 *   03-31, 02-28 (2026 is no leap year), 01-31, 2025-12-31. September to November 2025 are too old.
 * 7 daily + 2 new weekly + 11 new monthly = 20 backups.
 */
const GFS_KEPT_DATES = [
  '2025-12-31',
  '2026-01-31',
  '2026-02-28',
  '2026-03-31',
  '2026-04-30',
  '2026-05-31',
  '2026-06-30',
  '2026-07-31',
  '2026-08-31',
  '2026-09-30',
  '2026-10-31',
  '2026-11-08',
  '2026-11-15',
  '2026-11-18',
  '2026-11-19',
  '2026-11-20',
  '2026-11-21',
  '2026-11-22',
  '2026-11-23',
  '2026-11-24',
];
const GFS_KEPT_IDS = GFS_KEPT_DATES.map(idOf);
const GFS_PRUNED_IDS = ALL_DATES.filter((d) => !GFS_KEPT_DATES.includes(d)).map(idOf);

const sorted = (xs: readonly string[]): string[] => [...xs].sort();

/** Deterministic shuffle, so no test depends on the order backups are listed in. */
function shuffled<T>(xs: readonly T[]): T[] {
  const out = [...xs];
  let seed = 42;
  for (let i = out.length - 1; i > 0; i--) {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    const j = seed % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe('selectRetained (pure policy)', () => {
  test('the nightly fixture spans 2025-09-15..2026-11-24: 436 backups', () => {
    // 2025: 16 (Sep 15-30) + 31 + 30 + 31 = 108; 2026: 365 - 6 (Nov 25-30) - 31 (Dec) = 328.
    expect(ALL_DATES).toHaveLength(436);
    expect(ALL_DATES[0]).toBe('2025-09-15');
    expect(ALL_DATES.at(-1)).toBe('2026-11-24');
  });

  test('GFS 7/4/12 over 14 months of nightly backups keeps exactly the 20 hand-picked backups', () => {
    const decision = selectRetained(shuffled(ALL_DATES.map(backupOf)), GFS, NOW);
    expect(sorted(decision.keep.map((k) => k.id))).toEqual(sorted(GFS_KEPT_IDS));
    expect(sorted(decision.prune)).toEqual(sorted(GFS_PRUNED_IDS));
    expect(decision.prune).toHaveLength(416);

    // One backup can satisfy several rules; the reasons say which.
    const reasons = new Map(decision.keep.map((k) => [k.id, k.reasons.join(' | ')]));
    expect(reasons.get(idOf('2026-11-24'))).toMatch(/daily.*weekly.*monthly/);
    expect(reasons.get(idOf('2026-11-22'))).toMatch(/daily 2026-11-22.*weekly 2026-W47/);
    expect(reasons.get(idOf('2026-11-15'))).toBe('weekly 2026-W46');
    expect(reasons.get(idOf('2026-10-31'))).toBe('monthly 2026-10');
    expect(reasons.get(idOf('2025-12-31'))).toBe('monthly 2025-12');
  });

  test('GFS counts buckets that have a backup: missed days and a missed week do not cost a slot', () => {
    // No backup on 11-20, none in the whole ISO week 2026-W46 (Mon 11-09 .. Sun 11-15).
    const missing = new Set(['2026-11-20', '2026-11-09', '2026-11-10', '2026-11-11', '2026-11-12', '2026-11-13', '2026-11-14', '2026-11-15']);
    const dates = ALL_DATES.filter((d) => !missing.has(d));
    // daily: 11-24, 23, 22, 21, 19, 18, 17 (7 days that have a backup);
    // weekly: W48 -> 11-24, W47 -> 11-22, W46 empty, W45 (11-02..11-08) -> 11-08, W44 (10-26..11-01) -> 11-01;
    // monthly: unchanged (11-24, then the last day of each month back to 2025-12-31).
    const expected = [
      '2025-12-31', '2026-01-31', '2026-02-28', '2026-03-31', '2026-04-30', '2026-05-31', '2026-06-30',
      '2026-07-31', '2026-08-31', '2026-09-30', '2026-10-31', '2026-11-01', '2026-11-08', '2026-11-17',
      '2026-11-18', '2026-11-19', '2026-11-21', '2026-11-22', '2026-11-23', '2026-11-24',
    ];
    const decision = selectRetained(shuffled(dates.map(backupOf)), GFS, NOW);
    expect(sorted(decision.keep.map((k) => k.id))).toEqual(sorted(expected.map(idOf)));
    expect(decision.prune).toHaveLength(dates.length - expected.length);
  });

  test('keepDays 7 keeps every backup younger than 7 days and nothing older', () => {
    // Cutoff = now - 7 days = 2026-11-17T03:00Z. Nightly 02:00 backups 11-18..11-24 are younger;
    // 11-17T02:00 is 7 days and 1 hour old. Two extra backups straddle the cutoff by one second.
    const backups = [
      ...ALL_DATES.map(backupOf),
      { id: 'shop-just-younger', createdAt: '2026-11-17T03:00:01.000Z' },
      { id: 'shop-just-older', createdAt: '2026-11-17T02:59:59.000Z' },
    ];
    const decision = selectRetained(shuffled(backups), { keepDays: 7 }, NOW);
    const expected = [
      'shop-just-younger',
      ...['2026-11-18', '2026-11-19', '2026-11-20', '2026-11-21', '2026-11-22', '2026-11-23', '2026-11-24'].map(idOf),
    ];
    expect(sorted(decision.keep.map((k) => k.id))).toEqual(sorted(expected));
    expect(decision.prune).toContain('shop-just-older');
    expect(decision.prune).toContain(idOf('2026-11-17'));
    expect(decision.prune).toHaveLength(backups.length - expected.length);
  });

  test('keepDays never leaves a target without a backup: when all are too old, the newest stays', () => {
    // Backups stopped on 2026-10-10, six weeks before now: all older than 7 days.
    const dates = nightlyDates('2026-10-01', '2026-10-10');
    const decision = selectRetained(shuffled(dates.map(backupOf)), { keepDays: 7 }, NOW);
    expect(decision.keep.map((k) => k.id)).toEqual([idOf('2026-10-10')]);
    expect(sorted(decision.prune)).toEqual(sorted(nightlyDates('2026-10-01', '2026-10-09').map(idOf)));

    // keepDays 0, keepLast 0 and an all-zero GFS still keep the newest.
    for (const policy of [{ keepDays: 0 }, { keepLast: 0 }, { gfs: { daily: 0, weekly: 0, monthly: 0 } }]) {
      expect(selectRetained(dates.map(backupOf), policy, NOW).keep.map((k) => k.id)).toEqual([idOf('2026-10-10')]);
    }
    expect(selectRetained([], { keepDays: 7 }, NOW)).toEqual({ keep: [], prune: [] });
  });

  test('keepLast 3 with keepDays 1: the union of both rules', () => {
    const policy: RetentionPolicy = { keepLast: 3, keepDays: 1 };
    // Nightly backups only: keepDays 1 (cutoff 2026-11-23T03:00Z) keeps just 11-24T02:00;
    // keepLast 3 adds 11-23 and 11-22 although they are more than a day old.
    const nightly = selectRetained(shuffled(nightlyDates('2026-11-01').map(backupOf)), policy, NOW);
    expect(sorted(nightly.keep.map((k) => k.id))).toEqual(sorted(['2026-11-22', '2026-11-23', '2026-11-24'].map(idOf)));
    expect(nightly.prune).toHaveLength(21); // 11-01 .. 11-21

    // Hourly backups from 2026-11-22T22:00 to 2026-11-24T02:00 (29 of them): keepDays 1 keeps the
    // 23 taken after 2026-11-23T03:00 (04:00 .. 02:00 next day), far more than keepLast's 3.
    const hourly: Dated[] = [];
    for (let t = Date.parse('2026-11-22T22:00:00Z'); t <= Date.parse('2026-11-24T02:00:00Z'); t += 3_600_000) {
      const iso = new Date(t).toISOString();
      hourly.push({ id: `shop-${iso.slice(0, 13)}`, createdAt: iso });
    }
    expect(hourly).toHaveLength(29);
    const expectedHourly = [
      ...['04', '05', '06', '07', '08', '09', '10', '11', '12', '13', '14', '15', '16', '17', '18', '19', '20', '21', '22', '23'].map(
        (h) => `shop-2026-11-23T${h}`,
      ),
      'shop-2026-11-24T00',
      'shop-2026-11-24T01',
      'shop-2026-11-24T02',
    ];
    expect(expectedHourly).toHaveLength(23);
    const byHour = selectRetained(shuffled(hourly), policy, NOW);
    expect(sorted(byHour.keep.map((k) => k.id))).toEqual(sorted(expectedHourly));
    expect(sorted(byHour.prune)).toEqual(
      sorted(['shop-2026-11-22T22', 'shop-2026-11-22T23', 'shop-2026-11-23T00', 'shop-2026-11-23T01', 'shop-2026-11-23T02', 'shop-2026-11-23T03']),
    );
  });
});

describe('safety snapshots (purpose: safety) are outside the policy', () => {
  const HOUR_MS = 3_600_000;
  const SEVEN_DAYS = 7 * DAY_MS;
  const safety = (id: string, createdAt: string): Dated => ({ id, createdAt, purpose: 'safety' });
  const byId = (d: { keep: Array<{ id: string }> }): string[] => sorted(d.keep.map((k) => k.id));

  // now = 2026-11-24T03:00Z, safetyKeep 7 d: the cutoff is 2026-11-17T03:00Z.
  const SAFETY = [
    safety('shop-prerestore-0000aaaa', '2026-11-24T02:01:30.000Z'), // 90 s after the night's backup: kept
    safety('shop-prerestore-0000bbbb', '2026-11-17T03:00:01.000Z'), // one second younger than 7 d: kept
    safety('shop-prerestore-0000cccc', '2026-11-17T02:59:59.000Z'), // one second older than 7 d: pruned
    safety('shop-prerestore-0000dddd', '2026-06-15T12:00:00.000Z'), // months old, on a monthly GFS slot's day: pruned
  ];
  const YOUNG = ['shop-prerestore-0000aaaa', 'shop-prerestore-0000bbbb'];
  const OLD = ['shop-prerestore-0000cccc', 'shop-prerestore-0000dddd'];

  test('GFS 7/4/12: the real backups kept are the same 20 as without the snapshots; only those younger than 7 d stay', () => {
    const decision = selectRetained(shuffled([...ALL_DATES.map(backupOf), ...SAFETY]), GFS, NOW, SEVEN_DAYS);
    expect(byId(decision)).toEqual(sorted([...GFS_KEPT_IDS, ...YOUNG]));
    expect(sorted(decision.prune)).toEqual(sorted([...GFS_PRUNED_IDS, ...OLD]));
    const reasons = new Map(decision.keep.map((k) => [k.id, k.reasons.join(' | ')]));
    // The night's real backup still holds its daily/weekly/monthly slots; the snapshot 90 s newer took none.
    expect(reasons.get(idOf('2026-11-24'))).toBe('newest | daily 2026-11-24 | weekly 2026-W48 | monthly 2026-11');
    expect(reasons.get('shop-prerestore-0000aaaa')).toBe('safety snapshot younger than 7d');
  });

  test('keepLast 2: a snapshot between two backups takes no slot, so the backup before it survives', () => {
    // The demo's sequence: backup 11-23, a restore's snapshot at 11-24 01:00, the next backup at 11-24 02:00.
    const backups = [...nightlyDates('2026-11-20').map(backupOf), safety('shop-prerestore-0000eeee', '2026-11-24T01:00:00.000Z')];
    const decision = selectRetained(shuffled(backups), { keepLast: 2 }, NOW, SEVEN_DAYS);
    expect(byId(decision)).toEqual(sorted([idOf('2026-11-24'), idOf('2026-11-23'), 'shop-prerestore-0000eeee']));
    expect(sorted(decision.prune)).toEqual(sorted(['2026-11-20', '2026-11-21', '2026-11-22'].map(idOf)));
  });

  test('GFS daily 1 (one backup a day): a snapshot taken 90 s before the next backup is not pruned by it', () => {
    const backups = [backupOf('2026-11-23'), safety('shop-prerestore-0000ffff', '2026-11-24T02:00:00.000Z'), { id: 'shop-next', createdAt: '2026-11-24T02:01:30.000Z' }];
    const decision = selectRetained(shuffled(backups), { gfs: { daily: 1, weekly: 0, monthly: 0 } }, new Date('2026-11-24T02:01:31Z'), SEVEN_DAYS);
    expect(byId(decision)).toEqual(sorted(['shop-next', 'shop-prerestore-0000ffff']));
    expect(decision.prune).toEqual([idOf('2026-11-23')]);
  });

  test('safetyKeep is its own clock: a short one prunes snapshots that keepDays would keep, a long one keeps what GFS would prune', () => {
    const backups = [...nightlyDates('2026-11-01').map(backupOf), ...SAFETY];
    // 1 h: only the snapshot taken 58.5 min before now is young enough; keepDays 30 keeps every real backup.
    const short = selectRetained(shuffled(backups), { keepDays: 30 }, NOW, HOUR_MS);
    expect(byId(short)).toEqual(sorted([...nightlyDates('2026-11-01').map(idOf), 'shop-prerestore-0000aaaa']));
    expect(sorted(short.prune)).toEqual(sorted(['shop-prerestore-0000bbbb', ...OLD]));
    // 365 d: all four stay although keepLast 1 keeps one real backup.
    const long = selectRetained(shuffled(backups), { keepLast: 1 }, NOW, 365 * DAY_MS);
    expect(byId(long)).toEqual(sorted([idOf('2026-11-24'), ...YOUNG, ...OLD]));
  });

  test('a target whose only backups are old safety snapshots keeps the newest one as its last restore point', () => {
    const decision = selectRetained(shuffled(SAFETY.filter((b) => OLD.includes(b.id))), GFS, NOW, SEVEN_DAYS);
    expect(decision.keep).toEqual([{ id: 'shop-prerestore-0000cccc', reasons: ['newest (no other backup)'] }]);
    expect(decision.prune).toEqual(['shop-prerestore-0000dddd']);
  });

  test('on disk: pruneDirectory reads purpose from the manifests and deletes only the old snapshot', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'retention-safety-'));
    try {
      const write = async (id: string, createdAt: string, purpose?: 'backup' | 'safety'): Promise<void> => {
        const content = Buffer.from(`PGDMP ${id}\n`);
        fs.writeFileSync(path.join(dir, `${id}.dump`), content);
        const manifest = manifestSchema.parse({
          version: 1, id, target: 'shop', kind: 'postgres', file: `${id}.dump`, format: 'pg_dump-custom', sizeBytes: content.length,
          sha256: createHash('sha256').update(content).digest('hex'), createdAt, completedAt: createdAt, durationMs: 1, serverVersion: '17.2',
          ...(purpose ? { purpose } : {}),
        });
        await writeFileAtomic(path.join(dir, `${id}.manifest.json`), JSON.stringify(manifest));
      };
      await write(idOf('2026-11-22'), createdAtOf('2026-11-22')); // a manifest of an older version: no purpose
      await write(idOf('2026-11-23'), createdAtOf('2026-11-23'), 'backup');
      await write('shop-prerestore-0000aaaa', '2026-11-24T01:00:00.000Z', 'safety');
      await write('shop-prerestore-0000cccc', '2026-11-10T01:00:00.000Z', 'safety');
      await write(idOf('2026-11-24'), createdAtOf('2026-11-24'), 'backup');
      const result = await pruneDirectory(dir, { keepLast: 2 }, NOW, false, SEVEN_DAYS);
      expect(sorted(result.kept)).toEqual(sorted([idOf('2026-11-24'), idOf('2026-11-23'), 'shop-prerestore-0000aaaa']));
      expect(sorted(result.pruned)).toEqual(sorted([idOf('2026-11-22'), 'shop-prerestore-0000cccc']));
      expect(fs.readdirSync(dir).sort()).toEqual(
        sorted([idOf('2026-11-24'), idOf('2026-11-23'), 'shop-prerestore-0000aaaa'].flatMap((id) => [`${id}.dump`, `${id}.manifest.json`])),
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('backups.safetyKeep defaults to 7d and a bad value is refused naming the field', () => {
    const example = parse(fs.readFileSync(path.join(__dirname, '..', 'runbooks.example.yaml'), 'utf8')) as { backups: Record<string, unknown> };
    delete example.backups.safetyKeep;
    expect(parseConfig(stringify(example), 'example.yaml', '/').backups.safetyKeep).toBe('7d');
    example.backups.safetyKeep = 'a week';
    expect(() => parseConfig(stringify(example), 'example.yaml', '/')).toThrow(/backups\.safetyKeep: must be a duration like/);
  });
});

describe('isoWeekKey', () => {
  // Checked against Python's date.isocalendar().
  test.each([
    ['2026-01-01T12:00:00Z', '2026-W01'], // Thursday: the week holding the year's first Thursday is W01
    ['2027-01-01T12:00:00Z', '2026-W53'], // Friday: belongs to the last week of 2026, which has 53 weeks
    ['2027-01-03T23:59:59Z', '2026-W53'], // Sunday ends that week
    ['2027-01-04T00:00:00Z', '2027-W01'], // Monday starts the next
    ['2024-12-30T00:00:00Z', '2025-W01'], // Monday in December already in 2025's first week
    ['2020-12-31T00:00:00Z', '2020-W53'],
    ['2021-01-03T00:00:00Z', '2020-W53'],
    ['2026-11-22T23:59:59Z', '2026-W47'], // Sunday before now
    ['2026-11-23T00:00:00Z', '2026-W48'], // Monday of now's week
    ['2026-11-24T03:00:00Z', '2026-W48'],
  ])('%s is in %s', (instant, week) => {
    expect(isoWeekKey(new Date(instant))).toBe(week);
  });
});

describe('pruneDirectory (real files)', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  const UNMANIFESTED = 'shop-20250101T020000Z.dump'; // older than every backup, no manifest
  const INVALID_ID = 'shop-20250601T020000Z'; // older than every backup: would be pruned if it were valid
  const UNTOUCHABLE = [UNMANIFESTED, `${INVALID_ID}.dump`, `${INVALID_ID}.manifest.json`];
  const filesOf = (ids: readonly string[]): string[] => ids.flatMap((id) => [`${id}.dump`, `${id}.manifest.json`]);
  const EXPECTED_AFTER_GFS = sorted([...filesOf(GFS_KEPT_IDS), ...UNTOUCHABLE]);
  const ls = (dir: string): string[] => fs.readdirSync(dir).sort();

  async function writeBackup(dir: string, date: string, id = idOf(date), recordedSize?: number): Promise<void> {
    const content = Buffer.from(`PGDMP custom-format dump of shop taken ${date}\n`.repeat(3));
    const file = `${id}.dump`;
    fs.writeFileSync(path.join(dir, file), content);
    const manifest: BackupManifest = manifestSchema.parse({
      version: 1,
      id,
      target: 'shop',
      kind: 'postgres',
      file,
      format: 'pg_dump-custom',
      sizeBytes: recordedSize ?? content.length,
      sha256: createHash('sha256').update(content).digest('hex'),
      createdAt: createdAtOf(date),
      completedAt: `${date}T02:00:07.000Z`,
      durationMs: 7000,
      serverVersion: '17.2',
      database: 'shop',
    } satisfies BackupManifest);
    await writeFileAtomic(path.join(dir, `${id}.manifest.json`), JSON.stringify(manifest, null, 2));
  }

  /** A target folder with 436 nightly backups, an artifact without manifest and a manifest with the wrong size. */
  async function fixture(dates: readonly string[] = ALL_DATES): Promise<string> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'retention-'));
    dirs.push(dir);
    for (const date of dates) await writeBackup(dir, date);
    fs.writeFileSync(path.join(dir, UNMANIFESTED), 'a dump whose manifest was never written\n');
    await writeBackup(dir, '2025-06-01', INVALID_ID, 1); // real artifact is bigger than 1 byte
    expect(fs.readdirSync(dir)).toHaveLength(dates.length * 2 + 3);
    return dir;
  }

  test('GFS 7/4/12 leaves exactly the kept backups, plus files no valid manifest claims', async () => {
    const dir = await fixture();
    const result = await pruneDirectory(dir, GFS, NOW);

    expect(ls(dir)).toEqual(EXPECTED_AFTER_GFS);
    expect(sorted(result.pruned)).toEqual(sorted(GFS_PRUNED_IDS));
    expect(sorted(result.kept)).toEqual(sorted(GFS_KEPT_IDS));
    expect(result.dryRun).toBe(false);
    expect(sorted(result.untouched)).toEqual(sorted([UNMANIFESTED, `${INVALID_ID}.dump`, `${INVALID_ID}.manifest.json`].map((n) => path.join(dir, n))));
    // What survives is intact: the kept artifacts still match their manifests.
    for (const id of GFS_KEPT_IDS) {
      const m = manifestSchema.parse(JSON.parse(fs.readFileSync(path.join(dir, `${id}.manifest.json`), 'utf8')));
      const bytes = fs.readFileSync(path.join(dir, m.file));
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(m.sha256);
    }
  });

  test('running it again deletes nothing more', async () => {
    const dir = await fixture();
    const first = await pruneDirectory(dir, GFS, NOW);
    expect(first.pruned).toHaveLength(416);
    const afterFirst = ls(dir);

    const second = await pruneDirectory(dir, GFS, NOW);
    expect(second.pruned).toEqual([]);
    expect(sorted(second.kept)).toEqual(sorted(GFS_KEPT_IDS));
    expect(ls(dir)).toEqual(afterFirst);
    expect(ls(dir)).toEqual(EXPECTED_AFTER_GFS);
  });

  test('a deletion interrupted by a crash is finished on the next run; the kept set is unchanged', async () => {
    const dir = await fixture();
    // Crash right after deleteBackup renamed the manifest to its tombstone, before the artifact went.
    const interrupted = idOf('2026-06-15');
    expect(GFS_PRUNED_IDS).toContain(interrupted);
    fs.renameSync(path.join(dir, `${interrupted}.manifest.json`), path.join(dir, `${interrupted}.manifest.json.deleting`));
    // Another crash later in a deletion: artifact already gone, tombstone still there.
    const almostGone = idOf('2026-03-10');
    expect(GFS_PRUNED_IDS).toContain(almostGone);
    fs.renameSync(path.join(dir, `${almostGone}.manifest.json`), path.join(dir, `${almostGone}.manifest.json.deleting`));
    fs.unlinkSync(path.join(dir, `${almostGone}.dump`));

    const result = await pruneDirectory(dir, GFS, NOW);
    expect(ls(dir)).toEqual(EXPECTED_AFTER_GFS);
    expect(ls(dir).filter((n) => n.includes(interrupted) || n.includes(almostGone))).toEqual([]);
    expect(sorted(result.kept)).toEqual(sorted(GFS_KEPT_IDS));
    expect(sorted(result.pruned)).toEqual(sorted(GFS_PRUNED_IDS.filter((id) => id !== interrupted && id !== almostGone)));
  });

  test('a crash between deletions: the next run deletes the rest and keeps the same backups', async () => {
    const dir = await fixture();
    // The first run got through half of the prunable backups, then crashed mid-delete of the next one.
    for (const id of GFS_PRUNED_IDS.slice(0, 200)) {
      fs.unlinkSync(path.join(dir, `${id}.manifest.json`));
      fs.unlinkSync(path.join(dir, `${id}.dump`));
    }
    const next = GFS_PRUNED_IDS[200]!;
    fs.renameSync(path.join(dir, `${next}.manifest.json`), path.join(dir, `${next}.manifest.json.deleting`));

    const result = await pruneDirectory(dir, GFS, NOW);
    expect(ls(dir)).toEqual(EXPECTED_AFTER_GFS);
    expect(sorted(result.kept)).toEqual(sorted(GFS_KEPT_IDS));
    expect(sorted(result.pruned)).toEqual(sorted(GFS_PRUNED_IDS.slice(201)));
  });

  test('dry run deletes nothing and reports the same backups a real run prunes', async () => {
    const dir = await fixture();
    const before = ls(dir);
    const dry = await pruneDirectory(dir, GFS, NOW, true);
    expect(dry.dryRun).toBe(true);
    expect(ls(dir)).toEqual(before);
    expect(sorted(dry.pruned)).toEqual(sorted(GFS_PRUNED_IDS));
    expect(sorted(dry.kept)).toEqual(sorted(GFS_KEPT_IDS));

    const real = await pruneDirectory(dir, GFS, NOW);
    expect(real.pruned).toEqual(dry.pruned);
    expect(ls(dir)).toEqual(EXPECTED_AFTER_GFS);
  });

  test('dry run leaves an interrupted deletion alone', async () => {
    const dir = await fixture(nightlyDates('2026-11-01'));
    const interrupted = idOf('2026-11-02');
    fs.renameSync(path.join(dir, `${interrupted}.manifest.json`), path.join(dir, `${interrupted}.manifest.json.deleting`));
    const before = ls(dir);
    await pruneDirectory(dir, GFS, NOW, true);
    expect(ls(dir)).toEqual(before);
  });

  test('keepDays 7 on disk: when every backup is too old, the newest one stays', async () => {
    const dir = await fixture(nightlyDates('2026-10-01', '2026-10-10'));
    const result = await pruneDirectory(dir, { keepDays: 7 }, NOW);
    expect(result.kept).toEqual([idOf('2026-10-10')]);
    expect(ls(dir)).toEqual(sorted([...filesOf([idOf('2026-10-10')]), ...UNTOUCHABLE]));
  });

  test('a missing folder is an empty target, not an error', async () => {
    const dir = path.join(os.tmpdir(), `retention-missing-${process.pid}-${Date.now()}`);
    await expect(pruneDirectory(dir, GFS, NOW)).resolves.toEqual({ kept: [], pruned: [], untouched: [], dryRun: false });
    expect(fs.existsSync(dir)).toBe(false);
  });
});

describe('edge cases found in review', () => {
  test('ages compare as instants: a backup without milliseconds is not "newer" than one half a second later', () => {
    const decision = selectRetained(
      [
        { id: 'a', createdAt: '2026-11-24T02:00:00Z' },
        { id: 'b', createdAt: '2026-11-24T02:00:00.500Z' },
      ],
      { keepLast: 1 },
      new Date('2026-11-24T03:00:00Z'),
    );
    expect(decision.keep.map((k) => k.id)).toEqual(['b']);
    expect(decision.prune).toEqual(['a']);
  });

  test('a manifest not named after its id, or with an id that leaves the folder, is never pruned', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'retention-edge-'));
    const write = (name: string, id: string, file: string, createdAt: string): void => {
      fs.writeFileSync(path.join(dir, file), 'x');
      const sha = createHash('sha256').update('x').digest('hex');
      fs.writeFileSync(
        path.join(dir, name),
        JSON.stringify({ version: 1, id, target: 't', kind: 'postgres', file, format: 'pg_dump-custom', sizeBytes: 1, sha256: sha, createdAt, completedAt: createdAt, durationMs: 1, serverVersion: '15' }),
      );
    };
    write('new.manifest.json', 'new', 'new.dump', '2026-11-24T02:00:00.000Z');
    write('renamed.manifest.json', 'orig', 'orig.dump', '2026-01-01T02:00:00.000Z');
    write('evil.manifest.json', '..', '...dump', '2026-01-02T02:00:00.000Z');
    const result = await pruneDirectory(dir, { keepLast: 1 }, new Date('2026-11-24T03:00:00Z'));
    expect(result.pruned).toEqual([]);
    expect(result.kept).toEqual(['new']);
    expect(fs.readdirSync(dir).sort()).toEqual(['...dump', 'evil.manifest.json', 'new.dump', 'new.manifest.json', 'orig.dump', 'renamed.manifest.json']);
  });
});
