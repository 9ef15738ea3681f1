import { readFileSync, writeFileSync } from 'node:fs';
import { type AddressInfo, type Server, createServer } from 'node:net';
import path from 'node:path';
import fc from 'fast-check';
import { parse, stringify } from 'yaml';
import { Client, Connection, defaultGrpcRetryOptions, makeGrpcRetryInterceptor } from '@temporalio/client';
import { createIncidentServer } from '../src/client/alertmanager';
import { main } from '../src/client/cli';
import { ConfigError, parseConfig } from '../src/config/load';
import { InputError, parseRunbookInput, runbooks } from '../src/config/runbooks';
import { scratchDir } from './support/scratch';

/**
 * Bad input, fuzzed (fast-check): config files, runbook parameters, CLI arguments and Alertmanager webhook bodies
 * (through the real HTTP receiver). Whatever comes in, the
 * answer is a clear error that names the field, or a valid value; never a crash, and nothing is started.
 * FUZZ_RUNS sets the case count: 1,000 in the default run, 10,000 in `npm run test:fuzz`.
 */
const RUNS = Number(process.env.FUZZ_RUNS ?? 1_000);

const example = parse(readFileSync(path.join(__dirname, '..', 'runbooks.example.yaml'), 'utf8')) as Record<string, unknown>;

/** Values an attacker or a typo would put in a field: shell metacharacters, traversal, long, unicode, wrong types. */
const hostile = fc.oneof(
  fc.constantFrom('; rm -rf /', '$(reboot)', '`id`', '../../etc/passwd', '..', '/', 'a\nb', '\u0000', '-rf', '--help', "' OR 1=1 --", '"', '\u202e', '日本語', '🔥'),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.string({ minLength: 300, maxLength: 2000 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string({ maxLength: 5 }), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 2 }),
);

/** Every path to a leaf (or a node) of a plain object. */
function paths(node: unknown, prefix: Array<string | number> = []): Array<Array<string | number>> {
  const out: Array<Array<string | number>> = [prefix];
  if (Array.isArray(node)) node.forEach((v, i) => out.push(...paths(v, [...prefix, i])));
  else if (node && typeof node === 'object') for (const [k, v] of Object.entries(node)) out.push(...paths(v, [...prefix, k]));
  return out;
}

function setAt(root: unknown, p: Array<string | number>, value: unknown, remove: boolean): unknown {
  if (p.length === 0) return remove ? {} : value;
  if (!root || typeof root !== 'object') return root;
  const copy = structuredClone(root) as Record<string | number, unknown>;
  let node = copy;
  for (const seg of p.slice(0, -1)) {
    const next = node[seg];
    if (!next || typeof next !== 'object') return copy; // an earlier mutation replaced this branch
    node = next as Record<string | number, unknown>;
  }
  if (!node || typeof node !== 'object') return copy;
  const last = p[p.length - 1]!;
  if (remove) {
    if (Array.isArray(node)) node.splice(last as number, 1);
    else delete node[last];
  } else node[last] = value;
  return copy;
}

const examplePaths = paths(example);

/** "targets.databases[0].port: ..." — every issue starts with the path of a field, "(root)" or "YAML:". */
const key = String.raw`(?:[A-Za-z_][\w-]*|\["(?:[^"\\]|\\.)*"\])`;
const namesAField = new RegExp(String.raw`^(\(root\)|YAML:|${key}(?:\[\d+\]|\.[A-Za-z_][\w-]*|\["(?:[^"\\]|\\.)*"\])*: )`);

/** "targets.databases[0].port", as the product's errors name a field (the test's own rendering of a path). */
const fieldName = (p: Array<string | number>): string => p.map((seg, i) => (typeof seg === 'number' ? `[${seg}]` : i === 0 ? seg : `.${seg}`)).join('') || '(root)';
const nodeAt = (root: unknown, p: Array<string | number>): unknown => p.reduce<unknown>((n, seg) => (n as Record<string | number, unknown> | undefined)?.[seg], root);

