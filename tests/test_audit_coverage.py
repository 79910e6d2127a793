"""Audit coverage over the evaluation period: daily collections ask for the audit events since the
previous one, so a lost collection leaves a hole. Controls that read the audit log are then not
assessable, never passed on the events that happen to be there."""

from __future__ import annotations

from datetime import datetime, timedelta

import exports
import tenant as t
from pimtrail.check import run_check
from pimtrail.collectors.exportdir import read_export
from pimtrail.config import parse_config
from pimtrail.controls.model import Status
from pimtrail.controls.registry import all_controls
from pimtrail.controls.view import audit_gaps
from pimtrail.store import HistoryStore

D = datetime


def test_gaps_are_the_stretches_of_the_period_no_window_covers():
    start, end = D(2026, 9, 1), D(2026, 10, 1)
    assert audit_gaps([(D(2026, 8, 1), D(2026, 9, 10)), (D(2026, 9, 9), D(2026, 10, 1))], start, end) == []
    assert audit_gaps([(D(2026, 8, 1), D(2026, 9, 10)), (D(2026, 9, 12), D(2026, 10, 1))], start, end) == [
        (D(2026, 9, 10), D(2026, 9, 12))]
    # a window inside another one closes nothing; a hole before the period or after it is not the period's
    assert audit_gaps([(D(2026, 8, 1), D(2026, 9, 20)), (D(2026, 8, 5), D(2026, 8, 6)),
                       (D(2026, 9, 19), D(2026, 10, 1))], start, end) == []
    assert audit_gaps([(D(2026, 7, 1), D(2026, 7, 10)), (D(2026, 8, 1), D(2026, 10, 1))], start, end) == []
    assert audit_gaps([(D(2026, 8, 1), D(2026, 10, 1)), (D(2026, 10, 5), D(2026, 10, 6))], start, end) == []
    # before the first window and after the newest: the period's events there are not in the history either,
    # beyond the collection cadence the profile accepts (`slack`)
    assert audit_gaps([(D(2026, 9, 15), D(2026, 10, 1))], start, end) == [(D(2026, 9, 1), D(2026, 9, 15))]
    assert audit_gaps([(D(2026, 9, 2), D(2026, 10, 1))], start, end, timedelta(days=7)) == []
    assert audit_gaps([(D(2026, 8, 1), D(2026, 9, 20))], start, end, timedelta(days=7)) == [
        (D(2026, 9, 20), D(2026, 10, 1))]
    assert audit_gaps([(D(2026, 8, 1), D(2026, 9, 28))], start, end, timedelta(days=7)) == []
    # a window wholly outside the period covers none of it, whatever the slack
    assert audit_gaps([(D(2026, 7, 1), D(2026, 8, 1))], start, end, timedelta(days=60)) == [(start, end)]
    assert audit_gaps([(D(2026, 10, 2), D(2026, 10, 5))], start, end, timedelta(days=60)) == [(start, end)]


def _check(tmp_path, second_from: str) -> dict:
    tmp_path.mkdir(parents=True)
    with HistoryStore.open(str(tmp_path / "h.db"), create=True) as store:
        for when, window_from in (("2026-09-23T06:00:00Z", "2026-08-24T06:00:00Z"),
                                  ("2026-09-30T06:00:00Z", second_from)):
            data = t.compliant(when)
            data["_manifest"]["datasets"]["directory_audits"] = {
                "file": "directory_audits.json", "window": {"from": window_from, "to": when}}
            store.ingest(read_export(exports.write(tmp_path / when[:10], data)))
        report = run_check(store, parse_config(data["_config"]), save=False)
    return {r.control.id: r for r in report.results}


def test_a_hole_between_audit_windows_makes_audit_controls_not_assessable(tmp_path):
    reading = [c.id for c in all_controls() if "directory_audits" in c.datasets and c.audit_coverage]
    assert reading
    contiguous = _check(tmp_path / "contiguous", "2026-09-23T05:00:00Z")  # an hour of overlap
    assert all(contiguous[c].status is not Status.NOT_ASSESSABLE for c in reading)
    holed = _check(tmp_path / "holed", "2026-09-26T00:00:00Z")
    for control_id in reading:
        assert holed[control_id].status is Status.NOT_ASSESSABLE
        assert "no collection covers 2026-09-23T06:00:00Z to 2026-09-26T00:00:00Z" in holed[control_id].reason
    others = [c for c in holed if c not in reading]
    assert all(holed[c].status is contiguous[c].status for c in others)


