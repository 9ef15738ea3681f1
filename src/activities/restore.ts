import path from 'node:path';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { execa } from 'execa';
import type pg from 'pg';
import { type Config, type DatabaseTarget, type RestoreCheck, durationMs } from '../config/schema';
import { approvalPolicy } from '../config/rbac';
import { redact } from '../config/secrets';
import { findDatabase, libpqEnv, pgBin, withPgClient } from './postgres';
import { PG_ENV, childEnv, runHeartbeated } from './process';
import { listBackups, sha256File, targetDir } from './storage';
import { probeHttp } from './http-probe';
import { FAILURES } from '../workflows/failures';

/**
 * RB-01 restore, the PostgreSQL side. The restored copy is built ASIDE (`<db>__restore_<id>`), verified, and
 * swapped in with two renames in one transaction, so production is either the old database or the verified
 * copy, never half of each. Every database these steps create or drop carries the restore id in its name.
 */

export interface ServicePlan {
  name: string;
  dockerHost: string;
  containers: string[];
  healthUrl?: string;
}

export interface RestorePlan {
  target: string;
  database: string;
  production: boolean;
  backup: { id: string; file: string; sha256: string; sizeBytes: number; createdAt: string };
  /** Where the backup is restored and checked. */
  asideDb: string;
  /** Production's name for the pre-restore database after the swap. */
  oldDb: string;
  /** Where a restored copy goes if it is swapped back out. */
  failedDb: string;
  services: ServicePlan[];
  jobs: number;
  keepOldForMs: number;
  approvalTimeoutMs: number;
  /** chatops.rules ask for an approval although the target is not production (optional: older plans lack it). */
  approvalRequired?: boolean;
  /** Different approvers the gate needs (chatops.rules quorum; 1 without a rule). */
  approvalQuorum?: number;
  checks: RestoreCheck[];
}

export interface PlanRestoreInput {
  target: string;
  /** A backup id, or "latest". */
  backup: string;
  /** Short id unique to this restore; part of every database name it creates. */
  restoreId: string;
  /** "restore" (RB-01) or "verify" (the drill restores into `<db>__verify_<id>`). */
  purpose?: 'restore' | 'verify';
}

/** PostgreSQL keeps the first 63 bytes of an identifier (NAMEDATALEN - 1) and silently drops the rest. */
export const MAX_IDENT_BYTES = 63;

/** The longest prefix of `s` within `maxBytes` UTF-8 bytes, never cutting a character in two. */
export function clipToBytes(s: string, maxBytes: number): string {
  let out = '';
  let used = 0;
  for (const ch of s) {
    used += Buffer.byteLength(ch);
    if (used > maxBytes) break;
    out += ch;
  }
  return out;
}

/** `<db>__<suffix>` within PostgreSQL's 63-byte identifier limit: the database name is cut by bytes, the suffix is kept whole. */
export function derivedName(database: string, suffix: string): string {
  const tail = `__${suffix}`;
  return `${clipToBytes(database, MAX_IDENT_BYTES - Buffer.byteLength(tail))}${tail}`;
}

/** The name PostgreSQL would really use for `name` (it cuts at 63 bytes). */
const asStored = (name: string): string => clipToBytes(name, MAX_IDENT_BYTES);

/** Refuse (non-retryably) to drop or replace a database whose name, as PostgreSQL stores it, is production's. */
function assertNotProduction(db: DatabaseTarget, name: string, action: string): void {
  if (Buffer.byteLength(name) > MAX_IDENT_BYTES || asStored(name) === asStored(db.database)) {
    throw ApplicationFailure.nonRetryable(
      `refusing to ${action} "${name}": ${Buffer.byteLength(name) > MAX_IDENT_BYTES ? `longer than ${MAX_IDENT_BYTES} bytes, PostgreSQL would cut it` : 'it is the production database'}` +
        ` (${db.name}: ${db.database})`,
      FAILURES.RefusedDrop,
    );
  }
}

/** Names only these steps create; `dropScratchDatabase` refuses anything else, so it can never drop production. */
const SCRATCH = /__(restore|pre_restore|failed_restore|verify)_[a-z0-9]{4,16}$/;

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

