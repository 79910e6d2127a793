"""The evidence pack's content for one tenant and period: every section as plain data.

The PDF, the workbook and the JSON are three renderings of this one model; every number in them is
computed here from the history, so the three cannot disagree and each traces to stored rows.

Memory: the model is built in phases, each letting go of what it read before the next one reads more
(docs/benchmarks.md, "Round 3"). First the closing snapshot: its full view (the period's activations joined
from compact copies of their events, controls/period_events.py) and its control results give every listing of the pack, kept as `Rows`
(one tuple a row, handed out as dicts); the view and the results are then dropped. Then the run of
snapshots: one read of the holdings history gives the series and the roll-forward, whose light views are
compared two at a time. The long listings are what remains for the renderers.
"""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
import uuid
from collections.abc import Sequence
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from pimtrail import __version__
from pimtrail.collectors.datasets import BY_NAME
from pimtrail.config import Config
from pimtrail.controls.engine import evaluate, mappings
from pimtrail.controls.model import Status
from pimtrail.controls.profiles import Profile, role_catalogue
from pimtrail.controls.view import GLOBAL_ADMIN, HoldingsHistory, SnapshotView, build_view, paused_gc
from pimtrail.evidence import rollforward as rf
from pimtrail.evidence.period import Period, period_snapshots
from pimtrail.evidence.rows import Rows
from pimtrail.evidence.series import REVIEW_KINDS, build_series
from pimtrail.store import HistoryStore
from pimtrail.store.verify import SnapshotCheck, VerifyReport
from pimtrail.timeutil import iso, parse_iso, utcnow

SAMPLE_SIZE = 25
KNOWN_LIMITS = [
    "Entra keeps directory audit logs for 30 days: activations and approvals before the first collection, or in a "
    "gap between collections longer than 30 days, cannot be recovered.",
    "State is observed at each snapshot: an assignment that began and ended between two snapshots appears only "
    "through its audit events, not in the population or the roll-forward.",
    "Approvals are read from the audit log (Graph offers no application read of approval records).",
    "Sign-in activity is the last sign-in Graph reports at each snapshot; sign-ins between two snapshots other "
    "than the last are not visible.",
    "Group-based access is expanded to the members listed at the snapshot; nested groups are not expanded.",
]


def _status_counts(results) -> dict[str, int]:
    out = {s.value: 0 for s in Status}
    for r in results:
        out[r.status.value] += 1
    return out


def _sample(rows: Sequence[dict], seed_text: str) -> dict[str, Any]:
    seed = int(hashlib.sha256(seed_text.encode()).hexdigest()[:12], 16)
    chosen = sorted(random.Random(seed).sample(range(len(rows)), min(SAMPLE_SIZE, len(rows))))
    return {"seed": seed, "size": len(chosen), "population": len(rows), "method":
            f"Python random.Random({seed}).sample(range({len(rows)}), {len(chosen)}) over the activations "
            "ordered by request time", "rows": [rows[i]["correlation_id"] for i in chosen]}


def build_pack(store: HistoryStore, tenant: str, period: Period, profile: Profile, config: Config) -> dict[str, Any]:
    bounds = period_snapshots(store, tenant, period)
    # Re-verifying the whole hash chain reads every stored row and payload of the tenant: it runs in a
    # process of its own while the rest of the model is built (a thread would only contend for the GIL).
    verifying = _start_verify(store, tenant)
    try:
        return _build(store, tenant, period, profile, config, bounds, verifying)
    finally:
        if verifying is not None and verifying.poll() is None:
            verifying.kill()
            verifying.wait()


_VERIFY = ("import json, sys\nfrom pimtrail.store import HistoryStore\n"
           "url, tenant = sys.stdin.read().splitlines()[:2]\nstore = HistoryStore.open(url)\n"
           "checks = store.verify(tenant).checks\nstore.engine.dispose()\n"
           "print(json.dumps([[c.tenant_id, c.seq, c.snapshot_id, c.ok, c.problems] for c in checks]))\n")


def _start_verify(store: HistoryStore, tenant: str) -> subprocess.Popen | None:
    url = store.engine.url
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return None
    try:
        child = subprocess.Popen([sys.executable, "-c", _VERIFY], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True)
        child.stdin.write(f"{url.render_as_string(hide_password=False)}\n{tenant}\n")  # not on the command line
        child.stdin.close()
        return child
    except OSError:
        return None


def _verified(store: HistoryStore, tenant: str, child: subprocess.Popen | None) -> VerifyReport:
    """The child's verification, or (when it could not run) the same verification here."""
    if child is not None:
        out = child.stdout.read()
        if child.wait() == 0:
            return VerifyReport([SnapshotCheck(*row) for row in json.loads(out)])
    return store.verify(tenant)


