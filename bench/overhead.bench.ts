import { Worker, bundleWorkflowCode } from '@temporalio/worker';
import { heartbeating } from '../src/activities/process';
import { uniqueName } from '../test/support/servers';
import { useDevServer } from '../test/support/temporal';
import { report } from './support/report';

/**
 * Engine overhead: a 10-step no-op runbook (our Progress timeline, status query, heartbeating activities)
 * end to end against a bare SDK workflow with 10 no-op activities, on the same dev server and worker.
 */
const SMOKE = process.env.BENCH_SMOKE === '1';
const SEQUENTIAL = SMOKE ? 10 : 50;
const CONCURRENT = SMOKE ? 20 : 200;

const dev = useDevServer();

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

test('a 10-step no-op runbook vs a bare SDK workflow with 10 activities', async () => {
  const taskQueue = uniqueName('overhead');
  const workflowBundle = await bundleWorkflowCode({ workflowsPath: require.resolve('./workflows/overhead'), logger: { log: () => undefined, trace: () => undefined, debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined } });
  const worker = await Worker.create({
    connection: dev.workerConnection,
    taskQueue,
    workflowBundle,
    // The runbooks' activities heartbeat through this wrapper; the bare ones do not.
    activities: { noop: heartbeating((step: number) => Promise.resolve(step)) },
  });
  const run = (type: string, id: string): Promise<number> => dev.client.workflow.execute(type, { taskQueue, workflowId: id });
  const results = await worker.runUntil(async () => {
    const latency: Record<string, number[]> = { bareTenSteps: [], runbookTenSteps: [] };
    for (let i = 0; i < SEQUENTIAL; i++) {
      for (const type of ['bareTenSteps', 'runbookTenSteps']) {
        const t = performance.now();
        expect(await run(type, `${type}-${i}`)).toBe(45);
        latency[type]!.push(performance.now() - t);
      }
    }
    const throughput: Record<string, number> = {};
    for (const type of ['bareTenSteps', 'runbookTenSteps']) {
      const t = performance.now();
      await Promise.all(Array.from({ length: CONCURRENT }, (_, i) => run(type, `${type}-burst-${i}`)));
      throughput[type] = performance.now() - t;
    }
    return { latency, throughput };
  });
  const sizes = `${SEQUENTIAL} sequential runs each, then ${CONCURRENT} concurrent; dev server (SQLite) + one worker`;
  report({ bench: 'engine overhead', metric: 'latency p50, 10 steps', unit: 'ms', ours: percentile(results.latency.runbookTenSteps!, 50), baseline: percentile(results.latency.bareTenSteps!, 50), baselineName: 'bare SDK workflow', sizes });
  report({ bench: 'engine overhead', metric: 'latency p99, 10 steps', unit: 'ms', ours: percentile(results.latency.runbookTenSteps!, 99), baseline: percentile(results.latency.bareTenSteps!, 99), baselineName: 'bare SDK workflow', sizes });
  report({ bench: 'engine overhead', metric: `${CONCURRENT} concurrent runs, wall time`, unit: 'ms', ours: results.throughput.runbookTenSteps!, baseline: results.throughput.bareTenSteps!, baselineName: 'bare SDK workflow', sizes });
});