// Idempotent: reads the config and the backup folder, changes nothing.
export async function planRestore(config: Config, input: PlanRestoreInput): Promise<RestorePlan> {
  const { db } = findDatabase(config, input.target);
  if (!/^[a-z0-9]{4,16}$/.test(input.restoreId)) throw ApplicationFailure.nonRetryable(`bad restore id "${input.restoreId}"`, FAILURES.BadInput);
  const listing = await listBackups(targetDir(config.backups.root, db.name));
  const candidates = listing.valid.filter((b) => b.manifest.kind === 'postgres');
  // "latest" is the newest real backup: a restore's safety snapshot holds the state that was being replaced.
  const chosen =
    input.backup === 'latest' ? candidates.find((b) => b.manifest.purpose !== 'safety') : candidates.find((b) => b.manifest.id === input.backup);
  if (!chosen) {
    const known = candidates.slice(0, 5).map((b) => b.manifest.id);
    throw ApplicationFailure.nonRetryable(
      input.backup === 'latest'
        ? `no valid backup of ${db.name} in ${targetDir(config.backups.root, db.name)}`
        : `backup "${input.backup}" of ${db.name} not found (newest: ${known.join(', ') || 'none'})`,
      FAILURES.BackupNotFound,
    );
  }
  const m = chosen.manifest;
  const services = db.services.map((name): ServicePlan => {
    const svc = config.targets.services.find((s) => s.name === name);
    const host = config.targets.dockerHosts.find((h) => h.name === svc?.host);
    if (!svc || !host) throw ApplicationFailure.nonRetryable(`service "${name}" of ${db.name} is not configured`, FAILURES.UnknownTarget);
    return { name, dockerHost: host.dockerHost, containers: svc.containers, healthUrl: svc.healthUrl };
  });
  const verify = input.purpose === 'verify';
  const approval = approvalPolicy(config, 'restore', db.name);
  const asideDb = derivedName(db.database, `${verify ? 'verify' : 'restore'}_${input.restoreId}`);
  const oldDb = derivedName(db.database, `pre_restore_${input.restoreId}`);
  const failedDb = derivedName(db.database, `failed_restore_${input.restoreId}`);
  for (const n of [asideDb, oldDb, failedDb]) assertNotProduction(db, n, 'use');
  return {
    target: db.name,
    database: db.database,
    production: db.production,
    backup: { id: m.id, file: m.file, sha256: m.sha256, sizeBytes: m.sizeBytes, createdAt: m.createdAt },
    asideDb,
    oldDb,
    failedDb,
    services,
    jobs: db.restore.jobs,
    keepOldForMs: durationMs(db.restore.keepOldFor),
    approvalTimeoutMs: durationMs(db.restore.approvalTimeout),
    approvalRequired: approval.required,
    approvalQuorum: approval.quorum,
    checks: db.restore.checks,
  };
}

function backupPath(config: Config, plan: RestorePlan): string {
  return path.join(targetDir(config.backups.root, plan.target), plan.backup.file);
}

// Idempotent: reads the backup file only.
export async function validateBackup(config: Config, plan: RestorePlan): Promise<{ sha256: string; entries: number }> {
  const file = backupPath(config, plan);
  const sha256 = await sha256File(file).catch((err: NodeJS.ErrnoException) => {
    throw ApplicationFailure.nonRetryable(`backup ${plan.backup.id}: cannot read ${file} (${err.code ?? err.message})`, FAILURES.BackupInvalid);
  });
  if (sha256 !== plan.backup.sha256) {
    throw ApplicationFailure.nonRetryable(
      `backup ${plan.backup.id} is corrupt: sha256 ${sha256.slice(0, 16)}… does not match its manifest (${plan.backup.sha256.slice(0, 16)}…)`,
      FAILURES.BackupInvalid,
    );
  }
  const list = await execa(pgBin(config, 'pg_restore'), ['--list', file], { ...childEnv({}, PG_ENV), reject: false });
  if (list.failed) {
    throw ApplicationFailure.nonRetryable(`backup ${plan.backup.id}: pg_restore --list failed: ${String(list.stderr).trim().slice(-300)}`, FAILURES.BackupInvalid);
  }
  const entries = String(list.stdout)
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith(';')).length;
  return { sha256, entries };
}