def _build(store: HistoryStore, tenant: str, period: Period, profile: Profile, config: Config, bounds,
           verifying: subprocess.Popen | None) -> dict[str, Any]:
    cover = {
        "tenant_id": tenant, "tenant_name": None, "default_domain": None,
        "period": period.label, "start": iso(period.start), "end": iso(period.end),
        "last_day": period.last_day.isoformat(), "generated_at": iso(utcnow()), "tool_version": __version__,
        "profile": profile.name, "run_id": str(uuid.uuid4()),
        "opening_is_late": bounds.opening_is_late,
        "snapshots": [{"seq": s.seq, "collected_at": iso(s.collected_at), "status": s.status,
                       "source": s.source, "content_hash": s.content_hash, "chain_hash": s.chain_hash}
                      for s in bounds.inside],
    }
    previous = _previous_statuses(store, tenant, period, profile, config)
    # 1. The closing snapshot: its full view and control results, and every listing taken from them (the results
    # first, and let go before the listings of the view are made).
    closing = build_view(store, tenant, bounds.closing, profile, config, period.start, period.end)
    with paused_gc():
        report = evaluate(closing)
    model: dict[str, Any] = {"summary": _control_summary(report, previous), "policies": _policies(report),
                             "break_glass": _break_glass(store, tenant, closing, report)}
    model["controls"] = [_control(r) for r in report.results]
    gaps = next(r for r in report.results if r.control.id == "PIM-TEN-023")
    gaps = [f.message for f in gaps.findings if f.status is not Status.PASS]
    del report
    org = (closing.facts.get("tenant") or [{}])[0]
    cover.update(tenant_name=org.get("name"), default_domain=org.get("default_domain"))
    model["scope"] = _scope(closing, profile, config)
    model["population"] = Rows.of(rf.row(h, closing.tier(h.role_id)) for h in closing.user_holdings()
                                  if closing.tier(h.role_id) is not None)
    model["population"].sort(key=lambda r: (r["tier"], r["role"], r["principal"] or ""))
    model["activations"], model["approvals"] = _activations(closing)
    model["activation_sample"] = _sample(model["activations"], f"{tenant}/{period.label}")
    model["reviews"] = _reviews(closing)
    model["exceptions"] = [dict(e.model_dump(mode="json"), status="in force" if e.expires >= period.last_day
                                else "expired") for e in config.exceptions]
    # what the second phase needs of the closing snapshot: its review facts (the series' review cycles) and the
    # applied review decisions (which may explain a removal)
    reviews = SnapshotView(bounds.closing, closing.snapshots, closing.period_start, closing.period_end, {},
                           {kind: closing.facts.get(kind, []) for kind in REVIEW_KINDS}, [], profile, config)
    applied = [d for d in closing.facts.get("access_review_decision", []) if d.get("applied_at")]
    del closing
    # 2. The run of snapshots: light views cut from one read of the holdings history, for the standing-access
    # series and the roll-forward (which compares two light views at a time).
    history = HoldingsHistory(store, tenant, bounds.inside, profile, config)
    series = build_series(store, tenant, profile, config, bounds.opening.collected_at, bounds.closing.collected_at,
                          history=history, closing=reviews)
    del reviews
    # The audit events that may explain a movement: those of the period (from the day before it, as the closing
    # view reads them) about the principals that moved (a holder, or the group of a group's own holding) between
    # the two snapshots that show the movement, read for one pair of snapshots at a time.
    since, until = period.start - timedelta(days=1), period.end
    roll = rf.roll_forward((history.view(s) for s in bounds.inside), decisions=applied,
                           window_events=lambda who, lo, hi: store.events(tenant, "audit", max(lo, since), min(
                               hi + timedelta(seconds=1), until), principal_ids=who))
    del history
    model["rollforward"] = {"roles": rf.as_rows(roll), "movements": Rows.of(rf.movement_rows(roll))}
    del roll
    points = series.points
    model["summary"]["standing"] = {"opening": asdict(points[0]) if points else None,
                                    "closing": asdict(points[-1]) if points else None}
    model["summary"]["activations"] = len(model["activations"])
    model["completeness"] = _completeness(store, bounds, gaps, _verified(store, tenant, verifying))
    # "_series": the object itself, for the charts; keys starting with "_" are not exported
    return {"cover": cover, "series": series.as_dict(), "_series": series} | model


def _previous_statuses(store, tenant, period, profile, config) -> dict[str, str] | None:
    """Each control's status in the previous period (as long as this one, ending at its start), on the newest
    snapshot at or before the start; None when the history holds none."""
    earlier = [s for s in store.snapshots(tenant) if s.collected_at <= period.start]
    if not earlier:
        return None
    view = build_view(store, tenant, earlier[-1], profile, config, period.start - (period.end - period.start),
                        period.start)
    return {r.control.id: r.status.value for r in evaluate(view).results}


