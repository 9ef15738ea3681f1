import { readFileSync } from 'node:fs';
import { type Config, type SecretRef } from './schema';
import { FAILURES } from '../workflows/failures';

/** A secret reference that cannot be resolved. The message names the field and the reference, never a value. */
export class SecretError extends Error {
  constructor(message: string) {
    super(message);
    this.name = FAILURES.SecretError; // its failure type: the backup's dumps do not retry it
  }
}

function describeRef(ref: SecretRef): string {
  return 'env' in ref ? `environment variable ${ref.env}` : `file ${ref.file}`;
}

/** Every value resolved in this process, so logs and errors can be scrubbed of them. */
const resolvedValues = new Set<string>();
/** The scrubbing pattern, rebuilt when a value is added (see redact). */
let pattern: RegExp | undefined;

function remember(value: string): void {
  if (value.length < 4 || resolvedValues.has(value)) return;
  resolvedValues.add(value);
  pattern = undefined;
}

/**
 * The forms in which a secret can show up in text: as is, JSON-escaped (once, or twice for JSON inside a JSON
 * string), and URL-encoded (percent-encoding and form encoding, as in a URL or a request body).
 */
function forms(value: string): string[] {
  const json = JSON.stringify(value).slice(1, -1);
  const url = encodeURIComponent(value);
  return [value, json, JSON.stringify(json).slice(1, -1), url, url.replace(/%[0-9A-F]{2}/g, (h) => h.toLowerCase()), new URLSearchParams({ v: value }).toString().slice(2)];
}

function scrubPattern(): RegExp | undefined {
  if (pattern || resolvedValues.size === 0) return pattern;
  // Longest first: the alternation takes the first alternative that matches, so a secret that is a prefix of
  // another never leaves the longer one's tail behind.
  const all = [...new Set([...resolvedValues].flatMap(forms))].filter((f) => f.length >= 4).sort((a, b) => b.length - a.length);
  pattern = new RegExp(all.map((f) => f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g');
  return pattern;
}

export function resolveSecret(ref: SecretRef, field: string): string {
  let value: string | undefined;
  if ('env' in ref) {
    value = process.env[ref.env];
  } else {
    try {
      value = readFileSync(ref.file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new SecretError(`${field}: cannot read ${describeRef(ref)} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  if (value === undefined || value === '') {
    throw new SecretError(`${field}: ${describeRef(ref)} is not set or empty`);
  }
  remember(value);
  return value;
}

/** A secret this process made or read outside a reference (e.g. a rotated password): scrub it from logs too. */
export function registerSecret(value: string): void {
  remember(value);
}

/** Replace every secret value this process has resolved (in any of its escaped forms, longest first) with "[redacted]". */
export function redact(text: string): string {
  const re = scrubPattern();
  return re ? text.replace(re, '[redacted]') : text;
}

/**
 * A copy of `value` with redact applied to every string in it (keys too), before it is serialised: scrubbing
 * the JSON text afterwards could cut across a quote and break it, or miss a form the serialiser made.
 */
export function redactValue(value: unknown, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return redact(value);
  if (!value || typeof value !== 'object' || ArrayBuffer.isView(value)) return value;
  if (seen.has(value)) return '[circular]';
  seen.add(value);
  if (Array.isArray(value)) return value.map((v: unknown) => redactValue(v, seen));
  if (value instanceof Error) return { name: value.name, message: redact(value.message), stack: value.stack === undefined ? undefined : redact(value.stack) };
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [redact(k), redactValue(v, seen)]));
}

/** Every secret reference in the config with the path of its field. */
export function secretFields(config: Config): Array<{ field: string; ref: SecretRef }> {
  const out: Array<{ field: string; ref: SecretRef }> = [];
  if (config.temporal.apiKey) out.push({ field: 'temporal.apiKey', ref: config.temporal.apiKey });
  config.temporal.encryption?.keys.forEach((k, i) => out.push({ field: `temporal.encryption.keys[${i}].key`, ref: k.key }));
  if (config.rotation.github) out.push({ field: 'rotation.github.token', ref: config.rotation.github.token });
  config.targets.databases.forEach((d, i) => out.push({ field: `targets.databases[${i}].password`, ref: d.password }));
  config.targets.redis.forEach((r, i) => {
    if (r.password) out.push({ field: `targets.redis[${i}].password`, ref: r.password });
  });
  const email = config.notifications.email;
  if (email?.password) out.push({ field: 'notifications.email.password', ref: email.password });
  const slack = config.notifications.slack;
  if (slack) out.push({ field: 'notifications.slack.botToken', ref: slack.botToken });
  const codec = config.observability.codecServer;
  if (codec) out.push({ field: 'observability.codecServer.token', ref: codec.token });
  if (config.chatops) out.push({ field: 'chatops.signingSecret', ref: config.chatops.signingSecret });
  // Incidents: SMS provider, acknowledge-link key, the receiver's credentials.
  const sms = config.escalation.sms;
  if (sms) out.push({ field: 'escalation.sms.authToken', ref: sms.authToken });
  const inc = config.incidents;
  if (inc.ackSecret) out.push({ field: 'incidents.ackSecret', ref: inc.ackSecret });
  if (inc.auth) out.push('bearerToken' in inc.auth ? { field: 'incidents.auth.bearerToken', ref: inc.auth.bearerToken } : { field: 'incidents.auth.password', ref: inc.auth.password });
  return out;
}

/** Resolve every secret once, so a worker refuses to start with a clear message instead of failing mid-runbook. */
export function checkSecrets(config: Config): string[] {
  const problems: string[] = [];
  for (const { field, ref } of secretFields(config)) {
    try {
      resolveSecret(ref, field);
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  return problems;
}
