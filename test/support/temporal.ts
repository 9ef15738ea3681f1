import { Client, Connection, type WorkflowHandle, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure, defaultPayloadConverter } from '@temporalio/common';
import { NativeConnection, type WorkerOptions, bundleWorkflowCode } from '@temporalio/worker';
import { ENCODING_FAILURE_CONVERTER_PATH, EncryptionCodec, parseCodecKey } from '../../src/config/codec';
import { TEST_CODEC_KEY_ID, servers } from './servers';

/** The codec of every test client and of workers made from testConfig() (temporal.encryption). */
export function testCodec(): EncryptionCodec {
  return new EncryptionCodec([parseCodecKey(TEST_CODEC_KEY_ID, servers().codecKey, 'test codec key')]);
}

let bundle: Promise<WorkerOptions['workflowBundle']> | undefined;

/**
 * Bundle the workflows once per test file (webpack is the slow part of a worker start). With the encoding
 * failure converter, as the production bundle for temporal.encryption (which testConfig turns on) has it.
 */
export function workflowBundle(): Promise<WorkerOptions['workflowBundle']> {
  bundle ??= bundleWorkflowCode({ workflowsPath: require.resolve('../../src/workflows'), failureConverterPath: ENCODING_FAILURE_CONVERTER_PATH, logger: quietLogger });
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
  return { client: new Client({ connection, namespace: 'default', dataConverter: { payloadCodecs: [testCodec()] } }), connection };
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

/** The pid a running activity last reported in its heartbeat (our child-process activities do), if any. */
export async function heartbeatPid(handle: WorkflowHandle, activityType?: string): Promise<number | undefined> {
  const pending = (await handle.describe()).raw.pendingActivities ?? [];
  const activity = activityType ? pending.find((a) => a.activityType?.name === activityType) : pending[0];
  const payload = activity?.heartbeatDetails?.payloads?.[0];
  if (!payload) return undefined;
  const [decoded] = await testCodec().decode([payload]);
  return defaultPayloadConverter.fromPayload<{ pid?: number }>(decoded!).pid;
}

/** The message with which an Update's validator (or handler) refused it; fails the test if it was accepted. */
export async function updateRefusal(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowUpdateFailedError);
  const cause = (err as WorkflowUpdateFailedError).cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  return cause!.message;
}
