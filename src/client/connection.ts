import { Client, Connection } from '@temporalio/client';
import { dataConverterOptions } from '../config/codec';
import { type Config } from '../config/schema';
import { connectionOptions } from '../config/temporal';

export class UnreachableError extends Error {
  constructor(address: string, cause: unknown) {
    super(`cannot reach Temporal at ${address} (temporal.address): ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'UnreachableError';
  }
}

export async function connectClient(config: Config): Promise<{ client: Client; close: () => Promise<void> }> {
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...connectionOptions(config), connectTimeout: 5_000 });
  } catch (err) {
    throw new UnreachableError(config.temporal.address, err);
  }
  // The same payload codec as the worker's: inputs leave encrypted, results come back readable.
  const client = new Client({ connection, namespace: config.temporal.namespace, ...dataConverterOptions(config) });
  return { client, close: () => connection.close() };
}
