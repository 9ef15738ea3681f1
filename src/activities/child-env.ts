/**
 * The environment a child process gets (no imports: the local test/dev stack uses it too, where execa cannot
 * load). process.ts re-exports these for the activities.
 */

/** What every child gets from the worker's environment, when set: where programs are, home, locale, time zone, temp dir. */
const BASE_ENV = ['PATH', 'HOME', 'LANG', 'LANGUAGE', 'LC_ALL', 'LC_CTYPE', 'LC_MESSAGES', 'TZ', 'TMPDIR'] as const;
/** libpq's TLS settings an operator may set for the worker (the connection itself comes from the config). */
export const PG_ENV = ['PGSSLMODE', 'PGSSLROOTCERT', 'PGSSLCERT', 'PGSSLKEY', 'PGSSLCRL', 'PGSYSCONFDIR'] as const;
/** The docker CLI's own settings (the engine address comes from the config as DOCKER_HOST). */
export const DOCKER_ENV = ['DOCKER_CONFIG', 'DOCKER_CERT_PATH', 'DOCKER_TLS_VERIFY'] as const;

/**
 * execa options for a child's environment: only BASE_ENV and `passthrough` from the worker's environment, plus
 * `set` (e.g. PGPASSWORD, DOCKER_HOST). Never the whole environment (`extendEnv: false`): the worker holds
 * every secret of the config (codec keys, tokens, passwords of other targets), which a child has no use for.
 */
export function childEnv(set: Record<string, string>, passthrough: readonly string[] = []): { env: Record<string, string>; extendEnv: false } {
  const env: Record<string, string> = {};
  for (const name of [...BASE_ENV, ...passthrough]) {
    const v = process.env[name];
    if (v !== undefined) env[name] = v;
  }
  return { env: { ...env, ...set }, extendEnv: false };
}
