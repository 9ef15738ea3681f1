import {
  ApplicationFailure,
  CancellationScope,
  executeChild,
  isCancellation,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { DeploySettings, Instance, RunbookActivities } from '../activities';
import type { DeployInput, ScaleInput } from '../config/runbooks';
import { DURATION_HINT, parseDuration } from '../config/duration';
import { QUICK } from './activity-options';
import { type RollbackRequest, type RunbookStatus, rollbackUpdate, statusQuery } from './definitions';
import { Fleet } from './fleet';
import { countEvent } from './observe';
import { Progress, errorMessage } from './progress';
import { FAILURES } from './failures';
import { backup } from './backup';

const main = proxyActivities<RunbookActivities>(QUICK);

export interface DeployStatus extends RunbookStatus {
  service: string;
  strategy?: string;
  from?: string;
  to?: string;
  instances: Array<Pick<Instance, 'name' | 'port' | 'version' | 'state' | 'health'>>;
  upstream: Array<{ port: number; weight?: number }>;
}

export type DeployResult =
  | { outcome: 'deployed'; service: string; from?: string; to: string; strategy: string; instances: string[]; backups: string[] }
  | { outcome: 'scaled'; service: string; version: string; from: number; to: number; instances: string[] };

/** A duration parameter (the input schema has checked it): the one parser, its refusal a BadInput naming the field. */
function parseMs(text: string, field: string): number {
  const ms = parseDuration(text);
  if (ms === undefined) throw ApplicationFailure.nonRetryable(`${field}: ${DURATION_HINT} (got ${JSON.stringify(text)})`, FAILURES.BadInput);
  return ms;
}

function statusOf(progress: Progress, fleet: Fleet | undefined, extra: Partial<DeployStatus> & { service: string }): DeployStatus {
  return {
    ...progress.status(),
    instances: (fleet?.instances ?? []).map((i) => ({ name: i.name, port: i.port, version: i.version, state: i.state, health: i.health })),
    upstream: fleet?.upstream ?? [],
    ...extra,
  };
}

async function notify(subject: string, text: string, key: string): Promise<void> {
  // Best effort: a notification that cannot be sent must not hide the deploy's own outcome.
  await main.sendEmail({ idempotencyKey: key, subject, text }).catch(() => undefined);
}

/**
 * WF-11 / WF-13: put `image` in service of `service` without a failed request. Every new instance passes a
 * health gate (Docker HEALTHCHECK + HTTP probe held for minHealthy) before nginx routes to it; every old one
 * leaves the upstream and drains before it stops. Any failed gate, a canary over its error or latency budget,
 * or an operator's `rollback` update puts the previous version back (saga) and fails the run with the reason.
 * Workflow id `deploy/<service>` (shared with `scale`): one change per service at a time.
 */
export async function deploy(input: DeployInput): Promise<DeployResult> {
  const progress = new Progress('deploy');
  const info = workflowInfo();
  const deployId = info.runId.replace(/-/g, '').slice(-8);
  // Set once the plan is read; the status query reads them before that.
  // eslint-disable-next-line prefer-const
  let fleet: Fleet | undefined;
  // eslint-disable-next-line prefer-const
  let from: string | undefined;
  let rollbackRequest: RollbackRequest | undefined;
  let finished = false;
  setHandler(statusQuery, () => statusOf(progress, fleet, { service: input.service, strategy: input.strategy, from, to: input.image }));
  setHandler(
    rollbackUpdate,
    (req) => {
      rollbackRequest = { by: req.by.trim(), ...(req.reason ? { reason: req.reason } : {}) };
      return { accepted: true, by: rollbackRequest.by };
    },
    {
      validator: (req: RollbackRequest) => {
        if (!req.by?.trim()) throw new Error('by: who asks for the rollback must be named');
        if (finished) throw new Error('this deploy is already over');
        if (rollbackRequest) throw new Error(`a rollback was already requested by ${rollbackRequest.by}`);
      },
    },
  );
  const checkRollback = (): void => {
    if (rollbackRequest) {
      throw ApplicationFailure.nonRetryable(`rollback requested by ${rollbackRequest.by}${rollbackRequest.reason ? `: ${rollbackRequest.reason}` : ''}`, FAILURES.RollbackRequested);
    }
  };

  const settings: DeploySettings = await progress.step('plan', () => main.deploySettings({ service: input.service }), (s) =>
    `host ${s.host}, ${s.instances} instance(s) by default, ports ${s.ports.from}-${s.ports.to}`,
  );
  const f = new Fleet(settings, deployId, progress);
  fleet = f;
  const health = {
    ...settings.health,
    ...(input.healthPath ? { path: input.healthPath } : {}),
    ...(input.expectStatus ? { expectStatus: input.expectStatus } : {}),
    ...(input.minHealthy ? { minHealthyMs: parseMs(input.minHealthy, 'minHealthy') } : {}),
  };
  const drainMs = input.drain ? parseMs(input.drain, 'drain') : settings.drainMs;

  await progress.step('inspect', () => f.refresh(), () => `${f.serving().length} serving: ${f.currentVersions().join(', ') || 'nothing deployed yet'}`);
  // Normally one version serves. After a run that was terminated mid-way (a canary left behind) several may:
  // the one most instances run is "the previous version"; every old instance is replaced all the same.
  const old = f.serving();
  const byCount = f.currentVersions().map((v) => ({ v, n: old.filter((i) => i.version === v).length })).sort((x, y) => y.n - x.n);
  from = byCount[0]?.v;
  const count = byCount[0]?.n || settings.instances;

  const backups: string[] = [];
  if (input.backup) {
    for (const db of settings.databases) {
      await progress.step(`backup ${db}`, () =>
        executeChild(backup, { workflowId: `backup/${db}/pre-deploy-${input.service}-${deployId}`, args: [{ target: db, kind: 'postgres', prune: false, reason: `before deploying ${input.image}` }] }),
      );
      backups.push(db);
    }
  }

  try {
    if (input.strategy === 'rolling') {
      const fresh: Instance[] = [];
      for (let k = 0; k < count; k++) {
        checkRollback();
        const [n] = await f.startGated(input.image, 1, health);
        fresh.push(n!);
        const victim = old[k];
        await f.route([...old.slice(k + 1), ...fresh].map((i) => ({ port: i.port })), drainMs);
        if (victim) await f.remove([victim.name], `stop ${victim.name}`);
      }
      const leftover = old.slice(count);
      if (leftover.length) {
        await f.route(fresh.map((i) => ({ port: i.port })), drainMs);
        await f.remove(leftover.map((i) => i.name), 'stop leftover instances');
      }
    } else if (input.strategy === 'blue-green') {
      const green = await f.startGated(input.image, count, health);
      checkRollback();
      await f.route(green.map((i) => ({ port: i.port })), drainMs, 'switch upstream to green');
      await f.remove(old.map((i) => i.name), 'stop blue');
    } else {
      const [canary] = await f.startGated(input.image, 1, health);
      if (old.length) {
        const k = old.length;
        await f.route([...old.map((i) => ({ port: i.port, weight: 100 - input.canaryPercent })), { port: canary!.port, weight: input.canaryPercent * k }], drainMs, `route ${input.canaryPercent} % to canary`);
        const windowMs = parseMs(input.canaryWindow, 'canaryWindow');
        let requests = 0;
        let errors = 0;
        let p95 = 0;
        await progress.step(
          'watch canary',
          async () => {
            for (let elapsed = 0; elapsed < windowMs; ) {
              checkRollback();
              const chunk = Math.min(5000, windowMs - elapsed);
              const r = await f.watch(canary!.port, health.path, chunk);
              requests += r.requests;
              errors += r.errors;
              p95 = Math.max(p95, r.p95Ms);
              elapsed += chunk;
              const errorPercent = requests ? (100 * errors) / requests : 100;
              if (errorPercent > input.maxErrorPercent) {
                throw ApplicationFailure.nonRetryable(`canary error rate ${errorPercent.toFixed(1)} % > ${input.maxErrorPercent} % (${errors}/${requests})`, FAILURES.CanaryFailed);
              }
              if (p95 > input.maxP95Ms) throw ApplicationFailure.nonRetryable(`canary p95 latency ${p95} ms > ${input.maxP95Ms} ms`, FAILURES.CanaryFailed);
            }
            checkRollback();
          },
          () => `${requests} probes, ${errors} errors, p95 ${p95} ms`,
        );
      }
      await f.converge(input.image, count, drainMs, health);
    }
  } catch (err) {
    const reason = errorMessage(err);
    const rolledBack = await CancellationScope.nonCancellable(async () => {
      try {
        if (from) {
          countEvent('rollback'); // runbook_rollbacks_total: the previous version is being put back
          await f.converge(from, count, drainMs);
          await f.removeUnrouted();
          return `rolled back to ${from}`;
        }
        await f.removeUnrouted();
        return 'nothing was deployed before; the new instances were removed';
      } catch (rbErr) {
        return `ROLLBACK FAILED: ${errorMessage(rbErr)}`;
      } finally {
        finished = true;
        progress.finish('failed');
      }
    });
    await CancellationScope.nonCancellable(() =>
      notify(
        `[runbook] deploy of ${input.service} FAILED: ${rolledBack}`,
        [`Deploying ${input.image} to ${input.service} (${input.strategy}) failed: ${reason}`, ``, `Outcome: ${rolledBack}.`, `Run: ${info.workflowId} / ${info.runId}`].join('\n'),
        `${info.workflowId}/${info.runId}/deploy-failed`,
      ),
    );
    if (isCancellation(err)) throw err;
    throw ApplicationFailure.nonRetryable(`deploy of ${input.image} failed (${reason}); ${rolledBack}`, FAILURES.DeployFailed);
  }
  finished = true;
  await f.pruneImages(input.image, from);
  await f.removeUnrouted();
  progress.finish('completed');
  return {
    outcome: 'deployed',
    service: input.service,
    ...(from ? { from } : {}),
    to: input.image,
    strategy: input.strategy,
    instances: f.serving().map((i) => i.name),
    backups,
  };
}

/**
 * RB-03 / WF-26: serve `instances` instances of the version running now. Up: new ones pass the health gate
 * before nginx routes to them. Down: the removed ones leave the upstream and drain before they stop (the seed's
 * scale-down killed whichever container compose picked, mid-request). Shares `deploy/<service>` as workflow id.
 */
export async function scale(input: ScaleInput): Promise<DeployResult> {
  const progress = new Progress('scale');
  let fleet: Fleet | undefined;
  setHandler(statusQuery, () => statusOf(progress, fleet, { service: input.service }));
  try {
    const settings = await progress.step('plan', () => main.deploySettings({ service: input.service }));
    const f = new Fleet(settings, `scale-${workflowInfo().runId.replace(/-/g, '').slice(-8)}`, progress);
    fleet = f;
    await progress.step('inspect', () => f.refresh(), () => `${f.serving().length} serving`);
    const serving = f.serving();
    const versions = f.currentVersions();
    if (!serving.length) throw ApplicationFailure.nonRetryable(`${input.service} has no instance in service: deploy it first`, FAILURES.NothingDeployed);
    if (versions.length > 1) throw ApplicationFailure.nonRetryable(`${input.service} serves several versions (${versions.join(', ')}): deploy one first`, FAILURES.MixedVersions);
    const version = versions[0]!;
    if (input.instances > serving.length) {
      const added = await f.startGated(version, input.instances - serving.length, settings.health);
      await f.route([...serving, ...added].map((i) => ({ port: i.port })), 0, 'add to upstream');
    } else if (input.instances < serving.length) {
      const keep = serving.slice(0, input.instances);
      await f.route(keep.map((i) => ({ port: i.port })), settings.drainMs, 'remove from upstream');
      await f.remove(serving.slice(input.instances).map((i) => i.name), 'stop surplus instances');
    }
    await f.removeUnrouted();
    progress.finish('completed');
    return { outcome: 'scaled', service: input.service, version, from: serving.length, to: input.instances, instances: f.serving().map((i) => i.name) };
  } catch (err) {
    progress.finish('failed');
    throw err;
  }
}
