"""The trend's last-snapshot figures as the series computed them from views before the sweep and SQL took over
(evidence/standing.py `Sweep.top_standing`/`holding_changes`, `HistoryStore.fact_counts`): the references the
tests compare them with, on light views (random histories) and full views (stored histories)."""

from __future__ import annotations

from typing import Any

from pimtrail.controls.view import SnapshotView
from pimtrail.evidence.series import TIER_WEIGHT, ReviewCycle, holding_key
from pimtrail.timeutil import parse_iso


def top_standing(view: SnapshotView, limit: int = 10) -> list[dict[str, Any]]:
    scores: dict[str, dict[str, Any]] = {}
    for h in view.user_holdings():
        tier = view.tier(h.role_id)
        if tier is None or h.state != "active" or not h.permanent:
            continue
        entry = scores.setdefault(h.principal_id, {"principal_id": h.principal_id, "principal": h.principal_name,
                                                   "type": h.principal.get("type"), "score": 0, "roles": []})
        entry["score"] += TIER_WEIGHT[tier]
        entry["roles"].append(f"{h.role.get('name')} (tier {tier})")
    ranked = sorted(scores.values(), key=lambda e: (-e["score"], e["principal"] or ""))
    for e in ranked:
        e["break_glass"] = e["principal_id"] in view.break_glass_ids()
        e["roles"] = sorted(set(e["roles"]))
    return ranked[:limit]


def holding_changes(before: SnapshotView | None, after: SnapshotView) -> dict[str, list[dict[str, Any]]]:
    def index(view):
        return {holding_key(h): h for h in view.user_holdings() if view.tier(h.role_id) is not None}

    old, new = (index(before) if before else {}), index(after)

    def describe(h):
        return {"principal": h.principal_name, "principal_id": h.principal_id, "role": h.role.get("name"),
                "state": h.state, "permanent": h.permanent, "via": h.via}

    return {"added": [describe(new[k]) for k in sorted(set(new) - set(old))],
            "removed": [describe(old[k]) for k in sorted(set(old) - set(new))]}


def review_cycles(view: SnapshotView) -> list[ReviewCycle]:
    """The review instances that ended in the view's period, their decisions counted from its facts."""
    definitions = view.by_id("access_review_definition")
    out = []
    for inst in sorted(view.facts.get("access_review_instance", []), key=lambda i: i.get("end") or ""):
        if not inst.get("end") or not view.period_start <= parse_iso(inst["end"]) <= view.period_end:
            continue
        decisions = [d for d in view.facts.get("access_review_decision", []) if d["instance_id"] == inst["id"]]
        denied = [d for d in decisions if d.get("decision") == "Deny"]
        out.append(ReviewCycle(
            inst["id"], (definitions.get(inst.get("definition_id")) or {}).get("name"), inst.get("end"),
            inst.get("status"), len(decisions),
            sum(1 for d in decisions if d.get("decision") not in (None, "NotReviewed")),
            sum(1 for d in decisions if d.get("decision") in (None, "NotReviewed")), len(denied),
            sum(1 for d in denied if (d.get("apply_result") or "").startswith("AppliedSuccessfully"))))
    return out
