import { NativeConnection, Worker } from '@temporalio/worker';
import { createDockerHostActivities, hostTaskQueueName } from '../activities';
import { type Config } from '../config/schema';
import { dataConverterOptions } from '../config/codec';
import { connectionOptions } from '../config/temporal';
import { crashAfterInterceptor } from './faults';
import { type RunbookMetrics, createRunbookMetrics } from './metrics';

export interface DockerHostWorkerOptions {
  config: Config;
  /** A name from targets.dockerHosts: this worker runs that host's docker and nginx steps. */
  host: string;
  connection?: NativeConnection;
  identity?: string;
  /** Activity durations go here (main.ts serves them on /metrics); default: a registry of its own. */
  metrics?: RunbookMetrics;
}

/**
 * The worker of one docker host: polls `docker:<host>` and runs only that host's activities (no workflows),
 * on the machine where its engine and nginx are. The deploy and scale workflows route their steps here.
 */
export async function createDockerHostWorker(opts: DockerHostWorkerOptions): Promise<Worker> {
  if (!opts.config.targets.dockerHosts.some((h) => h.name === opts.host)) {
    const known = opts.config.targets.dockerHosts.map((h) => h.name);
    throw new Error(`--docker-host: unknown docker host "${opts.host}" (known: ${known.join(', ') || 'none'})`);
  }
  const connection = opts.connection ?? (await NativeConnection.connect(connectionOptions(opts.config)));
  const crash = crashAfterInterceptor();
  const metrics = opts.metrics ?? createRunbookMetrics();
  return Worker.create({
    interceptors: { activity: [metrics.activityInterceptor, ...(crash ? [crash] : [])] },
    // Activity inputs and results are payloads like any other: the same codec as the main worker and clients.
    ...dataConverterOptions(opts.config),
    connection,
    namespace: opts.config.temporal.namespace,
    taskQueue: hostTaskQueueName(opts.host),
    activities: createDockerHostActivities({ config: opts.config, host: opts.host }),
    ...(opts.identity ? { identity: opts.identity } : {}),
    maxConcurrentActivityTaskExecutions: 16,
  });
}
