import fs from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'dotenv';
import { writeFileAtomic } from './storage';

/**
 * `.env` files as Docker Compose and dotenv read them. Only the named keys change: every other line
 * (comments, blank lines, other keys, `export` prefixes, the order) stays byte for byte. dotenv parses;
 * no maintained library writes while keeping comments, hence this small writer.
 */

const KEY_LINE = /^(\s*(?:export\s+)?)([A-Za-z_][A-Za-z0-9_.-]*)(\s*=\s*)(.*)$/;

/** A value as a .env file writes it: bare when it is plainly safe, else single-quoted (no expansion). */
export function quoteEnvValue(value: string): string {
  if (/[\r\n]/.test(value)) throw new Error('a .env value cannot contain a line break');
  // dotenv reads `\'` (and `\"`, `\``) as an escaped quote: a value ending in a backslash has no quoting that reads back.
  if (value.endsWith('\\')) throw new Error('a .env value cannot end with a backslash');
  if (/^[A-Za-z0-9_\-.:/+=@,~^%]*$/.test(value)) return value;
  if (!value.includes("'")) return `'${value}'`;
  if (!/["\\$`]/.test(value)) return `"${value}"`;
  throw new Error('a .env value cannot contain both a single quote and one of " \\ $ `');
}

/** How many lines (from `i`) the assignment at line i spans: a quoted value may continue on later lines. */
function assignmentSpan(lines: string[], i: number, rest: string): number {
  const q = rest[0];
  if (q !== '"' && q !== "'" && q !== '`') return 1;
  if (rest.length > 1 && rest.indexOf(q, 1) !== -1) return 1;
  for (let j = i + 1; j < lines.length; j++) if (lines[j]!.includes(q)) return j - i + 1;
  return 1; // unterminated: dotenv reads it as one line too
}

/** The ` # comment` after a one-line value, kept when the value is replaced. */
function inlineComment(rest: string): string {
  const q = rest[0];
  if (q === '"' || q === "'" || q === '`') {
    const close = rest.indexOf(q, 1);
    const after = close === -1 ? '' : rest.slice(close + 1);
    return /^\s+#/.test(after) ? after : '';
  }
  return /\s+#.*$/.exec(rest)?.[0] ?? '';
}

/**
 * The text with each key in `values` set: its (last) assignment is replaced in place, keeping an
 * `export ` prefix; a key not in the file is appended at the end. Everything else is untouched.
 */
export function updateEnvText(text: string, values: Record<string, string>): string {
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const lines = text.split(/\r?\n/);
  const trailing = lines.length > 0 && lines[lines.length - 1] === '';
  if (trailing) lines.pop();
  // Every assignment of a named key is replaced, so readers that keep the first and readers that keep the last agree.
  const out: string[] = [];
  const done = new Set<string>();
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const m = KEY_LINE.exec(line);
    const key = m?.[2];
    if (!m || key === undefined || !(key in values) || line.trimStart().startsWith('#')) {
      out.push(line);
      continue;
    }
    const span = assignmentSpan(lines, i, m[4]!);
    out.push(`${m[1]}${key}${m[3]}${quoteEnvValue(values[key]!)}${span === 1 ? inlineComment(m[4]!) : ''}`);
    done.add(key);
    i += span - 1;
  }
  for (const [key, value] of Object.entries(values)) {
    if (!done.has(key)) out.push(`${key}=${quoteEnvValue(value)}`);
  }
  return out.join(eol) + (trailing || out.length > 0 ? eol : '');
}

export function parseEnv(text: string): Record<string, string> {
  return parse(text);
}

/** Write atomically (temp file in the same folder, fsync, rename, fsync the folder) with mode 0600. */
export function writeSecretFileAtomic(file: string, data: string | Buffer): Promise<void> {
  return writeFileAtomic(file, data, 0o600);
}

/** The previous version of `file` kept for rollback by rotation `rotationId`. */
export function envBackupPath(file: string, rotationId: string): string {
  return path.join(path.dirname(file), `${path.basename(file)}.before-${rotationId}`);
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Set `values` in the .env file for rotation `rotationId`. The first call keeps the current file as
 * `<file>.before-<rotationId>` (mode 0600); every call (a retry too) derives the new text from that kept
 * version, so applying it twice gives the same file. Returns the values the file held before.
 */
export async function applyEnvValues(file: string, rotationId: string, values: Record<string, string>): Promise<Record<string, string>> {
  const backup = envBackupPath(file, rotationId);
  let before = await readIfExists(backup);
  if (before === undefined) {
    before = (await readIfExists(file)) ?? '';
    await writeSecretFileAtomic(backup, before);
  }
  await writeSecretFileAtomic(file, updateEnvText(before, values));
  const old = parseEnv(before);
  return Object.fromEntries(Object.keys(values).flatMap((k) => (old[k] !== undefined ? [[k, old[k]]] : [])));
}

/** Put back the version kept by `applyEnvValues` (a no-op when that rotation never wrote this file). */
export async function restoreEnvFile(file: string, rotationId: string): Promise<boolean> {
  const before = await readIfExists(envBackupPath(file, rotationId));
  if (before === undefined) return false;
  if ((await readIfExists(file)) !== before) await writeSecretFileAtomic(file, before);
  return true;
}

/** The values a rotation's kept version of the file held (for restoring other copies, e.g. GitHub secrets). */
export async function previousEnvValues(file: string, rotationId: string): Promise<Record<string, string> | undefined> {
  const before = await readIfExists(envBackupPath(file, rotationId));
  return before === undefined ? undefined : parseEnv(before);
}