/** Fixed-shape objects of the example (the root, its sections, list entries): a key they do not define is a mistake. */
const sectionPaths = examplePaths.filter((p) => {
  const n = nodeAt(example, p);
  return n !== null && typeof n === 'object' && !Array.isArray(n) && (p.length <= 1 || typeof p[p.length - 1] === 'number');
});
/** Leaves the example gives as a number or a boolean (ports, counts, thresholds, switches); not a check's `expect`, which is any SQL result. */
const scalarPaths = examplePaths.filter((p) => p.length > 0 && p[p.length - 1] !== 'expect' && ['number', 'boolean'].includes(typeof nodeAt(example, p)));
const portPaths = examplePaths.filter((p) => p[p.length - 1] === 'port' && typeof nodeAt(example, p) === 'number');
/** Text no reader takes for a number or a boolean. */
const notANumber = fc.oneof(
  fc.constantFrom('; rm -rf /', '$(reboot)', '`id`', '../../etc/passwd', "' OR 1=1 --", '日本語', '🔥', 'eighty'),
  fc.stringMatching(/^[a-z]{2,12}[;$ ]?[a-z]{0,6}$/).filter((t) => !/^(true|false|yes|no|on|off|y|n|nan|inf|infinity|null)$/i.test(t)),
);

type ConfigCase = { kind: 'unknown field'; at: Array<string | number>; key: string } | { kind: 'wrong type'; at: Array<string | number>; value: string } | { kind: 'valid port'; at: Array<string | number>; value: number };
const configCase: fc.Arbitrary<ConfigCase> = fc.oneof(
  fc.record({ kind: fc.constant('unknown field' as const), at: fc.constantFrom(...sectionPaths), key: fc.stringMatching(/^zz[A-Za-z]{1,10}$/) }),
  fc.record({ kind: fc.constant('wrong type' as const), at: fc.constantFrom(...scalarPaths), value: notANumber }),
  fc.record({ kind: fc.constant('valid port' as const), at: fc.constantFrom(...portPaths), value: fc.integer({ min: 1, max: 65535 }) }),
);

test('a config with a known mistake is refused naming that field; one with a valid change is accepted (counted)', () => {
  expect(sectionPaths.length).toBeGreaterThan(10);
  expect(scalarPaths.length).toBeGreaterThan(10);
  expect(portPaths.length).toBeGreaterThan(2);
  const count = { bad: 0, refused: 0, good: 0, accepted: 0 };
  fc.assert(
    fc.property(configCase, (c) => {
      const cfg = c.kind === 'unknown field' ? setAt(example, [...c.at, c.key], 1, false) : setAt(example, c.at, c.value, false);
      const bad = c.kind !== 'valid port';
      if (bad) count.bad += 1;
      else count.good += 1;
      let issues: string[] | undefined;
      try {
        parseConfig(stringify(cfg), 'fuzz.yaml', '/');
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        issues = err.issues;
      }
      if (!bad) {
        expect(issues).toBeUndefined();
        count.accepted += 1;
        return;
      }
      // The generated mistake is refused, by name: the unknown key or the leaf that got text.
      expect(issues).toBeDefined();
      count.refused += 1;
      for (const issue of issues!) expect(issue).toMatch(namesAField);
      const field = c.kind === 'unknown field' ? fieldName([...c.at, c.key]) : fieldName(c.at);
      expect(issues!.some((i) => i.startsWith(`${field}: `))).toBe(true);
    }),
    { numRuns: RUNS },
  );
  expect(count.refused).toBe(count.bad);
  expect(count.accepted).toBe(count.good);
  expect(count.bad).toBeGreaterThan(RUNS / 2);
  expect(count.good).toBeGreaterThan(RUNS / 10);
});

test('a hostile value anywhere in the config: refused with errors that each name a field, or accepted; never a crash', () => {
  fc.assert(
    fc.property(fc.nat(examplePaths.length - 1), hostile, fc.boolean(), (pick, value, remove) => {
      try {
        parseConfig(stringify(setAt(example, examplePaths[pick]!, value, remove)), 'fuzz.yaml', '/');
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        expect(err.issues.length).toBeGreaterThan(0);
        for (const issue of err.issues) expect(issue).toMatch(namesAField);
      }
    }),
    { numRuns: RUNS },
  );
});

