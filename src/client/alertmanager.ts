import { createHash, timingSafeEqual } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type Client, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { z } from 'zod';
import { verifyAckLink } from '../activities/ack-link';
import { describeIssue } from '../config/load';
import { type Config, type Severity, isLoopbackHost } from '../config/schema';
import { redact, resolveSecret } from '../config/secrets';
import { acknowledgeUpdate, incidentWorkflowId } from '../workflows/incident-definitions';
import { openIncident, resolveIncident } from './incidents';
import { HttpError, createLimitedServer, readBody } from './http';

/**
 * The incidents HTTP receiver:
 *   POST /alertmanager   Alertmanager's webhook (v4 JSON): a firing alert opens or joins incident/<fingerprint>
 *                        (signal-with-start), a resolved one resolves it. Bearer or basic auth per config.
 *                        A bad body is refused with 400 and the reason, and nothing is started.
 *   GET  /ack?...        the signed acknowledge link of an incident email: a confirmation page (mail scanners
 *                        that prefetch links must not acknowledge anything)
 *   POST /ack?...        acknowledges: the incident's `acknowledge` Update, by the person the link was signed for
 *   GET  /healthz        200
 */

const labels = z.record(z.string(), z.string());

/** Alerts per webhook request: a group larger than this is refused whole (set `max_alerts` in Alertmanager's webhook_config). */
export const MAX_ALERTS = 1000;

/** https://prometheus.io/docs/alerting/latest/configuration/#webhook_config — extra fields are allowed (forward compatible). */
export const alertmanagerPayloadSchema = z.object({
  version: z.literal('4', { error: 'must be "4" (Alertmanager webhook payload version)' }),
  groupKey: z.string(),
  truncatedAlerts: z.number().int().min(0).optional(),
  status: z.enum(['firing', 'resolved']),
  receiver: z.string(),
  groupLabels: labels,
  commonLabels: labels,
  commonAnnotations: labels,
  externalURL: z.string(),
  alerts: z
    .array(
      z.object({
        status: z.enum(['firing', 'resolved']),
        labels: labels.refine((l) => typeof l.alertname === 'string' && l.alertname.length > 0, { message: 'must contain alertname' }),
        annotations: labels.default({}),
        startsAt: z.string().datetime({ offset: true }),
        endsAt: z.string().optional(),
        generatorURL: z.string().optional(),
        fingerprint: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, 'must be an Alertmanager fingerprint (hex)'),
      }),
    )
    .min(1, 'must hold at least one alert')
    .max(MAX_ALERTS, `must hold at most ${MAX_ALERTS} alerts per request (Alertmanager's max_alerts caps a webhook)`),
});
export type AlertmanagerPayload = z.infer<typeof alertmanagerPayloadSchema>;

/** Prometheus severity labels → our four severities (the seed rules use critical / warning). */
export function severityOf(label: string | undefined): Severity {
  switch ((label ?? '').toLowerCase()) {
    case 'critical':
    case 'page':
    case 'emergency':
      return 'critical';
    case 'warning':
    case 'medium':
      return 'medium';
    case 'info':
    case 'low':
    case 'none':
      return 'low';
    default:
      return 'high';
  }
}

export interface ReceiverResult {
  fingerprint: string;
  workflowId: string;
  action: 'firing' | 'resolved' | 'not open';
}

const MAX_BODY = 1 << 20;

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();
const same = (a: string, b: string): boolean => timingSafeEqual(digest(a), digest(b));

function checkAuth(config: Config, req: IncomingMessage): void {
  const auth = config.incidents.auth;
  if (!auth) return;
  const given = req.headers.authorization ?? '';
  if ('bearerToken' in auth) {
    const token = resolveSecret(auth.bearerToken, 'incidents.auth.bearerToken');
    if (given.startsWith('Bearer ') && same(given.slice(7), token)) return;
    throw new HttpError(401, 'unauthorized', { 'www-authenticate': 'Bearer' });
  }
  const password = resolveSecret(auth.password, 'incidents.auth.password');
  if (given.startsWith('Basic ') && same(Buffer.from(given.slice(6), 'base64').toString('utf8'), `${auth.username}:${password}`)) return;
  throw new HttpError(401, 'unauthorized', { 'www-authenticate': 'Basic realm="durable-runbooks"' });
}

