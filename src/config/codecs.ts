import { type PayloadCodec } from '@temporalio/common';
import { type Config } from './schema';

/**
 * The payload codecs of this deployment, in the order the SDK applies them on encode (e.g. compression,
 * then encryption). The codec server (`runbook codec-server`, and `npm start` when
 * `observability.codecServer` is set) decodes with exactly these, so the Web UI shows what workers see.
 * The workers and clients use the same list once an encryption codec is configured.
 */
export function payloadCodecs(_config: Config): PayloadCodec[] {
  return [];
}
