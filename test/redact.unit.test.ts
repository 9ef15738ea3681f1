import { redactParams } from '../src/client/start-options';
import { redact, redactValue, registerSecret } from '../src/config/secrets';

/**
 * Redaction as an attacker would try to dodge it: a password whose characters change when the text around it
 * is serialised (`"`, `\` in JSON, `%` and spaces in a URL), and a token that is a prefix of another secret.
 * The escaped forms are made here with the standard library (JSON.stringify, encodeURIComponent), not by redact.
 */

const PASSWORD = 'p"w\\d 50%-of-"it"';
const SHORT = 'tok-7f3a9c';
const LONG = `${SHORT}-b81e44d2`; // SHORT is its prefix
registerSecret(SHORT); // the shorter one first: the order a naive scrubber trips over
registerSecret(LONG);
registerSecret(PASSWORD);

const jsonForm = JSON.stringify(PASSWORD).slice(1, -1);
const everyForm = [PASSWORD, jsonForm, JSON.stringify(jsonForm).slice(1, -1), encodeURIComponent(PASSWORD), encodeURIComponent(PASSWORD).toLowerCase(), new URLSearchParams({ p: PASSWORD }).toString().slice(2)];
/** What must never survive: any form of the password, and any 6-char piece of the tokens (a tail left behind). */
function leaks(text: string): string[] {
  const pieces = [LONG, SHORT, LONG.slice(SHORT.length), 'b81e44'];
  return [...everyForm, ...pieces].filter((f) => text.includes(f));
}

test('a secret that is a prefix of another: the longer is redacted whole, no tail left', () => {
  expect(redact(`auth with ${LONG} failed`)).toBe('auth with [redacted] failed');
  expect(redact(`old ${SHORT}, new ${LONG}`)).toBe('old [redacted], new [redacted]');
});

test('the password as is, JSON-escaped (once and twice) and URL-encoded is redacted', () => {
  const cases = [
    `password authentication failed: ${PASSWORD}`,
    JSON.stringify({ detail: `pw=${PASSWORD}` }),
    JSON.stringify({ log: JSON.stringify({ detail: PASSWORD }) }),
    `connecting to postgres://shop:${encodeURIComponent(PASSWORD)}@db:5432/shop`,
    `POST body: user=shop&${new URLSearchParams({ password: PASSWORD }).toString()}`,
    `postgres://shop:${encodeURIComponent(PASSWORD).replace(/%[0-9A-F]{2}/g, (h) => h.toLowerCase())}@db/shop`,
  ];
  for (const text of cases) {
    const out = redact(text);
    expect({ text, leaks: leaks(out) }).toEqual({ text, leaks: [] });
    expect(out).toContain('[redacted]');
  }
});

test('redactValue scrubs each string before serialisation: the JSON stays valid and holds no form of a secret', () => {
  // A secret made of JSON punctuation: scrubbing the serialised text would cut across the quotes between two fields.
  const punct = 'ab","c';
  registerSecret(punct);
  const meta = { x: 'ab', c: 1, detail: `pg said ${PASSWORD}`, nested: [{ token: LONG }, `${SHORT}!`], err: new Error(`boom ${LONG}`) };
  const text = JSON.stringify(redactValue(meta));
  expect(leaks(text)).toEqual([]);
  const back = JSON.parse(text) as { x: string; c: number; detail: string; nested: unknown[]; err: { message: string } };
  expect(back).toMatchObject({ x: 'ab', c: 1, detail: 'pg said [redacted]', nested: [{ token: '[redacted]' }, '[redacted]!'], err: { message: 'boom [redacted]' } });
  const circular: Record<string, unknown> = { s: PASSWORD };
  circular.self = circular;
  expect(redactValue(circular)).toEqual({ s: '[redacted]', self: '[circular]' });
});

test('run parameters shown in the memo: long text is cut after redaction, so no half of a secret survives', () => {
  const shown = redactParams({ reason: `${'x'.repeat(190)}${PASSWORD} and more`, extra: { note: `dsn=postgres://u:${encodeURIComponent(PASSWORD)}@db` } });
  expect(shown.reason).toBe(`${'x'.repeat(190)}[redacted]…`);
  expect(String(shown.extra)).toBe('{"note":"dsn=postgres://u:[redacted]@db"}');
  expect(leaks(JSON.stringify(shown))).toEqual([]);
});
