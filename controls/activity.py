"""Activations and approvals over the evaluation period; unused privilege."""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from pimtrail.collectors.datasets import SIGN_IN_DATASET
from pimtrail.timeutil import parse_iso

from .base import each, holding_evidence, holding_subject, passed, short
from .model import Finding, Status, Subject
from .registry import control
from .view import HOLDING_DATA, TIER_DATA, SnapshotView

ACTIVITY_DATA = ("role_definitions", "role_policy_assignments", "directory_audits")


def _subject(view: SnapshotView, act) -> Subject:
    p = view.principal(act.principal_id) if act.principal_id else {}
    return Subject(act.principal_id, p.get("upn") or act.principal_name, p.get("type") or "user", act.role_name)


def _evidence(act) -> dict:
    return {"correlation_id": act.correlation_id, "requested_at": act.requested_at, "start": act.start,
            "end": act.end, "justification": act.justification, "approval": act.approval,
            "approvers": act.approvers, "outcome": act.outcome, "audit_ids": act.events}


@control("PIM-ACT-013", "Activations of approval-required roles were approved by someone else", "high",
         rationale="Approval is the control that stops a stolen eligible account from activating alone; a "
                   "self-approval or a missing approval means it did not work (NIST AC-5).",
         remediation="Investigate each listed activation; make sure approvers are named people other than the "
                     "requesters, and that the approval rule is on for the role.",
         datasets=ACTIVITY_DATA)
def approvals(view: SnapshotView, params: dict) -> list[Finding]:
    findings, checked = [], 0
    for act in view.activations:
        if act.scope != "role" or act.outcome == "denied":
            continue
        # judge each activation by the policy in force when it happened, not today's
        if act.self_approved:  # whatever the policy said, nobody may approve their own request
            findings.append(Finding(Status.FAIL, f"{act.requested_at or act.start}: {act.principal_name or act.principal_id} "
                                    f"approved their own activation of {act.role_name}", _subject(view, act),
                                    _evidence(act)))
            continue
        policy = view.policy_at(act.role_id, act.requested_at or act.start)
        if policy is None:
            current = next((p for p in view.facts.get("role_policy", []) if p["role_id"] == act.role_id), {})
            if current.get("approval_required") and act.approval != "approved":
                findings.append(Finding(Status.WARN, f"{act.requested_at or act.start}: {act.principal_name} activated "
                                        f"{act.role_name} without approval; the policy changed after it, so whether "
                                        "approval was required then is not in the history",
                                        _subject(view, act), _evidence(act)))
            continue
        if not policy.get("approval_required"):
            continue
        checked += 1
        if act.outcome == "activated" and act.approval != "approved":
            findings.append(Finding(Status.FAIL, f"{act.requested_at or act.start}: {act.principal_name or act.principal_id} "
                                    f"activated {act.role_name} with no approval on record", _subject(view, act),
                                    _evidence(act)))
    return findings or [passed(f"{checked} activation(s) of approval-required roles, each approved by another person",
                               activations=checked)]


@control("PIM-ACT-014", "Activations carry a meaningful justification", "low",
         rationale="The justification is the auditor's only record of why privilege was used.",
         remediation="Require justification in the role settings and coach admins to name the ticket or task.",
         datasets=ACTIVITY_DATA, params=("justification_min_length", "justification_placeholders"))
def justifications(view: SnapshotView, params: dict) -> list[Finding]:
    minimum = int(params["justification_min_length"])
    placeholders = {p.lower() for p in params["justification_placeholders"]}

    def check(act):
        if act.outcome == "denied":
            return None
        text = (act.justification or "").strip()
        if len(text) >= minimum and text.lower() not in placeholders:
            return None
        return Finding(Status.WARN, f"{act.requested_at or act.start}: {act.principal_name} activated "
                       f"{act.role_name or 'a group'} with justification {short(text) or '(none)'!r}",
                       _subject(view, act), _evidence(act))

    return each(view.activations, check, f"{len(view.activations)} activation(s), each with a justification")


def off_hours(when: datetime, hours) -> bool:
    local = when.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(hours.time_zone))
    day = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][local.weekday()]
    return day not in hours.days or not hours.start <= local.time() < hours.end


@control("PIM-ACT-015", "Tier-0 activations outside business hours", "medium",
         rationale="A Global Administrator activation at 01:27 is either an incident or an attacker; either way "
                   "someone should look.",
         remediation="Confirm each listed activation with the person and the incident or change it served.",
         datasets=TIER_DATA + ("role_assignment_instances",) + ACTIVITY_DATA)  # the groups' roles: `activation_tier`
def off_hours_activations(view: SnapshotView, params: dict) -> list[Finding]:
    hours = view.config.business_hours

    def check(act):
        when = act.start or act.requested_at
        # a PIM for Groups activation gives the group's roles: tier 0 when one of them is
        if view.activation_tier(act) != 0 or not when or act.outcome == "denied":
            return None
        if not off_hours(parse_iso(when), hours):
            return None
        return Finding(Status.WARN, f"{when}: {act.principal_name} activated {view.activation_role(act)} outside "
                       f"business hours ({hours.start:%H:%M}–{hours.end:%H:%M} {hours.time_zone})",
                       _subject(view, act), _evidence(act))

    return each(view.activations, check, "no tier-0 activation outside business hours")


def _after(start: datetime, window: timedelta) -> datetime:
    """`start + window`, or the calendar's end for a start that near it (an activation's StartTime in 9999: the
    history took it, and every check of it stopped with "a date outside the calendar")."""
    return start + window if start <= datetime.max - window else datetime.max


