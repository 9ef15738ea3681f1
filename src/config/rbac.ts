import { type ChatopsRule, type Config } from './schema';

/**
 * The RBAC rules of `chatops.rules`, read by ChatOps (who may do what) and by the runbooks' planning activities
 * (does this run need an approval, and how many approvers). The first rule matching (runbook, target) decides.
 */
export function ruleFor(config: Config, runbook: string, target: string): ChatopsRule | undefined {
  const match = (list: string[], v: string): boolean => list.includes('*') || list.includes(v);
  return config.chatops?.rules.find((r) => match(r.runbooks, runbook) && match(r.targets, target));
}

export interface ApprovalPolicy {
  /** The rule asks for an approval (a production target always needs one, whatever the rules say). */
  required: boolean;
  /** Different approvers needed, never the requester. */
  quorum: number;
}

export function approvalPolicy(config: Config, runbook: string, target: string): ApprovalPolicy {
  const rule = ruleFor(config, runbook, target);
  return { required: rule?.approval ?? false, quorum: rule?.quorum ?? 1 };
}