/** What a YAML reader (the yaml package, not the product) makes of a text: the expected answer of the config loader. */
function expectedForText(text: string): { refused: true; field?: string } | { refused: false } | 'skip' {
  let doc: unknown;
  try {
    doc = parse(text, { logLevel: 'error' }); // warnings (an unknown tag) are not errors
  } catch {
    return { refused: true, field: 'YAML:' };
  }
  if (doc === null || doc === undefined) return { refused: false }; // an empty file: every default
  if (typeof doc !== 'object' || Array.isArray(doc)) return { refused: true, field: '(root):' };
  const keys = Object.keys(doc);
  if (keys.some((k) => k in example)) return 'skip'; // a real section name by chance: its content decides
  return { refused: true, field: `${/^[A-Za-z_][\w-]*$/.test(keys[0]!) ? keys[0] : ''}` };
}

test('arbitrary text as a config file: what a YAML reader calls broken, a scalar or unknown sections is refused (counted); never a crash', () => {
  const count = { bad: 0, refused: 0, empty: 0, accepted: 0 };
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: 'binary', maxLength: 200 }), fc.dictionary(fc.stringMatching(/^[a-z]{1,8}$/), fc.string({ maxLength: 8 }), { minKeys: 1, maxKeys: 3 }).map((d) => stringify(d))), (text) => {
      const expected = expectedForText(text);
      if (expected === 'skip') return;
      if (expected.refused) count.bad += 1;
      else count.empty += 1;
      let issues: string[] | undefined;
      try {
        parseConfig(text, 'fuzz.yaml', '/');
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        issues = err.issues;
      }
      if (!expected.refused) {
        expect(issues).toBeUndefined();
        count.accepted += 1;
        return;
      }
      expect(issues).toBeDefined();
      count.refused += 1;
      for (const issue of issues!) expect(issue).toMatch(namesAField);
      if (expected.field) expect(issues!.some((i) => i.startsWith(expected.field!))).toBe(true);
    }),
    { numRuns: RUNS },
  );
  expect(count.refused).toBe(count.bad);
  expect(count.accepted).toBe(count.empty);
  expect(count.bad).toBeGreaterThan(RUNS / 2);
});

const config = parseConfig(readFileSync(path.join(__dirname, '..', 'runbooks.example.yaml'), 'utf8'), 'example.yaml', '/');
const paramKeys = fc.constantFrom('target', 'backup', 'kind', 'reason', 'dryRun', 'prune', 'requestedBy', 'bogus', '', '__proto__', 'constructor');

test('runbook parameters: hostile values never reach a path or a command line', () => {
  fc.assert(
    fc.property(fc.constantFrom(...Object.keys(runbooks)), fc.dictionary(paramKeys, hostile, { maxKeys: 6 }), (name, params) => {
      const def = runbooks[name as keyof typeof runbooks];
      let input: Record<string, unknown>;
      try {
        input = parseRunbookInput(def, params, config) as Record<string, unknown>;
      } catch (err) {
        if (!(err instanceof InputError)) throw err;
        for (const issue of err.issues) expect(issue).toMatch(/^(params|([A-Za-z_][\w-]*|"(?:[^"\\]|\\.)*")([.,] ?([A-Za-z_][\w-]*|"(?:[^"\\]|\\.)*"))*): /);
        return;
      }
      // Accepted: the target is one from the config and ids that become file or database names are plain.
      const known = [...config.targets.databases, ...config.targets.redis].map((t) => t.name);
      // (Runbooks without a target parameter, e.g. health-watch with no parameters at all, have none to check.)
      if ('target' in input || 'target' in ((def.input as { shape?: object }).shape ?? {})) expect(known).toContain(input.target);
      if (typeof input.backup === 'string') expect(input.backup).toMatch(/^[a-z0-9][a-z0-9_-]*$|^latest$/);
    }),
    { numRuns: RUNS },
  );
});

