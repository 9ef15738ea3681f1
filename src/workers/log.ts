import { createHash } from 'node:crypto';
import { types } from 'node:util';
import { redactValue } from '../config/secrets';

/**
 * Log entry metadata as an operator reads it: an Error becomes its failure type and message (JSON alone
 * turns it into `{}`), a task token becomes a short hash (the whole token is a credential for completing
 * the task), and every resolved secret value is scrubbed.
 */

const TASK_TOKEN_KEY = /^(base64)?task_?token$/i;

/** Enough of a task token to tell tasks apart in the log, never the token itself. */
export function tokenHash(token: unknown): string {
  const bytes = token instanceof Uint8Array ? token : Buffer.from(String(token));
  return `sha256:${createHash('sha256').update(bytes).digest('hex').slice(0, 12)}`;
}

/** An error's name, failure type (ApplicationFailure and friends), message and causes; the stack only for non-Temporal errors. */
export function errorFields(err: Error, depth = 0): Record<string, unknown> {
  const e = err as Error & { type?: unknown; nonRetryable?: unknown; failure?: unknown };
  const out: Record<string, unknown> = { name: e.name, message: e.message };
  if (typeof e.type === 'string') out.type = e.type;
  if (e.nonRetryable === true) out.nonRetryable = true;
  // A TemporalFailure's stack is the SDK's; a plain error's (a bug, a failed workflow task) is where it broke.
  if (e.failure === undefined && !/Failure$/.test(e.name) && e.stack) out.stack = e.stack;
  if (depth < 4 && isError(e.cause)) out.cause = errorFields(e.cause, depth + 1);
  return out;
}

/** Errors from the workflow sandbox come from another realm: `instanceof Error` is false for them. */
function isError(v: unknown): v is Error {
  return types.isNativeError(v) || v instanceof Error;
}

function replacer(key: string, value: unknown): unknown {
  if (TASK_TOKEN_KEY.test(key) && value !== undefined && value !== null) return tokenHash(value);
  if (isError(value)) return errorFields(value);
  return value;
}

/** Log entry metadata ready for the JSON log line: errors readable, task tokens hashed, secrets scrubbed. */
export function logFields(meta: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!meta) return {};
  try {
    // Errors and tokens first (the replacer), then every string scrubbed (redactValue, before the line is serialised).
    return redactValue(JSON.parse(JSON.stringify(meta, replacer))) as Record<string, unknown>;
  } catch {
    return { meta: '[unserializable]' };
  }
}