async function admin<T>(config: Config, target: string, fn: (c: pg.Client, db: DatabaseTarget) => Promise<T>): Promise<T> {
  const { db, field } = findDatabase(config, target);
  // Renames and drops run from the maintenance database, never from the ones being renamed.
  return withPgClient(db, field, (c) => fn(c, db), 'postgres');
}

async function existing(c: pg.Client, names: string[]): Promise<Set<string>> {
  const r = await c.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname = ANY($1)', [names]);
  return new Set(r.rows.map((x) => x.datname));
}

const DONE_COMMENT = (backupId: string): string => `durable-runbooks: restored from ${backupId}`;
/** The mark's measured pg_restore time (ms) when the comment marks a complete copy of this backup, else undefined. */
function doneMs(comment: string | null | undefined, backupId: string): number | undefined {
  const mark = DONE_COMMENT(backupId);
  if (comment === mark) return 0; // marked by a worker that did not record the time
  const m = comment?.startsWith(`${mark} in `) ? /^(\d+) ms$/.exec(comment.slice(mark.length + 4)) : null;
  return m ? Number(m[1]) : undefined;
}

// Idempotent by plan.asideDb: a copy marked complete is kept (with the restore time the mark recorded, so a
// drill's RTO survives a lost reply); anything else under that name is rebuilt.
export async function restoreAside(config: Config, plan: RestorePlan): Promise<{ durationMs: number; reused: boolean }> {
  const ctx = Context.current();
  const started = Date.now();
  const doneIn = await admin(config, plan.target, async (c, db) => {
    assertNotProduction(db, plan.asideDb, 'replace');
    const r = await c.query<{ comment: string | null }>(
      'SELECT shobj_description(oid, $2) AS comment FROM pg_database WHERE datname = $1',
      [plan.asideDb, 'pg_database'],
    );
    const ms = r.rows[0] ? doneMs(r.rows[0].comment, plan.backup.id) : undefined;
    if (ms !== undefined) return ms;
    await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(plan.asideDb)} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${quoteIdent(plan.asideDb)}`);
    return undefined;
  });
  if (doneIn !== undefined) return { durationMs: doneIn, reused: true };

  const { db, field } = findDatabase(config, plan.target);
  const file = backupPath(config, plan);
  const result = await runHeartbeated(
    pgBin(config, 'pg_restore'),
    ['--no-password', '--exit-on-error', `--jobs=${plan.jobs}`, '--dbname', plan.asideDb, file],
    { env: libpqEnv(db, field, plan.asideDb), passthrough: PG_ENV, marker: plan.asideDb },
  );
  if (result.isCanceled) throw ctx.cancellationSignal.reason ?? new Error('cancelled');
  if (result.failed) {
    throw ApplicationFailure.retryable(
      `pg_restore into ${plan.asideDb} failed (exit ${result.exitCode ?? result.signal}): ${redact(String(result.stderr)).trim().slice(-500)}`,
      FAILURES.PgRestoreFailed,
    );
  }
  const durationMs = Date.now() - started;
  await admin(config, plan.target, (c) => c.query(`COMMENT ON DATABASE ${quoteIdent(plan.asideDb)} IS ${pgLiteral(`${DONE_COMMENT(plan.backup.id)} in ${durationMs} ms`)}`));
  return { durationMs, reused: false };
}

function pgLiteral(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

export interface CheckResult {
  check: string;
  ok: boolean;
  detail: string;
}

/** Run the configured checks (plus `SELECT 1`) against one database. */
async function runChecks(config: Config, target: string, database: string, checks: RestoreCheck[]): Promise<CheckResult[]> {
  const { db, field } = findDatabase(config, target);
  return withPgClient(
    db,
    field,
    async (c) => {
      const out: CheckResult[] = [];
      const one = await c.query<{ ok: number }>('SELECT 1 AS ok');
      out.push({ check: 'SELECT 1', ok: one.rows[0]?.ok === 1, detail: 'connected' });
      for (const check of checks) {
        if ('table' in check) {
          const label = `rows in ${check.table} >= ${check.minRows}`;
          try {
            const r = await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${check.table.split('.').map(quoteIdent).join('.')}`);
            const n = Number(r.rows[0]?.n);
            out.push({ check: label, ok: n >= check.minRows, detail: `${n} rows` });
          } catch (err) {
            out.push({ check: label, ok: false, detail: (err as Error).message });
          }
        } else {
          try {
            const r = await c.query({ text: check.sql, rowMode: 'array' });
            const first: unknown = (r.rows[0] as unknown[] | undefined)?.[0];
            // count(*) and other int8/numeric values arrive as strings: compare them as numbers.
            const numeric = typeof first === 'bigint' || (typeof first === 'string' && /^-?\d+(\.\d+)?$/.test(first));
            const value = numeric ? Number(first) : first;
            const ok = check.expect === undefined || String(value) === String(check.expect);
            out.push({ check: check.name, ok, detail: check.expect === undefined ? 'query ran' : `got ${JSON.stringify(value)}, want ${JSON.stringify(check.expect)}` });
          } catch (err) {
            out.push({ check: check.name, ok: false, detail: (err as Error).message });
          }
        }
      }
      return out;
    },
    database,
  );
}

