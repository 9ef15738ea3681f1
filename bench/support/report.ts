import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * One row of `npm run bench`: ours against a baseline, which is either measured in the same run, on the same
 * machine and data (`baselineKind` "measured", the default), or a fixed goal (`baselineKind` "target": a
 * number nobody measured, e.g. Slack's 3 s or a p99 < 1 s goal). Rows are appended (JSON lines) while the benches run; the bench run's teardown turns them into
 * bench/results/latest.json and latest.md.
 */
export interface BenchRow {
  bench: string;
  /** What is compared, e.g. "backup time" or "failed requests". */
  metric: string;
  unit: string;
  ours: number;
  /** Absent when there is nothing to compare with (e.g. bytes per open incident). */
  baseline?: number;
  /** What the baseline is, e.g. "pg_dump | gzip (seed D0)" or "target p99 < 1 s". */
  baselineName?: string;
  /** "measured": the baseline ran in this run; "target": it is a fixed number. Default "measured". */
  baselineKind?: 'measured' | 'target';
  /** The goal for ours/baseline (or for ours alone when `targetOn` is "ours"), e.g. "≤ 1.10". */
  target?: string;
  /** Sizes used: rows, MB, requests, incidents... */
  sizes: string;
  notes?: string;
}

export const RESULTS_DIR = path.join(__dirname, '..', 'results');
const PENDING = path.join(RESULTS_DIR, '.pending.jsonl');

export function machine(): string {
  return `${os.cpus().length} cores (${os.cpus()[0]?.model.trim() ?? 'cpu'}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
}

export function ratio(row: Pick<BenchRow, 'ours' | 'baseline'>): number | null {
  return row.baseline === undefined || row.baseline === 0 ? null : row.ours / row.baseline;
}

/** The baseline as the table says it: a fixed target is never presented as a measurement. */
export function baselineCell(row: Pick<BenchRow, 'baseline' | 'baselineName' | 'baselineKind' | 'unit'>): string {
  if (row.baseline === undefined) return 'none';
  return row.baselineKind === 'target'
    ? `fixed target ${fmt(row.baseline)} ${row.unit} (${row.baselineName ? `${row.baselineName}; ` : ''}not measured)`
    : `${fmt(row.baseline)} ${row.unit} (${row.baselineName ? `${row.baselineName}; ` : ''}measured in the same run)`;
}

/** Record a row and print it, so a run's log has the table even if the run dies before its end. */
export function report(row: BenchRow): void {
  mkdirSync(RESULTS_DIR, { recursive: true });
  appendFileSync(PENDING, `${JSON.stringify({ ...row, machine: machine(), at: new Date().toISOString() })}\n`);
  const r = ratio(row);
  console.log(
    `[bench] ${row.bench} · ${row.metric}: ours ${fmt(row.ours)} ${row.unit} vs ${baselineCell(row)}` +
      ` → ratio ${r === null ? 'n/a' : r.toFixed(3)}${row.target ? ` (goal ${row.target})` : ''} · ${row.sizes}`,
  );
}

export function resetPending(): void {
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(PENDING, '');
}

/** Turn the run's rows into latest.json and latest.md (kept in git as the latest measured table). */
export function writeResults(): void {
  if (!existsSync(PENDING)) return;
  const rows = readFileSync(PENDING, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as BenchRow & { machine: string; at: string });
  if (rows.length === 0) return;
  // A run of some benches replaces their rows and keeps the others' (each row says when it was measured).
  const measured = new Set(rows.map((r) => r.bench));
  const latest = path.join(RESULTS_DIR, 'latest.json');
  const kept = existsSync(latest) ? (JSON.parse(readFileSync(latest, 'utf8')) as typeof rows).filter((r) => !measured.has(r.bench)) : [];
  rows.unshift(...kept);
  writeFileSync(latest, `${JSON.stringify(rows, null, 2)}\n`);
  writeFileSync(path.join(RESULTS_DIR, 'latest.md'), renderTable(rows));
}

/** latest.md from the rows of latest.json. */
export function renderTable(rows: Array<BenchRow & { machine: string }>): string {
  const lines = [
    `# Benchmark results`,
    ``,
    `Measured on ${rows[0]?.machine}. Ratio = ours / baseline. A baseline "measured in the same run" ran beside ours on the same machine and data (each row's date in latest.json); a "fixed target" is a goal, not a measurement.`,
    ``,
    `| bench | metric | ours | baseline | ratio | goal | sizes |`,
    `|---|---|---|---|---|---|---|`,
    ...rows.map((r) => {
      const q = ratio(r);
      const cells = [r.bench, r.metric, `${fmt(r.ours)} ${r.unit}`, baselineCell(r), q === null ? 'n/a' : q.toFixed(3), r.target ?? '', `${r.sizes}${r.notes ? `; ${r.notes}` : ''}`];
      return `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
    }),
    ``,
  ];
  return lines.join('\n');
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(n < 10 ? 2 : 0);
}
