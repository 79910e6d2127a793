"""The read side at large-tenant size (issue 7): narrower reads that must give the same answers.

- a `check` view reads per-user facts only for the principals the snapshot and its activations name;
- the trend's weekly activations are folded from the audit log without decoding whole events;
- the pack reads the audit events about the principals that moved, not the whole period's;
- stored check results keep their findings for the newest run of a tenant and profile only.
Each is compared with the plain reading of the whole history it replaces.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest

import exports
from pimtrail.activations import join_activations, outline_activations
from pimtrail.collectors.exportdir import read_export
from pimtrail.controls.engine import evaluate
from pimtrail.controls.profiles import load_profile
from pimtrail.controls.period_events import event_time as _time
from pimtrail.controls.view import FACT_KINDS, SnapshotView, build_view
from pimtrail.store import HistoryStore
from pimtrail.synthetic import generate


@pytest.fixture(scope="module")
def synthetic(synthetic_small):
    """Three days of the small synthetic tenant (500 users, 60 privileged): most users hold nothing."""
    return synthetic_small


def whole_view(store, tenant, snap, profile, config, start=None, end=None) -> SnapshotView:
    """A view as it was built before: every fact of the tenant and every audit event of the period."""
    end = end or snap.collected_at
    start = start or end - timedelta(days=int(profile.params.get("evaluation_period_days", 31)))
    facts = {kind: store.facts(tenant, kind, snap.seq) for kind in FACT_KINDS}
    audit = store.events(tenant, "audit", start - timedelta(days=1), end)
    activations = [a for a in join_activations(audit) if start <= _time(a.requested_at or a.start) < end]
    return SnapshotView(snap, store.snapshots(tenant), start, end,
                        {c["dataset"]: c for c in store.coverage(snap.id)}, facts,
                        [e for e in audit if start <= _time(e["time"]) < end], profile, config, activations,
                        store.fact_history(tenant, "role_policy", snap.seq))


def results(view) -> list[dict]:
    return [r.as_dict() for r in evaluate(view).results]


@pytest.mark.parametrize("history", ["sample", "synthetic"])
def test_a_view_of_the_named_principals_evaluates_like_the_whole_tenant(history, sample_history, synthetic,
                                                                        sample_config):
    db, config = (sample_history, sample_config) if history == "sample" else synthetic
    profile = load_profile(None, config)
    with HistoryStore.open(db) as store:
        tenant = store.tenant(None)
        narrowed = 0
        for snap in store.snapshots(tenant):
            view, whole = build_view(store, tenant, snap, profile, config), whole_view(store, tenant, snap, profile,
                                                                                      config)
            assert results(view) == results(whole), snap.seq
            assert [repr(h) for h in view.holdings()] == [repr(h) for h in whole.holdings()]
            assert [a.as_dict() for a in view.activations] == [a.as_dict() for a in whole.activations]
            assert view.break_glass_ids() == whole.break_glass_ids()
            assert view.audit_events == [e for e in whole.audit_events if "outside of pim" in e["activity"].lower()]
            for kind in ("principal", "sign_in_activity", "auth_registration"):  # a subset, in the same order
                keys = {f["_key"] for f in whole.facts[kind]}
                assert [f for f in whole.facts[kind] if f["_key"] in {g["_key"] for g in view.facts[kind]}] \
                    == view.facts[kind] and {f["_key"] for f in view.facts[kind]} <= keys
            narrowed += len(whole.facts["principal"]) - len(view.facts["principal"])
        if history == "synthetic":
            assert narrowed > 1000  # most of the 500 users x 3 snapshots are not read


def test_narrow_fact_reads_equal_filtering_the_whole_read(synthetic):
    db, config = synthetic
    with HistoryStore.open(db) as store:
        tenant = store.tenant(None)
        seq = store.snapshots(tenant)[-1].seq
        everyone = store.facts(tenant, "principal", seq)
        some = {p["id"] for p in everyone[::7]} | {"not-a-principal"}
        assert store.facts(tenant, "principal", seq, principal_ids=some) == [p for p in everyone if p["id"] in some]
        by_kind = store.principal_facts(tenant, ("principal", "sign_in_activity"), seq, some)
        assert by_kind["principal"] == [p for p in everyone if p["id"] in some]
        assert by_kind["sign_in_activity"] == [s for s in store.facts(tenant, "sign_in_activity", seq)
                                               if s["user_id"] in some]
        upn = everyone[3]["upn"]
        assert everyone[3] in store.facts(tenant, "principal", seq, contains=[upn.upper()])
        assert store.facts(tenant, "principal", seq, contains=["100%_sure\"not there"]) == everyone  # no filter
        assert store.facts(tenant, "principal", seq, principal_ids=[]) == []
        history = store.fact_history(tenant, "principal", seq)
        assert store.fact_history(tenant, "principal", seq, principal_ids=some, after_seq=1) == \
            [v for v in history if v["data"]["id"] in some and (v["valid_to"] is None or v["valid_to"] > 1)]
        audit = store.events(tenant, "audit")
        targets = {(e.get("principal") or {}).get("id") for e in audit[::50]} - {None}
        assert store.events(tenant, "audit", principal_ids=targets) == \
            [e for e in audit if (e.get("principal") or {}).get("id") in targets]
        assert store.events(tenant, "audit", contains=["(pim ACTIVATION)"]) == \
            [e for e in audit if "(pim activation)" in json.dumps(e).lower()]


def outlines_of_joined(events, start, end) -> dict:
    return {a.correlation_id: (a.requested_at, a.start, a.approval == "approved", a.outcome == "denied")
            for a in join_activations(events)}


def test_activation_outlines_equal_the_joined_audit_log(synthetic, sample_history):
    for db in (synthetic[0], sample_history):
        with HistoryStore.open(db) as store:
            tenant = store.tenant(None)
            last = store.snapshots(tenant)[-1].collected_at
            for days in (3, 20, 400):
                start = last - timedelta(days=days)
                joined = outlines_of_joined(store.events(tenant, "audit", start, last), start, last)
                folded = {o.correlation_id: (o.requested_at, o.start, o.approved, o.denied)
                          for o in outline_activations(store.audit_activities(tenant, start, last))}
                assert folded == joined and joined


def test_outlines_take_the_latest_event_of_each_kind_whatever_the_order():
    """A denial after the completion, two completions, a decision and a request out of order: as the join."""
    def event(n, time, activity, details=None):
        return {"id": f"e{n}", "time": time, "activity": activity, "correlation_id": "c1", "details": details or {},
                "category": "RoleManagement"}
    events = [event(1, "2026-07-01T10:00:00Z", "Add member to role requested (PIM activation)"),
              event(2, "2026-07-01T10:05:00Z", "Add member to role request approved (PIM activation)"),
              event(3, "2026-07-01T10:06:00Z", "Add member to role completed (PIM activation)",
                    {"Start time": "2026-07-01T10:06:30Z", "StartTime": "2026-07-01T10:07:00Z"}),
              event(4, "2026-07-01T10:06:00Z", "Add member to role completed (PIM activation)",
                    {"StartTime": "2026-02-30T10:07:00Z"}),
              event(5, "2026-07-01T10:09:00Z", "Add member to role request denied (PIM activation)"),
              event(6, "2026-07-01T09:00:00Z", "Add member to role requested (PIM activation)"),
              event(7, "2026-07-01T11:00:00Z", "Add member to role (PIM activation expired)")]
    rows = [(e["correlation_id"], e["id"], e["time"], e["activity"],
             json.dumps(e, sort_keys=True, separators=(",", ":")) if "completed" in e["activity"] else None)
            for e in reversed(events)]
    [act] = join_activations(events)
    [outline] = outline_activations(rows)
    assert (outline.requested_at, outline.start, outline.approved, outline.denied) == \
        (act.requested_at, act.start, act.approval == "approved", act.outcome == "denied") == \
        ("2026-07-01T10:00:00Z", "2026-07-01T10:06:00Z", False, True)


def test_range_weeks_equal_the_weeks_of_a_view_of_the_range(synthetic, sample_history, sample_config):
    from pimtrail.evidence.series import range_weeks, weeks

    for db, config in ((sample_history, sample_config), synthetic):
        with HistoryStore.open(db) as store:
            tenant = store.tenant(None)
            snaps = store.snapshots(tenant)
            profile = load_profile(None, config)
            first, end = snaps[0].collected_at, snaps[-1].collected_at + timedelta(seconds=1)
            view = whole_view(store, tenant, snaps[-1], profile, config, first, end)
            assert range_weeks(store, tenant, config, first, end) == weeks(view) != []


def test_weekly_counts_on_postgresql_too(db_url, tmp_path):
    """audit_activities decodes whole events on databases other than SQLite: the same outlines."""
    roots = generate(tmp_path / "exports", "small", days=1, seed=5)
    with HistoryStore.open(db_url, create=True) as store:
        store.ingest(read_export(roots[0]))
        tenant = store.tenant(None)
        joined = outlines_of_joined(store.events(tenant, "audit"), None, None)
        folded = {o.correlation_id: (o.requested_at, o.start, o.approved, o.denied)
                  for o in outline_activations(store.audit_activities(tenant))}
        assert folded == joined and joined


def test_fields_cut_out_in_sql_equal_those_of_the_decoded_facts(db_url, tmp_path):
    """`version_rows(fields=...)` (the trend's holdings history) gives each version's fields as decoding the whole
    fact does, typed alike (booleans, null), a field the fact lacks as None, on SQLite and PostgreSQL."""
    roots = generate(tmp_path / "exports", "small", days=1, seed=3)
    with HistoryStore.open(db_url, create=True) as store:
        store.ingest(read_export(roots[0]))
        tenant = store.tenant(None)
        seq = store.snapshots(tenant)[-1].seq
        for kind, fields in (("role_assignment", ("id", "principal_id", "permanent", "outside_pim", "not_there")),
                             ("group_pim_eligibility", ("access", "end", "permanent")), ("principal", ("upn",))):
            whole = store.version_rows(tenant, kind, seq)
            cut = store.version_rows(tenant, kind, seq, fields=fields)
            assert cut == [(vf, vt, {f: data.get(f) for f in fields}) for vf, vt, data in whole] and whole
            assert {type(d.get("permanent")) for _, _, d in cut} <= {bool, type(None)}
        some = {d["id"] for _, _, d in whole[::5]}
        assert store.version_rows(tenant, "principal", seq, principal_ids=some, fields=("id", "type")) == \
            [(vf, vt, {"id": d["id"], "type": d.get("type")}) for vf, vt, d in whole if d["id"] in some]


def test_cut_fields_decode_as_one_array_per_fact_or_not_at_all():
    from pimtrail.errors import HistoryError
    from pimtrail.store.history import decode_arrays

    assert decode_arrays(['["a",true,null]', "[1,{}]"]) == [["a", True, None], [1, {}]]
    assert decode_arrays([]) == []
    for texts in (["[1]", "[2],[3]"], ["[1", "2]"], ['"a"', "[1]"]):  # not one array each
        with pytest.raises(HistoryError, match="one JSON array each"):
            decode_arrays(texts)


def test_pack_reads_the_events_of_movers_only(synthetic):
    """The roll-forward given the events about the principals that moved equals the one given all events."""
    from pimtrail.controls.view import HoldingsHistory
    from pimtrail.evidence import rollforward as rf

    db, config = synthetic
    profile = load_profile(None, config)
    with HistoryStore.open(db) as store:
        tenant = store.tenant(None)
        snaps = store.snapshots(tenant)
        history = HoldingsHistory(store, tenant, snaps, profile, config)
        views = [history.view(s) for s in snaps]
        since, until = snaps[0].collected_at - timedelta(days=1), snaps[-1].collected_at + timedelta(days=1)
        every = rf.roll_forward(views, store.events(tenant, "audit", since, until))
        asked = []
        narrow = rf.roll_forward(views, lambda who: asked.append(who) or store.events(tenant, "audit", since, until,
                                                                                      principal_ids=who))
    assert rf.movement_rows(narrow) == rf.movement_rows(every) and rf.as_rows(narrow) == rf.as_rows(every)
    assert any(m["explained"] for m in rf.movement_rows(every)) and len(asked) == 1


def test_stored_results_keep_findings_for_the_newest_run_only(tmp_path, sample_config):
    from pimtrail.check import run_check
    from pimtrail.store.results import compact, load_results

    db = str(tmp_path / "h.db")
    with HistoryStore.open(db, create=True) as store:
        store.ingest(read_export(exports.write(tmp_path / "e1", exports.baseline("2026-07-01T06:00:00Z"))))
        store.ingest(read_export(exports.write(tmp_path / "e2", exports.baseline("2026-07-08T06:00:00Z"))))
        tenant = store.tenant(None)
        first = run_check(store, sample_config, snapshot="1")
        posture_after_one = store.control_posture(tenant, "pimtrail")
        for _ in range(3):
            second = run_check(store, sample_config, snapshot="2")
        posture = store.control_posture(tenant, "pimtrail")
        runs = [r for r, in sqlite3.connect(db).execute("SELECT id FROM check_run ORDER BY id")]
        stored = {run: load_results(store.engine, run) for run in runs}
    # the newest run keeps every finding; older ones their statuses, counts and the findings' digest
    assert [r["findings"] for r in stored[runs[-1]]] == [r.as_dict()["findings"] for r in second.results]
    for run in runs[:-1]:
        assert all("findings" not in r and r["compacted"] for r in stored[run])
    older = {r["control_id"]: r for r in stored[runs[0]]}
    for r in first.results:
        full = json.dumps(r.as_dict(), sort_keys=True, default=str)
        assert older[r.control.id]["findings_sha256"] == hashlib.sha256(
            json.dumps(json.loads(full)["findings"], sort_keys=True, default=str).encode()).hexdigest()
        assert {k: v for k, v in older[r.control.id].items() if k not in ("compacted", "findings_sha256")} == \
            {k: v for k, v in json.loads(full).items() if k != "findings"}
    assert compact(compact(json.dumps(first.results[0].as_dict(), sort_keys=True, default=str))) == \
        compact(json.dumps(first.results[0].as_dict(), sort_keys=True, default=str))
    # the posture (newest run per snapshot) is what the runs said
    ids = {s: i for i, s in sqlite3.connect(db).execute("SELECT id, seq FROM snapshot")}
    assert posture[ids[1]] == posture_after_one[ids[1]] == {r.control.id: r.status.value for r in first.results}
    assert posture[ids[2]] == {r.control.id: r.status.value for r in second.results}
    counts = sqlite3.connect(db).execute("SELECT finding_count FROM control_result WHERE run_id = ?",
                                         (runs[0],)).fetchall()
    assert sorted(c for c, in counts) == sorted(len(r.findings) for r in first.results)


def test_checks_of_a_large_run_do_not_grow_the_database_each_day(tmp_path):
    """Storing a run of many findings every day: the database stays at about one run's findings."""
    from pimtrail.store.results import save_run

    db = str(tmp_path / "h.db")
    with HistoryStore.open(db, create=True) as store:
        store.ingest(read_export(exports.write(tmp_path / "e1", exports.baseline("2026-07-01T06:00:00Z"))))
        tenant = store.tenant(None)
        snapshot = store.snapshots(tenant)[-1].id
        findings = [{"status": "fail", "message": f"finding {n}", "subject": {"principal_id": str(n)},
                     "evidence": {"filler": "x" * 400}} for n in range(2000)]  # ~1 MB a run
        result = {"control_id": "PIM-X-001", "title": "t", "status": "fail", "severity": "high",
                  "findings": findings, "frameworks": {}, "reason": None}
        sizes = []
        for day in range(8):
            save_run(store.engine, tenant, snapshot, "pimtrail", (datetime(2026, 6, 1), datetime(2026, 7, 1)), "h",
                     [result])
            with store.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            sizes.append(Path(db).stat().st_size)
    assert sizes[-1] - sizes[2] < 200_000, sizes  # without compaction: ~1 MB more each day