// Idempotent: read-only queries against the restored copy.
export async function verifyRestoredCopy(config: Config, plan: RestorePlan): Promise<CheckResult[]> {
  const results = await runChecks(config, plan.target, plan.asideDb, plan.checks);
  const failed = results.filter((r) => !r.ok);
  if (failed.length) {
    throw ApplicationFailure.nonRetryable(
      `restored copy ${plan.asideDb} failed ${failed.length} check(s): ${failed.map((f) => `${f.check} (${f.detail})`).join('; ')}`,
      FAILURES.VerificationFailed,
      results,
    );
  }
  return results;
}

/** Let sessions in again (best effort: a name that does not exist is skipped). */
async function allowConnections(c: pg.Client, names: string[]): Promise<void> {
  for (const n of names) await c.query(`ALTER DATABASE ${quoteIdent(n)} WITH ALLOW_CONNECTIONS true`).catch(() => undefined);
}

/**
 * Keep new sessions out of the named databases and end the ones there, so they can be renamed. If that fails
 * (e.g. a role that is not superuser may not end a superuser's session), the databases accept connections again
 * before the error is thrown: a failed quiesce never leaves production refusing connections.
 */
async function quiesce(c: pg.Client, names: string[]): Promise<number> {
  try {
    for (const n of names) await c.query(`ALTER DATABASE ${quoteIdent(n)} WITH ALLOW_CONNECTIONS false`);
    const r = await c.query<{ n: number }>(
      'SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = ANY($1) AND pid <> pg_backend_pid()',
      [names],
    );
    return r.rows[0]?.n ?? 0;
  } catch (err) {
    await allowConnections(c, names);
    if ((err as { code?: string }).code === '42501') {
      // insufficient_privilege does not go away by retrying (and services may be stopped meanwhile).
      throw ApplicationFailure.nonRetryable(
        `cannot keep sessions out of ${names.join(', ')} to rename them: ${redact((err as Error).message)}` +
          ' (the target user must own the databases and be allowed to end the sessions on them: a superuser, or a member of pg_signal_backend when no superuser is connected)',
        FAILURES.QuiesceRefused,
      );
    }
    throw err;
  }
}

export interface SwapResult {
  state: 'swapped' | 'already swapped';
  terminatedSessions: number;
}

/**
 * Production ← restored copy, with the old database kept under plan.oldDb: both renames in ONE transaction.
 * Idempotent by the names that exist: old + production and no copy means a previous attempt already swapped.
 */
