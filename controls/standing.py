"""Standing access: who holds privileged roles permanently, outside PIM, or without expiry."""

from __future__ import annotations

from datetime import timedelta

from pimtrail.timeutil import parse_iso

from .base import each, holding_evidence, holding_subject, passed, privileged
from .model import Finding, Status, Subject
from .registry import control
from .view import ACTIVE_HOLDING_DATA, GLOBAL_ADMIN, HOLDING_DATA, TIER_DATA, SnapshotView


@control("PIM-GA-001", "Standing Global Administrator only for break-glass accounts", "critical",
         rationale="A permanently active Global Administrator is the most valuable account to steal. Only the "
                   "registered emergency (break-glass) accounts should hold it standing; everyone else activates "
                   "just in time.",
         remediation="Convert the assignment to an eligible one (PIM > Roles > Global Administrator > Assignments), "
                     "or register the account as break-glass in pimtrail.toml if that is what it is.",
         datasets=ACTIVE_HOLDING_DATA)
def standing_global_admin(view: SnapshotView, params: dict) -> list[Finding]:
    break_glass = view.break_glass_ids()

    def check(h):
        if h.role_id != GLOBAL_ADMIN or h.state != "active" or not h.permanent:
            return None
        if h.principal_id in break_glass:
            return None
        if h.principal.get("type") == "group":
            return None  # its members are checked one by one
        return Finding(Status.FAIL, f"{h.principal_name} holds Global Administrator permanently and is not a "
                       "registered break-glass account", holding_subject(h), holding_evidence(h))

    return each(view.holdings(), check, f"standing Global Administrator held only by break-glass accounts "
                f"({len(break_glass)} registered)")


@control("PIM-STD-002", "No permanent active tier-0/tier-1 role assignments", "high",
         rationale="Standing privileged access is always exposed; eligible assignments expose it only while "
                   "activated. Membership of a role-assignable group or a permanent PIM for Groups membership "
                   "is standing access too.",
         remediation="Make the assignment eligible with an end date, or remove it; for groups, make the "
                     "membership eligible in PIM for Groups.",
         datasets=TIER_DATA + ACTIVE_HOLDING_DATA)
def permanent_privileged(view: SnapshotView, params: dict) -> list[Finding]:
    break_glass = view.break_glass_ids()

    def check(h):
        if h.state != "active" or not h.permanent or not privileged(view, h):
            return None
        if h.principal_id in break_glass or h.principal.get("type") == "group":
            return None
        how = {"direct": "directly", "group": "through group membership",
               "pim_group": "through a permanent PIM for Groups membership"}[h.via]
        return Finding(Status.FAIL, f"{h.principal_name} holds {h.role.get('name')} (tier {view.tier(h.role_id)}) "
                       f"permanently, {how}", holding_subject(h), holding_evidence(h, tier=view.tier(h.role_id)))

    return each(view.user_holdings(), check, "no permanent active tier-0/1 assignments besides break-glass")


@control("PIM-STD-003", "No role assignments made outside PIM", "high",
         rationale="An assignment made outside PIM skips its activation policy, approval and audit trail "
                   "(CISA SCuBA MS.AAD.7.5).",
         remediation="Remove the assignment and re-create it through PIM as an eligible assignment.",
         datasets=("role_definitions", "role_assignment_instances", "directory_audits"))
def outside_pim(view: SnapshotView, params: dict) -> list[Finding]:
    findings = []
    for inst in view.facts.get("role_assignment", []):
        if inst.get("outside_pim"):
            holder = view.principal(inst["principal_id"])
            name = holder.get("upn") or holder.get("name") or inst["principal_id"]
            findings.append(Finding(Status.FAIL, f"{name} holds {inst.get('role_name')} through an assignment "
                                    "made outside PIM (no start time)",
                                    Subject(inst["principal_id"], name, holder.get("type"), inst.get("role_name")),
                                    {"instance_id": inst["id"], "start": None, "end": inst.get("end")}))
    for ev in view.audit_events:
        if "outside of pim" in (ev.get("activity") or "").lower():
            target = ev.get("principal") or {}
            findings.append(Finding(Status.FAIL, f"{ev['time']}: {ev['activity']} — {target.get('upn') or target.get('name')} "
                                    f"to {ev.get('role_name')} by {(ev.get('initiated_by') or {}).get('upn')}",
                                    Subject(target.get("id"), target.get("upn") or target.get("name"),
                                            (target.get("type") or "").lower() or None, ev.get("role_name")),
                                    {"audit_id": ev["id"], "time": ev["time"]}))
    return findings or [passed("no assignment outside PIM in the snapshot or the period's audit log")]


