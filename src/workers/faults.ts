import { type ActivityInterceptorsFactory } from '@temporalio/worker';

/**
 * Fault injection for crash tests, off unless RUNBOOKS_CRASH_AFTER is set: the worker SIGKILLs itself right
 * after the named activity did its work and before its result reaches the server. That is the worst step
 * boundary for a runbook: the side effect happened, Temporal does not know it, and the retry must cope.
 * `RUNBOOKS_CRASH_AFTER=swapDatabases` (first call) or `swapDatabases:2` (second call).
 */
export function crashAfterInterceptor(spec = process.env.RUNBOOKS_CRASH_AFTER): ActivityInterceptorsFactory | undefined {
  if (!spec) return undefined;
  const [activityType, nth = '1'] = spec.split(':');
  let seen = 0;
  return (ctx) => ({
    inbound: {
      async execute(input, next) {
        const result = await next(input);
        if (ctx.info.activityType === activityType && ++seen === Number(nth)) {
          process.stderr.write(`RUNBOOKS_CRASH_AFTER: killing worker ${process.pid} after ${activityType}\n`);
          process.kill(process.pid, 'SIGKILL');
        }
        return result;
      },
    },
  });
}
