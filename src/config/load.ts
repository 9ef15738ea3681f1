import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { type z } from 'zod';
import { type Config, configSchema } from './schema';

/** A config that cannot be used; `issues` name the path of each bad field ("targets.databases[0].port: ..."). */
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly issues: string[],
  ) {
    super(`invalid config ${file}:\n${issues.map((i) => `  - ${i}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export function formatPath(p: readonly PropertyKey[], root = '(root)'): string {
  let out = '';
  for (const seg of p) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (typeof seg === 'string' && /^[A-Za-z_][\w-]*$/.test(seg)) out += out ? `.${seg}` : seg;
    // A key nobody would type on purpose ("", "(", "a b"): quoted, so the message still points at it.
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out || root;
}

/** One zod issue as "path: problem" ("is required" for a missing field); `root` names the whole document. */
export function describeIssue(issue: z.core.$ZodIssue, root = '(root)'): string {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((k) => `${formatPath([...issue.path, k], root)}: unknown field`).join('\n  - ');
  }
  if (issue.code === 'invalid_type' && issue.input === undefined) {
    return `${formatPath(issue.path, root)}: is required`;
  }
  if (issue.code === 'invalid_union' && issue.errors.length) {
    // One of several shapes (a restore check is a table check or an SQL check): when the value has the shape
    // of one (its problems are inside it), that shape's problems name the field that is wrong, instead of
    // "checks[0]: Invalid input". A value of none of the shapes keeps the union's own message.
    const closest = [...issue.errors].sort((a, b) => a.length - b.length)[0]!;
    if (closest.length && closest.every((i) => i.path.length > 0)) return closest.map((i) => describeIssue({ ...i, path: [...issue.path, ...i.path] }, root)).join('\n  - ');
  }
  return `${formatPath(issue.path, root)}: ${issue.message}`;
}

/** Parse and validate config text. Relative paths in it are taken from `baseDir`. */
export function parseConfig(text: string, file = '<inline>', baseDir = process.cwd()): Config {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(file, doc.errors.map((e) => `YAML: ${e.message.split('\n')[0]}`));
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (err) {
    // e.g. an alias to an anchor that was never set, or an alias bomb.
    throw new ConfigError(file, [`YAML: ${(err as Error).message.split('\n')[0]}`]);
  }
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    throw new ConfigError(file, result.error.issues.map((i) => describeIssue(i)));
  }
  const config = result.data;
  config.backups.root = path.resolve(baseDir, config.backups.root);
  config.rotation.stateDir = path.resolve(baseDir, config.rotation.stateDir);
  for (const set of config.rotation.sets) {
    for (const f of set.envFiles) f.path = path.resolve(baseDir, f.path);
    if (set.jwt) set.jwt.jwksFile = path.resolve(baseDir, set.jwt.jwksFile);
  }
  return config;
}

export const DEFAULT_CONFIG_PATH = 'runbooks.yaml';
/** Written by `npm start` for the local demo system. */
export const DEV_CONFIG_PATH = '.runbooks/runbooks.yaml';

/** The config file to use: --config, else $RUNBOOKS_CONFIG, else ./runbooks.yaml, else the demo system's. */
export function configPath(explicit?: string): string {
  const chosen = explicit ?? process.env.RUNBOOKS_CONFIG;
  if (chosen) return path.resolve(chosen);
  if (!existsSync(DEFAULT_CONFIG_PATH) && existsSync(DEV_CONFIG_PATH)) return path.resolve(DEV_CONFIG_PATH);
  return path.resolve(DEFAULT_CONFIG_PATH);
}

export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new ConfigError(file, [`cannot read config file (${code})`]);
  }
  return parseConfig(text, file, path.dirname(file));
}