export async function swapDatabases(config: Config, plan: RestorePlan): Promise<SwapResult> {
  return admin(config, plan.target, async (c) => {
    const has = await existing(c, [plan.database, plan.asideDb, plan.oldDb]);
    if (has.has(plan.oldDb) && has.has(plan.database) && !has.has(plan.asideDb)) {
      await allowConnections(c, [plan.database, plan.oldDb]);
      return { state: 'already swapped', terminatedSessions: 0 };
    }
    if (!(has.has(plan.database) && has.has(plan.asideDb) && !has.has(plan.oldDb))) {
      throw ApplicationFailure.nonRetryable(`cannot swap: unexpected databases present (${[...has].join(', ') || 'none'})`, FAILURES.SwapStateUnexpected);
    }
    const terminated = await quiesce(c, [plan.database, plan.asideDb]);
    await c.query('BEGIN');
    try {
      await c.query(`ALTER DATABASE ${quoteIdent(plan.database)} RENAME TO ${quoteIdent(plan.oldDb)}`);
      await c.query(`ALTER DATABASE ${quoteIdent(plan.asideDb)} RENAME TO ${quoteIdent(plan.database)}`);
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK');
      await allowConnections(c, [plan.database, plan.asideDb]);
      throw err;
    }
    for (const n of [plan.database, plan.oldDb]) await c.query(`ALTER DATABASE ${quoteIdent(n)} WITH ALLOW_CONNECTIONS true`);
    return { state: 'swapped', terminatedSessions: terminated };
  });
}

/**
 * Compensation of the swap: production ← the pre-restore database again; the restored copy goes to plan.failedDb.
 * Idempotent by the names that exist: without plan.oldDb the swap never happened (or an earlier attempt already
 * swapped back, leaving plan.failedDb). Either way production and the copy accept connections again: a swap that
 * failed after keeping sessions out (or a worker that died there) must not leave production refusing them.
 */
export async function swapBack(config: Config, plan: RestorePlan): Promise<{ state: 'swapped back' | 'already swapped back' | 'nothing to undo' }> {
  return admin(config, plan.target, async (c) => {
    const has = await existing(c, [plan.database, plan.oldDb, plan.failedDb, plan.asideDb]);
    if (!has.has(plan.oldDb)) {
      await allowConnections(c, [plan.database, plan.asideDb, plan.failedDb].filter((n) => has.has(n)));
      return { state: has.has(plan.failedDb) ? 'already swapped back' : 'nothing to undo' };
    }
    const names = [plan.oldDb, ...(has.has(plan.database) ? [plan.database] : [])];
    await quiesce(c, names);
    await c.query('BEGIN');
    try {
      if (has.has(plan.database)) {
        await c.query(`ALTER DATABASE ${quoteIdent(plan.database)} RENAME TO ${quoteIdent(plan.failedDb)}`);
      }
      await c.query(`ALTER DATABASE ${quoteIdent(plan.oldDb)} RENAME TO ${quoteIdent(plan.database)}`);
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK');
      throw err;
    } finally {
      await allowConnections(c, [plan.database, plan.oldDb, plan.failedDb]);
    }
    return { state: 'swapped back' };
  });
}

// Idempotent: DROP ... IF EXISTS; refuses any name that is not one of the scratch names restores create.
export async function dropScratchDatabase(config: Config, input: { target: string; database: string }): Promise<{ dropped: boolean }> {
  if (!SCRATCH.test(input.database)) {
    throw ApplicationFailure.nonRetryable(`refusing to drop "${input.database}": not a database a restore created`, FAILURES.RefusedDrop);
  }
  return admin(config, input.target, async (c, db) => {
    assertNotProduction(db, input.database, 'drop');
    const had = (await existing(c, [input.database])).has(input.database);
    await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(input.database)} WITH (FORCE)`);
    return { dropped: had };
  });
}

// Idempotent: read-only; HTTP GETs and queries. Fails (retryably) until production answers.
export async function checkProductionHealth(config: Config, plan: RestorePlan): Promise<CheckResult[]> {
  const results = await runChecks(config, plan.target, plan.database, plan.checks);
  for (const s of plan.services) {
    if (!s.healthUrl) continue;
    const r = await probeHttp(s.healthUrl, 10_000);
    const ok = r.status !== undefined && r.status >= 200 && r.status < 300;
    results.push({ check: `${s.name} ${s.healthUrl}`, ok, detail: r.status === undefined ? r.detail : `HTTP ${r.status}` });
  }
  const failed = results.filter((r) => !r.ok);
  if (failed.length) {
    throw ApplicationFailure.retryable(`health check failed: ${failed.map((f) => `${f.check} (${f.detail})`).join('; ')}`, FAILURES.HealthCheckFailed, results);
  }
  return results;
}
