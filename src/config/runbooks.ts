import { z } from 'zod';
import { type Config, SEVERITIES } from './schema';
import { DURATION_HINT, parseDuration } from './duration';

/**
 * The runbook catalogue: one zod input schema per runbook, shared by the CLI, ChatOps and (as types)
 * the workflows. Parameters arrive as strings from `--param k=v` or a chat command; schemas coerce them.
 */

const targetName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'must be a target name from the config');
const boolParam = z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')], { error: 'must be true or false' });

export const backupInputSchema = z
  .object({
    target: targetName,
    kind: z.enum(['postgres', 'redis']),
    reason: z.string().max(500).optional(),
    /** Apply the retention policy after a successful backup. */
    prune: boolParam.default(true),
  })
  .strict();
export type BackupInput = z.output<typeof backupInputSchema>;

export const restoreInputSchema = z
  .object({
    target: targetName,
    /** A backup id from `runbook backups <target>` (a backup's `<target>-<stamp>-<run>` or a restore's safety snapshot `<target>-prerestore-<id>`), or "latest". */
    backup: z
      .string()
      .regex(/^(latest|[a-z0-9][a-z0-9_-]*-\d{8}T\d{6}Z-[0-9a-z-]+|[a-z0-9][a-z0-9_-]*-prerestore-[a-z0-9]{4,16})$/, 'must be "latest" or a backup id')
      .default('latest'),
    dryRun: boolParam.default(false),
    reason: z.string().min(3, 'say why (at least 3 characters)').max(500),
    requestedBy: z.string().max(100).optional(),
  })
  .strict();
export type RestoreInput = z.output<typeof restoreInputSchema>;

export const verifyBackupInputSchema = z.object({ target: targetName }).strict();
export type VerifyBackupInput = z.output<typeof verifyBackupInputSchema>;

export const rotateSecretsInputSchema = z
  .object({
    /** A secret set from rotation.sets. */
    set: targetName,
    reason: z.string().max(500).optional(),
  })
  .strict();
export type RotateSecretsInput = z.output<typeof rotateSecretsInputSchema>;

/** Refuse a secret set name the config does not have. */
function requireSecretSet(params: Record<string, unknown>, config: Config): Record<string, unknown> {
  if (typeof params.set === 'string' && !config.rotation.sets.some((s) => s.name === params.set)) {
    const known = config.rotation.sets.map((s) => s.name);
    throw new InputError([`set: unknown secret set "${params.set}" (known: ${known.join(', ') || 'none'})`]);
  }
  return params;
}

// --- deploy / scale (issue 6) ---
/**
 * An image reference with an explicit tag or digest (no implicit "latest": a deploy must say what it deploys,
 * and a rollback must be able to name what ran before): [registry[:port]/]path[:tag][@sha256:digest].
 */