@control("PIM-ACT-016", "Repeated re-activation of the same role", "low",
         rationale="Someone activating the same role many times a week either needs a different role or is "
                   "clicking through prompts (prompt fatigue).",
         remediation="Review whether the person needs a narrower standing role or a longer, justified activation.",
         datasets=ACTIVITY_DATA, params=("reactivation_max", "reactivation_window_days"))
def reactivations(view: SnapshotView, params: dict) -> list[Finding]:
    limit, window = int(params["reactivation_max"]), timedelta(days=int(params["reactivation_window_days"]))
    by_person: dict[tuple, list] = defaultdict(list)
    for act in view.activations:
        if act.outcome == "activated" and act.start:
            by_person[(act.principal_id, act.role_id or act.group_id)].append(act)
    findings = []
    for acts in by_person.values():
        times = sorted(parse_iso(a.start) for a in acts)
        # the most activations in a window starting at one of them: those from it (its first equal) on
        worst = max(bisect_left(times, _after(start, window)) - bisect_left(times, start) for start in times)
        if worst > limit:
            act = acts[0]
            findings.append(Finding(Status.WARN, f"{act.principal_name} activated {act.role_name or 'a group'} "
                                    f"{worst} times within {window.days} days (more than {limit})",
                                    _subject(view, act), {"activations": len(acts), "max_in_window": worst}))
    return findings or [passed(f"nobody activated one role more than {limit} times in {window.days} days")]


@control("PIM-ACT-017", "Stale eligibility: eligible but never activated", "low",
         rationale="An eligibility nobody uses is risk without benefit (PIM's own 'administrators aren't using "
                   "their privileged roles' alert).",
         remediation="Remove eligibilities not activated within the threshold, or record why they are kept.",
         datasets=TIER_DATA + HOLDING_DATA + ("directory_audits",), params=("stale_eligibility_days",))
def stale_eligibility(view: SnapshotView, params: dict) -> list[Finding]:
    days = int(params["stale_eligibility_days"])
    now = view.snapshot.collected_at
    used: set[tuple] = set()
    for act in view.activations:
        if act.outcome == "activated" and act.start:
            # a PIM for Groups activation uses the roles the group holds: key it by the group
            used.add((act.principal_id, act.group_id if act.scope == "group" else act.role_id))
    first_seen = view.snapshots[0].collected_at

    def check(h):
        if h.state != "eligible" or h.via == "group" or view.tier(h.role_id) is None:
            return None
        since = parse_iso(h.start) if h.start else first_seen
        through = h.group_id if h.via == "pim_group" else h.role_id
        if (now - since).days < days or (h.principal_id, through) in used:
            return None
        return Finding(Status.WARN, f"{h.principal_name} has been eligible for {h.role.get('name')} since "
                       f"{since:%Y-%m-%d} with no activation on record in the period",
                       holding_subject(h), holding_evidence(h, threshold_days=days))

    return each(view.holdings(), check, f"every eligibility older than {days} days was used in the period")


@control("PIM-ACT-018", "Stale privileged accounts", "medium",
         rationale="Accounts that hold privilege but do not sign in are forgotten until an attacker finds them.",
         remediation="Disable the account or remove its roles; confirm with its owner.",
         datasets=TIER_DATA + HOLDING_DATA + ("sign_in_activity",),
         params=("stale_account_days",))
def stale_accounts(view: SnapshotView, params: dict) -> list[Finding]:
    """Sign-ins come from the `sign_in_activity` dataset (asked for the privileged users only), or in a snapshot
    without it from the users' elements (`SnapshotView.sign_in_source`; `missing` made it not assessable when
    that dataset failed). From the dataset, a holder it has no element for was not asked or not answered: that
    is said, never read as "never signed in" (the dataset answers `signInActivity: null` for that)."""
    days = int(params["stale_account_days"])
    now = view.snapshot.collected_at
    sign_ins = view.by_id("sign_in_activity", "user_id")
    asked = view.sign_in_source() == SIGN_IN_DATASET
    break_glass = view.break_glass_ids()
    seen: set[str] = set()

    def check(h):
        if h.principal.get("type") != "user" or h.principal_id in seen or view.tier(h.role_id) not in (0, 1):
            return None
        seen.add(h.principal_id)
        if h.principal_id in break_glass:
            return None  # break-glass accounts are meant to stay unused
        record = sign_ins.get(h.principal_id)
        if record is None and asked:
            return Finding(Status.WARN, f"{h.principal_name} holds {h.role.get('name')}: no sign-in record "
                           f"collected ({SIGN_IN_DATASET} holds none for them), so whether they signed in within "
                           f"{days} days is not known", holding_subject(h),
                           holding_evidence(h, last_sign_in=None, sign_in_record="none collected"))
        record = record or {}
        last = record.get("last_sign_in") or record.get("last_non_interactive_sign_in")
        if last and (now - parse_iso(last)).days <= days:
            return None
        created = h.principal.get("created")
        if not last and created and (now - parse_iso(created)).days <= days:
            return None
        return Finding(Status.WARN, f"{h.principal_name} holds {h.role.get('name')} and last signed in "
                       f"{last[:10] if last else 'never'} (threshold {days} days)", holding_subject(h),
                       holding_evidence(h, last_sign_in=last))

    return each(view.user_holdings(), check, f"every privileged user signed in within {days} days")
