import fc from 'fast-check';
import { WorkflowNotFoundError } from '@temporalio/client';
import { type Backend, ChatOps } from '../src/client/chatops/commands';
import { parseCommand, tokenize } from '../src/client/chatops/parser';
import { Rbac } from '../src/client/chatops/rbac';
import { startChatopsServer } from '../src/client/chatops/server';
import { sign, verifySignature } from '../src/client/chatops/signature';
import { commandBody, signedPost } from './support/chat';
import { startFakeSlack } from './support/slack-api';
import { parseConfig } from '../src/config/load';
import { type RunbookDefinition, findRunbook } from '../src/config/runbooks';

// The command parser and the whole command path (parse → validate → RBAC) under thousands of generated inputs, with
// a recording Temporal backend: it never throws, and what starts is judged by a model of the rules, not by the schemas.

const config = parseConfig(
  `
temporal: { taskQueue: fuzz }
targets:
  databases:
    - { name: shop, database: shop, user: u, password: { env: X } }
    - { name: billing, database: billing, user: u, password: { env: X }, production: true }
  redis:
    - { name: cache, password: { env: X } }
chatops:
  signingSecret: { env: SIGNING }
  people: { UOPS: alice }
  roles: { ops: [UOPS] }
  rules:
    - { runbooks: ['*'], targets: [shop, cache], run: [ops] }
`,
  'fuzz.yaml',
);

interface Started {
  def: RunbookDefinition;
  input: unknown;
  workflowId: string;
}

function recordingChatOps(): { chatops: ChatOps; started: Started[] } {
  const started: Started[] = [];
  const backend: Backend = {
    start: (def, input, opts) => {
      started.push({ def, input, workflowId: opts.workflowId });
      return Promise.resolve();
    },
    describe: (workflowId) => Promise.resolve({ workflowId, type: 'backup', state: 'RUNNING', runbook: 'backup', target: 'shop' }),
    list: () => Promise.resolve([]),
    cancel: () => Promise.resolve(),
    update: () => Promise.resolve({ decision: 'approved', by: 'x', at: 'now', step: 's', answer: 'retry' }),
  };
  return { chatops: new ChatOps(config, backend, new Rbac(config, () => Promise.resolve([]))), started };
}

const RUNS = Number(process.env.FUZZ_RUNS ?? 3000);

test('any text: the parser returns a command or problems, never throws', () => {
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 300 }), fc.string({ maxLength: 1200 })), (text) => {
      const cmd = parseCommand(text);
      expect(['help', 'list', 'status', 'cancel', 'approve', 'reject', 'answer', 'start', 'invalid']).toContain(cmd.kind);
      if (cmd.kind === 'invalid') expect(cmd.problems.length).toBeGreaterThan(0);
    }),
    { numRuns: RUNS },
  );
});