test('runbook parameters with an unknown one are refused, by name (counted); generated valid parameters are accepted as given', () => {
  const databases = config.targets.databases.map((t) => t.name);
  const redis = config.targets.redis.map((t) => t.name);
  const text = fc.string({ minLength: 3, maxLength: 100 });
  const flag = fc.option(fc.constantFrom(true, false, 'true', 'false'), { nil: undefined });
  type Case = { kind: 'bad'; name: string; params: Record<string, unknown> } | { kind: 'good'; name: string; params: Record<string, unknown>; expected: Record<string, unknown> };
  const bool = (v: unknown, dflt: boolean): boolean => (v === undefined ? dflt : v === true || v === 'true');
  const cases: fc.Arbitrary<Case> = fc.oneof(
    fc.record({ kind: fc.constant('bad' as const), name: fc.constantFrom(...Object.keys(runbooks)), params: fc.dictionary(paramKeys, hostile, { maxKeys: 4 }).map((d) => ({ ...d, bogus: '1' })) }),
    fc.record({ target: fc.constantFrom(...databases, ...redis), prune: flag, reason: fc.option(text, { nil: undefined }) }).map(({ target, prune, reason }): Case => ({
      kind: 'good',
      name: 'backup',
      params: { target, ...(prune === undefined ? {} : { prune }), ...(reason === undefined ? {} : { reason }) },
      expected: { target, kind: databases.includes(target) ? 'postgres' : 'redis', prune: bool(prune, true), ...(reason === undefined ? {} : { reason }) },
    })),
    fc.record({ target: fc.constantFrom(...databases), dryRun: flag, reason: text }).map(({ target, dryRun, reason }): Case => ({
      kind: 'good',
      name: 'restore',
      params: { target, reason, ...(dryRun === undefined ? {} : { dryRun }) },
      expected: { target, reason, backup: 'latest', dryRun: bool(dryRun, false) },
    })),
  );
  const count = { bad: 0, refused: 0, good: 0, accepted: 0 };
  fc.assert(
    fc.property(cases, (c) => {
      const def = runbooks[c.name as keyof typeof runbooks];
      if (c.kind === 'bad') count.bad += 1;
      else count.good += 1;
      let input: unknown;
      let issues: string[] | undefined;
      try {
        input = parseRunbookInput(def, c.params, config);
      } catch (err) {
        if (!(err instanceof InputError)) throw err;
        issues = err.issues;
      }
      if (c.kind === 'good') {
        expect(issues).toBeUndefined();
        expect(input).toEqual(c.expected);
        count.accepted += 1;
        return;
      }
      expect(issues).toBeDefined();
      count.refused += 1;
      // Named: the unknown parameter, or (refused before, e.g. a target the config does not have) a parameter that was given.
      const given = Object.keys(c.params).map((k) => (/^[A-Za-z_][\w-]*$/.test(k) ? k : JSON.stringify(k)));
      expect(issues!.some((i) => /^(.*, )?bogus(, .*)?: unknown parameter/.test(i)) || issues!.some((i) => given.some((k) => i.startsWith(`${k}: `)))).toBe(true);
    }),
    { numRuns: RUNS },
  );
  expect(count.refused).toBe(count.bad);
  expect(count.accepted).toBe(count.good);
  expect(Math.min(count.bad, count.good)).toBeGreaterThan(RUNS / 5);
});

/** Stands where Temporal would be: counts connections and drops them, so "nothing started" is observable. */
interface TemporalStandIn {
  address: string;
  connections: number;
  close(): Promise<void>;
}

