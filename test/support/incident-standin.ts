import { condition, defineUpdate, setHandler } from '@temporalio/workflow';

/**
 * A stand-in for the incident workflow (issue 5), registered only in the ChatOps test's worker: it speaks the
 * contract the incident buttons rely on — Updates `acknowledge` and `resolve` with `{ by, note? }`.
 */
interface Decision {
  by: string;
  note?: string;
}
const acknowledge = defineUpdate<{ acknowledgedBy: string }, [Decision]>('acknowledge');
const resolve = defineUpdate<{ resolvedBy: string }, [Decision]>('resolve');

export async function incidentStandIn(): Promise<{ acknowledgedBy?: string; resolvedBy?: string }> {
  let acknowledgedBy: string | undefined;
  let resolvedBy: string | undefined;
  setHandler(acknowledge, (d) => ({ acknowledgedBy: (acknowledgedBy ??= d.by) }), {
    validator: (d: Decision) => {
      if (!d.by) throw new Error('by: required');
    },
  });
  setHandler(resolve, (d) => ({ resolvedBy: (resolvedBy = d.by) }), {
    validator: (_d: Decision) => {
      if (!acknowledgedBy) throw new Error('acknowledge it first');
    },
  });
  await condition(() => resolvedBy !== undefined);
  return { acknowledgedBy, resolvedBy };
}
