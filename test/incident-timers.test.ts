import { type WorkflowHandle } from '@temporalio/client';
import { Context } from '@temporalio/activity';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { type NotifyInput, type NotifyResult, createActivities } from '../src/activities';
import { temporalBinary } from '../src/client/local-servers';
import { parseConfig } from '../src/config/load';
import { type incident } from '../src/workflows/incident';
import {
  type IncidentInput,
  acknowledgeUpdate,
  addNoteUpdate,
  alertResolvedSignal,
  reassignUpdate,
  resolveUpdate,
  snoozeUpdate,
  timelineQuery,
} from '../src/workflows/incident-definitions';
import { uniqueName } from './support/servers';
import { updateRefusal as refusal, workflowBundle } from './support/temporal';

// WF-08 escalation on the time-skipping test server: the seed's critical policy (respond 15 min, escalate at
// 30 min, one repeat of the ladder) runs in seconds. The notify activity is mocked and records what it was
// asked to send and at which server time; the policy comes from the real escalationPolicy activity.

let env: TestWorkflowEnvironment;
beforeEach(async () => {
  env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: temporalBinary('temporal-test-server') } },
  });
}, 60_000);
afterEach(async () => {
  await env?.teardown();
});

const CONFIG = `
temporal: { taskQueue: placeholder }
escalation:
  people:
    alice: { email: alice@example.test, slack: U0ALICE, phone: "+34600000001" }
    bob: { email: bob@example.test, slack: U0BOB, phone: "+34600000002" }
    lead-dev: { email: lead@example.test, slack: U0LEAD, phone: "+34600000003" }
    cto: { email: cto@example.test, phone: "+34600000004" }
  rotations:
    on-call: { members: [alice, bob], shift: 1000d, start: "2026-01-01T00:00:00Z" }
`;

interface Sent {
  minute: number;
  what: string;
}

async function setup(): Promise<{ sent: Sent[]; calls: NotifyInput[]; taskQueue: string; worker: Worker; start: (extra?: Partial<IncidentInput>) => Promise<WorkflowHandle<typeof incident>> }> {
  const taskQueue = uniqueName('inc');
  const config = parseConfig(CONFIG.replace('placeholder', taskQueue), 'incident.yaml');
  const real = createActivities({ config });
  const sent: Sent[] = [];
  const calls: NotifyInput[] = [];
  let t0 = 0;
  const notify = (n: NotifyInput): Promise<NotifyResult> => {
    const at = Context.current().info.scheduledTimestampMs;
    calls.push(n);
    sent.push({ minute: Math.round((at - t0) / 60_000), what: n.kind === 'page' ? `L${n.incident.level}/R${n.incident.round} ${n.channel} ${n.to.map((p) => p.name).join('+')}` : `${n.kind} ${n.channel}` });
    return Promise.resolve({ channel: n.channel, delivered: true, ...(n.channel === 'slack' && !n.slack ? { slack: { channel: 'C0INC', ts: '1700000000.000100' } } : {}) });
  };
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: { escalationPolicy: real.escalationPolicy, notify },
  });
  const start = async (extra: Partial<IncidentInput> = {}) => {
    const h = await env.client.workflow.start<typeof incident>('incident', {
      taskQueue,
      workflowId: `incident/${uniqueName('fp')}`,
      args: [{ fingerprint: 'x', title: 'API down', severity: 'critical', source: 'manual', ...extra }],
    });
    t0 = (await h.describe()).startTime.getTime();
    return h;
  };
  return { sent, calls, taskQueue, worker, start };
}

/** Notifications of one minute, in a stable order (one level's messages go out together). */
function byMinute(sent: Sent[]): Record<number, string[]> {
  const out: Record<number, string[]> = {};
  for (const s of sent) (out[s.minute] ??= []).push(s.what);
  for (const k of Object.keys(out)) out[Number(k)]!.sort();
  return out;
}

