"""Activation policies per role tier, and who gets told when privilege is used."""

from __future__ import annotations

from .base import passed
from .model import Finding, Status, Subject
from .registry import control
from .view import TIER_DATA, SnapshotView


def policy_gaps(policy: dict, rule) -> list[str]:
    """What an activation policy lacks against the rule for its tier (shared with PIM for Groups)."""
    gaps = []
    hours = policy.get("max_activation_hours")
    if hours is None or hours > rule.max_activation_hours:
        gaps.append(f"max activation {policy.get('max_activation') or 'unset'} > {rule.max_activation_hours:g} h")
    if rule.require_mfa and not (policy.get("mfa") or policy.get("auth_context")):
        gaps.append("no MFA or authentication context on activation")
    if rule.require_justification and not policy.get("justification"):
        gaps.append("no justification required")
    if rule.require_ticket and not policy.get("ticket"):
        gaps.append("no ticket required")
    if rule.require_approval and not policy.get("approval_required"):
        gaps.append("no approval required")
    elif rule.require_approval and policy.get("approver_count", 0) < rule.min_approvers:
        gaps.append(f"{policy.get('approver_count', 0)} approver(s) named, at least {rule.min_approvers} required")
    return gaps


@control("PIM-POL-011", "Each role's activation policy meets its tier", "high",
         rationale="The activation policy is what makes eligibility safe: short, MFA-protected, justified and, for "
                   "tier 0, approved by someone else (CIS 5.3.4/5.3.5, CISA SCuBA MS.AAD.7.6).",
         remediation="PIM > Microsoft Entra roles > Settings > the role: set the maximum activation duration, "
                     "require MFA or an authentication context, justification, and approval with named approvers "
                     "as the tier requires.",
         datasets=TIER_DATA + ("role_policy_assignments",))
def activation_policy(view: SnapshotView, params: dict) -> list[Finding]:
    findings = []
    for policy in sorted(view.facts.get("role_policy", []), key=lambda p: p.get("role_name") or ""):
        role = view.roles.get(policy["role_id"]) or {"id": policy["role_id"], "name": policy.get("role_name")}
        rule = view.profile.rule_for(role)
        if rule is None:
            continue
        gaps = policy_gaps(policy, rule)
        name = role.get("name") or policy["role_id"]
        evidence = {"tier": rule.tier, "policy_id": policy.get("policy_id"),
                    "max_activation": policy.get("max_activation"), "mfa": policy.get("mfa"),
                    "auth_context": policy.get("auth_context"), "justification": policy.get("justification"),
                    "ticket": policy.get("ticket"), "approval_required": policy.get("approval_required"),
                    "approvers": policy.get("approvers"), "expected": vars(rule)}
        findings.append(Finding(Status.FAIL if gaps else Status.PASS,
                                f"{name} (tier {rule.tier}): " + ("; ".join(gaps) or "meets its tier"),
                                Subject(role=name), evidence))
    return findings


@control("PIM-POL-012", "Privileged activations and assignments notify additional recipients", "medium",
         rationale="Someone besides the default admins should hear when Global Administrator or another tier-0 "
                   "role is assigned or activated (CISA SCuBA MS.AAD.7.7-7.9).",
         remediation="In each tier-0 role's settings, add a monitored mailbox (e.g. the SOC) as additional "
                     "recipient of 'role assignment alert' for eligible and active assignments and of "
                     "'role activation alert'.",
         datasets=TIER_DATA + ("role_policy_assignments",), params=("notification_extra_recipients_tiers",))
def notifications(view: SnapshotView, params: dict) -> list[Finding]:
    tiers = set(params["notification_extra_recipients_tiers"])
    wanted = ("Notification_Admin_Admin_Eligibility", "Notification_Admin_Admin_Assignment",
              "Notification_Admin_EndUser_Assignment")
    findings = []
    for policy in sorted(view.facts.get("role_policy", []), key=lambda p: p.get("role_name") or ""):
        role = view.roles.get(policy["role_id"]) or {"id": policy["role_id"], "name": policy.get("role_name")}
        if view.profile.tier_of(role) not in tiers:
            continue
        rules = policy.get("notifications") or {}
        missing = [r for r in wanted if not (rules.get(r) or {}).get("recipients")]
        name = role.get("name") or policy["role_id"]
        findings.append(Finding(Status.FAIL if missing else Status.PASS,
                                f"{name}: " + (f"no additional recipients for {', '.join(missing)}" if missing
                                               else "alerts reach additional recipients"),
                                Subject(role=name), {r: (rules.get(r) or {}).get("recipients") for r in wanted}))
    return findings or [passed("no role in the tiers that need additional recipients")]