@control("PIM-STD-004", "Eligibility for tier-0/tier-1 roles expires", "medium",
         rationale="Permanent eligibility never forces a decision on whether the person still needs the role.",
         remediation="Set an end date on the eligibility (PIM role settings: 'Allow permanent eligible assignment' off).",
         datasets=TIER_DATA + ("role_eligibility_instances", "users"),
         params=("permanent_eligibility_max_days",))
def eligibility_expires(view: SnapshotView, params: dict) -> list[Finding]:
    limit = timedelta(days=int(params["permanent_eligibility_max_days"]))
    now = view.snapshot.collected_at

    def check(h):
        if h.state != "eligible" or h.via != "direct" or not privileged(view, h):
            return None
        if h.permanent:
            return Finding(Status.FAIL, f"{h.principal_name} is permanently eligible for {h.role.get('name')}",
                           holding_subject(h), holding_evidence(h))
        if h.end and parse_iso(h.end) - now > limit:
            return Finding(Status.FAIL, f"{h.principal_name}'s eligibility for {h.role.get('name')} runs until "
                           f"{h.end[:10]}, beyond {limit.days} days", holding_subject(h), holding_evidence(h))
        return None

    return each(view.holdings(), check, f"every tier-0/1 eligibility ends within {limit.days} days")


@control("PIM-GA-005", "Global Administrator holders within bounds", "high",
         rationale="Too few Global Administrators risks lock-out; too many widens the attack surface. Finer-"
                   "grained roles should outnumber Global Administrator (CISA SCuBA MS.AAD.7.1, 7.2; CIS 1.1.3).",
         remediation="Move people to finer-grained roles (e.g. User, Exchange, Security Administrator) and keep "
                     "Global Administrator for the few who need it, eligible.",
         datasets=TIER_DATA + HOLDING_DATA,
         params=("ga_holders_min", "ga_holders_max", "ga_ratio_max", "count_break_glass_as_ga"))
def global_admin_count(view: SnapshotView, params: dict) -> list[Finding]:
    break_glass = view.break_glass_ids()
    holders = {h.principal_id: h for h in view.user_holdings() if h.role_id == GLOBAL_ADMIN}
    counted = {pid: h for pid, h in holders.items()
               if params.get("count_break_glass_as_ga") or pid not in break_glass}
    low, high = int(params["ga_holders_min"]), int(params["ga_holders_max"])
    others = {h.principal_id for h in view.user_holdings()
              if h.role_id != GLOBAL_ADMIN and privileged(view, h, (0, 1)) and h.principal_id not in holders}
    findings = []
    label = "Global Administrator holders" + ("" if params.get("count_break_glass_as_ga") else " besides break-glass")
    allowed = f"{low}" if low == high else f"at most {high}" if low == 0 else f"{low}–{high}"
    if not low <= len(counted) <= high:
        for pid, h in sorted(counted.items(), key=lambda kv: kv[1].principal_name):
            findings.append(Finding(Status.FAIL, f"{h.principal_name} holds Global Administrator ({h.state}) — "
                            f"{len(counted)} {label}, allowed {allowed}", holding_subject(h),
                            holding_evidence(h, count=len(counted), bounds=[low, high])))
        if not counted:
            findings.append(Finding(Status.FAIL, f"{len(counted)} {label}, allowed {allowed}",
                                    evidence={"count": 0, "bounds": [low, high]}))
    ratio = len(holders) / len(others) if others else float("inf") if holders else 0.0
    if holders and ratio > float(params["ga_ratio_max"]):
        findings.append(Finding(Status.FAIL, f"{len(holders)} Global Administrators for {len(others)} holders of other "
                        f"privileged roles (ratio {ratio:.2f}, at most {params['ga_ratio_max']})",
                        evidence={"global_admins": len(holders), "other_privileged": len(others)}))
    return findings or [passed(f"{len(counted)} {label} (allowed {allowed}); ratio to other privileged users "
                               f"{ratio:.2f}", count=len(counted), other_privileged=len(others))]
