import { readFileSync } from 'node:fs';
import path from 'node:path';
import { escalationPolicy } from '../src/activities/notify';
import { signAckLink, verifyAckLink } from '../src/activities/ack-link';
import { desiredSchedules } from '../src/client/schedules';
import { ConfigError, parseConfig } from '../src/config/load';
import { findRunbook, parseRunbookInput } from '../src/config/runbooks';
import { DEFAULT_POLICIES } from '../src/config/schema';
import { secretFields } from '../src/config/secrets';

// Escalation / incidents / health / remediation config: seed defaults, validation naming the field, catalogue.

function issuesOf(text: string): string[] {
  try {
    parseConfig(text, 'x.yaml');
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  return [];
}

const example = (): string => readFileSync(path.join(__dirname, '..', 'runbooks.example.yaml'), 'utf8');

test('the seed matrix is the default: critical 15/30 min by SMS + email + Slack with a repeat, high 60/120, medium 240/480, low 1440/2880', () => {
  const minutes = (sev: keyof typeof DEFAULT_POLICIES) => {
    let t = 0;
    return DEFAULT_POLICIES[sev].levels.map((l) => {
      const at = t;
      t += Number(l.after.replace('m', ''));
      return `${at}:${l.targets.join('+')}:${l.channels.join('/')}`;
    });
  };
  expect(minutes('critical')).toEqual(['0:on-call:sms/email/slack', '15:on-call+lead-dev:sms/email/slack', '30:lead-dev+cto:sms/email/slack']);
  expect(DEFAULT_POLICIES.critical.repeat).toBe(1);
  expect(minutes('high')).toEqual(['0:on-call:email/slack', '60:on-call:email/slack', '120:team-lead:email/slack']);
  expect(minutes('medium')).toEqual(['0:on-call:email', '240:on-call:email', '480:project-manager:email']);
  expect(minutes('low')).toEqual(['0:on-call:email', '1440:on-call:email', '2880:product-owner:email']);

  const config = parseConfig(example(), 'runbooks.example.yaml', '/etc/runbooks');
  const critical = escalationPolicy(config, { severity: 'critical' });
  expect(critical).toMatchObject({ name: 'default-critical', repeat: 1 });
  expect(critical.levels.map((l) => l.afterMs / 60_000)).toEqual([15, 15, 30]);
  expect(critical.people.cto).toEqual({ name: 'cto', email: 'cto@example.com', phone: '+34600111555' });
  expect(escalationPolicy(config, { severity: 'high', policy: 'database' }).name).toBe('database');
  // Nobody configured for the default's roles: the alert still pages someone, the operators of notifications.email.to.
  const bare = escalationPolicy(parseConfig('notifications:\n  email: { host: smtp, from: r@x.co, to: [ops@x.co, sre@x.co] }', 'bare.yaml'), { severity: 'critical' });
  expect(bare.name).toBe('default-critical (on-call, lead-dev, cto not configured: notifications.email.to instead)');
  expect(bare.levels.map((l) => l.targets)).toEqual([['ops@x.co', 'sre@x.co'], ['ops@x.co', 'sre@x.co'], ['ops@x.co', 'sre@x.co']]);
  expect(bare.people['ops@x.co']).toEqual({ name: 'ops@x.co', email: 'ops@x.co' });
});

test.each([
  ['an unknown person in a policy', 'escalation:\n  policies:\n    p: { levels: [{ targets: [nobody], channels: [email], after: 5m }] }', 'escalation.policies.p.levels[0].targets[0]: unknown person or rotation "nobody"'],
  ['an unknown channel', 'escalation:\n  policies:\n    p: { levels: [{ targets: [a@b.co], channels: [pager], after: 5m }] }', 'escalation.policies.p.levels[0].channels[0]: '],
  ['a phone that is not E.164', 'escalation:\n  people:\n    al: { phone: "600 111 222" }', 'escalation.people.al.phone: must be an E.164 number'],
  ['a rotation member nobody knows', 'escalation:\n  rotations:\n    oc: { members: [ghost] }', 'escalation.rotations.oc.members[0]: unknown person "ghost"'],
  ['a severity mapped to no policy', 'escalation:\n  severities: { critical: nope }', 'escalation.severities.critical: unknown policy "nope"'],
  ['an inline receiver token', 'incidents:\n  auth: { bearerToken: hunter2 }', 'incidents.auth'],
  ['a sent-log on an unknown Redis', 'notifications:\n  sentLog: { redis: nope }', 'notifications.sentLog.redis: unknown redis target "nope"'],
  ['remediation of an unknown service', 'remediation:\n  services:\n    api: {}', 'remediation.services.api: unknown service "api"'],
  ['a health probe without URL', 'health:\n  http: [{ name: api }]', 'health.http[0].url: is required'],
])('%s is refused with the path of the field', (_what, yaml, expected) => {
  const issues = issuesOf(yaml);
  expect(issues.some((i) => i.startsWith(expected))).toBe(true);
});

test('the receiver, SMS and ack-link secrets are checked at worker start like every other secret', () => {
  const config = parseConfig(example(), 'runbooks.example.yaml', '/etc/runbooks');
  expect(secretFields(config).map((f) => f.field)).toEqual(expect.arrayContaining(['escalation.sms.authToken', 'incidents.ackSecret', 'incidents.auth.bearerToken']));
});

test('health watch every 5 minutes from the config; incident, health-watch and remediate in the catalogue', () => {
  const config = parseConfig(example(), 'runbooks.example.yaml', '/etc/runbooks');
  expect(desiredSchedules(config).find((s) => s.scheduleId === 'health-watch')).toMatchObject({ workflowType: 'healthWatch', cron: '*/5 * * * *', overlap: 'skip' });
  expect(desiredSchedules(parseConfig('', 'e.yaml')).some((s) => s.scheduleId === 'health-watch')).toBe(false);

  const inc = findRunbook('incident');
  const input = parseRunbookInput(inc, { title: 'Checkout is down!', severity: 'critical' }, config);
  expect(inc.workflowId(input, new Date())).toBe('incident/manual-checkout-is-down');
  expect(() => parseRunbookInput(inc, { title: 'x', severity: 'urgent' }, config)).toThrow(/title: say what is wrong.*severity: /);
  expect(() => parseRunbookInput(inc, { title: 'disk', policy: 'nope' }, config)).toThrow('policy: unknown escalation policy "nope" (known: database)');
  const rem = findRunbook('remediate');
  expect(rem.workflowId(parseRunbookInput(rem, { service: 'api', reason: 'p95 > 2 s' }, config), new Date())).toBe('remediate/api');
  expect(() => parseRunbookInput(rem, { service: 'nope', reason: 'slow' }, config)).toThrow(/service: unknown service "nope" \(known: api/);
  expect(findRunbook('health-watch').workflowType).toBe('healthWatch');
});

test('an acknowledge link is bound to its incident (its run key too), person and expiry', () => {
  process.env.INCIDENT_ACK_SECRET = 'k'.repeat(32);
  const config = parseConfig(example(), 'runbooks.example.yaml', '/etc/runbooks');
  const link = new URL(signAckLink(config, { id: 'incident/abc', key: 'incident/abc/0a1b2c3d' }, 'alice'));
  expect(link.origin + link.pathname).toBe('https://runbooks.example.com/ack');
  expect(verifyAckLink(config, link.searchParams)).toMatchObject({ ok: true, claim: { incident: 'incident/abc', key: 'incident/abc/0a1b2c3d', by: 'alice' } });
  for (const [k, v] of [['i', 'incident/other'], ['k', 'incident/abc/99999999'], ['by', 'bob'], ['exp', String(Number(link.searchParams.get('exp')) + 3600)]] as const) {
    const p = new URLSearchParams(link.searchParams);
    p.set(k, v);
    expect(verifyAckLink(config, p)).toEqual({ ok: false, reason: 'invalid signature' });
  }
  expect(verifyAckLink(config, link.searchParams, Date.now() + 25 * 3_600_000)).toEqual({ ok: false, reason: 'link expired' });
});