const L1 = (r: number) => [`L1/R${r} email alice`, `L1/R${r} slack alice`, `L1/R${r} sms alice`];
const L2 = (r: number) => [`L2/R${r} email alice`, `L2/R${r} email lead-dev`, `L2/R${r} slack alice+lead-dev`, `L2/R${r} sms alice`, `L2/R${r} sms lead-dev`];
const L3 = (r: number) => [`L3/R${r} email cto`, `L3/R${r} email lead-dev`, `L3/R${r} slack lead-dev+cto`, `L3/R${r} sms cto`, `L3/R${r} sms lead-dev`];

test('nobody acknowledges: levels at 0, 15 and 30 min, the ladder once more from 60 min, then it stops; resolve closes', async () => {
  const { sent, calls, worker, start } = await setup();
  await worker.runUntil(async () => {
    const h = await start();
    await env.sleep('3h');
    expect(byMinute(sent)).toEqual({ 0: L1(1), 15: L2(1), 30: L3(1), 60: L1(2), 75: L2(2), 90: L3(2) });
    // Slack: the first message opens the incident's thread, every later one replies in it.
    const slack = calls.filter((c) => c.channel === 'slack');
    expect(slack[0]!.slack).toBeUndefined();
    expect(slack.slice(1).map((c) => c.slack?.ts)).toEqual(Array(5).fill('1700000000.000100'));
    // Every message has its own idempotency key.
    expect(new Set(calls.map((c) => c.idempotencyKey)).size).toBe(calls.length);
    const view = await h.query(timelineQuery);
    expect(view.status).toBe('open');
    expect(view.timeline.map((e) => e.event)).toContain('escalation exhausted');

    await h.executeUpdate(resolveUpdate, { args: [{ by: 'alice', note: 'restarted the API' }] });
    const outcome = await h.result();
    expect(outcome.resolved).toMatchObject({ by: 'alice', note: 'restarted the API' });
    expect(sent.at(-1)!.what).toBe('resolved slack');
  });
});

test('acknowledged at minute 20: no level after that; the thread is told; resolve closes the incident', async () => {
  const { sent, worker, start } = await setup();
  await worker.runUntil(async () => {
    const h = await start();
    await env.sleep('20m');
    const ack = await h.executeUpdate(acknowledgeUpdate, { args: [{ by: ' bob ', note: 'looking' }] });
    expect(ack).toMatchObject({ by: 'bob', note: 'looking' });
    await env.sleep('4h');
    expect(byMinute(sent)).toEqual({ 0: L1(1), 15: L2(1), 20: ['acknowledged slack'] });
    expect(await refusal(h.executeUpdate(acknowledgeUpdate, { args: [{ by: 'carol' }] }))).toMatch(/already acknowledged by bob/);
    expect(await refusal(h.executeUpdate(snoozeUpdate, { args: [{ for: '1h', by: 'carol' }] }))).toMatch(/acknowledged/);
    await h.executeUpdate(resolveUpdate, { args: [{ by: 'bob' }] });
    const outcome = await h.result();
    expect(outcome).toMatchObject({ resolved: { by: 'bob' }, acknowledged: { by: 'bob' } });
    const view = await h.query(timelineQuery);
    expect(view.timeline.map((e) => e.event)).toEqual(['opened', ...Array(8).fill('notified'), 'acknowledged', 'resolved']);
  });
});

test('updates refuse what makes no sense, naming the field; nothing changes', async () => {
  const { sent, worker, start } = await setup();
  await worker.runUntil(async () => {
    const h = await start();
    await env.sleep('1m');
    expect(await refusal(h.executeUpdate(acknowledgeUpdate, { args: [{ by: '  ' }] }))).toMatch(/^by:/);
    expect(await refusal(h.executeUpdate(resolveUpdate, { args: [{ by: '' }] }))).toMatch(/^by:/);
    expect(await refusal(h.executeUpdate(reassignUpdate, { args: [{ to: 'mallory', by: 'alice' }] }))).toMatch(/^to: unknown person "mallory"/);
    expect(await refusal(h.executeUpdate(snoozeUpdate, { args: [{ for: 'forever', by: 'alice' }] }))).toMatch(/^for:/);
    expect(await refusal(h.executeUpdate(addNoteUpdate, { args: [{ by: 'alice', text: ' ' }] }))).toMatch(/^text:/);
    expect((await h.query(timelineQuery)).status).toBe('open');
    expect(sent).toHaveLength(3);
  });
});

