import { z } from 'zod';
import { DURATION_HINT, durationMs, parseDuration } from './duration';

/** The one duration parser (./duration), for the many modules that read durations with the config's types. */
export { durationMs };

/**
 * The whole runbooks.yaml, validated. Secrets are never inline: a secret field holds a reference
 * (`{ env: NAME }` or `{ file: /path }`) that the worker resolves when an activity needs it, so
 * passwords never reach the CLI, the workflow history or an error message.
 */

const name = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'must be lowercase letters, digits, "-" or "_" (max 63 chars)');

const SECRET_REF_MESSAGE = 'must be a secret reference { env: VAR_NAME } or { file: /path/to/secret }; inline secrets are not accepted';
export const secretRefSchema = z.union(
  [
    z.object({ env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name') }).strict(),
    z.object({ file: z.string().min(1) }).strict(),
  ],
  { error: SECRET_REF_MESSAGE },
);
export type SecretRef = z.infer<typeof secretRefSchema>;

const port = z.number().int().min(1).max(65535);
const duration = z.string().refine((t) => parseDuration(t) !== undefined, DURATION_HINT);

const tlsSchema = z
  .object({
    serverName: z.string().optional(),
    caFile: z.string().optional(),
    certFile: z.string().optional(),
    keyFile: z.string().optional(),
  })
  .strict()
  .refine((t) => Boolean(t.certFile) === Boolean(t.keyFile), {
    message: 'certFile and keyFile must be given together (mTLS)',
  });

const temporalSchema = z
  .object({
    address: z.string().default('127.0.0.1:7233'),
    namespace: z.string().default('default'),
    taskQueue: z.string().default('runbooks'),
    webUiUrl: z.string().url().default('http://localhost:8233'),
    tls: tlsSchema.optional(),
    apiKey: secretRefSchema.optional(),
    /** Payload encryption (AES-256-GCM) on client and worker; the first key encrypts, any decrypts. */
    encryption: z
      .object({
        keys: z
          .array(z.object({ id: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 letters, digits, ".", "_" or "-"'), key: secretRefSchema }).strict())
          .min(1, 'give at least one key'),
      })
      .strict()
      .refine((e) => new Set(e.keys.map((k) => k.id)).size === e.keys.length, { message: 'key ids must be unique', path: ['keys'] })
      .optional(),
    /**
     * Activities one runbook worker runs at once. Long dumps are few (one run per target), so the slots are
     * mostly for notifications: a burst of incidents must not queue its pages behind a backup.
     */
    maxConcurrentActivities: z.number().int().min(1).max(1000).default(64),
  })
  .strict();

const scheduleSpecSchema = z
  .object({
    cron: z.string().min(1).default('0 2 * * *'),
    timezone: z.string().default('UTC'),
  })
  .strict()
  .refine((s) => isValidTimeZone(s.timezone), { message: 'unknown IANA timezone', path: ['timezone'] })
  .refine((s) => s.cron.trim().split(/\s+/).length === 5 || s.cron.startsWith('@'), {
    message: 'cron must have 5 fields (minute hour day-of-month month day-of-week)',
    path: ['cron'],
  });

/** `false` disables the default backup schedule of a target. */
const targetBackupSchema = z.union([z.literal(false), scheduleSpecSchema]).optional();

/** A check the restored copy must pass before it replaces production (and a drill's copy must pass). */
const restoreCheckSchema = z.union([
  z
    .object({
      table: z.string().min(1),
      /** At least this many rows (default 1). */
      minRows: z.number().int().min(0).default(1),
    })
    .strict(),
  z
    .object({
      name: z.string().min(1),
      sql: z.string().min(1),
      /** The first column of the first row must equal this; omitted = the query only has to succeed. */
      expect: z.union([z.string(), z.number(), z.boolean(), z.null()]).optional(),
    })
    .strict(),
]);
export type RestoreCheck = z.infer<typeof restoreCheckSchema>;

const restoreSchema = z
  .object({
    /** pg_restore --jobs. */
    jobs: z.number().int().min(1).max(32).default(2),
    /** How long the pre-restore database is kept before a durable timer drops it. */
    keepOldFor: duration.default('24h'),
    /** How long a production restore waits for an approval before it ends "not approved". */
    approvalTimeout: duration.default('4h'),
    checks: z.array(restoreCheckSchema).default([]),
    /** The weekly drill (WF-05: Sunday 03:00); false = no drill for this database. */
    verify: z.union([z.literal(false), scheduleSpecSchema]).optional(),
  })
  .strict();

const databaseSchema = z
  .object({
    name,
    host: z.string().default('127.0.0.1'),
    port: port.default(5432),
    /** PostgreSQL cuts names at 63 bytes: a longer one would not be the database named here. */
    database: z
      .string()
      .min(1)
      .refine((s) => Buffer.byteLength(s, 'utf8') <= 63, { message: 'must be at most 63 bytes in UTF-8 (PostgreSQL cuts longer names)' }),
    user: z.string().min(1),
    password: secretRefSchema,
    production: z.boolean().default(false),
    services: z.array(name).default([]),
    backup: targetBackupSchema,
    restore: restoreSchema.default(restoreSchema.parse({})),
  })
  .strict();

const redisSchema = z
  .object({
    name,
    host: z.string().default('127.0.0.1'),
    port: port.default(6379),
    username: z.string().optional(),
    password: secretRefSchema.optional(),
    /** Where the server writes its RDB file, as the worker sees it; default: CONFIG GET dir. */
    dataDir: z.string().optional(),
    production: z.boolean().default(false),
    backup: targetBackupSchema,
  })
  .strict();

const dockerHostSchema = z
  .object({
    name,
    dockerHost: z.string().regex(/^(unix|tcp|ssh|npipe):\/\//, 'must be a DOCKER_HOST URL like unix:///var/run/docker.sock'),
    /** Passed to every docker CLI call as --tlsverify --tlscacert/--tlscert/--tlskey (src/activities/docker.ts). */
    tls: tlsSchema.optional(),
  })
  .strict()
  // The docker CLI has no server-name override: it checks the certificate against dockerHost's address.
  .refine((h) => !h.tls?.serverName, { message: 'not supported for a docker host (the docker CLI checks the certificate against the dockerHost address)', path: ['tls', 'serverName'] });

// --- deploy / scale (issue 6) ---
/** How the `deploy` and `scale` runbooks run a service's instances and switch its traffic. */
const serviceDeploySchema = z
  .object({
    /** Instances behind the upstream when a deploy starts from nothing. */
    instances: z.number().int().min(1).max(50).default(2),
    /** Loopback ports the instances listen on (host network); a rolling deploy needs one spare, blue-green twice the instances. */
    ports: z
      .object({ from: port, to: port })
      .strict()
      .refine((p) => p.to >= p.from, { message: 'must be >= from', path: ['to'] }),
    /** The environment variable that tells an instance its port. */
    portEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).default('PORT'),
    health: z
      .object({
        path: z.string().startsWith('/').default('/health'),
        expectStatus: z.number().int().min(100).max(599).default(200),
        /** An instance must stay healthy this long before it takes traffic. */
        minHealthy: duration.default('2s'),
        /** Give up on an instance that is not healthy after this long (seed WF-11: 30 polls × 2 s). */
        timeout: duration.default('60s'),
      })
      .strict()
      .default({ path: '/health', expectStatus: 200, minHealthy: '2s', timeout: '60s' }),
    /** After the upstream no longer lists an instance, wait this long before stopping it. */
    drain: duration.default('3s'),
    /** Images of the service kept on the host for rollback after a deploy. */
    keepImages: z.number().int().min(1).default(3),
    /**
     * The nginx in front of the service, on the same machine as the docker host (instances listen on its loopback).
     * `upstreamFile` holds only the `server` lines and is included inside the service's `upstream { }` block.
     */
    nginx: z
      .object({
        upstreamFile: z.string().min(1),
        /** Passed to `nginx -t` and `nginx -s reload` as -c / -p (the pid file comes from the config). */
        conf: z.string().min(1),
        prefix: z.string().min(1).optional(),
        binary: z.string().min(1).default('nginx'),
      })
      .strict(),
  })
  .strict();
export type ServiceDeployConfig = z.infer<typeof serviceDeploySchema>;
// --- end deploy / scale ---

const serviceSchema = z
  .object({
    name,
    host: name.describe('docker host name'),
    containers: z.array(z.string().min(1)).default([]),
    healthUrl: z.string().url().optional(),
    deploy: serviceDeploySchema.optional(),
  })
  .strict();

const gfsSchema = z
  .object({
    daily: z.number().int().min(0).default(7),
    weekly: z.number().int().min(0).default(4),
    monthly: z.number().int().min(0).default(12),
  })
  .strict();

export const retentionSchema = z
  .object({
    /** Keep every backup younger than this many days (D0: 7, D3: 30). */
    keepDays: z.number().int().min(0).optional(),
    /** Keep at least this many newest backups whatever their age (D4: last 7). */
    keepLast: z.number().int().min(0).optional(),
    /** Grandfather-father-son: newest backup of each of the last N days / ISO weeks / months (D1: 7/4/12). */
    gfs: gfsSchema.optional(),
  })
  .strict()
  .refine((r) => r.keepDays !== undefined || r.keepLast !== undefined || r.gfs !== undefined, {
    message: 'give at least one of keepDays, keepLast, gfs (or leave retention out for the default GFS 7/4/12)',
  });
export type RetentionPolicy = z.infer<typeof retentionSchema>;

const backupsSchema = z
  .object({
    /** Root directory for backup files; one folder per target under it. */
    root: z.string().min(1).default('.runbooks/backups'),
    retention: retentionSchema.default({ gfs: { daily: 7, weekly: 4, monthly: 12 } }),
    /** How long a restore's safety snapshot (`purpose: safety`) is kept; it never counts toward `retention`. */
    safetyKeep: duration.default('7d'),
    /** Default schedule of every target's backup (WF-01: daily 02:00). */
    schedule: scheduleSpecSchema.default({ cron: '0 2 * * *', timezone: 'UTC' }),
    /** Default schedule of every database's restore drill (WF-05: weekly, Sunday 03:00). */
    verifySchedule: scheduleSpecSchema.default({ cron: '0 3 * * 0', timezone: 'UTC' }),
    /** Folder with pg_dump/pg_restore; default: newest /usr/lib/postgresql/<v>/bin, else PATH. */
    pgBinDir: z.string().optional(),
  })
  .strict();

const emailSchema = z
  .object({
    host: z.string(),
    port: port.default(587),
    /** true = implicit TLS (465); false = STARTTLS when the server offers it. */
    secure: z.boolean().default(false),
    requireTls: z.boolean().default(false),
    user: z.string().optional(),
    password: secretRefSchema.optional(),
    from: z.string().min(3),
    to: z.array(z.string().email()).min(1),
  })
  .strict()
  .refine((e) => !e.user || e.password, { message: 'password is required when user is set', path: ['password'] });

/** Slack Web API (or a compatible one: Mattermost's Slack-compatible API, a local fake in tests). */
const slackSchema = z
  .object({
    /** Bot token (xoxb-...), needs chat:write. */
    botToken: secretRefSchema,
    /** Base URL of the Web API, ending in "/"; Slack's own by default. */
    apiUrl: z.string().url().default('https://slack.com/api/'),
    /** Channel id (C...) for runbook progress and incidents when a policy names none. */
    channel: z.string().min(1),
  })
  .strict();

/**
 * Where email / SMS remember what they sent, by idempotency key (SMTP and SMS providers cannot refuse a
 * duplicate): a Redis target of the config. Without it a retry after a lost reply may send again.
 */
const sentLogSchema = z.object({ redis: name, ttl: duration.default('30d') }).strict();

const notificationsSchema = z
  .object({ email: emailSchema.optional(), slack: slackSchema.optional(), sentLog: sentLogSchema.optional() })
  .strict();

// --- Incidents: escalation (WF-08), Alertmanager intake, health watch (WF-09) --------------------------------

export const SEVERITIES = ['critical', 'high', 'medium', 'low'] as const;
export type Severity = (typeof SEVERITIES)[number];
export const NOTIFY_CHANNELS = ['email', 'slack', 'sms'] as const;
export type NotifyChannel = (typeof NOTIFY_CHANNELS)[number];

const escalationLevelSchema = z
  .object({
    /** Person names, rotation names (escalation.people / escalation.rotations) or plain email addresses. */
    targets: z.array(z.string().min(1)).min(1),
    channels: z.array(z.enum(NOTIFY_CHANNELS)).min(1),
    /** Wait before the next level is notified when nobody acknowledged. */
    after: duration,
  })
  .strict();

const escalationPolicySchema = z
  .object({
    levels: z.array(escalationLevelSchema).min(1),
    /** How many times the whole ladder runs again after the last level's wait (0 = once). */
    repeat: z.number().int().min(0).default(0),
  })
  .strict();
export type EscalationPolicy = z.infer<typeof escalationPolicySchema>;

const personSchema = z
  .object({
    email: z.string().email().optional(),
    /** Slack member id (U...), mentioned in the incident thread. */
    slack: z.string().regex(/^[UW][A-Z0-9]+$/, 'must be a Slack member id like U0123ABC').optional(),
    /** E.164 phone number for SMS. */
    phone: z.string().regex(/^\+[1-9]\d{6,14}$/, 'must be an E.164 number like +34600111222').optional(),
  })
  .strict();
export type Person = z.infer<typeof personSchema>;

/** An on-call rotation: members take turns of `shift`, counted from `start`. */
const onCallRotationSchema = z
  .object({
    members: z.array(z.string().min(1)).min(1),
    shift: duration.default('7d'),
    start: z.string().datetime({ offset: true }).default('2026-01-05T09:00:00Z'),
  })
  .strict();
export type OnCallRotation = z.infer<typeof onCallRotationSchema>;

/** The seed matrix (D4 §11.5): respond / escalate minutes and channels per severity. */
export const DEFAULT_POLICIES: Record<Severity, EscalationPolicy> = {
  // Respond 15 min, escalate 30 min to lead-dev + CTO, SMS + email + Slack.
  critical: {
    levels: [
      { targets: ['on-call'], channels: ['sms', 'email', 'slack'], after: '15m' },
      { targets: ['on-call', 'lead-dev'], channels: ['sms', 'email', 'slack'], after: '15m' },
      { targets: ['lead-dev', 'cto'], channels: ['sms', 'email', 'slack'], after: '30m' },
    ],
    repeat: 1,
  },
  high: {
    levels: [
      { targets: ['on-call'], channels: ['email', 'slack'], after: '60m' },
      { targets: ['on-call'], channels: ['email', 'slack'], after: '60m' },
      { targets: ['team-lead'], channels: ['email', 'slack'], after: '120m' },
    ],
    repeat: 0,
  },
  medium: {
    levels: [
      { targets: ['on-call'], channels: ['email'], after: '240m' },
      { targets: ['on-call'], channels: ['email'], after: '240m' },
      { targets: ['project-manager'], channels: ['email'], after: '480m' },
    ],
    repeat: 0,
  },
  low: {
    levels: [
      { targets: ['on-call'], channels: ['email'], after: '1440m' },
      { targets: ['on-call'], channels: ['email'], after: '1440m' },
      { targets: ['product-owner'], channels: ['email'], after: '2880m' },
    ],
    repeat: 0,
  },
};

/** SMS through a Twilio-style HTTP API: POST {apiUrl}/Accounts/{accountSid}/Messages.json, form To/From/Body, Basic auth. */
const smsSchema = z
  .object({
    apiUrl: z.string().url().default('https://api.twilio.com/2010-04-01'),
    accountSid: z.string().min(1),
    authToken: secretRefSchema,
    from: z.string().min(3),
  })
  .strict();
export type SmsConfig = z.infer<typeof smsSchema>;

const escalationSchema = z
  .object({
    people: z.record(name, personSchema).default({}),
    rotations: z.record(name, onCallRotationSchema).default({}),
    /** Named policies; severities without one use DEFAULT_POLICIES (the seed matrix). */
    policies: z.record(name, escalationPolicySchema).default({}),
    /** Which policy a severity uses; default: the policy named like the severity, else the seed default. */
    severities: z.partialRecord(z.enum(SEVERITIES), name).default({}),
    /** Slack channel for incident threads; default notifications.slack.channel. */
    slackChannel: z.string().min(1).optional(),
    sms: smsSchema.optional(),
    /** Continue-as-new after this many timeline entries (long incidents keep a short history). */
    maxTimeline: z.number().int().min(10).default(200),
  })
  .strict();

/** 127.0.0.0/8, ::1 and localhost: only this machine reaches a server bound there. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || /^::ffff:127\./.test(h);
}

/** The HTTP receiver: Alertmanager webhook (POST /alertmanager) and the signed acknowledge links (/ack). */
const incidentsSchema = z
  .object({
    listen: z.object({ host: z.string().default('127.0.0.1'), port: port.default(9095) }).strict().default({ host: '127.0.0.1', port: 9095 }),
    /** Base URL people reach the receiver at, used in the acknowledge links of emails. */
    publicUrl: z.string().url().default('http://127.0.0.1:9095'),
    /** HMAC key of acknowledge links. */
    ackSecret: secretRefSchema.optional(),
    /** How long an acknowledge link stays valid. */
    ackLinkTtl: duration.default('24h'),
    /** Alertmanager authenticates with `http_config.authorization` (bearer) or `basic_auth`. */
    auth: z
      .union([
        z.object({ bearerToken: secretRefSchema }).strict(),
        z.object({ username: z.string().min(1), password: secretRefSchema }).strict(),
      ])
      .optional(),
  })
  .strict();

/** WF-09 thresholds (seed §4): disk 80/85/90 %, memory 80/85/90 %, HTTP timeout 10 s, slow > 5 s. */
const healthSchema = z
  .object({
    schedule: scheduleSpecSchema.default({ cron: '*/5 * * * *', timezone: 'UTC' }),
    http: z
      .array(
        z
          .object({
            name,
            url: z.string().url(),
            timeout: duration.default('10s'),
            slow: duration.default('5s'),
            expectStatus: z.number().int().min(100).max(599).default(200),
            severity: z.enum(SEVERITIES).default('critical'),
            /** The service behind this endpoint: when it fails, its remediation ladder starts (remediation.services). */
            service: name.optional(),
          })
          .strict(),
      )
      .default([]),
    /** Check every database / Redis target of the config (SELECT 1, PING). */
    databases: z.boolean().default(true),
    redis: z.boolean().default(true),
    disk: z
      .array(z.object({ path: z.string().min(1), warn: z.number().min(1).max(100).default(85), critical: z.number().min(1).max(100).default(90) }).strict())
      .default([{ path: '/', warn: 85, critical: 90 }]),
    memory: z.object({ warn: z.number().min(1).max(100).default(85), critical: z.number().min(1).max(100).default(90) }).strict().default({ warn: 85, critical: 90 }),
  })
  .strict();
export type HealthConfig = z.infer<typeof healthSchema>;

/** RB-03 remediation ladder per service: restart, then scale out when CPU is high; each step auto or approved. */
const gate = z.enum(['auto', 'approval']);
const remediationSchema = z
  .object({
    /** How long a step that needs an approval waits for one before it is skipped. */
    approvalTimeout: duration.default('30m'),
    services: z
      .record(
        name,
        z
          .object({
            restart: gate.default('auto'),
            scaleOut: gate.default('approval'),
            /** Instances after scaling out (D3: 3, D4: 4). */
            scaleTo: z.number().int().min(2).max(50).default(3),
            /** Scale out when the containers' CPU is above this (seed: 80 %). */
            cpuThreshold: z.number().min(1).max(100).default(80),
          })
          .strict(),
      )
      .default({}),
  })
  .strict();

const scheduleSchema = z
  .object({
    id: name,
    runbook: z.string().min(1),
    params: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
    cron: z.string().min(1),
    timezone: z.string().default('UTC'),
    overlap: z.enum(['skip', 'buffer_one', 'allow_all', 'cancel_other', 'terminate_other']).default('skip'),
    paused: z.boolean().default(false),
  })
  .strict()
  .refine((s) => isValidTimeZone(s.timezone), { message: 'unknown IANA timezone', path: ['timezone'] });

/**
 * ChatOps (src/client/chatops): Slack-compatible slash commands and buttons, and who may do what (RBAC).
 * Everyone is named by a Slack user id (U...), a Slack user group id (S...) or a role name from `roles`.
 */
const chatopsRuleSchema = z
  .object({
    /** Runbook names, or "*". */
    runbooks: z.array(z.string().min(1)).min(1),
    /** Target names, or "*". */
    targets: z.array(z.string().min(1)).default(['*']),
    /** Who may start (and cancel, retry, skip or abort) these runbooks on these targets. */
    run: z.array(z.string().min(1)).default([]),
    /** Who may approve or reject them at an approval gate. */
    approve: z.array(z.string().min(1)).default([]),
    /** Ask for approval even when the target is not `production: true`. */
    approval: z.boolean().default(false),
    /** How many different approvers a run needs (never the requester). */
    quorum: z.number().int().min(1).max(10).default(1),
  })
  .strict();
export type ChatopsRule = z.infer<typeof chatopsRuleSchema>;

const chatopsSchema = z
  .object({
    /** Slack app signing secret: every request is checked against it (v0 HMAC-SHA256). */
    signingSecret: secretRefSchema,
    host: z.string().default('127.0.0.1'),
    port: port.default(3000),
    /** Slack user id → the operator name recorded in runs (the CLI's $RUNBOOK_USER), so one person is one name. */
    people: z.record(z.string().regex(/^[UW][A-Z0-9]+$/, 'must be a Slack user id (U...)'), z.string().min(1)).default({}),
    /** Role name → Slack user ids (U...) and user group ids (S...). */
    roles: z.record(name, z.array(z.string().regex(/^[USW][A-Z0-9]+$/, 'must be a Slack user id (U...) or user group id (S...)'))).default({}),
    /** The first rule matching (runbook, target) decides; no rule = nobody may run it from chat. */
    rules: z.array(chatopsRuleSchema).default([]),
    /** Who may acknowledge / resolve incidents from their buttons (and see incident runs); absent or empty = nobody. */
    incidents: z.array(z.string().min(1)).default([]),
    /**
     * A command answers in its HTTP response when done within this time; else it is acknowledged ("working on
     * it") and the answer follows on response_url. Slack allows 3 s; 250 ms keeps a burst of commands snappy.
     */
    ackWithin: duration.default('250ms'),
  })
  .strict();
export type ChatopsConfig = z.infer<typeof chatopsSchema>;

// --- RB-02 secret rotation (WF-06) ---

const envKey = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name');
const roleName = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a lowercase PostgreSQL role name');

/** What each kind of secret set produces; envFiles and github map these names to their keys. */
export const ROTATED_VALUES = { postgres: ['user', 'password'], redis: ['user', 'password'], jwt: ['kid', 'key'] } as const;

const secretSetSchema = z
  .object({
    name,
    /** Two login roles, alternated: the idle one gets a new password and LOGIN, then the one in use loses LOGIN. */
    postgres: z.object({ target: name.describe('a database in targets.databases'), roles: z.tuple([roleName, roleName]) }).strict().optional(),
    /** An ACL user: the new password is added beside the old one, the old one removed once consumers use the new. */
    redis: z.object({ target: name.describe('a server in targets.redis'), user: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/) }).strict().optional(),
    /** An HS256 key set (JWKS file, first key signs, every key verifies); old keys stay for `grace`. */
    jwt: z
      .object({
        jwksFile: z.string().min(1),
        /** The longest-lived token (D4: refresh tokens 7 days): the default grace period. */
        maxTokenTtl: duration.default('7d'),
        grace: duration.optional(),
      })
      .strict()
      .optional(),
    /** .env files the worker can write; `keys` maps a rotated value (user, password, kid, key) to the file's key. */
    envFiles: z.array(z.object({ path: z.string().min(1), keys: z.record(z.string(), envKey) }).strict()).default([]),
    /** GitHub Actions repository secrets; `secrets` maps a rotated value to the secret's name. */
    github: z
      .object({
        repo: z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, 'must be "owner/name"'),
        secrets: z.record(z.string(), envKey.refine((n) => !/^GITHUB_/i.test(n), 'GitHub secret names cannot start with GITHUB_')),
      })
      .strict()
      .optional(),
    /** Consumers restarted after the new values are written (names from targets.services). */
    services: z.array(name).default([]),
    /** This set's schedule interval; false = on demand only. Default: rotation.every. */
    every: z.union([z.literal(false), duration]).optional(),
  })
  .strict()
  .superRefine((set, ctx) => {
    const kinds = (['postgres', 'redis', 'jwt'] as const).filter((k) => set[k]);
    if (kinds.length !== 1) {
      ctx.addIssue({ code: 'custom', path: [], message: `give exactly one of postgres, redis, jwt (got ${kinds.join(', ') || 'none'})` });
      return;
    }
    const values: readonly string[] = ROTATED_VALUES[kinds[0]!];
    const check = (map: Record<string, string>, path: PropertyKey[]): void => {
      for (const v of Object.keys(map)) {
        if (!values.includes(v)) ctx.addIssue({ code: 'custom', path: [...path, v], message: `unknown value "${v}" for a ${kinds[0]} set (known: ${values.join(', ')})` });
      }
    };
    set.envFiles.forEach((f, i) => check(f.keys, ['envFiles', i, 'keys']));
    if (set.github) check(set.github.secrets, ['github', 'secrets']);
    if (set.postgres && set.postgres.roles[0] === set.postgres.roles[1]) {
      ctx.addIssue({ code: 'custom', path: ['postgres', 'roles'], message: 'the two roles must differ' });
    }
  });
export type SecretSet = z.infer<typeof secretSetSchema>;

const rotationSchema = z
  .object({
    /** WF-06 / D4 §7.6: every 90 days. Each set's schedule, unless the set says otherwise. */
    every: duration.default('90d'),
    /** Where the worker keeps a rotation's encrypted working state (one file per set, which is also its lock). */
    stateDir: z.string().min(1).default('.runbooks/rotation'),
    github: z
      .object({
        /** GitHub Enterprise: https://github.example.com/api/v3 */
        baseUrl: z.string().url().default('https://api.github.com'),
        /** A token allowed to write the repositories' Actions secrets. */
        token: secretRefSchema,
      })
      .strict()
      .optional(),
    sets: z.array(secretSetSchema).default([]),
  })
  .strict();

/** Inspection and operations (issue 9): the worker's /metrics and the codec server for the Web UI. */
const observabilitySchema = z
  .object({
    /** host:port of the worker's Prometheus endpoint (GET /metrics); omitted = no endpoint. */
    metricsAddress: z.string().regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'must be host:port, e.g. 0.0.0.0:9464').optional(),
    codecServer: z
      .object({
        address: z.string().regex(/^[A-Za-z0-9.-]+:\d{1,5}$/, 'must be host:port, e.g. 127.0.0.1:8888').default('127.0.0.1:8888'),
        /** Origins of the Web UIs that may call it (the dev server's UI by default). */
        corsOrigins: z.array(z.string().url()).min(1).default(['http://localhost:8233']),
        /** Bearer token the callers must present (required: the server decrypts every payload for whoever calls it). */
        token: z.union(secretRefSchema.options, {
          error: (iss) =>
            iss.input === undefined
              ? 'required: the codec server decrypts payloads for whoever calls it; set token: { env: CODEC_SERVER_TOKEN } (or { file: ... })'
              : SECRET_REF_MESSAGE,
        }),
      })
      .strict()
      .optional(),
  })
  .strict();

export const configSchema = z
  .object({
    temporal: temporalSchema.default(temporalSchema.parse({})),
    targets: z
      .object({
        databases: z.array(databaseSchema).default([]),
        redis: z.array(redisSchema).default([]),
        dockerHosts: z.array(dockerHostSchema).default([]),
        services: z.array(serviceSchema).default([]),
      })
      .strict()
      .default({ databases: [], redis: [], dockerHosts: [], services: [] }),
    backups: backupsSchema.default(backupsSchema.parse({})),
    notifications: notificationsSchema.default({}),
    escalation: escalationSchema.default(escalationSchema.parse({})),
    incidents: incidentsSchema.default(incidentsSchema.parse({})),
    /** The health watch runs (and gets its schedule) only when this section is present. */
    health: healthSchema.optional(),
    remediation: remediationSchema.default(remediationSchema.parse({})),
    schedules: z.array(scheduleSchema).default([]),
    chatops: chatopsSchema.optional(),
    rotation: rotationSchema.default(rotationSchema.parse({})),
    observability: observabilitySchema.default({}),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    checkRotation(cfg, ctx);
    const seen = new Map<string, string>();
    const kinds = [
      ['databases', cfg.targets.databases],
      ['redis', cfg.targets.redis],
    ] as const;
    for (const [kind, list] of kinds) {
      list.forEach((t, i) => {
        const prev = seen.get(t.name);
        if (prev) {
          ctx.addIssue({
            code: 'custom',
            path: ['targets', kind, i, 'name'],
            message: `duplicate target name "${t.name}" (already used by ${prev})`,
          });
        }
        seen.set(t.name, `targets.${kind}`);
      });
    }
    const hosts = new Set(cfg.targets.dockerHosts.map((h) => h.name));
    cfg.targets.services.forEach((s, i) => {
      if (!hosts.has(s.host)) {
        ctx.addIssue({ code: 'custom', path: ['targets', 'services', i, 'host'], message: `unknown docker host "${s.host}"` });
      }
    });
    const services = new Set(cfg.targets.services.map((sv) => sv.name));
    cfg.targets.databases.forEach((d, i) =>
      d.services.forEach((sv, j) => {
        if (!services.has(sv)) {
          ctx.addIssue({ code: 'custom', path: ['targets', 'databases', i, 'services', j], message: `unknown service "${sv}" (not in targets.services)` });
        }
      }),
    );
    checkEscalation(cfg, ctx);
    if (!cfg.incidents.auth && !isLoopbackHost(cfg.incidents.listen.host)) {
      ctx.addIssue({
        code: 'custom',
        path: ['incidents', 'auth'],
        message: `is required when incidents.listen.host is not a loopback address (${cfg.incidents.listen.host}): anyone who reaches the receiver could open and resolve incidents (bearerToken or username/password, as Alertmanager's http_config sends them)`,
      });
    }
    const ids = new Set<string>();
    cfg.schedules.forEach((s, i) => {
      if (ids.has(s.id)) ctx.addIssue({ code: 'custom', path: ['schedules', i, 'id'], message: `duplicate schedule id "${s.id}"` });
      ids.add(s.id);
    });
    const chat = cfg.chatops;
    if (chat) {
      const who = (list: string[], path: (string | number)[]): void =>
        list.forEach((w, k) => {
          if (!/^[USW][A-Z0-9]+$/.test(w) && !(w in chat.roles)) {
            ctx.addIssue({ code: 'custom', path: ['chatops', ...path, k], message: `unknown role "${w}" (not in chatops.roles, not a Slack id)` });
          }
        });
      chat.rules.forEach((r, i) => {
        who(r.run, ['rules', i, 'run']);
        who(r.approve, ['rules', i, 'approve']);
      });
      who(chat.incidents, ['incidents']);
    }
  });

export type Config = z.infer<typeof configSchema>;

/** RB-02: every name a secret set uses must exist, and rotation needs payload encryption. */
function checkRotation(cfg: z.infer<typeof configSchema>, ctx: z.RefinementCtx): void {
  const r = cfg.rotation;
  if (r.sets.length > 0 && !cfg.temporal.encryption) {
    ctx.addIssue({ code: 'custom', path: ['temporal', 'encryption'], message: 'is required when rotation.sets is configured (rotated secrets must not reach the history in plain text)' });
  }
  const seen = new Set<string>();
  const services = new Set(cfg.targets.services.map((sv) => sv.name));
  r.sets.forEach((set, i) => {
    const at = (...p: PropertyKey[]): PropertyKey[] => ['rotation', 'sets', i, ...p];
    if (seen.has(set.name)) ctx.addIssue({ code: 'custom', path: at('name'), message: `duplicate secret set "${set.name}"` });
    seen.add(set.name);
    if (set.postgres && !cfg.targets.databases.some((d) => d.name === set.postgres!.target)) {
      ctx.addIssue({ code: 'custom', path: at('postgres', 'target'), message: `unknown database "${set.postgres.target}" (not in targets.databases)` });
    }
    if (set.redis && !cfg.targets.redis.some((d) => d.name === set.redis!.target)) {
      ctx.addIssue({ code: 'custom', path: at('redis', 'target'), message: `unknown redis "${set.redis.target}" (not in targets.redis)` });
    }
    if (set.github && !r.github) ctx.addIssue({ code: 'custom', path: ['rotation', 'github'], message: `is required: rotation.sets[${i}] writes GitHub secrets` });
    set.services.forEach((sv, j) => {
      if (!services.has(sv)) ctx.addIssue({ code: 'custom', path: at('services', j), message: `unknown service "${sv}" (not in targets.services)` });
    });
  });
}
export type DatabaseTarget = Config['targets']['databases'][number];
export type RedisTarget = Config['targets']['redis'][number];
export type EmailConfig = NonNullable<Config['notifications']['email']>;
export type SlackConfig = NonNullable<Config['notifications']['slack']>;
export type ScheduleConfig = Config['schedules'][number];
export type ServiceConfig = Config['targets']['services'][number];
export type DockerHostConfig = Config['targets']['dockerHosts'][number];

/** Every name a policy or rotation uses must be a person, a rotation or an email address. */
function checkEscalation(
  cfg: {
    escalation: z.infer<typeof escalationSchema>;
    notifications: z.infer<typeof notificationsSchema>;
    remediation: z.infer<typeof remediationSchema>;
    health?: z.infer<typeof healthSchema>;
    targets: { redis: Array<{ name: string }>; services: Array<{ name: string }> };
  },
  ctx: z.RefinementCtx,
): void {
  const log = cfg.notifications.sentLog;
  if (log && !cfg.targets.redis.some((r) => r.name === log.redis)) {
    ctx.addIssue({ code: 'custom', path: ['notifications', 'sentLog', 'redis'], message: `unknown redis target "${log.redis}" (not in targets.redis)` });
  }
  cfg.health?.http.forEach((h, i) => {
    if (h.service && !cfg.targets.services.some((t) => t.name === h.service)) {
      ctx.addIssue({ code: 'custom', path: ['health', 'http', i, 'service'], message: `unknown service "${h.service}" (not in targets.services)` });
    }
  });
  for (const svc of Object.keys(cfg.remediation.services)) {
    if (!cfg.targets.services.some((t) => t.name === svc)) {
      ctx.addIssue({ code: 'custom', path: ['remediation', 'services', svc], message: `unknown service "${svc}" (not in targets.services)` });
    }
  }
  const e = cfg.escalation;
  const known = (t: string): boolean => t in e.people || t in e.rotations || z.string().email().safeParse(t).success;
  for (const [policy, p] of Object.entries(e.policies)) {
    p.levels.forEach((l, i) =>
      l.targets.forEach((t, j) => {
        if (!known(t)) ctx.addIssue({ code: 'custom', path: ['escalation', 'policies', policy, 'levels', i, 'targets', j], message: `unknown person or rotation "${t}"` });
      }),
    );
  }
  for (const [rotation, r] of Object.entries(e.rotations)) {
    r.members.forEach((m, i) => {
      if (!(m in e.people)) ctx.addIssue({ code: 'custom', path: ['escalation', 'rotations', rotation, 'members', i], message: `unknown person "${m}"` });
    });
  }
  for (const [sev, policy] of Object.entries(e.severities)) {
    if (!(policy in e.policies)) ctx.addIssue({ code: 'custom', path: ['escalation', 'severities', sev], message: `unknown policy "${policy}"` });
  }
}

function isValidTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

export type EscalationConfig = Config['escalation'];
export type IncidentsConfig = Config['incidents'];
