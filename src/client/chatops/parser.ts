/**
 * `/runbook ...` as typed in Slack or Mattermost, parsed into a command. Pure and total: any text gives a command
 * or a list of problems, never an exception. Values are validated later against the runbook's zod schema.
 *
 *   /runbook help | list [target] | status <id> | cancel <id>
 *   /runbook <runbook> key=value ... [--dry-run]           values may be quoted: reason="table damaged"
 *   /runbook approve|reject <id> [note ...]                 (the buttons do the same)
 *   /runbook answer <id> retry|skip|abort [note ...]        (a failed step's question)
 */
export type ChatCommand =
  | { kind: 'help' }
  | { kind: 'list'; target?: string }
  | { kind: 'status' | 'cancel'; workflowId: string }
  | { kind: 'approve' | 'reject'; workflowId: string; note?: string }
  | { kind: 'answer'; workflowId: string; answer: 'retry' | 'skip' | 'abort'; note?: string }
  | { kind: 'start'; runbook: string; params: Record<string, string>; dryRun: boolean }
  | { kind: 'invalid'; problems: string[] };

const WORKFLOW_ID = /^[A-Za-z0-9][A-Za-z0-9_.:/@+-]{0,199}$/;
const RUNBOOK = /^[a-z][a-z0-9-]{0,39}$/;
const KEY = /^[A-Za-z][A-Za-z0-9_]{0,39}$/;
const MAX_TEXT = 4000;

/** Slack escapes &, < and > in command text. */
function unescapeSlack(text: string): string {
  return text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

const QUOTES: Record<string, string> = { '"': '"', "'": "'", '“': '”', '‘': '’', '”': '”' };

/** Split on whitespace; "…", '…' and Slack's curly quotes group words. Undefined when a quote is left open. */
export function tokenize(text: string): string[] | undefined {
  const tokens: string[] = [];
  let current = '';
  let inToken = false;
  let close: string | undefined;
  for (const ch of text) {
    if (close) {
      if (ch === close) close = undefined;
      else current += ch;
    } else if (/\s/.test(ch)) {
      if (inToken) tokens.push(current);
      current = '';
      inToken = false;
    } else if (ch in QUOTES) {
      close = QUOTES[ch];
      inToken = true;
    } else {
      current += ch;
      inToken = true;
    }
  }
  if (close) return undefined;
  if (inToken) tokens.push(current);
  return tokens;
}

function invalid(...problems: string[]): ChatCommand {
  return { kind: 'invalid', problems };
}

function idArg(verb: string, tokens: string[]): string | { problem: string } {
  const id = tokens[1];
  if (id === undefined) return { problem: `${verb}: give a workflow id, e.g. /runbook ${verb} restore/shop` };
  if (!WORKFLOW_ID.test(id)) return { problem: `${verb}: "${clip(id)}" is not a workflow id` };
  return id;
}

function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

export function parseCommand(rawText: string): ChatCommand {
  if (typeof rawText !== 'string') return invalid('empty command');
  if (rawText.length > MAX_TEXT) return invalid(`command too long (${rawText.length} characters, at most ${MAX_TEXT})`);
  const tokens = tokenize(unescapeSlack(rawText));
  if (!tokens) return invalid('a quote is not closed');
  const [verb, ...rest] = tokens;
  if (verb === undefined || verb === 'help') return { kind: 'help' };
  if (verb === 'list') {
    if (rest.length === 0) return { kind: 'list' };
    if (rest.length === 1 && /^[a-z0-9][a-z0-9_-]{0,62}$/.test(rest[0]!)) return { kind: 'list', target: rest[0] };
    return invalid('list: takes at most a target name');
  }
  if (verb === 'status' || verb === 'cancel') {
    const id = idArg(verb, tokens);
    if (typeof id !== 'string') return invalid(id.problem);
    if (rest.length > 1) return invalid(`${verb}: takes one workflow id`);
    return { kind: verb, workflowId: id };
  }
  if (verb === 'approve' || verb === 'reject') {
    const id = idArg(verb, tokens);
    if (typeof id !== 'string') return invalid(id.problem);
    const note = rest.slice(1).join(' ').trim();
    return { kind: verb, workflowId: id, ...(note ? { note } : {}) };
  }
  if (verb === 'answer') {
    const id = idArg(verb, tokens);
    if (typeof id !== 'string') return invalid(id.problem);
    const answer = rest[1];
    if (answer !== 'retry' && answer !== 'skip' && answer !== 'abort') return invalid('answer: say retry, skip or abort after the workflow id');
    const note = rest.slice(2).join(' ').trim();
    return { kind: 'answer', workflowId: id, answer, ...(note ? { note } : {}) };
  }
  if (!RUNBOOK.test(verb)) return invalid(`"${clip(verb)}" is not a runbook name or command (try /runbook help)`);
  const params: Record<string, string> = {};
  const problems: string[] = [];
  let dryRun = false;
  for (const t of rest) {
    if (t === '--dry-run') {
      dryRun = true;
      continue;
    }
    if (t.startsWith('--')) {
      problems.push(`${clip(t)}: unknown option (only --dry-run)`);
      continue;
    }
    const eq = t.indexOf('=');
    const key = eq > 0 ? t.slice(0, eq) : '';
    if (!KEY.test(key)) {
      problems.push(`expected key=value, got "${clip(t)}"`);
      continue;
    }
    if (Object.prototype.hasOwnProperty.call(params, key)) {
      problems.push(`${key}: given twice`);
      continue;
    }
    params[key] = t.slice(eq + 1);
  }
  if (problems.length) return { kind: 'invalid', problems };
  return { kind: 'start', runbook: verb, params, dryRun };
}
