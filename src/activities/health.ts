import { readFile, statfs } from 'node:fs/promises';
import { Context } from '@temporalio/activity';
import { type Config, type Severity, durationMs } from '../config/schema';
import { redact } from '../config/secrets';
import { connectClient } from '../client/connection';
import { openIncident, resolveIncident } from '../client/incidents';
import { withPgClient } from './postgres';
import { redisClient } from './redis';
import { probeHttp } from './http-probe';

/**
 * WF-09 probes. Each check has a stable id (health-<kind>-<name>) that is also its incident's fingerprint:
 * a failing check opens incident/health-..., the same check passing again resolves it.
 */

export interface HealthCheckInput {
  /** Only these check ids (default: all). */
  only?: string[];
}

export interface HealthCheckResult {
  check: string;
  ok: boolean;
  severity: Severity;
  detail: string;
  durationMs: number;
  /** A service whose remediation ladder should start when this check fails. */
  remediate?: string;
}

async function timed(check: string, severity: Severity, fn: () => Promise<string>): Promise<HealthCheckResult> {
  const t0 = Date.now();
  try {
    const detail = await fn();
    return { check, ok: true, severity, detail, durationMs: Date.now() - t0 };
  } catch (err) {
    const e = err as Error & { severity?: Severity };
    return { check, ok: false, severity: e.severity ?? severity, detail: redact(e.message), durationMs: Date.now() - t0 };
  }
}

function failure(message: string, severity?: Severity): Error {
  return Object.assign(new Error(message), severity ? { severity } : {});
}

const slug = (s: string): string => s.replace(/[^a-zA-Z0-9]+/g, '-').replace(/^-|-$/g, '').toLowerCase() || 'root';

export async function runHealthChecks(config: Config, input: HealthCheckInput = {}): Promise<HealthCheckResult[]> {
  const h = config.health;
  if (!h) return [];
  const checks: Array<Promise<HealthCheckResult>> = [];
  for (const probe of h.http) {
    const remediate = probe.service && config.remediation.services[probe.service] ? probe.service : undefined;
    checks.push(
      timed(`health-http-${probe.name}`, probe.severity, async () => {
        const r = await probeHttp(probe.url, durationMs(probe.timeout), { redirect: 'manual', timeout: probe.timeout });
        if (r.status === undefined) throw failure(`${probe.url}: ${r.detail}`);
        if (r.status !== probe.expectStatus) throw failure(`${probe.url}: HTTP ${r.status} (expected ${probe.expectStatus})`);
        if (r.ms > durationMs(probe.slow)) throw failure(`${probe.url}: slow, ${r.ms} ms (> ${probe.slow})`, 'high');
        return r.detail;
      }).then((r) => (remediate ? { ...r, remediate } : r)),
    );
  }
  if (h.databases) {
    config.targets.databases.forEach((db, i) =>
      checks.push(
        timed(`health-postgres-${db.name}`, db.production ? 'critical' : 'high', () =>
          withPgClient(db, `targets.databases[${i}]`, async (c) => {
            await c.query('SELECT 1');
            return 'SELECT 1 ok';
          }),
        ),
      ),
    );
  }
  if (h.redis) {
    config.targets.redis.forEach((r, i) =>
      checks.push(
        timed(`health-redis-${r.name}`, r.production ? 'critical' : 'high', async () => {
          const client = redisClient(r, `targets.redis[${i}]`);
          // The socket's own error (ECONNREFUSED, auth) says more than the command's "Connection is closed".
          let cause: Error | undefined;
          client.on('error', (e: Error) => (cause ??= e));
          try {
            await client.connect();
            const pong = await client.ping();
            return pong;
          } catch (err) {
            throw failure(`${r.host}:${r.port}: ${(cause ?? (err as Error)).message}`);
          } finally {
            client.disconnect();
          }
        }),
      ),
    );
  }
  for (const d of h.disk) {
    checks.push(
      timed(`health-disk-${slug(d.path)}`, 'high', async () => {
        const st = await statfs(d.path);
        const used = ((st.blocks - st.bfree) / (st.blocks - st.bfree + st.bavail)) * 100;
        const pct = `${used.toFixed(1)} % used`;
        if (used >= d.critical) throw failure(`${d.path}: ${pct} (critical ≥ ${d.critical} %)`, 'critical');
        if (used >= d.warn) throw failure(`${d.path}: ${pct} (≥ ${d.warn} %)`, 'high');
        return pct;
      }),
    );
  }
  checks.push(
    timed('health-memory', 'high', async () => {
      const info = await readFile('/proc/meminfo', 'utf8');
      const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(info)?.[1] ?? NaN);
      const used = (1 - kb('MemAvailable') / kb('MemTotal')) * 100;
      const pct = `${used.toFixed(1)} % used`;
      if (used >= h.memory.critical) throw failure(`memory: ${pct} (critical ≥ ${h.memory.critical} %)`, 'critical');
      if (used >= h.memory.warn) throw failure(`memory: ${pct} (≥ ${h.memory.warn} %)`, 'high');
      return pct;
    }),
  );
  const all = await Promise.all(checks);
  return input.only ? all.filter((r) => input.only!.includes(r.check)) : all;
}

export interface RaiseIncidentsInput {
  failing: Array<{ check: string; severity: Severity; detail: string }>;
  recovered: string[];
}

/** Failing checks open (or join) their incident; recovered ones resolve theirs. */
export async function raiseIncidents(config: Config, input: RaiseIncidentsInput): Promise<{ opened: string[]; resolved: string[] }> {
  // Keyed by the health-watch run: a retry of this activity signals the same firing, which the incident counts once.
  const run = Context.current().info.workflowExecution;
  const key = run ? `${run.workflowId}/${run.runId}` : undefined;
  const { client, close } = await connectClient(config);
  try {
    const opened: string[] = [];
    for (const f of input.failing) {
      const r = await openIncident(
        client,
        config,
        { fingerprint: f.check, title: `${f.check} failing`, severity: f.severity, description: f.detail, source: 'health-watch' },
        { summary: f.detail, key },
      );
      opened.push(r.workflowId);
    }
    const resolved: string[] = [];
    for (const check of input.recovered) {
      if (await resolveIncident(client, check, { by: 'health-watch' })) resolved.push(check);
    }
    return { opened, resolved };
  } finally {
    await close();
  }
}
