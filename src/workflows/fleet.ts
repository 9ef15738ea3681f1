import { ApplicationFailure, proxyActivities, sleep } from '@temporalio/workflow';
import type { DeploySettings, DockerHostActivities, Instance, UpstreamServer } from '../activities';
import type { Progress } from './progress';
import { FAILURES, NON_RETRYABLE } from './failures';

/**
 * A service's instances on its docker host and the nginx upstream in front of them, as the deploy and scale
 * workflows change them. Every docker/nginx step goes to the host's own task queue (`docker:<host>`), where
 * that host's worker runs. Invariant kept by every method: the upstream only ever lists instances that passed
 * their health gate, and an instance is stopped only after the upstream stopped listing it and it drained.
 */
export class Fleet {
  /** Labelled containers of the service, as last read. */
  instances: Instance[] = [];
  /** What nginx routes to, as last written (or read). */
  upstream: UpstreamServer[] = [];
  private readonly quick: DockerHostActivities;
  private readonly gate: DockerHostActivities;

  constructor(
    readonly settings: DeploySettings,
    private readonly deployId: string,
    private readonly progress: Progress,
  ) {
    // A host worker killed mid-step is noticed by the heartbeat timeout and the step runs again on its restart.
    this.quick = proxyActivities<DockerHostActivities>({
      taskQueue: settings.taskQueue,
      startToCloseTimeout: '5 minutes',
      heartbeatTimeout: '6 seconds',
      retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 20, nonRetryableErrorTypes: NON_RETRYABLE.fleetStep },
    });
    this.gate = proxyActivities<DockerHostActivities>({
      taskQueue: settings.taskQueue,
      startToCloseTimeout: `${Math.ceil(settings.health.timeoutMs / 1000) + 120} seconds`,
      heartbeatTimeout: '6 seconds',
      retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 20, nonRetryableErrorTypes: NON_RETRYABLE.healthGate },
    });
  }

  get service(): string {
    return this.settings.service;
  }

  async refresh(): Promise<void> {
    [this.instances, this.upstream] = await Promise.all([
      this.quick.listInstances({ service: this.service }),
      this.quick.readUpstream({ service: this.service }),
    ]);
  }

  /** Running instances nginx routes to. */
  serving(): Instance[] {
    const ports = new Set(this.upstream.map((s) => s.port));
    return this.instances.filter((i) => ports.has(i.port) && i.state === 'running');
  }

  /** The version the upstream serves now (undefined on a first deploy; a mix means an earlier run was cut short). */
  currentVersions(): string[] {
    return [...new Set(this.serving().map((i) => i.version))];
  }

  private freePort(taken: Set<number>): number {
    for (let p = this.settings.ports.from; p <= this.settings.ports.to; p++) if (!taken.has(p)) return p;
    throw ApplicationFailure.nonRetryable(
      `no free port for ${this.service} in ${this.settings.ports.from}-${this.settings.ports.to} (a rolling deploy needs one spare, blue-green one per instance)`,
      FAILURES.NoFreePort,
    );
  }

  /** Start `count` instances of `image` on free ports and wait until all pass the gate. A failed gate removes them all and throws. */
  async startGated(image: string, count: number, health: DeploySettings['health']): Promise<Instance[]> {
    const taken = new Set(this.instances.map((i) => i.port));
    const ports: number[] = [];
    for (let k = 0; k < count; k++) {
      const p = this.freePort(taken);
      taken.add(p);
      ports.push(p);
    }
    const started: Instance[] = [];
    try {
      await this.progress.step(
        `start ${count} × ${image}`,
        async () => {
          for (const port of ports) {
            const inst = await this.quick.startInstance({ service: this.service, image, port, deployId: this.deployId });
            started.push(inst);
            this.instances = [...this.instances.filter((i) => i.name !== inst.name), inst];
          }
        },
        () => `ports ${ports.join(', ')}`,
      );
      await this.progress.step(
        `health gate ${ports.join(', ')}`,
        () => Promise.all(started.map((i) => this.gate.awaitHealthy({ service: this.service, name: i.name, port: i.port, ...health }))),
        (r) => `healthy after ${Math.max(...r.map((x) => x.healthyAfterMs))} ms`,
      );
    } catch (err) {
      // Never leave a failed instance behind (nothing routes to it yet). One cut mid-start is removed by removeUnrouted.
      await this.remove(started.map((i) => i.name), 'remove failed instances');
      throw err;
    }
    return started;
  }

  /** Point nginx at exactly `servers` (graceful reload), then give in-flight requests to dropped ones `drainMs`. */
  async route(servers: UpstreamServer[], drainMs: number, label = 'switch upstream'): Promise<void> {
    const dropped = this.upstream.some((s) => !servers.some((n) => n.port === s.port));
    await this.progress.step(label, () => this.quick.setUpstream({ service: this.service, servers }), () =>
      servers.map((s) => `${s.port}${s.weight ? `×${s.weight}` : ''}`).join(', '),
    );
    this.upstream = servers;
    if (dropped && drainMs > 0) await this.progress.step('drain', () => sleep(drainMs), () => `${drainMs} ms`);
  }

  async remove(names: string[], label = 'stop old instances'): Promise<void> {
    if (!names.length) return;
    await this.progress.step(label, () => this.quick.removeInstances({ service: this.service, names, stopSeconds: 10 }), (r) => r.removed.join(', ') || 'none left');
    this.instances = this.instances.filter((i) => !names.includes(i.name));
  }

  /** Remove every labelled container nginx does not route to (leftovers of failed or cut runs). */
  async removeUnrouted(): Promise<void> {
    await this.refresh();
    const routed = new Set(this.upstream.map((s) => s.port));
    await this.remove(this.instances.filter((i) => !routed.has(i.port)).map((i) => i.name), 'remove unrouted containers');
  }

  /**
   * Serve exactly `count` instances of `image`: reuse the running, healthy ones of that image, start and gate
   * the rest, switch the upstream to them, drain, remove everything else. Blue-green, rollback and scale all
   * come down to this.
   */
  async converge(image: string, count: number, drainMs: number, health = this.settings.health): Promise<Instance[]> {
    await this.refresh();
    // Only instances nginx already routes to passed a gate; anything else of that image is started afresh.
    const reusable = this.serving().filter((i) => i.version === image && i.health !== 'unhealthy').slice(0, count);
    const fresh = reusable.length < count ? await this.startGated(image, count - reusable.length, health) : [];
    const target = [...reusable, ...fresh];
    await this.route(target.map((i) => ({ port: i.port })), drainMs);
    const keep = new Set(target.map((i) => i.name));
    await this.remove(this.instances.filter((i) => !keep.has(i.name)).map((i) => i.name));
    return target;
  }

  async pruneImages(image: string, previous: string | undefined): Promise<void> {
    const repository = image.split('@')[0]!.replace(/:[^/:]+$/, '');
    await this.progress.step('prune images', () => this.quick.pruneImages({ service: this.service, repository, current: image, ...(previous ? { previous } : {}), keep: this.settings.keepImages }), (r) =>
      `kept ${r.kept.length}, removed ${r.removed.join(', ') || 'none'}`,
    );
  }

  watch(port: number, path: string, durationMs: number): ReturnType<DockerHostActivities['watchInstance']> {
    return this.gate.watchInstance({ service: this.service, port, path, durationMs });
  }
}