export const IMAGE_REF =
  /^(?:[a-z0-9]+(?:[.-][a-z0-9]+)*(?::\d+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;
const imageRef = z
  .string()
  .max(255)
  .regex(IMAGE_REF, 'must be an image reference like registry.example.com/shop/web:1.4.2 or name@sha256:<64 hex>')
  .refine((s) => /:[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(s.split('/').pop() ?? '') || s.includes('@sha256:'), 'must name a tag or a digest (no implicit "latest")');
const durationParam = z.string().refine((t) => parseDuration(t) !== undefined, DURATION_HINT);
const intParam = (min: number, max: number) => z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(min).max(max);

export const deployInputSchema = z
  .object({
    service: targetName,
    image: imageRef,
    strategy: z.enum(['rolling', 'blue-green', 'canary']).default('rolling'),
    /** Health gate overrides (defaults: the service's deploy.health). */
    healthPath: z.string().startsWith('/', 'must start with "/"').max(200).optional(),
    expectStatus: intParam(100, 599).optional(),
    minHealthy: durationParam.optional(),
    /** Blue-green: how long blue keeps serving in-flight requests after the switch (default: the service's deploy.drain). */
    drain: durationParam.optional(),
    /** Canary: the new version's share of requests, in percent, and how long it is watched. */
    canaryPercent: intParam(1, 99).default(10),
    canaryWindow: durationParam.default('30s'),
    /** Canary gate: the most errors (5xx or no answer) in percent, and the slowest p95 latency allowed. */
    maxErrorPercent: intParam(0, 100).default(5),
    maxP95Ms: intParam(1, 600_000).default(2000),
    /** Back up the service's databases (targets.databases[].services) before anything changes. */
    backup: boolParam.default(false),
    requestedBy: z.string().max(100).optional(),
  })
  .strict();
export type DeployInput = z.output<typeof deployInputSchema>;

export const scaleInputSchema = z
  .object({
    service: targetName,
    instances: intParam(1, 50),
    requestedBy: z.string().max(100).optional(),
    reason: z.string().max(500).optional(),
  })
  .strict();
export type ScaleInput = z.output<typeof scaleInputSchema>;

/** Refuse a service that is not in the config or has no deploy settings. */
function requireDeployable(params: Record<string, unknown>, config: Config): Record<string, unknown> {
  if (typeof params.service === 'string') {
    const svc = config.targets.services.find((s) => s.name === params.service);
    const known = config.targets.services.filter((s) => s.deploy).map((s) => s.name);
    if (!svc || !svc.deploy) throw new InputError([`service: unknown deployable service "${params.service}" (known: ${known.join(', ') || 'none'})`]);
  }
  return params;
}
// --- end deploy / scale ---

export const incidentInputSchema = z
  .object({
    title: z.string().min(3, 'say what is wrong (at least 3 characters)').max(200),
    severity: z.enum(SEVERITIES).default('high'),
    description: z.string().max(2000).optional(),
    /** Same fingerprint = same incident (a second open joins the running one). Default: manual-<title>. */
    fingerprint: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, 'must be letters, digits, ".", "_" or "-"').optional(),
    /** A named escalation policy instead of the severity's. */
    policy: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'must be a policy name from escalation.policies').optional(),
    source: z.literal('manual').default('manual'),
    requestedBy: z.string().max(100).optional(),
  })
  .strict();
export type ManualIncidentInput = z.output<typeof incidentInputSchema>;

export function manualFingerprint(input: { title: string; fingerprint?: string }): string {
  return input.fingerprint ?? `manual-${input.title.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 60) || 'incident'}`;
}

export const healthWatchInputSchema = z
  .object({
    /** Comma-separated check ids (health-http-api, health-redis-cache, ...); default all. */
    only: z
      .string()
      .regex(/^health-[a-z0-9-]+(,health-[a-z0-9-]+)*$/, 'must be check ids like health-redis-cache, comma-separated')
      .transform((v) => v.split(','))
      .optional(),
  })
  .strict();

export const remediateInputSchema = z
  .object({
    service: targetName,
    reason: z.string().min(3, 'say why (at least 3 characters)').max(500),
    requestedBy: z.string().max(100).optional(),
  })
  .strict();

/** Refuse a target name that is not a PostgreSQL database in the config. */
function requireDatabase(params: Record<string, unknown>, config: Config): Record<string, unknown> {
  if (typeof params.target === 'string' && !config.targets.databases.some((d) => d.name === params.target)) {
    const known = config.targets.databases.map((d) => d.name);
    throw new InputError([`target: unknown database "${params.target}" (known: ${known.join(', ') || 'none'})`]);
  }
  return params;
}

export class InputError extends Error {
  constructor(readonly issues: string[]) {
    super(issues.join('; '));
    this.name = 'InputError';
  }
}

export interface RunbookDefinition<S extends z.ZodType = z.ZodType> {
  name: string;
  workflowType: string;
  summary: string;
  input: S;
  /** Fill in what the operator need not type, from the config (e.g. what kind of target a name is). */
  complete?(params: Record<string, unknown>, config: Config): Record<string, unknown>;
  /** Readable workflow id carrying the business key. */
  workflowId(input: z.output<S>, now: Date): string;
  target(input: z.output<S>): string;
}

function define<S extends z.ZodType>(def: RunbookDefinition<S>): RunbookDefinition<S> {
  return def;
}

/** 2026-11-24T02:00:00Z: second precision keeps ids short and still readable. */
export function isoSecond(d: Date): string {
  return `${d.toISOString().slice(0, 19)}Z`;
}

export const runbooks = {
  backup: define({
    name: 'backup',
    workflowType: 'backup',
    summary: 'Back up a PostgreSQL database (pg_dump -Fc) or a Redis server (RDB), then apply retention',
    input: backupInputSchema,
    complete(params, config) {
      if (params.kind !== undefined || typeof params.target !== 'string') return params;
      if (config.targets.databases.some((d) => d.name === params.target)) return { ...params, kind: 'postgres' };
      if (config.targets.redis.some((r) => r.name === params.target)) return { ...params, kind: 'redis' };
      const known = [...config.targets.databases, ...config.targets.redis].map((t) => t.name);
      throw new InputError([`target: unknown target "${params.target}" (known: ${known.join(', ') || 'none'})`]);
    },
    workflowId: (input, now) => `backup/${input.target}/${isoSecond(now)}`,
    target: (input) => input.target,
  }),
  restore: define({
    name: 'restore',
    workflowType: 'restoreDatabase',
    summary: 'RB-01: restore a PostgreSQL database from a backup, aside first, then swap (approval for production)',
    input: restoreInputSchema,
    complete: requireDatabase,
    // One restore per database at a time: a second start is refused while this id runs.
    workflowId: (input) => `restore/${input.target}`,
    target: (input) => input.target,
  }),
  'verify-backup': define({
    name: 'verify-backup',
    workflowType: 'verifyBackup',
    summary: 'WF-05 drill: restore the latest backup into a scratch database, run the checks, measure the restore time',
    input: verifyBackupInputSchema,
    complete: requireDatabase,
    workflowId: (input, now) => `verify-backup/${input.target}/${isoSecond(now)}`,
    target: (input) => input.target,
  }),
  'rotate-secrets': define({
    name: 'rotate-secrets',
    workflowType: 'rotateSecrets',
    summary: 'RB-02: rotate a secret set (PostgreSQL role, Redis ACL user or JWT key) in .env files and GitHub, with no authentication failure',
    input: rotateSecretsInputSchema,
    complete: requireSecretSet,
    // One rotation per set at a time: a second start is refused while this id runs.
    workflowId: (input) => `rotate/${input.set}`,
    target: (input) => input.set,
  }),
  // --- deploy / scale (issue 6) ---
  deploy: define({
    name: 'deploy',
    workflowType: 'deploy',
    summary: 'WF-11/13: deploy an image with zero downtime (rolling, blue-green or canary), health gates, automatic rollback',
    input: deployInputSchema,
    complete: requireDeployable,
    // One change per service at a time: deploys and scales share this id, so a second one is refused while one runs.
    workflowId: (input) => `deploy/${input.service}`,
    target: (input) => input.service,
  }),
  scale: define({
    name: 'scale',
    workflowType: 'scale',
    summary: 'RB-03/WF-26: change the number of instances behind the service upstream, without failed requests',
    input: scaleInputSchema,
    complete: requireDeployable,
    workflowId: (input) => `deploy/${input.service}`,
    target: (input) => input.service,
  }),
  incident: define({
    name: 'incident',
    workflowType: 'incident',
    summary: 'WF-08: open an incident by hand; it escalates by its severity\'s policy until acknowledged',
    input: incidentInputSchema,
    complete(params, config) {
      if (typeof params.policy === 'string' && !(params.policy in config.escalation.policies)) {
        throw new InputError([`policy: unknown escalation policy "${params.policy}" (known: ${Object.keys(config.escalation.policies).join(', ') || 'none'})`]);
      }
      return params;
    },
    // incident/<fingerprint>: the same id the Alertmanager receiver and the health watch use.
    workflowId: (input) => `incident/${manualFingerprint(input)}`,
    target: (input) => manualFingerprint(input),
  }),
  'health-watch': define({
    name: 'health-watch',
    workflowType: 'healthWatch',
    summary: 'WF-09: probe HTTP, PostgreSQL, Redis, disk and memory; open an incident per failing check, resolve recovered ones',
    input: healthWatchInputSchema,
    workflowId: (_input, now) => `health-watch/all/${isoSecond(now)}`,
    target: () => 'all',
  }),
  remediate: define({
    name: 'remediate',
    workflowType: 'remediateService',
    summary: 'RB-03: restart a service, then scale it out when CPU > threshold; steps auto or approved (remediation.services)',
    input: remediateInputSchema,
    complete(params, config) {
      if (typeof params.service === 'string' && !config.targets.services.some((s) => s.name === params.service)) {
        throw new InputError([`service: unknown service "${params.service}" (known: ${config.targets.services.map((s) => s.name).join(', ') || 'none'})`]);
      }
      return params;
    },
    // One ladder per service at a time.
    workflowId: (input) => `remediate/${input.service}`,
    target: (input) => input.service,
  }),
} satisfies Record<string, RunbookDefinition>;

export type RunbookName = keyof typeof runbooks;

export function findRunbook(name: string): RunbookDefinition {
  const def = (runbooks as Record<string, RunbookDefinition>)[name];
  if (!def) throw new InputError([`runbook: unknown runbook "${name}" (known: ${Object.keys(runbooks).join(', ')})`]);
  return def;
}

/** A parameter name as an error shows it: plain names as they are, anything odd quoted. */
function paramName(key: string): string {
  return /^[A-Za-z_][\w-]*$/.test(key) ? key : JSON.stringify(key);
}

/** Validate operator-supplied parameters for a runbook; errors name each bad parameter. */
export function parseRunbookInput(def: RunbookDefinition, params: Record<string, unknown>, config: Config): unknown {
  const completed = def.complete ? def.complete(params, config) : params;
  const result = def.input.safeParse(completed);
  if (!result.success) {
    throw new InputError(
      result.error.issues.map((i) => {
        const where = i.path.length ? i.path.map(String).map(paramName).join('.') : 'params';
        if (i.code === 'unrecognized_keys') {
          const known = Object.keys((def.input as { shape?: object }).shape ?? {}).join(', ');
          return `${i.keys.map(paramName).join(', ')}: unknown parameter for runbook ${def.name} (known: ${known})`;
        }
        if (i.code === 'invalid_type' && i.input === undefined) return `${where}: is required`;
        return `${where}: ${i.message}`;
      }),
    );
  }
  return result.data;
}
