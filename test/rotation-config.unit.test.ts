import { stringify } from 'yaml';
import { METADATA_ENCODING_KEY } from '@temporalio/common';
import { decode, encode } from '@temporalio/common/lib/encoding';
import { EncryptionCodec, encryptionCodec, parseCodecKey } from '../src/config/codec';
import { parseConfig } from '../src/config/load';

const key = (id: string, byte: number) => ({ id, key: Buffer.alloc(32, byte) });
const payload = (text: string) => ({ metadata: { [METADATA_ENCODING_KEY]: encode('json/plain') }, data: encode(JSON.stringify(text)) });

describe('payload codec', () => {
  test('encrypts every payload (no plain text left), decrypts it back', async () => {
    const codec = new EncryptionCodec([key('k1', 1)]);
    const [sealed] = await codec.encode([payload('hunter2-very-secret')]);
    expect(decode(sealed!.metadata![METADATA_ENCODING_KEY]!)).toBe('binary/encrypted');
    expect(decode(sealed!.metadata!['encryption-key-id']!)).toBe('k1');
    expect(Buffer.from(sealed!.data!).toString('latin1')).not.toContain('hunter2');
    const [opened] = await codec.decode([sealed!]);
    expect(decode(opened!.data!)).toBe('"hunter2-very-secret"');
  });

  test('codec key rotation: the first key encrypts, an older key still decrypts what it sealed; a removed key is named', async () => {
    const [old] = await new EncryptionCodec([key('2025', 1)]).encode([payload('x')]);
    const rotated = new EncryptionCodec([key('2026', 2), key('2025', 1)]);
    expect(decode((await rotated.decode([old!]))[0]!.data!)).toBe('"x"');
    expect(decode((await rotated.encode([payload('y')]))[0]!.metadata!['encryption-key-id']!)).toBe('2026');
    await expect(new EncryptionCodec([key('2026', 2)]).decode([old!])).rejects.toThrow(/unknown key id "2025"/);
  });

  test('a tampered payload or a wrong key of the same id is refused; unencrypted payloads pass through', async () => {
    const [sealed] = await new EncryptionCodec([key('k', 1)]).encode([payload('x')]);
    const data = Buffer.from(sealed!.data!);
    data[20] = data[20]! ^ 1;
    await expect(new EncryptionCodec([key('k', 1)]).decode([{ ...sealed, data }])).rejects.toThrow(/wrong key or tampered/);
    await expect(new EncryptionCodec([key('k', 9)]).decode([sealed!])).rejects.toThrow(/wrong key or tampered/);
    const plain = payload('old history');
    expect(await new EncryptionCodec([key('k', 1)]).decode([plain])).toEqual([plain]);
  });

  test('a key of the wrong size is reported by field, without its value', () => {
    expect(() => parseCodecKey('k', 'c2hvcnQ=', 'temporal.encryption.keys[0].key')).toThrow('temporal.encryption.keys[0].key: must be 32 bytes');
    process.env.TEST_BAD_CODEC_KEY = 'dG9vLXNob3J0LWtleQ==';
    const config = parseConfig(stringify({ temporal: { encryption: { keys: [{ id: 'bad', key: { env: 'TEST_BAD_CODEC_KEY' } }] } } }));
    expect(() => encryptionCodec(config)).toThrow(/^temporal\.encryption\.keys\[0\]\.key: must be 32 bytes/);
  });
});