async function temporalStandIn(): Promise<TemporalStandIn> {
  const standIn = { address: '', connections: 0, close: () => Promise.resolve() };
  const server: Server = createServer((socket) => {
    standIn.connections += 1;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  standIn.address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  standIn.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return standIn;
}

describe('the CLI', () => {
  let temporal: TemporalStandIn;
  let file: string;
  beforeAll(async () => {
    temporal = await temporalStandIn();
    const cfg = structuredClone(example) as { temporal: Record<string, unknown>; backups: Record<string, unknown> };
    cfg.temporal.address = temporal.address;
    cfg.backups.root = scratchDir('fuzz-backups');
    file = path.join(scratchDir('config'), 'runbooks.yaml');
    writeFileSync(file, stringify(cfg), { mode: 0o600 });
  });
  afterAll(() => temporal.close());

  async function run(argv: string[]): Promise<{ code: number; stderr: string }> {
    let stderr = '';
    const err = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stderr += String(chunk);
      return true;
    });
    const out = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      return { code: await main(['node', 'runbook', ...argv]), stderr };
    } finally {
      err.mockRestore();
      out.mockRestore();
    }
  }

  test('bad start arguments exit 2 with the field named, and never contact Temporal (every case counted)', async () => {
    let refused = 0;
    let cases = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...Object.keys(runbooks), 'restor', '../backup', ''),
        fc.array(fc.tuple(paramKeys, hostile.map((v) => (typeof v === 'string' ? v : JSON.stringify(v) ?? ''))), { maxLength: 4 }),
        fc.boolean(),
        async (name, pairs, malformed) => {
          const args = pairs.flatMap(([k, v]) => ['-p', malformed ? `${k}${v}` : `${k}=${v}`]);
          // Always one certainly-bad parameter, so every case must be refused before any connection.
          args.push('-p', malformed ? 'no-equals-sign' : 'bogus=1');
          cases += 1;
          const before = temporal.connections;
          const { code, stderr } = await run(['--config', file, 'start', name, ...args]);
          expect(code).toBe(2);
          refused += 1;
          // Named: the unknown runbook, a parameter without "=", or the unknown parameter.
          if (!(name in runbooks)) expect(stderr).toMatch(/runbook/);
          else if (malformed || pairs.some(([k]) => k === '')) expect(stderr).toMatch(/--param: expected key=value/);
          else expect(stderr).toMatch(/bogus|target: unknown|set: unknown|service: unknown/);
          expect(temporal.connections).toBe(before);
        },
      ),
      { numRuns: RUNS },
    );
    expect(refused).toBe(cases);
  });

  test('a valid start does try Temporal (so the property above is not vacuous)', async () => {
    const before = temporal.connections;
    const { code, stderr } = await run(['--config', file, 'start', 'backup', '-p', 'target=shop']);
    expect(code).toBe(1);
    expect(stderr).toMatch(/cannot reach Temporal/);
    expect(temporal.connections).toBeGreaterThan(before);
  });
});

