import { type ChatopsConfig, type Config } from '../../config/schema';
import { ruleFor } from '../../config/rbac';

/** Who pressed a button or typed a command: the Slack user, and the name runs record for them. */
export interface Actor {
  userId: string;
  /** chatops.people[userId], else the user id. Never the Slack user name: users can rename themselves, and a
   *  requester renamed between request and approval must not pass the no-self-approval check. */
  name: string;
}

export function actorOf(config: Config, userId: string): Actor {
  return { userId, name: config.chatops?.people[userId] ?? userId };
}

export type Verdict = { ok: true } | { ok: false; reason: string };

/** Members of a Slack user group (usergroups.users.list); the server caches them briefly. */
export type GroupMembers = (groupId: string) => Promise<string[]>;

/**
 * RBAC from `chatops`: a rule (the first matching runbook and target) lists who may run and who may approve, by
 * Slack user id (U...), user group id (S...) or role name. No rule, nobody: chat access is granted, never assumed.
 */
export class Rbac {
  constructor(
    private readonly config: Config,
    private readonly groupMembers: GroupMembers,
  ) {}

  private get chat(): ChatopsConfig {
    if (!this.config.chatops) throw new Error('chatops is not configured');
    return this.config.chatops;
  }

  /** Is the actor one of `who` (ids and role names)? */
  private async among(actor: Actor, who: string[]): Promise<boolean> {
    const ids = who.flatMap((w) => this.chat.roles[w] ?? [w]);
    if (ids.includes(actor.userId)) return true;
    for (const group of ids.filter((id) => id.startsWith('S'))) {
      const members = await this.groupMembers(group).catch(() => [] as string[]);
      if (members.includes(actor.userId)) return true;
    }
    return false;
  }

  async may(actor: Actor, action: 'run' | 'approve', runbook: string, target: string): Promise<Verdict> {
    const rule = ruleFor(this.config, runbook, target);
    const verb = action === 'run' ? 'run' : 'approve';
    if (!rule) return { ok: false, reason: `<@${actor.userId}> may not ${verb} ${runbook} on ${target}: no chatops rule covers it` };
    const who = action === 'run' ? rule.run : rule.approve;
    if (await this.among(actor, who)) return { ok: true };
    return {
      ok: false,
      reason: `<@${actor.userId}> may not ${verb} ${runbook} on ${target} (allowed: ${who.length ? who.join(', ') : 'nobody'})`,
    };
  }

  /**
   * May the actor run this runbook on some target? Asked before its parameters are read, so somebody no rule lets
   * run it gets one answer whatever they typed, and learns nothing about its inputs.
   */
  async mayRunSome(actor: Actor, runbook: string): Promise<Verdict> {
    const rules = this.chat.rules.filter((r) => r.runbooks.includes('*') || r.runbooks.includes(runbook));
    for (const r of rules) if (await this.among(actor, r.run)) return { ok: true };
    const who = [...new Set(rules.flatMap((r) => r.run))];
    return { ok: false, reason: `<@${actor.userId}> may not run ${runbook} (allowed: ${who.length ? who.join(', ') : 'nobody'})` };
  }

  /** Reads (status, list) follow the same rules: who may run or approve a runbook on a target may see its runs. */
  async maySee(actor: Actor, runbook: string, target: string): Promise<boolean> {
    if (runbook === 'incident' && (await this.mayHandleIncidents(actor)).ok) return true;
    const rule = ruleFor(this.config, runbook, target);
    return rule !== undefined && (await this.among(actor, [...rule.run, ...rule.approve]));
  }

  /** Does any rule (on this target, or on any) let the actor run or approve something? */
  async maySeeSome(actor: Actor, target?: string): Promise<boolean> {
    for (const r of this.chat.rules) {
      if (target !== undefined && !r.targets.includes('*') && !r.targets.includes(target)) continue;
      if (await this.among(actor, [...r.run, ...r.approve])) return true;
    }
    return (await this.mayHandleIncidents(actor)).ok;
  }

  /** `chatops.incidents` names who may press acknowledge / resolve; absent or empty, nobody may. */
  async mayHandleIncidents(actor: Actor): Promise<Verdict> {
    const who = this.chat.incidents;
    if (who.length > 0 && (await this.among(actor, who))) return { ok: true };
    return {
      ok: false,
      reason: `<@${actor.userId}> may not acknowledge or resolve incidents (allowed: ${who.length ? who.join(', ') : 'nobody: chatops.incidents names no one'})`,
    };
  }
}
