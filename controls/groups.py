"""PIM for Groups: groups that confer privileged roles must be as tightly run as the roles."""

from __future__ import annotations

from .base import passed
from .model import Finding, Status, Subject
from .policy import policy_gaps
from .registry import control
from .view import TIER_DATA, SnapshotView


@control("PIM-GRP-021", "Role-assignable groups with privileged roles are run through PIM", "high",
         rationale="A group that holds a privileged role hands it to every member: a permanent member outside "
                   "PIM has standing privilege, and a weak group policy undoes the role's policy.",
         remediation="Onboard the group to PIM for Groups; make memberships eligible; give the group's member "
                     "policy the activation settings of the most sensitive role it confers.",
         datasets=TIER_DATA + ("role_assignment_instances", "role_eligibility_instances",
                   "role_assignable_groups", "group_members", "group_assignment_instances",
                   "group_eligibility_instances", "group_policy_assignments"))
def privileged_groups(view: SnapshotView, params: dict) -> list[Finding]:
    conferred: dict[str, list[dict]] = {}
    for kind in ("role_assignment", "role_eligibility"):
        for inst in view.facts.get(kind, []):
            holder = view.principal(inst["principal_id"])
            role = view.roles.get(inst["role_id"]) or {"id": inst["role_id"]}
            if holder.get("type") == "group" and view.profile.tier_of(role) in (0, 1):
                conferred.setdefault(inst["principal_id"], []).append(role)
    if not conferred:
        return [Finding(Status.NOT_APPLICABLE, "no group holds a tier-0/1 role")]
    policies = {(p["group_id"], p.get("access")): p for p in view.facts.get("group_policy", [])}
    findings = []
    for group_id, roles in sorted(conferred.items()):
        group = view.principal(group_id)
        name = group.get("name") or group_id
        role_names = ", ".join(sorted({r.get("name") or r["id"] for r in roles}))
        subject = Subject(group_id, name, "group", role_names, group_id)
        for member_id, how, permanent, _ in view.group_members(group_id):
            if how == "membership" or (how == "group_pim_assignment" and permanent):
                member = view.principal(member_id)
                what = "a plain member (outside PIM)" if how == "membership" else "a permanent active PIM member"
                findings.append(Finding(Status.FAIL, f"{member.get('upn') or member_id} is {what} of {name}, "
                                        f"which holds {role_names}",
                                        Subject(member_id, member.get("upn") or member.get("name"),
                                                member.get("type"), role_names, group_id), {"via": how}))
        rules = [view.profile.rule_for(r) for r in roles]
        rules = [r for r in rules if r is not None]
        strictest = min(rules, key=lambda r: r.tier) if rules else None
        policy = policies.get((group_id, "member"))
        if strictest is None:
            continue
        if policy is None:
            findings.append(Finding(Status.FAIL, f"{name} holds {role_names} but has no PIM for Groups member policy",
                                    subject))
            continue
        gaps = policy_gaps(policy, strictest)
        findings.append(Finding(Status.FAIL if gaps else Status.PASS,
                                f"{name} member policy (tier {strictest.tier}): " + ("; ".join(gaps) or "meets the tier"),
                                subject, {"policy_id": policy.get("policy_id")}))
    return findings or [passed("privileged groups are run through PIM")]