describe('the Alertmanager receiver', () => {
  const TOKEN = 'fuzz-receiver-token';
  const valid = {
    version: '4',
    groupKey: '{}:{alertname="ServiceDown"}',
    truncatedAlerts: 0,
    status: 'firing',
    receiver: 'runbooks',
    groupLabels: { alertname: 'ServiceDown' },
    commonLabels: { alertname: 'ServiceDown', severity: 'critical' },
    commonAnnotations: { summary: 'api is down' },
    externalURL: 'http://alertmanager:9093',
    alerts: [
      {
        status: 'firing',
        labels: { alertname: 'ServiceDown', severity: 'critical', instance: 'api:8080' },
        annotations: { summary: 'api is down' },
        startsAt: '2026-11-24T09:00:00.000Z',
        endsAt: '0001-01-01T00:00:00Z',
        generatorURL: 'http://prometheus:9090/graph',
        fingerprint: 'a1b2c3d4e5f60718',
      },
    ],
  };
  const validPaths = paths(valid);

  /** A receiver in front of its own Temporal stand-in. */
  interface Receiver {
    temporal: TemporalStandIn;
    post(body: string): Promise<Response>;
    close(): Promise<void>;
  }
  async function startReceiver(): Promise<Receiver> {
    const temporal = await temporalStandIn();
    // One attempt, no retry timers left behind to fire after the connection is closed.
    const client = new Client({ connection: Connection.lazy({ address: temporal.address, interceptors: [makeGrpcRetryInterceptor(defaultGrpcRetryOptions({ maxAttempts: 1 }))] }) });
    const server: Server = createIncidentServer({ client, config });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return {
      temporal,
      post: (body) => fetch(`${base}/alertmanager`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body }),
      close: async () => {
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await client.connection.close().catch(() => undefined);
        await temporal.close();
      },
    };
  }
  // Refusals go to a receiver that never accepts a body before the last test, so its stand-in counts exactly the
  // connections they cause (none): after an accepted body, gRPC reconnects in the background whenever it likes.
  let refusing: Receiver;
  let accepting: Receiver;
  beforeAll(async () => {
    process.env.ALERTMANAGER_TOKEN = TOKEN;
    refusing = await startReceiver();
    accepting = await startReceiver();
  });
  afterAll(async () => {
    await refusing?.close();
    await accepting?.close();
  });

  /** "alerts[0].fingerprint: ...", "body: ..." — every problem of a refused body names its field. */
  const namesABodyField = new RegExp(String.raw`^(body|${key}(?:\[\d+\]|\.[A-Za-z_][\w-]*|\["(?:[^"\\]|\\.)*"\])*): `);

  // The expectation comes from the Alertmanager webhook format (prometheus.io/docs/alerting/latest/configuration/#webhook_config),
  // not from the receiver's schema: a status other than firing/resolved, alerts that are not a list, labels that are
  // not a map of strings, a startsAt that is not a time, a missing status or alerts are mistakes; new label and
  // annotation text is not.
  const notOneOf = (allowed: string[]) => fc.string({ maxLength: 20 }).filter((t) => !allowed.includes(t));
  const notAString = fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string({ maxLength: 3 }), { maxLength: 2 }), fc.dictionary(fc.string({ maxLength: 3 }), fc.string({ maxLength: 3 }), { maxKeys: 2 }));
  const notATime = fc.oneof(fc.constantFrom('yesterday', '; rm -rf /', '', 'T09:00'), fc.stringMatching(/^[a-z ]{1,12}$/));
  type BodyCase = { bad: boolean; at: Array<string | number>; value?: unknown; remove?: true };
  const bodyCase: fc.Arbitrary<BodyCase> = fc.oneof(
    notOneOf(['firing', 'resolved']).map((value): BodyCase => ({ bad: true, at: ['status'], value })),
    notOneOf(['firing', 'resolved']).map((value): BodyCase => ({ bad: true, at: ['alerts', 0, 'status'], value })),
    hostile.filter((v) => !Array.isArray(v)).map((value): BodyCase => ({ bad: true, at: ['alerts'], value })),
    fc.oneof(fc.string({ maxLength: 10 }), fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 2 })).map((value): BodyCase => ({ bad: true, at: ['alerts', 0, 'labels'], value })),
    notAString.map((value): BodyCase => ({ bad: true, at: ['alerts', 0, 'labels', 'instance'], value })),
    notATime.map((value): BodyCase => ({ bad: true, at: ['alerts', 0, 'startsAt'], value })),
    fc.constantFrom<Array<string | number>>(['status'], ['alerts'], ['alerts', 0, 'labels']).map((at): BodyCase => ({ bad: true, at, remove: true })),
    fc.string({ maxLength: 40 }).map((value): BodyCase => ({ bad: false, at: ['alerts', 0, 'labels', 'instance'], value })),
    fc.string({ maxLength: 40 }).map((value): BodyCase => ({ bad: false, at: ['alerts', 0, 'annotations', 'summary'], value })),
    fc.tuple(fc.stringMatching(/^[a-z_][a-z0-9_]{0,10}$/).filter((k) => !['alertname', 'severity'].includes(k)), fc.string({ maxLength: 20 })).map(([k, value]): BodyCase => ({ bad: false, at: ['alerts', 0, 'labels', k], value })),
    fc.stringMatching(/^[0-9a-f]{16}$/).map((value): BodyCase => ({ bad: false, at: ['alerts', 0, 'fingerprint'], value })),
  );
  const fieldOf = (p: Array<string | number>): string => p.map((seg, i) => (typeof seg === 'number' ? `[${seg}]` : i === 0 ? seg : `.${seg}`)).join('');

  test('a webhook body with a known mistake is refused 400 naming that field and never reaches Temporal; a valid change is accepted (counted)', async () => {
    const count = { bad: 0, refused: 0, good: 0, accepted: 0 };
    await fc.assert(
      fc.asyncProperty(bodyCase, async (c) => {
        const body = setAt(valid, c.at, c.value, c.remove ?? false);
        if (c.bad) count.bad += 1;
        else count.good += 1;
        const r = c.bad ? refusing : accepting;
        const before = r.temporal.connections;
        const res = await r.post(JSON.stringify(body));
        const reply = (await res.json()) as { ok: boolean; error?: string };
        if (!c.bad) {
          // Accepted: the receiver went on to start the incident, and Temporal (the stand-in) hung up.
          expect(res.status).toBe(500);
          count.accepted += 1;
          return;
        }
        expect(res.status).toBe(400);
        expect(reply.ok).toBe(false);
        count.refused += 1;
        const problems = reply.error!.split('; ');
        for (const problem of problems) expect(problem).toMatch(namesABodyField);
        expect(problems.some((pr) => pr.startsWith(`${fieldOf(c.at)}`))).toBe(true);
        expect(r.temporal.connections).toBe(before);
      }),
      { numRuns: RUNS },
    );
    expect(count.refused).toBe(count.bad);
    expect(count.accepted).toBe(count.good);
    expect(Math.min(count.bad, count.good)).toBeGreaterThan(RUNS / 5);
    expect(accepting.temporal.connections).toBeGreaterThan(0);
  });

  test('a hostile value anywhere in the webhook body: 400 naming each bad field or accepted, never a crash', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(validPaths.length - 1), hostile, fc.boolean(), async (pick, value, remove) => {
        const res = await accepting.post(JSON.stringify(setAt(valid, validPaths[pick]!, value, remove)));
        expect([400, 500]).toContain(res.status);
        if (res.status === 400) for (const problem of ((await res.json()) as { error: string }).error.split('; ')) expect(problem).toMatch(namesABodyField);
      }),
      { numRuns: RUNS },
    );
  });

  test('more than 1,000 alerts in one request are refused 400 naming alerts, and none reaches Temporal; 1,000 are read', async () => {
    const many = (n: number) => JSON.stringify({ ...valid, alerts: Array.from({ length: n }, (_, i) => ({ ...valid.alerts[0], fingerprint: `f${i.toString(16).padStart(15, '0')}` })) });
    const before = refusing.temporal.connections;
    const res = await refusing.post(many(1001));
    expect([res.status, ((await res.json()) as { error: string }).error]).toEqual([400, expect.stringMatching(/^alerts: must hold at most 1000 alerts per request/)]);
    expect(refusing.temporal.connections).toBe(before);
    expect((await accepting.post(many(1000))).status).not.toBe(400); // 1,000 pass the cap (and go on to Temporal)
  });

  test('a receiver on a non-loopback address without incidents.auth is refused at load and at start, naming incidents.auth', () => {
    const raw = structuredClone(example) as { incidents: Record<string, unknown> };
    delete raw.incidents.auth;
    for (const host of ['0.0.0.0', '10.0.0.5', '::', 'runbooks.internal']) {
      raw.incidents.listen = { host, port: 9095 };
      let err: unknown;
      try {
        parseConfig(stringify(raw), 'exposed.yaml', '/');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(/incidents\.auth: is required when incidents\.listen\.host is not a loopback address/);
    }
    for (const host of ['127.0.0.1', 'localhost', '::1']) {
      raw.incidents.listen = { host, port: 9095 };
      expect(parseConfig(stringify(raw), 'loopback.yaml', '/').incidents.listen.host).toBe(host);
    }
    // A config assembled in code, past the file check: the server itself refuses to be made.
    const exposed = { ...config, incidents: { ...config.incidents, auth: undefined, listen: { host: '0.0.0.0', port: 9095 } } };
    const client = new Client({ connection: Connection.lazy({ address: '127.0.0.1:1' }) });
    expect(() => createIncidentServer({ client, config: exposed })).toThrow(/^incidents\.auth: is required when incidents\.listen\.host is not a loopback address \(0\.0\.0\.0\)$/);
  });

  test('arbitrary bytes as a webhook body: without an alerts list, refused 400 and never reaching Temporal (counted); never a crash', async () => {
    const count = { bad: 0, refused: 0 };
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 300 }), fc.json({ maxDepth: 3 })), async (text) => {
        let doc: unknown;
        try {
          doc = JSON.parse(text);
        } catch {
          doc = undefined;
        }
        if (doc && typeof doc === 'object' && Array.isArray((doc as { alerts?: unknown }).alerts)) return; // could be a real notification
        count.bad += 1;
        const before = refusing.temporal.connections;
        const res = await refusing.post(text);
        expect(res.status).toBe(400);
        count.refused += 1;
        for (const problem of ((await res.json()) as { error: string }).error.split('; ')) expect(problem).toMatch(namesABodyField);
        expect(refusing.temporal.connections).toBe(before);
      }),
      { numRuns: RUNS },
    );
    expect(count.refused).toBe(count.bad);
    expect(count.bad).toBeGreaterThan(RUNS * 0.9);
  });

  test('the valid body does go to Temporal (so the properties above are not vacuous)', async () => {
    const before = refusing.temporal.connections;
    const res = await refusing.post(JSON.stringify(valid));
    expect(refusing.temporal.connections).toBeGreaterThan(before);
    expect(res.status).toBe(500); // Temporal (the stand-in) hung up
  });
});
