import { readFileSync } from 'node:fs';
import { type Config } from './schema';
import { resolveSecret } from './secrets';

// The search attributes live in a workflow-safe file (no Node built-ins); re-exported for the client side.
export { ENVIRONMENT, RUNBOOK_NAME, RUNBOOK_STATUS, RUNBOOK_TARGET, SEARCH_ATTRIBUTES, TRIGGERED_BY } from './search-attributes';

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