test('snooze pushes the next level; reassign pages the new person; the alert resolving closes the incident by itself', async () => {
  const { sent, worker, start } = await setup();
  await worker.runUntil(async () => {
    const h = await start({ source: 'alertmanager' });
    await env.sleep('5m');
    const { until } = await h.executeUpdate(snoozeUpdate, { args: [{ for: '40m', by: 'alice', note: 'deploy running' }] });
    expect(Date.parse(until) - (await h.describe()).startTime.getTime()).toBeGreaterThanOrEqual(45 * 60_000 - 1000);
    await env.sleep('30m'); // minute 35: level 2 was due at 15 but is snoozed until 45
    expect(byMinute(sent)).toEqual({ 0: L1(1) });
    await env.sleep('15m'); // minute 50
    expect(byMinute(sent)).toEqual({ 0: L1(1), 45: L2(1) });
    await h.executeUpdate(reassignUpdate, { args: [{ to: 'bob', by: 'alice' }] });
    await h.executeUpdate(addNoteUpdate, { args: [{ by: 'bob', text: 'on it' }] });
    await h.signal(alertResolvedSignal, { by: 'alertmanager' });
    const outcome = await h.result();
    expect(outcome.resolved).toMatchObject({ by: 'alertmanager', auto: true });
    const after = byMinute(sent);
    expect(after[50]).toEqual(['resolved slack', 'reassigned email', 'reassigned slack', 'reassigned sms'].sort());
    const view = await h.query(timelineQuery);
    expect(view.timeline.filter((e) => ['snoozed', 'reassigned', 'note', 'resolved'].includes(e.event)).map((e) => `${e.event} ${e.by}`)).toEqual([
      'snoozed alice',
      'reassigned alice',
      'note bob',
      'resolved alertmanager',
    ]);
  });
});

test('a long incident continues as new and keeps its state and its policy', async () => {
  const taskQueue = uniqueName('inc');
  const config = parseConfig(`${CONFIG.replace('placeholder', taskQueue)}  maxTimeline: 10\n  policies:\n    fast:\n      levels: [{ targets: [alice], channels: [email], after: 1m }]\n      repeat: 30\n`, 'incident.yaml');
  const real = createActivities({ config });
  let pages = 0;
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: {
      escalationPolicy: real.escalationPolicy,
      notify: (n: NotifyInput): Promise<NotifyResult> => {
        if (n.kind === 'page') pages++;
        return Promise.resolve({ channel: n.channel, delivered: true });
      },
    },
  });
  await worker.runUntil(async () => {
    const h = await env.client.workflow.start<typeof incident>('incident', {
      taskQueue,
      workflowId: `incident/${uniqueName('fp')}`,
      args: [{ fingerprint: 'x', title: 'long', severity: 'low', source: 'manual', policy: 'fast' }],
    });
    await env.sleep('40m');
    expect(pages).toBe(31);
    const latest = env.client.workflow.getHandle<typeof incident>(h.workflowId);
    const d = await latest.describe();
    expect(d.runId).not.toBe(h.firstExecutionRunId);
    const view = await latest.query(timelineQuery);
    expect(view.timeline.map((e) => e.event)).toContain('continued');
    expect(view.timeline.at(-1)!.event).toBe('escalation exhausted');
    await latest.executeUpdate(resolveUpdate, { args: [{ by: 'alice' }] });
    expect((await latest.result()).resolved.by).toBe('alice');
  });
});

