/**
 * The one duration format of the product, for the config, runbook parameters (deploy's drain, canary window...)
 * and Updates (an incident's snooze): a whole number and one unit, `ms`, `s`, `m`, `h` or `d` ("500ms", "30s",
 * "15m", "2h", "7d"). No imports: workflows use it too.
 */

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION = /^(\d+)(ms|s|m|h|d)$/;

/** How a refusal reads, after the field's name: `drain: must be a duration like ...`. */
export const DURATION_HINT = 'must be a duration like "500ms", "30s", "15m", "2h" or "7d"';

/** "15m" → 900000; undefined for anything else (no spaces, no fractions, no sign, one unit). */
export function parseDuration(text: unknown): number | undefined {
  if (typeof text !== 'string') return undefined;
  const m = DURATION.exec(text);
  if (!m) return undefined;
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}

/** A duration the schema should already have checked; otherwise an error naming `field` and the text. */
export function durationMs(text: string, field = 'duration'): number {
  const ms = parseDuration(text);
  if (ms === undefined) throw new DurationError(`${field}: ${DURATION_HINT} (got ${JSON.stringify(text)})`);
  return ms;
}

export class DurationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DurationError';
  }
}