/** Validate the whole payload before acting on any alert: a bad body starts nothing. */
export function parseAlertmanagerBody(text: string): AlertmanagerPayload {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'body: not valid JSON');
  }
  const r = alertmanagerPayloadSchema.safeParse(json);
  if (!r.success) {
    throw new HttpError(400, r.error.issues.map((i) => describeIssue(i, 'body')).join('; '));
  }
  return r.data;
}

export async function receiveAlerts(client: Client, config: Config, payload: AlertmanagerPayload): Promise<ReceiverResult[]> {
  const out: ReceiverResult[] = [];
  for (const a of payload.alerts) {
    const workflowId = incidentWorkflowId(a.fingerprint);
    if (a.status === 'firing') {
      const summary = a.annotations.summary ?? a.annotations.description;
      await openIncident(
        client,
        config,
        {
          fingerprint: a.fingerprint,
          title: summary ? `${a.labels.alertname}: ${summary}` : a.labels.alertname!,
          severity: severityOf(a.labels.severity),
          description: a.annotations.description,
          source: 'alertmanager',
          labels: a.labels,
        },
        { startsAt: a.startsAt, summary },
      );
      out.push({ fingerprint: a.fingerprint, workflowId, action: 'firing' });
    } else {
      const done = await resolveIncident(client, a.fingerprint, { endsAt: a.endsAt, by: 'alertmanager' });
      out.push({ fingerprint: a.fingerprint, workflowId, action: done ? 'resolved' : 'not open' });
    }
  }
  return out;
}

function page(title: string, body: string): string {
  const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title></head><body><h1>${esc(title)}</h1>${body.replace(/\{\{(.*?)\}\}/g, (_, t: string) => esc(t))}</body></html>`;
}

async function handleAck(client: Client, config: Config, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const check = verifyAckLink(config, url.searchParams);
  if (!check.ok) throw new HttpError(403, `acknowledge link refused: ${check.reason}`);
  const { incident, key, by } = check.claim;
  if (req.method === 'GET') {
    res
      .writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
      .end(page('Acknowledge incident', `<p>{{${incident}}}</p><form method="post" action="{{${url.pathname}${url.search}}}"><button type="submit">Acknowledge as {{${by}}}</button></form>`));
    return;
  }
  try {
    const rec = await client.workflow.getHandle(incident).executeUpdate(acknowledgeUpdate, { args: [{ by, note: 'acknowledged from the email link', incidentKey: key }] });
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page('Incident acknowledged', `<p>{{${incident}}} acknowledged by {{${rec.by}}} at {{${rec.at}}}.</p>`));
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) throw new HttpError(409, `not acknowledged: ${err.cause?.message ?? err.message}`);
    if (err instanceof WorkflowNotFoundError) throw new HttpError(404, 'not acknowledged: the incident is closed');
    throw err;
  }
}

export interface IncidentServerOptions {
  client: Client;
  config: Config;
  log?: (msg: string) => void;
}

/** The receiver as a node http.Server (not listening yet: `server.listen(config.incidents.listen.port, ...)`). */
export function createIncidentServer({ client, config, log = () => undefined }: IncidentServerOptions): Server {
  // The config check refuses this too; a config built in code must not get around it.
  if (!config.incidents.auth && !isLoopbackHost(config.incidents.listen.host)) {
    throw new Error(`incidents.auth: is required when incidents.listen.host is not a loopback address (${config.incidents.listen.host})`);
  }
  return createLimitedServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://receiver');
    const route = async (): Promise<void> => {
      if (url.pathname === '/healthz' && req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
        return;
      }
      if (url.pathname === '/alertmanager') {
        if (req.method !== 'POST') throw new HttpError(405, 'method: use POST', { allow: 'POST' });
        checkAuth(config, req);
        const payload = parseAlertmanagerBody(await readBody(req, MAX_BODY));
        const results = await receiveAlerts(client, config, payload);
        log(`alertmanager ${payload.status}: ${results.map((r) => `${r.workflowId} ${r.action}`).join(', ')}`);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, incidents: results }));
        return;
      }
      if (url.pathname === '/ack' && (req.method === 'GET' || req.method === 'POST')) {
        await handleAck(client, config, req, res, url);
        return;
      }
      throw new HttpError(404, 'not found');
    };
    route().catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : 500;
      const message = redact(err instanceof Error ? err.message : String(err));
      if (status === 500) log(`receiver error: ${message}`);
      if (res.headersSent) return void res.end();
      const headers = err instanceof HttpError ? err.headers : {};
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify({ ok: false, error: message }));
    });
  });
}