def _control_summary(report, previous: dict[str, str] | None) -> dict[str, Any]:
    failed_by_severity: dict[str, int] = {}
    for r in report.results:
        if r.status is Status.FAIL:
            failed_by_severity[r.control.severity.value] = failed_by_severity.get(r.control.severity.value, 0) + 1
    changes = [{"control_id": r.control.id, "title": r.control.title, "previous": previous[r.control.id],
                "now": r.status.value} for r in report.results
               if previous is not None and previous.get(r.control.id) != r.status.value]
    return {"counts": _status_counts(report.results), "failed_by_severity": failed_by_severity,
            "previous_period_available": previous is not None, "changes": changes}


def _control(result) -> dict[str, Any]:
    """A control's result as the model keeps it: its findings as `Rows` (the large tenant has ~60,000)."""
    out = result.as_dict() | {"rationale": result.control.rationale, "remediation": result.control.remediation}
    out["findings"] = Rows.of(out["findings"], ("status", "message", "subject", "evidence"), nested=("subject",))
    return out


# -- the closing view, built for a lower peak of memory -----------------------------------------------------------
def _scope(view: SnapshotView, profile: Profile, config: Config) -> dict[str, Any]:
    datasets = []
    for name, cov in sorted(view.coverage.items()):
        d = BY_NAME.get(name)
        datasets.append({"dataset": name, "query": cov["query"], "permission": d.permission if d else None,
                         "status": cov["status"], "rows": cov["rows"], "pages": cov["pages"],
                         "error": cov.get("error_code"), "optional": cov["optional"]})
    catalogue = {v: k for k, v in role_catalogue().items()}
    roles = []
    for role_id, role in sorted(view.roles.items(), key=lambda kv: kv[1].get("name") or ""):
        tier = profile.tier_of(role)
        rule = profile.rule_for(role)
        roles.append({"role": role.get("name"), "role_id": role_id, "tier": tier,
                      "known_builtin": (role.get("template_id") or role_id) in catalogue,
                      "privileged_flag": role.get("privileged"), "expected_policy": vars(rule) if rule else None})
    return {"datasets": datasets, "permissions": sorted({d["permission"] for d in datasets if d["permission"]}),
            "roles": roles, "profile": profile.as_dict(), "break_glass": config.break_glass.accounts,
            "business_hours": config.business_hours.model_dump(mode="json"),
            "frameworks": {k: v.get("title") for k, v in mappings().get("frameworks", {}).items()}}


def _policies(report) -> list[dict[str, Any]]:
    result = next(r for r in report.results if r.control.id == "PIM-POL-011")
    rows = []
    for f in result.findings:
        e = f.evidence
        if "tier" not in e:
            continue
        rows.append({"role": f.subject.role, "tier": e["tier"], "status": f.status.value,
                     "max_activation": e.get("max_activation"), "mfa": e.get("mfa"), "auth_context": e.get("auth_context"),
                     "justification": e.get("justification"), "ticket": e.get("ticket"),
                     "approval_required": e.get("approval_required"),
                     "approvers": ", ".join(a.get("name") or a.get("id") or "?" for a in e.get("approvers") or []),
                     "expected": e.get("expected"), "gaps": f.message.split(": ", 1)[-1]})
    return sorted(rows, key=lambda r: (r["tier"], r["role"] or ""))


def _activations(view: SnapshotView) -> tuple[Rows, Rows]:
    from pimtrail.controls.activity import off_hours

    def activations():
        for a in view.activations:
            when = a.start or a.requested_at
            yield {"correlation_id": a.correlation_id, "scope": a.scope, "principal": a.principal_name,
                   "principal_id": a.principal_id, "role": view.activation_role(a), "role_id": a.role_id,
                   "group_id": a.group_id,
                   "requested_at": a.requested_at, "start": a.start, "end": a.end, "duration_hours": a.duration_hours,
                   "justification": a.justification, "approval": a.approval, "outcome": a.outcome,
                   "approvers": ", ".join(x.get("upn") or x.get("id") or "?" for x in a.approvers),
                   "self_approved": a.self_approved, "global_admin": a.role_id == GLOBAL_ADMIN,
                   "off_hours": bool(when) and off_hours(parse_iso(when), view.config.business_hours)}

    def approvals():
        for a in view.activations:
            for x in a.approvers:
                yield {"correlation_id": a.correlation_id, "requester": a.principal_name,
                       "role": view.activation_role(a),
                       "approver": x.get("upn") or x.get("id"), "decision": x["decision"], "time": x["time"],
                       "self_approval": bool(x.get("id")) and x.get("id") == a.principal_id}

    return Rows.of(activations()), Rows.of(approvals())


