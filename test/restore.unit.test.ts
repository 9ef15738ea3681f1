import { derivedName } from '../src/activities/restore';

// The pure half of restore.test.ts's 'derived database names' (the other half restores on the real PostgreSQL).
describe('derived database names are cut by bytes (PostgreSQL keeps 63 bytes of a name)', () => {
  const bytes = (s: string): number => Buffer.byteLength(s);

  test.each([
    ['30 × "ä" (60 bytes)', 'ä'.repeat(30)],
    ['31 × "ä" + "x" (63 bytes)', `${'ä'.repeat(31)}x`],
    ['62 ASCII bytes + "€"', `${'a'.repeat(60)}€`],
  ])('%s: every derived name fits in 63 bytes, keeps its suffix whole, is valid UTF-8 and is not the database', (_what, database) => {
    for (const suffix of ['restore_abcd1234', 'pre_restore_abcd1234', 'failed_restore_abcd1234', 'verify_0123456789abcdef']) {
      const name = derivedName(database, suffix);
      expect(bytes(name)).toBeLessThanOrEqual(63);
      expect(name.endsWith(`__${suffix}`)).toBe(true);
      expect(Buffer.from(name).toString('utf8')).toBe(name); // no character cut in two
      expect(database.startsWith(name.slice(0, -`__${suffix}`.length))).toBe(true);
      expect(name).not.toBe(database);
    }
  });
});
