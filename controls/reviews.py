"""Access reviews: are privileged roles recertified, and were the decisions carried out?"""

from __future__ import annotations

from pimtrail.timeutil import parse_iso

from .base import passed
from .model import Finding, Status, Subject
from .registry import control
from .view import HOLDING_DATA, TIER_DATA, SnapshotView

REVIEW_DATA = ("role_definitions", "access_review_definitions", "access_review_instances",
               "access_review_decisions")
INTERVAL_DAYS = {"daily": 1, "weekly": 7, "absoluteMonthly": 31, "relativeMonthly": 31,
                 "absoluteYearly": 366, "relativeYearly": 366}


def reviewed_roles(definition: dict) -> set[str]:
    """Role definition ids a review definition covers (from its scope queries)."""
    queries = [definition.get("scope_query") or ""] + (definition.get("resource_scopes") or []) + \
              (definition.get("scopes") or [])
    roles = set()
    for q in queries:
        for part in (q or "").replace("'", "/").split("/"):
            if len(part) == 36 and part.count("-") == 4:
                roles.add(part)
    return roles


@control("PIM-REV-019", "Privileged roles are covered by recurring access reviews", "high",
         rationale="Recertification catches access nobody needs any more (CIS 5.3.3, NIST AC-2(7)).",
         remediation="Create a recurring access review of the role's eligible and active assignments, reviewers "
                     "other than the reviewed (e.g. managers), auto-apply on, and 'Remove access' when reviewers "
                     "do not respond.",
         datasets=TIER_DATA + REVIEW_DATA, params=("review_max_interval_days",))
def review_coverage(view: SnapshotView, params: dict) -> list[Finding]:
    max_days = int(params["review_max_interval_days"])
    good: dict[str, dict] = {}
    problems: dict[str, list[str]] = {}
    for d in view.facts.get("access_review_definition", []):
        if d.get("status") not in ("InProgress", "NotStarted", "Active", None, "Completed"):
            continue
        gaps = []
        interval = INTERVAL_DAYS.get(d.get("recurrence") or "", 0) * int(d.get("recurrence_interval") or 1)
        if not interval or interval > max_days:
            gaps.append(f"recurs every {interval or '—'} days, at most {max_days} wanted")
        if not d.get("auto_apply"):
            gaps.append("auto-apply off")
        if not d.get("default_decision_enabled") or d.get("default_decision") in (None, "None"):
            gaps.append("no decision when reviewers do not respond")
        reviewers = " ".join(d.get("reviewers") or [])
        if not reviewers or "principal" in reviewers.lower() and "manager" not in reviewers.lower():
            gaps.append("reviewers are the reviewed themselves (self-review)")
        for role_id in reviewed_roles(d):
            if gaps:
                problems.setdefault(role_id, []).extend(f"{d.get('name')}: {g}" for g in gaps)
            else:
                good[role_id] = d
    findings = []
    for role_id, role in sorted(view.roles.items(), key=lambda kv: kv[1].get("name") or ""):
        tier = view.profile.tier_of(role)
        if tier not in (0, 1):
            continue
        ids = {role_id, role.get("template_id")}
        covered = [good[i] for i in ids if i in good]
        if covered:
            findings.append(Finding(Status.PASS, f"{role.get('name')}: reviewed by {covered[0].get('name')}",
                                    Subject(role=role.get("name")), {"definition_id": covered[0]["id"]}))
            continue
        why = [p for i in ids for p in problems.get(i, [])] or ["no recurring access review covers this role"]
        findings.append(Finding(Status.FAIL, f"{role.get('name')} (tier {tier}): " + "; ".join(why),
                                Subject(role=role.get("name")), {"problems": why}))
    return findings


@control("PIM-REV-020", "Review instances completed and their decisions applied", "high",
         rationale="A review only reduces access if reviewers decide and the denials are carried out.",
         remediation="Chase open reviews; turn on auto-apply; remove the access of every applied Deny that "
                     "still shows up.",
         datasets=REVIEW_DATA + HOLDING_DATA,
         params=("review_not_reviewed_max",))
def review_outcomes(view: SnapshotView, params: dict) -> list[Finding]:
    bound = float(params["review_not_reviewed_max"])
    instances = {i["id"]: i for i in view.facts.get("access_review_instance", [])
                 if i.get("end") and view.period_start <= parse_iso(i["end"]) <= view.period_end}
    holders = {(h.principal_id, h.role_id) for h in view.holdings()}
    holders |= {(h.principal_id, h.role.get("template_id")) for h in view.holdings()}
    findings = []
    by_instance = view.grouped("access_review_decision", "instance_id")  # each instance's, in fact order
    for inst in sorted(instances.values(), key=lambda i: i.get("end") or ""):
        decisions = by_instance.get(inst["id"], [])
        label = f"review instance ending {inst['end'][:10]}"
        if inst.get("status") not in ("Completed", "Applied", "AutoReviewed"):
            findings.append(Finding(Status.FAIL, f"{label} is {inst.get('status')}, not completed",
                                    evidence={"instance_id": inst["id"]}))
        not_reviewed = [d for d in decisions if d.get("decision") in (None, "NotReviewed")]
        if decisions and len(not_reviewed) / len(decisions) > bound:
            findings.append(Finding(Status.WARN, f"{label}: {len(not_reviewed)} of {len(decisions)} decisions left "
                                    f"NotReviewed (more than {bound:.0%})", evidence={"instance_id": inst["id"]}))
        for d in decisions:
            if d.get("decision") != "Deny":
                continue
            principal = d.get("principal") or {}
            role_id = (d.get("resource") or {}).get("id")
            subject = Subject(principal.get("id"), principal.get("upn") or principal.get("name"), "user",
                              (d.get("resource") or {}).get("name"))
            if d.get("apply_result") not in ("AppliedSuccessfully", "AppliedSuccessfullyButObjectNotFound"):
                findings.append(Finding(Status.FAIL, f"{label}: Deny for {subject.principal_name} not applied "
                                        f"({d.get('apply_result') or 'no apply result'})", subject,
                                        {"decision_id": d["id"], "apply_result": d.get("apply_result")}))
            elif (principal.get("id"), role_id) in holders:
                findings.append(Finding(Status.FAIL, f"{label}: {subject.principal_name} was denied "
                                        f"{subject.role} but still holds it", subject, {"decision_id": d["id"]}))
    if not instances:
        return [Finding(Status.NOT_APPLICABLE, "no access-review instance ended in the period")]
    return findings or [passed(f"{len(instances)} review instance(s) completed, every Deny applied")]
