import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { METADATA_ENCODING_KEY, type Payload, type PayloadCodec, ValueError } from '@temporalio/common';
import { decode, encode } from '@temporalio/common/lib/encoding';
import { temporal } from '@temporalio/proto';
import { type Config } from './schema';
import { resolveSecret } from './secrets';

/**
 * The payload codec of client and worker (after temporalio/samples-typescript `encryption`): every payload
 * (workflow inputs and results, activity inputs and results, heartbeats, queries, memos) is AES-256-GCM
 * encrypted before it leaves the process, so the Temporal server and its history hold ciphertext only.
 * Keys carry an id: the first configured key encrypts, any configured key decrypts (by the id in the
 * payload's metadata), so the codec key itself can be rotated by prepending a new one.
 */

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export interface CodecKey {
  id: string;
  /** 32 bytes. */
  key: Buffer;
}

/** AES-256-GCM: iv (12 bytes) | ciphertext | tag (16 bytes). The key id is authenticated as AAD. */
export function seal(plain: Uint8Array, key: CodecKey): Buffer {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key.key, iv);
  cipher.setAAD(Buffer.from(key.id));
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]);
}

export function open(sealed: Uint8Array, key: CodecKey): Buffer {
  const buf = Buffer.from(sealed);
  if (buf.length < IV_BYTES + TAG_BYTES) throw new ValueError('encrypted payload is too short');
  const decipher = createDecipheriv('aes-256-gcm', key.key, buf.subarray(0, IV_BYTES));
  decipher.setAAD(Buffer.from(key.id));
  decipher.setAuthTag(buf.subarray(buf.length - TAG_BYTES));
  try {
    return Buffer.concat([decipher.update(buf.subarray(IV_BYTES, buf.length - TAG_BYTES)), decipher.final()]);
  } catch {
    throw new ValueError(`cannot decrypt a payload with key "${key.id}": wrong key or tampered data`);
  }
}

export class EncryptionCodec implements PayloadCodec {
  private readonly byId: Map<string, CodecKey>;

  constructor(private readonly keys: CodecKey[]) {
    if (keys.length === 0) throw new Error('EncryptionCodec needs at least one key');
    this.byId = new Map(keys.map((k) => [k.id, k]));
  }

  /** The key that encrypts (the first one). */
  get current(): CodecKey {
    return this.keys[0]!;
  }

  key(id: string): CodecKey {
    const key = this.byId.get(id);
    if (!key) throw new ValueError(`payload encrypted with unknown key id "${id}" (known: ${[...this.byId.keys()].join(', ')})`);
    return key;
  }

  encode(payloads: Payload[]): Promise<Payload[]> {
    return Promise.resolve(payloads).then((ps) => ps.map((payload) => ({
      metadata: { [METADATA_ENCODING_KEY]: encode(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: encode(this.current.id) },
      data: seal(temporal.api.common.v1.Payload.encode(payload).finish(), this.current),
    })));
  }

  decode(payloads: Payload[]): Promise<Payload[]> {
    return Promise.resolve(payloads).then((ps) => ps.map((payload) => {
      // Payloads written before encryption was turned on (or by a client without it) pass through.
      const encoding = payload.metadata?.[METADATA_ENCODING_KEY];
      if (!encoding || decode(encoding) !== ENCRYPTED_ENCODING) return payload;
      const keyId = payload.metadata?.[KEY_ID_METADATA];
      if (!keyId) throw new ValueError('encrypted payload without a key id');
      if (!payload.data) throw new ValueError('encrypted payload without data');
      return temporal.api.common.v1.Payload.decode(open(payload.data, this.key(decode(keyId))));
    }));
  }
}

/** A codec key from its text form: 32 bytes as base64 (44 chars) or hex (64 chars). */
export function parseCodecKey(id: string, text: string, field: string): CodecKey {
  const t = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, 'hex') : Buffer.from(t, 'base64');
  if (key.length !== 32) throw new Error(`${field}: must be 32 bytes, base64 or hex (e.g. \`openssl rand -base64 32\`)`);
  return { id, key };
}

/** The codec the config asks for (`temporal.encryption`), or undefined when encryption is off. Resolves key secrets. */
export function encryptionCodec(config: Config): EncryptionCodec | undefined {
  const enc = config.temporal.encryption;
  if (!enc) return undefined;
  return new EncryptionCodec(
    enc.keys.map((k, i) => parseCodecKey(k.id, resolveSecret(k.key, `temporal.encryption.keys[${i}].key`), `temporal.encryption.keys[${i}].key`)),
  );
}

/**
 * The payload codecs of this deployment, in the order the SDK applies them on encode. Workers, clients and
 * the codec server (`runbook codec-server`, which lets the Web UI show decrypted payloads) all use this list.
 */
export function payloadCodecs(config: Config): PayloadCodec[] {
  const codec = encryptionCodec(config);
  return codec ? [codec] : [];
}

/** The module with the failure converter that puts failure messages and stack traces into (encrypted) payloads. */
export const ENCODING_FAILURE_CONVERTER_PATH = require.resolve('./failure-converter');

/**
 * The data converter option for Client / Worker: `{ dataConverter }` or nothing. With encryption, failures are
 * encoded too (message and stack trace: pg_restore's and docker's stderr, check values), not only payloads.
 */
export function dataConverterOptions(config: Config): { dataConverter?: { payloadCodecs: PayloadCodec[]; failureConverterPath: string } } {
  const codecs = payloadCodecs(config);
  return codecs.length ? { dataConverter: { payloadCodecs: codecs, failureConverterPath: ENCODING_FAILURE_CONVERTER_PATH } } : {};
}
