import { readFileSync } from 'node:fs';
import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';
import { type Config } from './schema';
import { resolveSecret } from './secrets';

/** Custom search attributes every runbook run carries, so `runbook list --target shop` is one visibility query. */
export const RUNBOOK_NAME = defineSearchAttributeKey('RunbookName', SearchAttributeType.KEYWORD);
export const RUNBOOK_TARGET = defineSearchAttributeKey('RunbookTarget', SearchAttributeType.KEYWORD);
export const SEARCH_ATTRIBUTES = [RUNBOOK_NAME, RUNBOOK_TARGET];

/** Options shared by the client Connection and the worker NativeConnection (TLS and API key for a real cluster). */
export function connectionOptions(config: Config): {
  address: string;
  tls?: { serverNameOverride?: string; serverRootCACertificate?: Buffer; clientCertPair?: { crt: Buffer; key: Buffer } };
  apiKey?: string;
} {
  const t = config.temporal;
  const read = (file: string, field: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new Error(`temporal.tls.${field}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  };
  return {
    address: t.address,
    tls: t.tls
      ? {
          serverNameOverride: t.tls.serverName,
          serverRootCACertificate: t.tls.caFile ? read(t.tls.caFile, 'caFile') : undefined,
          clientCertPair:
            t.tls.certFile && t.tls.keyFile ? { crt: read(t.tls.certFile, 'certFile'), key: read(t.tls.keyFile, 'keyFile') } : undefined,
        }
      : undefined,
    apiKey: t.apiKey ? resolveSecret(t.apiKey, 'temporal.apiKey') : undefined,
  };
}
