import { createHmac, timingSafeEqual } from 'node:crypto';
import { type Config, durationMs } from '../config/schema';
import { resolveSecret } from '../config/secrets';

/**
 * Acknowledge links in incident emails: `<publicUrl>/ack?i=<workflow id>&k=<incident key>&by=<person>&exp=<unix s>&sig=<hmac>`.
 * The HMAC-SHA256 (key: incidents.ackSecret) covers the incident, its key, the person and the expiry, so a link can
 * neither be pointed at another incident or person nor extended. The key (IncidentState.key: the workflow id and
 * its first run) tells this incident from a later one with the same fingerprint: the `acknowledge` Update's
 * validator refuses a link whose key is not the running incident's.
 */

export interface AckClaim {
  incident: string;
  /** The incident run's key (stable across continue-as-new). */
  key: string;
  by: string;
  /** Unix seconds. */
  exp: number;
}

function ackKey(config: Config): string {
  const ref = config.incidents.ackSecret;
  if (!ref) throw new Error('incidents.ackSecret is not configured');
  return resolveSecret(ref, 'incidents.ackSecret');
}

function mac(key: string, c: AckClaim): Buffer {
  return createHmac('sha256', key).update(JSON.stringify(['ack', c.incident, c.key, c.by, c.exp])).digest();
}

export function signAckLink(config: Config, incident: { id: string; key: string }, by: string, now = Date.now()): string {
  const exp = Math.floor((now + durationMs(config.incidents.ackLinkTtl)) / 1000);
  const sig = mac(ackKey(config), { incident: incident.id, key: incident.key, by, exp }).toString('base64url');
  const url = new URL('ack', config.incidents.publicUrl.endsWith('/') ? config.incidents.publicUrl : `${config.incidents.publicUrl}/`);
  url.search = new URLSearchParams({ i: incident.id, k: incident.key, by, exp: String(exp), sig }).toString();
  return url.toString();
}

export type AckCheck = { ok: true; claim: AckClaim } | { ok: false; reason: string };

/** Check a link's parameters; the reason never reveals the expected signature. */
export function verifyAckLink(config: Config, params: URLSearchParams, now = Date.now()): AckCheck {
  const incident = params.get('i');
  const key = params.get('k');
  const by = params.get('by');
  const exp = Number(params.get('exp'));
  const sig = params.get('sig') ?? '';
  if (!incident || !key || !by || !Number.isInteger(exp) || !sig) return { ok: false, reason: 'incomplete link' };
  const expected = mac(ackKey(config), { incident, key, by, exp });
  const given = Buffer.from(sig, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'invalid signature' };
  if (exp * 1000 < now) return { ok: false, reason: 'link expired' };
  return { ok: true, claim: { incident, key, by, exp } };
}
