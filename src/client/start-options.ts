import { type SearchAttributePair } from '@temporalio/common';
import { type RunbookDefinition } from '../config/runbooks';
import { type Config } from '../config/schema';
import { redact, redactValue } from '../config/secrets';
import { ENVIRONMENT, RUNBOOK_NAME, RUNBOOK_TARGET, TRIGGERED_BY } from '../config/search-attributes';

/**
 * What every runbook start carries so the Web UI tells the story without opening the history: search
 * attributes to filter by, a one-line static summary and a Markdown details block (shown at the top of
 * the run), and a memo with the parameters (redacted). One helper for the CLI, the schedules and ChatOps.
 */
export interface RunbookStartMetadata {
  typedSearchAttributes: SearchAttributePair[];
  staticSummary: string;
  staticDetails: string;
  memo: Record<string, unknown>;
}

/** Parameter names whose values never go into a memo or a summary, whatever they hold. */
const SECRET_KEY = /pass(word)?|secret|token|api[-_]?key|private|credential/i;

const cut = (s: string): string => (s.length > 200 ? `${s.slice(0, 200)}…` : s);

/** Input parameters as they may be shown: secret-looking keys hidden, resolved secret values scrubbed, long text cut. */
export function redactParams(input: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (typeof input !== 'object' || input === null) return out;
  for (const [k, v] of Object.entries(input)) {
    if (SECRET_KEY.test(k)) out[k] = '[redacted]';
    else if (typeof v === 'string') out[k] = cut(redact(v)); // redact first: a cut could halve a secret and keep its start
    else if (typeof v === 'number' || typeof v === 'boolean' || v === null) out[k] = v;
    else out[k] = JSON.stringify(redactValue(v)) ?? '';
  }
  return out;
}

/** `production` or `non-production`, from the target's `production:` flag (unknown targets count as non-production). */
export function environmentOf(config: Config, target: string): 'production' | 'non-production' {
  const t = [...config.targets.databases, ...config.targets.redis].find((x) => x.name === target);
  return t?.production ? 'production' : 'non-production';
}

export function runbookStartMetadata(
  config: Config,
  def: Pick<RunbookDefinition, 'name' | 'summary' | 'target'>,
  input: unknown,
  triggeredBy: string,
): RunbookStartMetadata {
  const target = def.target(input);
  const environment = environmentOf(config, target);
  const params = redactParams(input);
  const reason = typeof params.reason === 'string' ? `: ${params.reason}` : '';
  const rows = Object.entries(params).map(([k, v]) => `| ${k} | ${String(v).replace(/\|/g, '\\|').replace(/\n/g, ' ')} |`);
  return {
    typedSearchAttributes: [
      { key: RUNBOOK_NAME, value: def.name },
      { key: RUNBOOK_TARGET, value: target },
      { key: ENVIRONMENT, value: environment },
      { key: TRIGGERED_BY, value: triggeredBy },
    ],
    // One line in the runs list and at the top of the run page.
    staticSummary: `${def.name} ${target} (${environment}) by ${triggeredBy}${reason}`.slice(0, 200),
    staticDetails: [
      `**${def.name}**: ${def.summary}`,
      '',
      `Target \`${target}\` (${environment}), started by \`${triggeredBy}\`.`,
      '',
      '| parameter | value |',
      '| --- | --- |',
      ...rows,
      '',
      `Follow it: \`runbook describe <workflow id>\` (current step and timeline).`,
    ].join('\n'),
    memo: { runbook: def.name, target, environment, triggeredBy, params },
  };
}
