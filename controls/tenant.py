"""The tenant and the evidence itself: licence for PIM, and a history without gaps."""

from __future__ import annotations

from datetime import timedelta

from .base import passed
from .model import Finding, Status
from .registry import control
from .view import SnapshotView


@control("PIM-TEN-022", "Entra ID P2 (or ID Governance) licence present", "high",
         rationale="PIM, access reviews and risk-based policies need Entra ID P2; without it PIM controls "
                   "cannot be met or assessed.",
         remediation="License the tenant with Entra ID P2 or Entra ID Governance for the privileged users.",
         datasets=("subscribed_skus",))
def licence(view: SnapshotView, params: dict) -> list[Finding]:
    skus = view.facts.get("licence", [])
    p2 = [s for s in skus if s.get("entra_p2") and s.get("status") in ("Enabled", "Warning", None)]
    if p2:
        return [passed(f"Entra ID P2 through {', '.join(s['sku'] or s['sku_id'] for s in p2)}",
                       skus=[s["sku"] for s in p2])]
    return [Finding(Status.FAIL, "no enabled subscription includes Entra ID P2 (AAD_PREMIUM_P2): PIM controls "
                    "are not assessable on such a tenant", evidence={"skus": [s.get("sku") for s in skus]})]


@control("PIM-TEN-023", "History has no gap longer than allowed", "medium",
         rationale="Entra keeps audit logs 30 days: a gap between collections longer than that loses "
                   "activations for good, and long gaps hide short-lived standing access.",
         remediation="Schedule collection at least weekly (see docs/setup.md); investigate failed runs.",
         datasets=("directory_audits",), params=("history_gap_max_days",), audit_coverage=False)
def history_gaps(view: SnapshotView, params: dict) -> list[Finding]:
    limit = timedelta(days=float(params["history_gap_max_days"]))
    first_ever = view.snapshots[0].collected_at
    times = [s.collected_at for s in view.snapshots if view.period_start <= s.collected_at <= view.period_end]
    findings = []
    if first_ever > view.period_start:
        # the history begins inside the period: say so, but it is not a lapse in collection
        shown = "%Y-%m-%d" if first_ever.date() != view.period_start.date() else "%Y-%m-%d %H:%M UTC"  # same day
        findings.append(Finding(Status.WARN, f"history begins {first_ever:{shown}}, after the period start "
                                f"{view.period_start:{shown}}: the time before is not covered",
                                evidence={"first_snapshot": first_ever.isoformat()}))
    bounds = [max(view.period_start, first_ever)] + times + [view.period_end]
    for before, after in zip(bounds, bounds[1:]):
        if after - before > limit:
            findings.append(Finding(Status.FAIL, f"no snapshot between {before:%Y-%m-%d %H:%M} and "
                                    f"{after:%Y-%m-%d %H:%M} ({(after - before).days} days, at most {limit.days})",
                                    evidence={"from": before.isoformat(), "to": after.isoformat()}))
    partial = [s for s in view.snapshots
               if s.status != "complete" and view.period_start <= s.collected_at <= view.period_end]
    for s in partial:
        findings.append(Finding(Status.WARN, f"snapshot #{s.seq} of {s.collected_at:%Y-%m-%d} is partial",
                                evidence={"snapshot_id": s.id}))
    return findings or [passed(f"{len(times)} snapshot(s) in the period, no gap over {limit.days} days")]
