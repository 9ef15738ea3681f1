import { ApplicationFailure } from '@temporalio/common';
import { type Config, durationMs } from '../config/schema';
import { LABEL } from './deploy';
import { probeHttp } from './http-probe';
import { type DockerEndpoint, dockerOk, endpointFor } from './docker';
import { FAILURES } from '../workflows/failures';

/** RB-03 steps on a service's containers (docker CLI, DOCKER_HOST per host, argument arrays). */

export interface RemediationPlan {
  service: string;
  dockerHost: string;
  containers: string[];
  healthUrl?: string;
  restart: 'auto' | 'approval';
  scaleOut: 'auto' | 'approval';
  scaleTo: number;
  cpuThreshold: number;
  approvalTimeoutMs: number;
}

/**
 * The service's containers: those its config lists, else (a service the deploy runbook manages) the running
 * containers labelled with it, as they are now (deploys and scales change their names).
 */
export async function remediationPlan(config: Config, input: { service: string }): Promise<RemediationPlan> {
  const svc = config.targets.services.find((s) => s.name === input.service);
  if (!svc) throw ApplicationFailure.nonRetryable(`service: unknown service "${input.service}" (not in targets.services)`, FAILURES.BadInput);
  const host = config.targets.dockerHosts.find((h) => h.name === svc.host)!;
  const r = config.remediation.services[svc.name] ?? { restart: 'auto' as const, scaleOut: 'approval' as const, scaleTo: 3, cpuThreshold: 80 };
  const containers = svc.containers.length || !svc.deploy
    ? svc.containers
    : (await dockerOk(host, ['ps', '--filter', `label=${LABEL.service}=${svc.name}`, '--filter', 'status=running', '--format', '{{.Names}}'], 120_000)).split('\n').filter(Boolean).sort();
  return {
    service: svc.name,
    dockerHost: host.dockerHost,
    containers,
    healthUrl: svc.healthUrl,
    ...r,
    approvalTimeoutMs: durationMs(config.remediation.approvalTimeout),
  };
}

/** The highest CPU % among the containers (`docker stats --no-stream`); none given, none read (never the whole engine's). Read-only. */
export async function containerCpu(
  input: { dockerHost: string; containers: string[] },
  /** The config's docker hosts, for the TLS of the one at input.dockerHost. */
  hosts: readonly DockerEndpoint[] = [],
): Promise<{ cpuPercent: number; byContainer: Record<string, number> }> {
  if (!input.containers.length) return { cpuPercent: 0, byContainer: {} };
  const out = await dockerOk(endpointFor(hosts, input.dockerHost), ['stats', '--no-stream', '--format', '{{.Name}} {{.CPUPerc}}', '--', ...input.containers], 120_000);
  const byContainer: Record<string, number> = {};
  for (const line of out.trim().split('\n').filter(Boolean)) {
    const [name = '', pct = '0%'] = line.trim().split(/\s+/);
    byContainer[name] = Number.parseFloat(pct.replace('%', '')) || 0;
  }
  return { cpuPercent: Math.max(0, ...Object.values(byContainer)), byContainer };
}

/** GET the service's health URL; throws (so the activity retries, bounded) until it answers 2xx. */
export async function checkServiceHealth(input: { url?: string }): Promise<{ status: number } | { skipped: true }> {
  if (!input.url) return { skipped: true };
  const r = await probeHttp(input.url, 10_000);
  if (r.status === undefined || r.status < 200 || r.status >= 300) throw new Error(`${input.url}: ${r.status === undefined ? r.detail : `HTTP ${r.status}`}`);
  return { status: r.status };
}
