import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { parse } from 'dotenv';
import { applyEnvValues, envBackupPath, quoteEnvValue, restoreEnvFile, updateEnvText } from '../src/activities/env-file';
import { scratchDir } from './support/scratch';

const key = fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,8}$/);
// Values as rotations generate them (base64url) and as people write them (spaces, #, quotes, $).
const value = fc.oneof(fc.base64String({ minLength: 1, maxLength: 44 }).map((s) => s.replace(/\+/g, '-').replace(/\//g, '_')), fc.stringMatching(/^[ -~]{0,20}$/));
const comment = fc.stringMatching(/^# [ -~]{0,20}$/);
type Line = { kind: 'comment'; text: string } | { kind: 'blank' } | { kind: 'pair'; key: string; value: string; exported: boolean };
const line: fc.Arbitrary<Line> = fc.oneof(
  comment.map((text) => ({ kind: 'comment' as const, text })),
  fc.constant({ kind: 'blank' as const }),
  // No backslash in what a person writes: dotenv reads `\'` inside '…' as an escaped quote, so `_='\'` means one thing
  // at the end of a file and another before a later quoted line; its reading is not stable (found by this property).
  fc.record({ kind: fc.constant('pair' as const), key, value: value.filter((v) => !(v.includes("'") && /["\\$`]/.test(v)) && !v.includes('\\')), exported: fc.boolean() }),
);
/** The file as a person writes it, quoted by dotenv's rules (not the product's quoteEnvValue): bare, '…' literal, or "…" (no \\ or $ in it). */
const quoted = (v: string): string => (/^[A-Za-z0-9_.:/@+=-]*$/.test(v) ? v : v.includes("'") ? `"${v}"` : `'${v}'`);
const render = (l: Line): string => (l.kind === 'comment' ? l.text : l.kind === 'blank' ? '' : `${l.exported ? 'export ' : ''}${l.key}=${quoted(l.value)}`);

test('only the named keys change; comments, blank lines, other keys and their order stay byte for byte (property)', () => {
  fc.assert(
    fc.property(fc.array(line, { maxLength: 15 }), fc.dictionary(key, value.filter((v) => !(v.includes("'") && /["\\$`]/.test(v)) && !v.endsWith('\\')), { maxKeys: 3 }), (lines, values) => {
      // One assignment per key, as in a sane .env file.
      const seen = new Set<string>();
      const unique = lines.filter((l) => l.kind !== 'pair' || (!seen.has(l.key) && seen.add(l.key)));
      const text = unique.map(render).join('\n') + '\n';
      const out = updateEnvText(text, values);
      const parsed = parse(out);
      for (const [k, v] of Object.entries(values)) expect(parsed[k]).toBe(v);
      const untouched = (t: string): string[] => t.split('\n').filter((l) => !Object.keys(values).some((k) => new RegExp(`^(export )?${k}=`).test(l)));
      expect(untouched(out)).toEqual(untouched(text));
      const before = parse(text);
      for (const k of Object.keys(before)) if (!(k in values)) expect(parsed[k]).toBe(before[k]);
    }),
    { numRuns: Number(process.env.FUZZ_RUNS ?? 1_000) },
  );
});

test('replacing keeps the place, the export prefix and an inline comment; a new key is appended', () => {
  const text = '# top\nexport A=1 # one\nB="two words"\n\nC=3\n';
  expect(updateEnvText(text, { A: 'x', B: 'y y', D: 'new' })).toBe("# top\nexport A=x # one\nB='y y'\n\nC=3\nD=new\n");
});

test('a multi-line quoted value is replaced whole', () => {
  const text = 'KEY="-----BEGIN\nabc\n-----END"\nNEXT=1\n';
  expect(updateEnvText(text, { KEY: 'v' })).toBe('KEY=v\nNEXT=1\n');
});

test('a value that cannot be written safely is refused instead of corrupting the file', () => {
  expect(() => quoteEnvValue('a\nb')).toThrow(/line break/);
  expect(() => quoteEnvValue(`it's "$HOME"`)).toThrow(/single quote/);
  // dotenv would read '\' + a later quoted line as one value: A='\' then B='#' gives A "\'\nB=" (found by the property).
  expect(() => quoteEnvValue('C:\\')).toThrow(/end with a backslash/);
  expect(parse(updateEnvText('', { A: 'x\\y', B: '#' }))).toEqual({ A: 'x\\y', B: '#' });
});

test('applying writes atomically with mode 0600, keeps the previous version once, and a retry gives the same file; restore puts it back', async () => {
  const dir = scratchDir('envfile');
  const file = path.join(dir, '.env');
  const original = '# app\nDB_PASSWORD=old\nOTHER=1\n';
  writeFileSync(file, original, { mode: 0o644 });
  expect(await applyEnvValues(file, 'r1', { DB_PASSWORD: 'new' })).toEqual({ DB_PASSWORD: 'old' });
  const once = readFileSync(file, 'utf8');
  expect(once).toBe('# app\nDB_PASSWORD=new\nOTHER=1\n');
  expect(statSync(file).mode & 0o777).toBe(0o600);
  expect(statSync(envBackupPath(file, 'r1')).mode & 0o777).toBe(0o600);
  await applyEnvValues(file, 'r1', { DB_PASSWORD: 'new' }); // a retry after a crash
  expect(readFileSync(file, 'utf8')).toBe(once);
  expect(readFileSync(envBackupPath(file, 'r1'), 'utf8')).toBe(original); // still the version before, not the new one
  expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  expect(await restoreEnvFile(file, 'r1')).toBe(true);
  expect(readFileSync(file, 'utf8')).toBe(original);
  expect(await restoreEnvFile(file, 'other-rotation')).toBe(false);
});
