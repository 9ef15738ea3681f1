import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type WorkerOptions, bundleWorkflowCode } from '@temporalio/worker';
import { servers } from './servers';

let bundle: Promise<WorkerOptions['workflowBundle']> | undefined;

/** Bundle the workflows once per test file (webpack is the slow part of a worker start). */
export function workflowBundle(): Promise<WorkerOptions['workflowBundle']> {
  bundle ??= bundleWorkflowCode({ workflowsPath: require.resolve('../../src/workflows'), logger: quietLogger });
  return bundle;
}

const quietLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: (m: string) => console.error(m),
};

export async function devServerClient(): Promise<{ client: Client; connection: Connection }> {
  const connection = await Connection.connect({ address: servers().temporal.address });
  return { client: new Client({ connection, namespace: 'default' }), connection };
}

export async function devServerWorkerConnection(): Promise<NativeConnection> {
  return NativeConnection.connect({ address: servers().temporal.address });
}

export interface DevServer {
  client: Client;
  workerConnection: NativeConnection;
}

/** Connect a client and a worker connection to the shared dev server for this test file (beforeAll/afterAll). */
export function useDevServer(): DevServer {
  const dev = {} as DevServer;
  let connection: Connection;
  beforeAll(async () => {
    ({ client: dev.client, connection } = await devServerClient());
    dev.workerConnection = await devServerWorkerConnection();
  });
  afterAll(async () => {
    await connection?.close();
    await dev.workerConnection?.close();
  });
  return dev;
}
