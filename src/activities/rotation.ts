import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import Redis from 'ioredis';
import pg from 'pg';
import { type CodecKey, encryptionCodec, open, seal } from '../config/codec';
import { type Config, type SecretSet, durationMs } from '../config/schema';
import { redact, registerSecret, resolveSecret } from '../config/secrets';
import { restartContainers } from './docker';
import { applyEnvValues, parseEnv, previousEnvValues, restoreEnvFile, writeSecretFileAtomic } from './env-file';
import { putRepositorySecrets } from './github';
import { findDatabase, withPgClient } from './postgres';
import { findRedis, redisClient } from './redis';
import { FAILURES, type FailureType } from '../workflows/failures';

/**
 * RB-02 secret rotation, one secret set at a time. The new values are generated once, by `beginRotation`,
 * and kept on the worker's side in `<rotation.stateDir>/<set>.state` (AES-256-GCM with the payload codec's
 * key, mode 0600). Workflow and activities pass only `{ set, rotationId }`: no secret value is ever an
 * activity input or result, so none reaches the workflow history even before the codec encrypts it.
 * The state file is also the set's lock: a second rotation of the same set is refused while it exists.
 */

export type RotationKind = 'postgres' | 'redis' | 'jwt';

export interface RotationRef {
  set: string;
  /** Unique per rotation; every name a rotation creates carries it, so each step is idempotent on it. */
  rotationId: string;
}

/** What the workflow learns about a rotation: names and counts, never values. */
export interface RotationPlan extends RotationRef {
  kind: RotationKind;
  /** PostgreSQL: the role consumers use now, and the idle one that gets the new password. */
  oldRole?: string;
  newRole: string | undefined;
  /** JWT: the signing key id added, and the ids it replaces. */
  newKid?: string;
  oldKids?: string[];
  /** JWT: how long old keys keep verifying (the durable timer). */
  graceMs?: number;
  envFiles: number;
  /** The .env files, in order (absent from plans made before it was added). */
  envFilePaths?: string[];
  githubSecrets: string[];
  services: string[];
}

interface Jwk {
  kty: 'oct';
  kid: string;
  k: string;
  alg: 'HS256';
  use: 'sig';
}

interface RotationState {
  rotationId: string;
  workflowId: string;
  startedAt: string;
  plan: RotationPlan;
  /** The new values by name (user, password / kid, key). */
  values: Record<string, string>;
  /** The values consumers had before, by name, as far as a .env file told (for restoring GitHub secrets). */
  previous: Record<string, string>;
  /** Redis: SHA-256 hashes of the passwords the user had before. */
  redisOldHashes?: string[];
  /** JWT: the key set before the rotation (to put back keys removed after the grace period). */
  oldJwks?: Jwk[];
}

function findSet(config: Config, name: string): SecretSet {
  const set = config.rotation.sets.find((s) => s.name === name);
  if (!set) throw ApplicationFailure.nonRetryable(`unknown secret set "${name}" (not in rotation.sets)`, FAILURES.UnknownSecretSet);
  return set;
}

function kindOf(set: SecretSet): RotationKind {
  return set.postgres ? 'postgres' : set.redis ? 'redis' : 'jwt';
}

// --- the encrypted state file ---------------------------------------------------------------------------

function statePath(config: Config, set: string): string {
  return path.join(config.rotation.stateDir, `${set}.state`);
}

function codecOf(config: Config): { current: CodecKey; key(id: string): CodecKey } {
  const codec = encryptionCodec(config);
  if (!codec) throw ApplicationFailure.nonRetryable('temporal.encryption is required for secret rotation', FAILURES.ConfigError);
  return codec;
}