const word = fc.stringMatching(/^[a-zA-Z0-9_=\-.:/"'“” ]{0,12}$/);
const key = fc.oneof(fc.constantFrom('target', 'kind', 'prune', 'reason', 'backup', 'dryRun', 'requestedBy', 'colour'), word);
const value = fc.oneof(
  fc.constantFrom('shop', 'billing', 'cache', 'nope', 'true', 'false', 'maybe', 'latest', 'postgres', 'redis', '"orders table damaged"', 'x', ''),
  word,
);
const token = fc.oneof(
  fc.tuple(key, value).map(([k, v]) => `${k}=${v}`),
  fc.constantFrom('--dry-run', '--force', '"', 'target', '=shop'),
  word,
);
const anyCommand = fc
  .tuple(fc.constantFrom('backup', 'restore', 'verify-backup', 'reboot', 'status', 'cancel', 'approve', 'answer', ''), fc.array(token, { maxLength: 6 }))
  .map(([verb, tokens]) => [verb, ...tokens].join(' '));
// Valid commands with a few random tokens added or not, so both sides of "valid" are well covered.
const nearlyValid = fc
  .tuple(
    fc.constantFrom('backup target=shop', 'backup target=cache prune=false', 'restore target=shop reason="orders gone"', 'verify-backup target=shop', 'restore target=billing reason=why'),
    fc.array(token, { maxLength: 2 }),
  )
  .map(([base, tokens]) => [base, ...tokens].join(' '));
const commandText = fc.oneof(anyCommand, nearlyValid);

test('any command from anyone: the reply names the problem, and only valid, permitted input starts a run', async () => {
  const { chatops, started } = recordingChatOps();
  await fc.assert(
    fc.asyncProperty(commandText, fc.constantFrom('UOPS', 'UNOBODY'), async (text, user) => {
      const before = started.length;
      const reply = await chatops.command({ userId: user, channelId: 'C1', text, requestTs: 1_790_000_000 });
      expect(typeof reply.text).toBe('string');
      const now = started.slice(before);
      expect(now.length).toBeLessThanOrEqual(1);
      for (const s of now) {
        // Started ⇒ by the one person the rules let run, on a target the rules cover, named in the command.
        const target = (s.input as { target?: unknown }).target;
        expect(['shop', 'cache']).toContain(target);
        expect(text).toMatch(new RegExp(`(^|\\s)target=${String(target)}(\\s|$)`));
        expect(user).toBe('UOPS');
        expect(reply.text).toContain(s.workflowId);
      }
      // A command meant to start a run that did not start is answered to the user alone, with the reason.
      if (now.length === 0 && !/^(status|cancel|approve|answer)\b/.test(text)) expect(reply.response_type).toBe('ephemeral');
    }),
    { numRuns: RUNS },
  );
  expect(started.length).toBeGreaterThan(0); // the generator does reach valid commands
});

/**
 * Commands built from a model whose outcome is known from how they were built (not from the runbooks' schemas):
 * the rules let UOPS run anything on shop and cache; backup takes prune and reason; restore needs a reason of 3+
 * characters and a database; verify-backup takes only a database. One optional mistake spoils a command.
 */
interface ModelCase {
  user: 'UOPS' | 'UNOBODY';
  verb: 'backup' | 'restore' | 'verify-backup';
  target: 'shop' | 'billing' | 'cache' | 'nope';
  prune?: boolean;
  reason?: string;
  dryRun?: boolean;
  mistake?: 'colour=red' | 'prune=maybe' | 'requestedBy=bob' | 'twice' | 'quote' | '--force';
}
const modelCase: fc.Arbitrary<ModelCase> = fc.record(
  {
    user: fc.constantFrom('UOPS' as const, 'UOPS' as const, 'UNOBODY' as const),
    verb: fc.constantFrom('backup' as const, 'restore' as const, 'verify-backup' as const),
    target: fc.constantFrom('shop' as const, 'shop' as const, 'cache' as const, 'billing' as const, 'nope' as const),
    prune: fc.boolean(),
    reason: fc.stringMatching(/^[a-z]{3,10}( [a-z]{1,8}){0,3}$/),
    dryRun: fc.boolean(),
    mistake: fc.constantFrom('colour=red' as const, 'prune=maybe' as const, 'requestedBy=bob' as const, 'twice' as const, 'quote' as const, '--force' as const),
    roll: fc.nat(3),
  },
  { requiredKeys: ['user', 'verb', 'target', 'roll'] },
)
  // A mistake in one command of four, so valid ones are common too.
  .map(({ roll, ...c }): ModelCase => (roll === 0 ? c : { ...c, mistake: undefined }))
  .map((c) => (c.verb === 'verify-backup' ? { ...c, prune: undefined, reason: undefined, dryRun: undefined } : c.verb === 'backup' ? { ...c, dryRun: undefined } : { ...c, prune: undefined }));

function modelText(c: ModelCase): string {
  const parts = [c.verb, `target=${c.target}`];
  if (c.prune !== undefined) parts.push(`prune=${c.prune}`);
  if (c.reason !== undefined) parts.push(`reason="${c.reason}"`);
  if (c.dryRun) parts.push('--dry-run');
  if (c.mistake === 'twice') parts.push('target=shop');
  else if (c.mistake === 'quote') parts.push('"unclosed');
  else if (c.mistake) parts.push(c.mistake);
  return parts.join(' ');
}

/** What must happen: the input that starts, or the reasons (any of which the reply must give) it does not. */
function modelOutcome(c: ModelCase): { start: Record<string, unknown> } | { refuse: string[] } {
  const why: string[] = [];
  if (c.user !== 'UOPS') why.push('may not run');
  if (c.target === 'nope') why.push('unknown target', 'unknown database');
  if (c.target === 'billing') why.push('no chatops rule covers it');
  if (c.target === 'cache' && c.verb !== 'backup') why.push('unknown database');
  if (c.verb === 'restore' && c.reason === undefined) why.push('reason: is required');
  const mistakes: Record<NonNullable<ModelCase['mistake']>, string> = {
    'colour=red': 'colour: unknown parameter',
    'prune=maybe': c.verb === 'backup' ? 'prune: must be true or false' : 'prune: unknown parameter',
    'requestedBy=bob': c.verb === 'restore' ? 'requestedBy: set from who you are' : 'requestedBy',
    twice: 'target: given twice',
    quote: 'a quote is not closed',
    '--force': '--force: unknown option',
  };
  if (c.mistake) why.push(mistakes[c.mistake]);
  if (c.mistake === 'prune=maybe' && c.prune !== undefined) why.push('prune: given twice');
  if (why.length) return { refuse: why };
  if (c.verb === 'backup') return { start: { target: c.target, kind: c.target === 'cache' ? 'redis' : 'postgres', prune: c.prune ?? true, ...(c.reason === undefined ? {} : { reason: c.reason }) } };
  if (c.verb === 'restore') return { start: { target: c.target, reason: c.reason, backup: 'latest', dryRun: c.dryRun ?? false } };
  return { start: { target: c.target } };
}

test('modelled commands: exactly the valid, permitted ones start, with the input given; every other one is refused with a reason (counted)', async () => {
  const { chatops, started } = recordingChatOps();
  const count = { bad: 0, refused: 0, good: 0, started: 0 };
  await fc.assert(
    fc.asyncProperty(modelCase, async (c) => {
      const expected = modelOutcome(c);
      const before = started.length;
      const reply = await chatops.command({ userId: c.user, channelId: 'C1', text: modelText(c), requestTs: 1_790_000_000 });
      const now = started.slice(before);
      if ('start' in expected) {
        count.good += 1;
        expect(now).toHaveLength(1);
        expect(now[0]!.def.name).toBe(c.verb);
        expect(now[0]!.input).toMatchObject(expected.start);
        expect(reply.response_type).toBe('in_channel');
        expect(reply.text).toContain(now[0]!.workflowId);
        count.started += 1;
        return;
      }
      count.bad += 1;
      expect(now).toEqual([]);
      expect(reply.response_type).toBe('ephemeral');
      expect({ reply: reply.text, named: expected.refuse.some((why) => reply.text.includes(why)) }).toMatchObject({ named: true });
      count.refused += 1;
    }),
    { numRuns: RUNS },
  );
  expect(count.refused).toBe(count.bad);
  expect(count.started).toBe(count.good);
  expect(Math.min(count.bad, count.good)).toBeGreaterThan(RUNS / 10);
});

test.each([
  ['backup target=shop colour=red', 'colour: unknown parameter for runbook backup'],
  ['backup target=nope', 'target: unknown target "nope"'],
  ['backup target=shop prune=maybe', 'prune: must be true or false'],
  ['backup target=shop --dry-run', '--dry-run: runbook backup has no dry run'],
  ['restore target=shop', 'reason: is required'],
  ['restore target=shop reason="it broke" requestedBy=bob', 'requestedBy: set from who you are'],
  ['restore target=shop reason="it broke', 'a quote is not closed'],
  ['backup target=shop target=cache', 'target: given twice'],
  ['reboot-the-world', 'runbook: unknown runbook "reboot-the-world"'],
  ['backup target=billing', 'no chatops rule covers it'],
  ['status', 'status: give a workflow id'],
])('%s → refused: %s', async (text, message) => {
  const { chatops, started } = recordingChatOps();
  const reply = await chatops.command({ userId: 'UOPS', channelId: 'C1', text, requestTs: 1_790_000_000 });
  expect(reply.text).toContain(message);
  expect(reply.response_type).toBe('ephemeral');
  expect(started).toEqual([]);
});

test('a valid command starts one run with the validated input, the requester recorded and a deterministic id', async () => {
  const { chatops, started } = recordingChatOps();
  const reply = await chatops.command({ userId: 'UOPS', userName: 'alice', channelId: 'C1', text: 'restore target=shop reason=“orders table damaged” --dry-run', requestTs: 1_790_000_000 });
  expect(reply.response_type).toBe('in_channel');
  expect(started).toHaveLength(1);
  expect(started[0]!.input).toEqual({ target: 'shop', backup: 'latest', dryRun: true, reason: 'orders table damaged', requestedBy: 'alice' });
  expect(started[0]!.workflowId).toBe('restore/shop');
  expect(findRunbook('backup').workflowId({ target: 'shop' }, new Date(1_790_000_000_000))).toBe('backup/shop/2026-09-21T14:13:20Z');
});

test('tokenize: quotes group words (Slack sends curly quotes), an open quote is an error', () => {
  expect(tokenize('a "b c" “d e” \'f\'')).toEqual(['a', 'b c', 'd e', 'f']);
  expect(tokenize('reason="x y"')).toEqual(['reason=x y']);
  expect(tokenize('a "b')).toBeUndefined();
});

test('signatures: v0 HMAC-SHA256 of v0:ts:body; wrong secret, altered body, stale or future timestamps are refused', () => {
  const now = 1_790_000_000_000;
  const ts = String(now / 1000);
  const body = 'text=backup+target%3Dshop';
  const good = sign('s3cret', ts, body);
  expect(good).toMatch(/^v0=[0-9a-f]{64}$/);
  expect(verifySignature('s3cret', { signature: good, timestamp: ts }, body, now)).toEqual({ ok: true });
  expect(verifySignature('other', { signature: good, timestamp: ts }, body, now)).toEqual({ ok: false, reason: 'bad signature' });
  expect(verifySignature('s3cret', { signature: good, timestamp: ts }, `${body}x`, now)).toEqual({ ok: false, reason: 'bad signature' });
  expect(verifySignature('s3cret', { signature: good.slice(0, -1), timestamp: ts }, body, now)).toEqual({ ok: false, reason: 'bad signature' });
  expect(verifySignature('s3cret', { signature: good, timestamp: ts }, body, now + 301_000)).toEqual({ ok: false, reason: 'stale timestamp' });
  expect(verifySignature('s3cret', { signature: good, timestamp: ts }, body, now - 301_000)).toEqual({ ok: false, reason: 'stale timestamp' });
  expect(verifySignature('s3cret', { timestamp: ts }, body, now)).toEqual({ ok: false, reason: 'missing signature headers' });
});

test('a command slower than Slack waits is acknowledged at once and answered on response_url', async () => {
  const slack = await startFakeSlack();
  const started: string[] = [];
  const slow: Backend = {
    start: async (_def, _input, opts) => {
      await new Promise((r) => setTimeout(r, 300));
      started.push(opts.workflowId);
    },
    describe: () => Promise.reject(new Error('unused')),
    list: () => Promise.resolve([]),
    cancel: () => Promise.resolve(),
    update: () => Promise.resolve({}),
  };
  const server = await startChatopsServer({ chatops: new ChatOps(config, slow, new Rbac(config, () => Promise.resolve([]))), signingSecret: 's', ackWithinMs: 50 });
  try {
    const body = commandBody({ user_id: 'UOPS', text: 'backup target=shop', response_url: slack.responseUrl('slow') });
    const r = await signedPost(`${server.url}/slack/commands`, 's', body);
    expect(r.json()).toEqual({ response_type: 'ephemeral', text: ':hourglass: working on it…' });
    for (const deadline = Date.now() + 10_000; !slack.responses.slow && Date.now() < deadline; ) await new Promise((res) => setTimeout(res, 20));
    expect(slack.responses.slow).toEqual([expect.objectContaining({ response_type: 'in_channel', text: expect.stringContaining(`\`${started[0]}\``) })]);
  } finally {
    await server.close();
    await slack.close();
  }
});

test('permission before parameters: who may not run a runbook gets one answer, whatever parameters they typed', async () => {
  const { chatops, started } = recordingChatOps();
  let asked = 0;
  await fc.assert(
    fc.asyncProperty(commandText, async (text) => {
      const cmd = parseCommand(text);
      if (cmd.kind !== 'start') return;
      let runbook: string;
      try {
        runbook = findRunbook(cmd.runbook).name;
      } catch {
        return; // an unknown runbook name: the help lists them anyway
      }
      asked += 1;
      const reply = await chatops.command({ userId: 'UNOBODY', channelId: 'C1', text, requestTs: 1_790_000_000 });
      expect(reply).toEqual({ response_type: 'ephemeral', text: `:no_entry: <@UNOBODY> may not run ${runbook} (allowed: ops)` });
    }),
    { numRuns: RUNS },
  );
  expect(started).toEqual([]);
  expect(asked).toBeGreaterThan(RUNS / 5);
});

describe('reads follow RBAC: status and list show only runs of runbooks and targets the user may run or approve', () => {
  const rbacConfig = parseConfig(
    `
temporal: { taskQueue: fuzz }
targets:
  databases:
    - { name: shop, database: shop, user: u, password: { env: X } }
    - { name: billing, database: billing, user: u, password: { env: X }, production: true }
chatops:
  signingSecret: { env: SIGNING }
  roles: { ops: [UOPS], leads: [ULEAD] }
  rules:
    - { runbooks: [backup], targets: [shop], run: [ops] }
    - { runbooks: [restore], targets: [billing], approve: [leads] }
`,
    'rbac.yaml',
  );
  const runs = [
    { workflowId: 'backup/shop/2026-11-30T10:00:00Z', type: 'backup', state: 'COMPLETED', runbook: 'backup', target: 'shop', startTime: '2026-11-30T10:00:00Z' },
    { workflowId: 'restore/billing', type: 'restoreDatabase', state: 'RUNNING', runbook: 'restore', target: 'billing', startTime: '2026-11-30T11:00:00Z' },
    { workflowId: 'incident/abc', type: 'incident', state: 'RUNNING', runbook: 'incident', target: 'abc', startTime: '2026-11-30T12:00:00Z' },
    { workflowId: 'something-else', type: 'other', state: 'RUNNING', startTime: '2026-11-30T13:00:00Z' },
  ];
  const updates: string[] = [];
  const backend: Backend = {
    start: () => Promise.reject(new Error('nothing starts here')),
    describe: (id) => {
      const r = runs.find((x) => x.workflowId === id);
      return r ? Promise.resolve(r) : Promise.reject(new WorkflowNotFoundError('workflow not found', id, undefined));
    },
    list: (_limit, target) => Promise.resolve(runs.filter((r) => !target || r.target === target)),
    cancel: () => Promise.resolve(),
    update: (id, update) => {
      updates.push(`${update.name} ${id}`);
      return Promise.resolve({});
    },
  };
  const chatops = new ChatOps(rbacConfig, backend, new Rbac(rbacConfig, () => Promise.resolve([])));
  const say = async (user: string, text: string) => (await chatops.command({ userId: user, channelId: 'C1', text, requestTs: 1_790_000_000 })).text;
  const hidden = (user: string, id: string) => `:no_entry: <@${user}> may not see \`${id}\`: it is not a run of a runbook and target you may run or approve`;

  test('an outsider: status of an existing and of a made-up run get the same refusal; list is refused', async () => {
    for (const id of ['backup/shop/2026-11-30T10:00:00Z', 'restore/billing', 'incident/abc', 'no/such-run']) expect(await say('UNOBODY', `status ${id}`)).toBe(hidden('UNOBODY', id));
    expect(await say('UNOBODY', 'list')).toBe(':no_entry: <@UNOBODY> may not list runs: no chatops rule lets you run or approve anything');
    expect(await say('UNOBODY', 'list shop')).toBe(':no_entry: <@UNOBODY> may not list runs of shop: no chatops rule lets you run or approve anything on shop');
  });

  test('an operator sees the runs they may run, an approver the runs they may approve, and nothing else', async () => {
    expect(await say('UOPS', 'status backup/shop/2026-11-30T10:00:00Z')).toContain('`backup/shop/2026-11-30T10:00:00Z` (backup) COMPLETED');
    expect(await say('UOPS', 'status restore/billing')).toBe(hidden('UOPS', 'restore/billing'));
    expect(await say('UOPS', 'status incident/abc')).toBe(hidden('UOPS', 'incident/abc'));
    expect(await say('UOPS', 'status no/such-run')).toBe(':grey_question: no run with id `no/such-run`');
    expect(await say('UOPS', 'list')).toBe('2026-11-30T10:00:00Z  COMPLETED  `backup/shop/2026-11-30T10:00:00Z`');
    expect(await say('UOPS', 'list billing')).toContain('<@UOPS> may not list runs of billing');
    expect(await say('ULEAD', 'status restore/billing')).toContain('`restore/billing` (restoreDatabase) RUNNING');
    expect(await say('ULEAD', 'status backup/shop/2026-11-30T10:00:00Z')).toBe(hidden('ULEAD', 'backup/shop/2026-11-30T10:00:00Z'));
    expect(await say('ULEAD', 'list')).toBe('2026-11-30T11:00:00Z  RUNNING    `restore/billing`');
  });

  test('without chatops.incidents nobody may acknowledge or resolve an incident from its buttons', async () => {
    for (const [user, actionId] of [['UOPS', 'incident_ack'], ['ULEAD', 'incident_resolve'], ['UNOBODY', 'incident_ack']] as const) {
      const reply = await chatops.action({ userId: user, actionId, value: 'incident/abc' });
      expect(reply.text).toBe(`:no_entry: <@${user}> may not acknowledge or resolve incidents (allowed: nobody: chatops.incidents names no one)`);
    }
    expect(updates).toEqual([]);
  });
});
