import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from '../activities';
import { dataConverterOptions } from '../config/codec';
import { type Config } from '../config/schema';
import { connectionOptions } from '../config/temporal';
import { crashAfterInterceptor } from './faults';
import { WORKFLOW_INTERCEPTOR_MODULES } from './bundle';
import { type RunbookMetrics, createRunbookMetrics } from './metrics';

export interface RunbookWorkerOptions {
  config: Config;
  /** Reuse a connection (tests share one); otherwise one is made from config.temporal. */
  connection?: NativeConnection;
  taskQueue?: string;
  /** A prebuilt bundle (bundleWorkflowCode) skips the webpack step at start. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  identity?: string;
  /** Where run/step/activity metrics go (main.ts serves them on /metrics); default: a registry of its own. */
  metrics?: RunbookMetrics;
  /** Payload codecs (e.g. encryption) shared with the clients that start runbooks. */
  dataConverter?: WorkerOptions['dataConverter'];
}

export async function connectWorker(config: Config): Promise<NativeConnection> {
  return NativeConnection.connect(connectionOptions(config));
}

/** The worker that runs every runbook workflow and the activities for the systems in the config. */
export async function createRunbookWorker(opts: RunbookWorkerOptions): Promise<Worker> {
  const connection = opts.connection ?? (await connectWorker(opts.config));
  const crash = crashAfterInterceptor();
  const metrics = opts.metrics ?? createRunbookMetrics();
  return Worker.create({
    interceptors: {
      activity: [metrics.activityInterceptor, ...(crash ? [crash] : [])],
      // Only when bundling at start; a prebuilt bundle (npm run build) has them built in.
      ...(opts.workflowBundle ? {} : { workflowModules: WORKFLOW_INTERCEPTOR_MODULES }),
    },
    sinks: metrics.sinks,
    connection,
    namespace: opts.config.temporal.namespace,
    taskQueue: opts.taskQueue ?? opts.config.temporal.taskQueue,
    activities: createActivities({ config: opts.config }),
    // temporal.encryption: every payload this worker sends is AES-256-GCM encrypted (src/config/codec.ts);
    // an explicit dataConverter (a test's own codec) takes its place.
    ...(opts.dataConverter ? { dataConverter: opts.dataConverter } : dataConverterOptions(opts.config)),
    ...(opts.workflowBundle ? { workflowBundle: opts.workflowBundle } : { workflowsPath: require.resolve('../workflows') }),
    ...(opts.identity ? { identity: opts.identity } : {}),
    maxConcurrentActivityTaskExecutions: opts.config.temporal.maxConcurrentActivities,
  });
}