async function readState(config: Config, set: string): Promise<RotationState | undefined> {
  let text: string;
  try {
    text = await fs.readFile(statePath(config, set), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const { keyId, data } = JSON.parse(text) as { keyId: string; data: string };
  const state = JSON.parse(open(Buffer.from(data, 'base64'), codecOf(config).key(keyId)).toString('utf8')) as RotationState;
  for (const v of [...Object.values(state.values), ...Object.values(state.previous)]) registerSecret(v);
  return state;
}

async function writeState(config: Config, state: RotationState): Promise<void> {
  await fs.mkdir(config.rotation.stateDir, { recursive: true, mode: 0o700 });
  const key = codecOf(config).current;
  const data = seal(Buffer.from(JSON.stringify(state)), key).toString('base64');
  await writeSecretFileAtomic(statePath(config, state.plan.set), JSON.stringify({ keyId: key.id, data }));
}

/** The state of this rotation; anything else (none, or another rotation's) is a non-retryable error. */
async function stateOf(config: Config, ref: RotationRef): Promise<RotationState> {
  const state = await readState(config, ref.set);
  if (!state || state.rotationId !== ref.rotationId) {
    throw ApplicationFailure.nonRetryable(`no rotation ${ref.rotationId} in progress for secret set "${ref.set}"`, FAILURES.RotationNotFound);
  }
  return state;
}

// --- generating values ----------------------------------------------------------------------------------

/** 256 random bits, base64url (43 characters): safe bare in a .env file, a URL and a shell. */
export function generateSecret(): string {
  const v = randomBytes(32).toString('base64url');
  registerSecret(v);
  return v;
}

/** A SCRAM-SHA-256 verifier, as `psql \password` sends it: the server never sees the password itself. */
export function scramVerifier(password: string, iterations = 4096): string {
  const salt = randomBytes(16);
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

function sha256Hex(v: string): string {
  return createHash('sha256').update(v).digest('hex');
}

/** What consumers use today, read from the first .env file that maps each value. */
async function currentEnvValues(set: SecretSet): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of set.envFiles) {
    let env: Record<string, string>;
    try {
      env = parseEnv(await fs.readFile(f.path, 'utf8'));
    } catch {
      continue;
    }
    for (const [name, key] of Object.entries(f.keys)) if (out[name] === undefined && env[key] !== undefined) out[name] = env[key];
  }
  return out;
}

// --- PostgreSQL: two login roles, alternated --------------------------------------------------------------

function pgAdmin<T>(config: Config, set: SecretSet, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const { db, field } = findDatabase(config, set.postgres!.target);
  return withPgClient(db, field, fn);
}

async function planPostgres(config: Config, set: SecretSet): Promise<{ oldRole?: string; newRole: string }> {
  const [a, b] = set.postgres!.roles;
  const rows = await pgAdmin(config, set, async (c) => (await c.query<{ rolname: string; rolcanlogin: boolean }>('SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = ANY($1)', [[a, b]])).rows);
  const missing = [a, b].filter((r) => !rows.some((row) => row.rolname === r));
  if (missing.length) {
    throw ApplicationFailure.nonRetryable(`secret set "${set.name}": role(s) ${missing.join(', ')} do not exist (create both login roles first, see README)`, FAILURES.RoleMissing);
  }
  const canLogin = rows.filter((r) => r.rolcanlogin).map((r) => r.rolname);
  if (canLogin.length === 2) {
    throw ApplicationFailure.nonRetryable(`secret set "${set.name}": both ${a} and ${b} can log in; make the one no consumer uses NOLOGIN first`, FAILURES.RolesAmbiguous);
  }
  const oldRole = canLogin[0];
  return { oldRole, newRole: oldRole === a ? b : a };
}

async function setRoleLogin(config: Config, set: SecretSet, role: string, login: boolean, password?: string): Promise<void> {
  await pgAdmin(config, set, async (c) => {
    const pw = password ? ` PASSWORD ${c.escapeLiteral(scramVerifier(password))}` : '';
    await c.query(`ALTER ROLE ${c.escapeIdentifier(role)} WITH ${login ? 'LOGIN' : 'NOLOGIN'}${pw}`);
  });
}

async function pgLogin(config: Config, set: SecretSet, user: string, password: string): Promise<void> {
  const { db } = findDatabase(config, set.postgres!.target);
  const c = new pg.Client({ host: db.host, port: db.port, database: db.database, user, password, connectionTimeoutMillis: 10_000, application_name: 'durable-runbooks' });
  try {
    await c.connect();
    await c.query('SELECT 1');
  } finally {
    await c.end().catch(() => undefined);
  }
}

// --- Redis: one ACL user, several passwords --------------------------------------------------------------

async function withRedisAdmin<T>(config: Config, set: SecretSet, fn: (r: Redis) => Promise<T>): Promise<T> {
  const { target, field } = findRedis(config, set.redis!.target);
  const r = redisClient(target, field);
  try {
    await r.connect();
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

async function redisPasswordHashes(r: Redis, user: string): Promise<string[] | undefined> {
  const reply = (await r.call('ACL', 'GETUSER', user)) as unknown[] | null;
  if (!reply) return undefined;
  const i = reply.indexOf('passwords');
  return i === -1 ? [] : ((reply[i + 1] as string[]) ?? []);
}

/** Persist ACL changes when the server keeps users in an ACL file; servers without one keep them in memory. */
async function aclSave(r: Redis): Promise<void> {
  const aclfile = (await r.config('GET', 'aclfile')) as string[];
  if (aclfile[1]) await r.call('ACL', 'SAVE');
}

async function setRedisPasswords(config: Config, set: SecretSet, add: string[], remove: string[]): Promise<void> {
  const user = set.redis!.user;
  await withRedisAdmin(config, set, async (r) => {
    const hashes = (await redisPasswordHashes(r, user)) ?? [];
    const rules = [...add.filter((h) => !hashes.includes(h)).map((h) => `#${h}`), ...remove.filter((h) => hashes.includes(h)).map((h) => `!${h}`)];
    if (rules.length === 0) return;
    await r.call('ACL', 'SETUSER', user, ...rules);
    await aclSave(r);
  });
}

async function redisLogin(config: Config, set: SecretSet, password: string): Promise<void> {
  const { target } = findRedis(config, set.redis!.target);
  const r = new Redis({ host: target.host, port: target.port, username: set.redis!.user, password, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
  try {
    await r.connect();
    await r.ping();
  } finally {
    r.disconnect();
  }
}

// --- JWT: a JWKS file, first key signs ------------------------------------------------------------------

async function readJwks(file: string): Promise<Jwk[]> {
  try {
    const keys = (JSON.parse(await fs.readFile(file, 'utf8')) as { keys?: Jwk[] }).keys ?? [];
    for (const k of keys) registerSecret(k.k);
    return keys;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

async function writeJwks(file: string, keys: Jwk[]): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await writeSecretFileAtomic(file, `${JSON.stringify({ keys }, null, 2)}\n`);
}

// --- the steps -----------------------------------------------------------------------------------------

function failWith(err: unknown, what: string, type: FailureType): never {
  throw ApplicationFailure.create({ message: redact(`${what}: ${err instanceof Error ? err.message : String(err)}`), type, nonRetryable: false });
}

/**
 * Take the set's lock, decide what this rotation does, generate the new values. Idempotent by rotationId:
 * a retry returns the plan the first attempt stored; another rotation of the set in progress is refused.
 */
export async function beginRotation(config: Config, input: RotationRef & { workflowId: string; now: string }): Promise<RotationPlan> {
  const set = findSet(config, input.set);
  const existing = await readState(config, input.set);
  if (existing) {
    if (existing.rotationId === input.rotationId) return existing.plan;
    throw ApplicationFailure.nonRetryable(
      `secret set "${input.set}" is being rotated by ${existing.workflowId} (rotation ${existing.rotationId}, since ${existing.startedAt}); one rotation per set at a time`,
      FAILURES.RotationInProgress,
    );
  }
  const kind = kindOf(set);
  const previous = await currentEnvValues(set);
  const plan: RotationPlan = {
    set: set.name,
    rotationId: input.rotationId,
    kind,
    newRole: undefined,
    envFiles: set.envFiles.length,
    envFilePaths: set.envFiles.map((f) => f.path),
    githubSecrets: Object.values(set.github?.secrets ?? {}),
    services: set.services,
  };
  const state: RotationState = { rotationId: input.rotationId, workflowId: input.workflowId, startedAt: input.now, plan, values: {}, previous };
  if (kind === 'postgres') {
    const roles = await planPostgres(config, set);
    plan.oldRole = roles.oldRole;
    plan.newRole = roles.newRole;
    state.values = { user: roles.newRole, password: generateSecret() };
  } else if (kind === 'redis') {
    const hashes = await withRedisAdmin(config, set, (r) => redisPasswordHashes(r, set.redis!.user));
    if (!hashes) throw ApplicationFailure.nonRetryable(`secret set "${set.name}": Redis ACL user "${set.redis!.user}" does not exist`, FAILURES.UserMissing);
    state.redisOldHashes = hashes;
    state.values = { user: set.redis!.user, password: generateSecret() };
  } else {
    const jwt = set.jwt!;
    state.oldJwks = await readJwks(jwt.jwksFile);
    plan.newKid = `${set.name}-${input.rotationId}`;
    plan.oldKids = state.oldJwks.map((k) => k.kid).filter((k) => k !== plan.newKid);
    plan.graceMs = durationMs(jwt.grace ?? jwt.maxTokenTtl);
    state.values = { kid: plan.newKid, key: generateSecret() };
  }
  await writeState(config, state);
  return plan;
}

/** Make the new credential valid beside the old one. Idempotent: sets the same value again. */
export async function applyNewCredential(config: Config, ref: RotationRef): Promise<void> {
  const state = await stateOf(config, ref);
  const set = findSet(config, ref.set);
  const { plan, values } = state;
  try {
    if (plan.kind === 'postgres') await setRoleLogin(config, set, plan.newRole!, true, values.password);
    else if (plan.kind === 'redis') await setRedisPasswords(config, set, [sha256Hex(values.password!)], []);
    else {
      const keys = (await readJwks(set.jwt!.jwksFile)).filter((k) => k.kid !== plan.newKid);
      await writeJwks(set.jwt!.jwksFile, [{ kty: 'oct', kid: plan.newKid!, k: values.key!, alg: 'HS256', use: 'sig' }, ...keys]);
    }
  } catch (err) {
    if (err instanceof ApplicationFailure) throw err;
    failWith(err, `adding the new ${plan.kind} credential of "${ref.set}"`, FAILURES.ApplyFailed);
  }
}

/** Log in with the new credential (the JWT key: it is the signer). Read-only. */
export async function verifyNewCredential(config: Config, ref: RotationRef): Promise<void> {
  const { plan, values } = await stateOf(config, ref);
  const set = findSet(config, ref.set);
  try {
    if (plan.kind === 'postgres') await pgLogin(config, set, plan.newRole!, values.password!);
    else if (plan.kind === 'redis') await redisLogin(config, set, values.password!);
    else if ((await readJwks(set.jwt!.jwksFile))[0]?.kid !== plan.newKid) throw new Error(`${plan.newKid} is not the first key of ${set.jwt!.jwksFile}`);
  } catch (err) {
    failWith(err, `the new ${plan.kind} credential of "${ref.set}" does not work`, FAILURES.VerifyFailed);
  }
}

/** Write the new values into every .env file. Idempotent by rotationId (see applyEnvValues). */
export async function writeEnvFiles(config: Config, ref: RotationRef): Promise<number> {
  const { values } = await stateOf(config, ref);
  const set = findSet(config, ref.set);
  for (const f of set.envFiles) {
    const mapped = Object.fromEntries(Object.entries(f.keys).map(([name, key]) => [key, values[name]!]));
    await applyEnvValues(f.path, ref.rotationId, mapped);
  }
  return set.envFiles.length;
}

/**
 * Put back every .env file this rotation wrote, each one even when another fails; the failure names the
 * files not restored (details: { notRestored }), which then still hold the new values.
 * Idempotent: writes the kept version only where it differs.
 */
export async function restoreEnvFiles(config: Config, ref: RotationRef): Promise<number> {
  const set = findSet(config, ref.set);
  let restored = 0;
  const notRestored: string[] = [];
  const reasons: string[] = [];
  for (const f of set.envFiles) {
    try {
      if (await restoreEnvFile(f.path, ref.rotationId)) restored++;
    } catch (err) {
      notRestored.push(f.path);
      reasons.push(`${f.path} (${err instanceof Error ? err.message : String(err)})`);
    }
  }
  if (notRestored.length) {
    throw ApplicationFailure.create({ message: redact(`.env file(s) not restored: ${reasons.join(', ')}`), type: FAILURES.EnvRestoreFailed, details: [{ notRestored }] });
  }
  return restored;
}

function githubTarget(config: Config, set: SecretSet): { baseUrl: string; token: string; repo: string } {
  const gh = config.rotation.github!;
  return { baseUrl: gh.baseUrl, token: resolveSecret(gh.token, 'rotation.github.token'), repo: set.github!.repo };
}

/** PUT the new values as GitHub Actions secrets. Idempotent: PUT replaces. */
export async function updateGithubSecrets(config: Config, ref: RotationRef): Promise<string[]> {
  const { values } = await stateOf(config, ref);
  const set = findSet(config, ref.set);
  if (!set.github) return [];
  const secrets = Object.fromEntries(Object.entries(set.github.secrets).map(([name, secret]) => [secret, values[name]!]));
  return putRepositorySecrets(githubTarget(config, set), secrets);
}

/**
 * PUT back the values GitHub had, as the .env files had them before this rotation (GitHub itself never
 * returns a secret). Returns the secrets it could not restore for want of a previous value; fails naming those a
 * PUT refused (details: { notRestored }), after trying every one. Idempotent: PUT replaces.
 */
export async function restoreGithubSecrets(config: Config, ref: RotationRef): Promise<{ restored: string[]; unknown: string[] }> {
  const { previous } = await stateOf(config, ref);
  const set = findSet(config, ref.set);
  if (!set.github) return { restored: [], unknown: [] };
  // A .env file's kept version is the most direct witness of what consumers had.
  for (const f of set.envFiles) {
    const before = await previousEnvValues(f.path, ref.rotationId);
    for (const [name, key] of Object.entries(f.keys)) if (previous[name] === undefined && before?.[key] !== undefined) previous[name] = before[key];
  }
  const known = Object.entries(set.github.secrets).filter(([name]) => previous[name] !== undefined);
  const unknown = Object.entries(set.github.secrets).filter(([name]) => previous[name] === undefined).map(([, secret]) => secret);
  // Each secret on its own, so one refused PUT does not leave the others on the new value.
  const restored: string[] = [];
  const failures: ApplicationFailure[] = [];
  for (const [name, secret] of known) {
    try {
      restored.push(...(await putRepositorySecrets(githubTarget(config, set), { [secret]: previous[name]! })));
    } catch (err) {
      failures.push(err instanceof ApplicationFailure ? err : ApplicationFailure.create({ message: redact(String(err)), type: FAILURES.GitHubRequestFailed }));
    }
  }
  if (failures.length) {
    const notRestored = Object.values(set.github.secrets).filter((s) => !restored.includes(s));
    throw ApplicationFailure.create({
      message: failures.map((f) => f.message).join('; '),
      type: FAILURES.GitHubRestoreFailed,
      nonRetryable: failures.every((f) => f.nonRetryable),
      details: [{ notRestored }],
    });
  }
  return { restored, unknown };
}

/** Rolling restart of the set's services, so they read the values now in their .env files. Idempotent by notBefore. */
export async function restartConsumers(config: Config, input: RotationRef & { notBefore: string }): Promise<string[]> {
  const set = findSet(config, input.set);
  const restarted: string[] = [];
  for (const name of set.services) {
    const service = config.targets.services.find((s) => s.name === name)!;
    const host = config.targets.dockerHosts.find((h) => h.name === service.host)!;
    const r = await restartContainers({ dockerHost: host.dockerHost, containers: service.containers, notBefore: input.notBefore }, config.targets.dockerHosts);
    restarted.push(...r.restarted, ...r.alreadyRestarted);
  }
  return restarted;
}

/** Invalidate the old credential: PostgreSQL role NOLOGIN, Redis old password hashes removed, old JWT keys dropped. Idempotent. */
export async function retireOldCredential(config: Config, ref: RotationRef): Promise<void> {
  const state = await stateOf(config, ref);
  const set = findSet(config, ref.set);
  const { plan } = state;
  if (plan.kind === 'postgres') {
    if (plan.oldRole) await setRoleLogin(config, set, plan.oldRole, false);
  } else if (plan.kind === 'redis') {
    const keep = sha256Hex(state.values.password!);
    await setRedisPasswords(config, set, [], (state.redisOldHashes ?? []).filter((h) => h !== keep));
  } else {
    const keys = await readJwks(set.jwt!.jwksFile);
    await writeJwks(set.jwt!.jwksFile, keys.filter((k) => !plan.oldKids?.includes(k.kid)));
  }
}

/** Undo retireOldCredential (rollback after it). Idempotent. */
export async function unretireOldCredential(config: Config, ref: RotationRef): Promise<void> {
  const state = await stateOf(config, ref);
  const set = findSet(config, ref.set);
  const { plan } = state;
  if (plan.kind === 'postgres') {
    if (plan.oldRole) await setRoleLogin(config, set, plan.oldRole, true);
  } else if (plan.kind === 'redis') {
    await setRedisPasswords(config, set, state.redisOldHashes ?? [], []);
  } else {
    const keys = await readJwks(set.jwt!.jwksFile);
    const missing = (state.oldJwks ?? []).filter((k) => !keys.some((x) => x.kid === k.kid));
    if (missing.length) await writeJwks(set.jwt!.jwksFile, [...keys, ...missing]);
  }
}

/** The old credential no longer works. Read-only. */
export async function verifyOldRetired(config: Config, ref: RotationRef): Promise<void> {
  const state = await stateOf(config, ref);
  const set = findSet(config, ref.set);
  const { plan } = state;
  let problem: string | undefined;
  if (plan.kind === 'postgres' && plan.oldRole) {
    const row = await pgAdmin(config, set, async (c) => (await c.query<{ rolcanlogin: boolean }>('SELECT rolcanlogin FROM pg_roles WHERE rolname = $1', [plan.oldRole])).rows[0]);
    if (row?.rolcanlogin) problem = `role ${plan.oldRole} can still log in`;
  } else if (plan.kind === 'redis') {
    const hashes = (await withRedisAdmin(config, set, (r) => redisPasswordHashes(r, set.redis!.user))) ?? [];
    const stale = hashes.filter((h) => h !== sha256Hex(state.values.password!));
    if (stale.length) problem = `Redis user ${set.redis!.user} still has ${stale.length} old password(s)`;
  } else if (plan.kind === 'jwt') {
    const kids = (await readJwks(set.jwt!.jwksFile)).map((k) => k.kid);
    const stale = kids.filter((k) => plan.oldKids?.includes(k));
    if (stale.length) problem = `old key(s) ${stale.join(', ')} still in ${set.jwt!.jwksFile}`;
  }
  if (problem) throw ApplicationFailure.retryable(`secret set "${ref.set}": ${problem}`, FAILURES.OldCredentialStillValid);
}

/** Undo applyNewCredential (rollback): the new credential stops working. Idempotent. */
export async function revertNewCredential(config: Config, ref: RotationRef): Promise<void> {
  const state = await stateOf(config, ref);
  const set = findSet(config, ref.set);
  const { plan } = state;
  if (plan.kind === 'postgres') await setRoleLogin(config, set, plan.newRole!, false);
  else if (plan.kind === 'redis') {
    // Never leave the user without a password consumers have: only when the old ones are still there.
    if ((state.redisOldHashes ?? []).length) await setRedisPasswords(config, set, state.redisOldHashes ?? [], [sha256Hex(state.values.password!)]);
  } else {
    const keys = await readJwks(set.jwt!.jwksFile);
    if (keys.some((k) => k.kid === plan.newKid)) await writeJwks(set.jwt!.jwksFile, keys.filter((k) => k.kid !== plan.newKid));
  }
}

export interface FinishRotationInput extends RotationRef {
  outcome: 'rotated' | 'rolled back';
  at: string;
  detail?: string;
}

/**
 * Record the outcome in `<stateDir>/audit.jsonl` (names, never values) and release the set's lock.
 * Idempotent: a line for this rotationId is written once; a missing state file means it is done.
 */
export async function finishRotation(config: Config, input: FinishRotationInput): Promise<void> {
  const state = await readState(config, input.set);
  if (!state || state.rotationId !== input.rotationId) return;
  const audit = path.join(config.rotation.stateDir, 'audit.jsonl');
  const existing = await fs.readFile(audit, 'utf8').catch(() => '');
  if (!existing.includes(`"rotationId":"${input.rotationId}"`)) {
    const { plan } = state;
    const line = {
      at: input.at,
      set: input.set,
      rotationId: input.rotationId,
      workflowId: state.workflowId,
      kind: plan.kind,
      outcome: input.outcome,
      ...(plan.newRole ? { newRole: plan.newRole, oldRole: plan.oldRole } : {}),
      ...(plan.newKid ? { newKid: plan.newKid, oldKids: plan.oldKids } : {}),
      ...(input.detail ? { detail: redact(input.detail) } : {}),
    };
    const fh = await fs.open(audit, 'a', 0o600);
    try {
      await fh.appendFile(`${JSON.stringify(line)}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
  }
  await fs.rm(statePath(config, input.set), { force: true });
}
