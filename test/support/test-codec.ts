import { type Payload, type PayloadCodec } from '@temporalio/common';

/**
 * A stand-in for the real encryption codec: every payload becomes `binary/test-masked`, its bytes XORed
 * with a key, so neither the server, its UI nor the history shows the original without this codec.
 * Not security, just unreadable; it exercises the same codec plumbing the AES-GCM codec uses.
 */
export const MASKED = 'binary/test-masked';

export class MaskingCodec implements PayloadCodec {
  constructor(private readonly key = 0x5a) {}

  private mask(bytes: Uint8Array): Uint8Array {
    return Uint8Array.from(bytes, (b) => b ^ this.key);
  }

  encode(payloads: Payload[]): Promise<Payload[]> {
    return Promise.resolve(payloads.map((p) => {
      const inner = JSON.stringify({
        metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? []).toString('base64')])),
        data: Buffer.from(p.data ?? []).toString('base64'),
      });
      return { metadata: { encoding: Buffer.from(MASKED) }, data: this.mask(Buffer.from(inner)) };
    }));
  }

  decode(payloads: Payload[]): Promise<Payload[]> {
    return Promise.resolve(payloads.map((p) => {
      if (Buffer.from(p.metadata?.encoding ?? []).toString() !== MASKED) return p;
      const inner = JSON.parse(Buffer.from(this.mask(p.data ?? new Uint8Array())).toString()) as { metadata: Record<string, string>; data: string };
      return {
        metadata: Object.fromEntries(Object.entries(inner.metadata).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
        data: Buffer.from(inner.data, 'base64'),
      };
    }));
  }
}
