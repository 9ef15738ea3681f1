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

// The command parser and the whole command path (parse → validate against the runbook's zod schema → RBAC) under
// thousands of generated inputs, with a recording Temporal backend: it never throws, and nothing invalid starts.

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
        // Started ⇒ the runbook's own schema accepts exactly what was started, on a target the user may run.
        expect(s.def.input.safeParse(s.input).success).toBe(true);
        const target = s.def.target(s.input);
        expect(['shop', 'cache']).toContain(target);
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
      updates.push(`${update} ${id}`);
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
