// Workflows for bench/overhead.bench.ts only (bundled separately, never registered by the product's worker).
import { proxyActivities } from '@temporalio/workflow';
import { QUICK } from '../../src/workflows/activity-options';
import { Progress } from '../../src/workflows/progress';

interface NoopActivities {
  noop(step: number): Promise<number>;
}

const plain = proxyActivities<NoopActivities>({ startToCloseTimeout: '1 minute' });
const runbookStyle = proxyActivities<NoopActivities>(QUICK);

/** A bare SDK workflow: ten activities in a row. */
export async function bareTenSteps(): Promise<number> {
  let sum = 0;
  for (let i = 0; i < 10; i++) sum += await plain.noop(i);
  return sum;
}

/** The same ten no-op steps the way our runbooks run them: Progress timeline, status query, heartbeat options. */
export async function runbookTenSteps(): Promise<number> {
  const progress = new Progress('overhead');
  let sum = 0;
  for (let i = 0; i < 10; i++) sum += await progress.step(`step ${i + 1}`, () => runbookStyle.noop(i), (r) => `returned ${r}`);
  progress.finish('completed');
  return sum;
}