def _only(tmp_path, window_from: str, window_to: str, period_from=None):
    tmp_path.mkdir(parents=True)
    when = "2026-09-30T06:00:00Z"
    data = t.compliant(when)
    data["_manifest"]["datasets"]["directory_audits"] = {
        "file": "directory_audits.json", "window": {"from": window_from, "to": window_to}}
    with HistoryStore.open(str(tmp_path / "h.db"), create=True) as store:
        store.ingest(read_export(exports.write(tmp_path / "e", data)))
        report = run_check(store, parse_config(data["_config"]), period_from=period_from, save=False)
    return {r.control.id: r for r in report.results}


def test_a_period_the_audit_windows_do_not_reach_makes_audit_controls_not_assessable(tmp_path):
    from pimtrail.timeutil import parse_iso

    reading = [c.id for c in all_controls() if "directory_audits" in c.datasets and c.audit_coverage]
    whole = _only(tmp_path / "whole", "2026-08-31T06:00:00Z", "2026-09-30T06:00:00Z")  # 30 of the 31 days
    assert all(whole[c].status is not Status.NOT_ASSESSABLE for c in reading)
    cases = {"two days": ("2026-09-28T06:00:00Z", "2026-09-30T06:00:00Z", None, "2026-08-30T06:00:00Z to "),
             "ends early": ("2026-08-31T06:00:00Z", "2026-09-10T06:00:00Z", None, "2026-09-10T06:00:00Z to "),
             "90 days asked": ("2026-08-31T06:00:00Z", "2026-09-30T06:00:00Z", parse_iso("2026-07-02T06:00:00Z"),
                               "2026-07-02T06:00:00Z to 2026-08-31T06:00:00Z")}
    for name, (window_from, window_to, period_from, hole) in cases.items():
        results = _only(tmp_path / name.replace(" ", "-"), window_from, window_to, period_from)
        for control_id in reading:
            assert results[control_id].status is Status.NOT_ASSESSABLE, (name, control_id)
            assert f"no collection covers {hole}" in results[control_id].reason, (name, results[control_id].reason)


def test_the_history_gap_control_still_reports_a_period_past_the_last_collection(tmp_path):
    """PIM-TEN-023 says how far the collections reach: a period running past the newest one is its finding, not a
    reason to be not assessable (the review found its FAIL replaced so); the audit readers are not assessable."""
    from pimtrail.timeutil import parse_iso

    data = t.compliant("2026-09-30T06:00:00Z")
    data["_manifest"]["datasets"]["directory_audits"] = {
        "file": "directory_audits.json", "window": {"from": "2026-08-31T06:00:00Z", "to": "2026-09-30T06:00:00Z"}}
    with HistoryStore.open(str(tmp_path / "h.db"), create=True) as store:
        store.ingest(read_export(exports.write(tmp_path / "e", data)))
        report = run_check(store, parse_config(data["_config"]), period_from=parse_iso("2026-09-01T00:00:00Z"),
                           period_to=parse_iso("2026-10-31T00:00:00Z"), save=False)
    results = {r.control.id: r for r in report.results}
    gaps = results["PIM-TEN-023"]
    assert gaps.status is Status.FAIL and any("no snapshot between 2026-09-30" in f.message for f in gaps.findings)
    assert results["PIM-ACT-013"].status is Status.NOT_ASSESSABLE


def test_an_export_that_does_not_say_what_its_audit_read_covered_is_not_assessed(tmp_path):
    """No `datasets.directory_audits.window`: which stretch of the log the export holds is unknown, so the controls
    that read it are not assessable (they passed on whatever events happened to be there); PIM-TEN-023 is."""
    data = t.compliant("2026-09-30T06:00:00Z")
    data["_manifest"]["datasets"]["directory_audits"] = {"file": "directory_audits.json", "window": None}
    with HistoryStore.open(str(tmp_path / "h.db"), create=True) as store:
        store.ingest(read_export(exports.write(tmp_path / "e", data)))
        report = run_check(store, parse_config(data["_config"]), save=False)
    results = {r.control.id: r for r in report.results}
    for control_id in (c.id for c in all_controls() if "directory_audits" in c.datasets and c.audit_coverage):
        assert results[control_id].status is Status.NOT_ASSESSABLE
        assert "no window" in results[control_id].reason and "datasets.directory_audits.window" in \
            results[control_id].reason
    assert results["PIM-TEN-023"].status is not Status.NOT_ASSESSABLE
