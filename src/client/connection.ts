import { Client, Connection } from '@temporalio/client';
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
  return { client: new Client({ connection, namespace: config.temporal.namespace }), close: () => connection.close() };
}