def _reviews(view: SnapshotView) -> dict[str, Any]:
    holders = {(h.principal_id, h.role_id) for h in view.holdings()}
    instances = [i for i in view.facts.get("access_review_instance", [])
                 if i.get("end") and view.period_start <= parse_iso(i["end"]) and parse_iso(i["start"] or i["end"]) < view.period_end]
    ids = {i["id"] for i in instances}

    def decided():
        for d in view.facts.get("access_review_decision", []):
            if d["instance_id"] not in ids:
                continue
            principal, resource = d.get("principal") or {}, d.get("resource") or {}
            still = (principal.get("id"), resource.get("id")) in holders
            yield {"instance_id": d["instance_id"], "principal": principal.get("upn") or principal.get("name"),
                   "resource": resource.get("name"), "decision": d.get("decision"),
                   "reviewer": (d.get("reviewed_by") or {}).get("upn") or (d.get("reviewed_by") or {}).get("name"),
                   "reviewed_at": d.get("reviewed_at"), "justification": d.get("justification"),
                   "apply_result": d.get("apply_result"), "applied_at": d.get("applied_at"),
                   "removal_effective": None if d.get("decision") != "Deny" else not still}

    decisions = Rows.of(decided())
    decisions.sort(key=lambda d: (d["instance_id"], d["resource"] or "", d["principal"] or ""))
    return {"definitions": sorted(view.facts.get("access_review_definition", []), key=lambda d: d.get("name") or ""),
            "instances": sorted(instances, key=lambda i: (i.get("end") or "", i["id"])), "decisions": decisions}


def _break_glass(store, tenant, view: SnapshotView, report) -> dict[str, Any]:
    result = next(r for r in report.results if r.control.id == "PIM-BG-006")
    ids = view.break_glass_ids()
    # the period's audit events naming a break-glass account (as actor or target: checked below)
    audit = store.events(tenant, "audit", view.period_start, view.period_end, contains=sorted(ids)) if ids else []
    names = {pid: view.principal(pid).get("upn") or pid for pid in ids}
    events = []
    for v in _reported_sign_ins(store, tenant, sorted(ids), view.period_start):
        last = v["data"].get("last_sign_in")
        if last and view.period_start <= parse_iso(last) < view.period_end:
            events.append({"account": names.get(v["data"].get("user_id"), v["data"].get("user_id")), "time": last,
                           "what": "sign-in (last sign-in reported by Graph)"})
    for pid in sorted(ids):
        name = names[pid]
        for ev in audit:
            actor = (ev.get("initiated_by") or {}).get("id")
            target = (ev.get("principal") or {}).get("id")
            if pid in (actor, target) and view.period_start <= parse_iso(ev["time"]) < view.period_end:
                events.append({"account": name, "time": ev["time"], "what": ev.get("activity")})
    unique = {(e["account"], e["time"], e["what"]): e for e in events}
    return {"configured": view.config.break_glass.accounts, "status": result.status.value,
            "accounts": [{"account": f.subject.principal_name, "state": f.message, "status": f.status.value,
                          "evidence": f.evidence} for f in result.findings],
            "events": sorted(unique.values(), key=lambda e: (e["time"], e["account"]))}


def _reported_sign_ins(store: HistoryStore, tenant: str, ids: list[str], since) -> list[dict[str, Any]]:
    """The sign-in activity versions of some principals that a snapshot collected at or after `since` reported
    (an earlier snapshot can only report an earlier sign-in; a later one than the period's may report one in
    it). A version closed by the first of them began before `since`, so only those valid after it are read, and
    the archive batches closed by then are not: a busy tenant closes a batch of sign-in versions a day
    (docs/benchmarks.md, "Sign-in activity at real churn"); a principal's read decodes only the batches that
    hold its key."""
    first = next((s.seq for s in store.snapshots(tenant) if s.collected_at >= since), None)
    if first is None:
        return []
    return [v for pid in ids for v in store.fact_versions(tenant, "sign_in_activity", pid, after_seq=first)]


def _completeness(store: HistoryStore, bounds, gaps: list[str], verify) -> dict[str, Any]:
    rows = []
    for s in bounds.inside:
        for c in store.coverage(s.id):
            rows.append({"seq": s.seq, "collected_at": iso(s.collected_at), "dataset": c["dataset"],
                         "status": c["status"], "optional": c["optional"], "rows": c["rows"], "pages": c["pages"], "requests": c["requests"],
                         "error": c.get("error_code"), "http_status": c.get("http_status"),
                         "window_from": iso(c.get("window_from")), "window_to": iso(c.get("window_to"))})
    broken = verify.first_broken
    return {"coverage": rows, "gaps": gaps,
            "chain": {"verified": verify.ok, "snapshots": len(verify.checks),
                      "first_broken": None if broken is None else {"seq": broken.seq, "problems": broken.problems},
                      "closing_chain_hash": bounds.closing.chain_hash},
            "limits": KNOWN_LIMITS}
