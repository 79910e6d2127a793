"""Where a snapshot's sign-ins come from (`collectors.normalize.sign_in_source`, docs/export-format.md): the
`sign_in_activity` dataset when the export names it, else the users' elements when they carry signInActivity,
else nowhere - then sign-ins are unobserved and PIM-ACT-018 is not assessable, never a pass. A daily read
against the history stores exactly what a full read stores when the source changes between days."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

import exports
import tenant as t
from pimtrail.check import run_check
from pimtrail.collect import _ingest, read_against
from pimtrail.collectors import normalize
from pimtrail.collectors.datasets import get
from pimtrail.collectors.exportdir import read_export
from pimtrail.config import parse_config
from pimtrail.controls.model import Status
from pimtrail.store import HistoryStore
from pimtrail.timeutil import iso, parse_iso
from test_daily_ingest import _tables
from test_open_facts import _days, _read_in_full

NOW = "2026-09-30T06:00:00Z"


def _no_sign_ins(data: dict) -> None:
    """The export as docs/export-format.md asks for the users (no signInActivity), without the dataset."""
    data.pop("sign_in_activity")
    assert not any("signInActivity" in u for u in data["users"]["value"])


@pytest.mark.parametrize("created_days_ago", [400, 10])
def test_an_export_with_no_sign_ins_at_all_leaves_them_unobserved_never_a_pass(tmp_path, created_days_ago):
    """No dataset and users without signInActivity: the snapshot is partial with the gap named, sign-ins are
    unobserved (last week's kept as last seen) and PIM-ACT-018 is not assessable, neither "never signed in"
    for old accounts nor a pass for accounts created 10 days ago."""
    store = HistoryStore.open(str(tmp_path / "history.db"), create=True)
    with store:
        store.ingest(read_export(exports.write(tmp_path / "w1", t.compliant(iso(parse_iso(NOW) - timedelta(weeks=1))))))
        data = t.compliant(NOW)
        _no_sign_ins(data)
        for user in data["users"]["value"]:
            user["createdDateTime"] = iso(parse_iso(NOW) - timedelta(days=created_days_ago))
        snap = read_export(exports.write(tmp_path / "w2", data))
        coverage = {c.dataset: c for c in snap.coverage}["sign_in_activity"]
        assert snap.status == "partial" and "sign_in_activity" in snap.unobserved
        assert (coverage.status, coverage.optional) == ("missing", False)
        assert coverage.error_message == normalize.NO_SIGN_INS
        assert not [f for f in snap.facts if f.kind == "sign_in_activity"]
        store.ingest(snap)
        tenant = store.tenant(None)
        assert store.facts(tenant, "sign_in_activity", 2) == store.facts(tenant, "sign_in_activity", 1) != []
        report = run_check(store, parse_config(data["_config"]), save=False)
    result = {r.control.id: r for r in report.results}["PIM-ACT-018"]
    assert result.status is Status.NOT_ASSESSABLE and "sign_in_activity" in result.reason


def test_users_that_carry_sign_in_activity_are_read_as_before(tmp_path):
    """An export that selected signInActivity on the users (any element with the member, `null` included)
    is complete and its sign-ins come from the users: an element with `null`, or without the member, is a
    user who never signed in (as before the dataset existed)."""
    data = t.compliant(NOW)
    _no_sign_ins(data)
    users = data["users"]["value"]
    next(u for u in users if u["id"] == t.ALICE)["signInActivity"] = None
    snap = read_export(exports.write(tmp_path / "e", data))
    coverage = {c.dataset: c for c in snap.coverage}["sign_in_activity"]
    assert snap.status == "complete" and "sign_in_activity" not in snap.unobserved
    assert (coverage.status, coverage.optional) == ("missing", True)
    assert [f.key for f in snap.facts if f.kind == "sign_in_activity"] == []  # null: no record, as before
    with HistoryStore.open(str(tmp_path / "h.db"), create=True) as store:
        store.ingest(snap)
        report = run_check(store, parse_config(data["_config"]), save=False)
    result = {r.control.id: r for r in report.results}["PIM-ACT-018"]
    assert result.status is Status.WARN
    assert any(f.subject.principal_id == t.ALICE and "last signed in never" in f.message for f in result.findings)


def test_the_rule_reads_a_member_not_a_string_that_looks_like_one():
    member = '{"value":[{"id":"a","signInActivity":null}]}'
    lookalike = json.dumps({"value": [{"id": "a", "displayName": '"signInActivity": {}'}],
                            "@odata.nextLink": "https://graph.microsoft.com/v1.0/users?$select=id,signInActivity"})
    assert normalize.sign_in_source({"users"}, [lookalike]) is None
    assert normalize.sign_in_source({"users"}, [lookalike, member]) == "users"
    assert normalize.sign_in_source({"users", "sign_in_activity"}, [member]) == "sign_in_activity"
    assert normalize.sign_in_source({"sign_in_activity"}, []) == "sign_in_activity"
    assert normalize.stored_sign_in_source(None) == "users"  # stored before the dataset existed


# -- the source changing between days: a daily read stores what a full read stores ----------------------
def _add_dataset(root: Path, ids: list[str], newer: bool = False) -> None:
    """Keep the users as they are and write `sign_in_activity` for `ids` too (a tool that selects
    signInActivity on the users and writes the dataset); `newer`: read a moment later, one user's differs."""
    manifest = json.loads((root / "manifest.json").read_text())
    by_id = {u["id"]: u for p in json.loads((root / "users.json").read_text()) for u in p["value"]}
    value = [{"id": i, "signInActivity": by_id[i].get("signInActivity")} for i in ids]
    if newer:
        value[0]["signInActivity"] = {"lastSignInDateTime": "2026-07-02T05:59:59Z"}
    (root / "sign_in_activity.json").write_text(json.dumps({"pages": [
        {"request": get("sign_in_activity").request(",".join(ids)), "body": {"value": value}}]}))
    manifest["datasets"]["sign_in_activity"] = {"file": "sign_in_activity.json"}
    (root / "manifest.json").write_text(json.dumps(manifest))


def _strip_users(root: Path) -> None:
    """The users without signInActivity (and no dataset): no sign-ins in the export."""
    pages = json.loads((root / "users.json").read_text())
    for page in pages:
        for user in page["value"]:
            user.pop("signInActivity", None)
    (root / "users.json").write_text(json.dumps(pages))


LAYOUTS = {
    "users": lambda root, ids: None,
    "mixed": lambda root, ids: _add_dataset(root, ids),
    "mixed, the dataset newer": lambda root, ids: _add_dataset(root, ids, newer=True),
    "dataset only": lambda root, ids: (_add_dataset(root, ids), _strip_users(root)),
    "none": lambda root, ids: _strip_users(root),
}


@pytest.mark.parametrize("days", [
    ("users", "mixed", "mixed", "mixed"), ("mixed", "users", "users", "users"),
    ("users", "mixed, the dataset newer", "mixed", "mixed"), ("users", "none", "none", "users"),
    ("dataset only", "none", "users", "dataset only"),
])
def test_a_daily_read_stores_what_a_full_read_stores_when_the_sign_in_source_changes(tmp_path, days):
    """Four days (tests/test_open_facts.py), each in the layout named, read as `pimtrail collect` does
    (against the history; refused as `Unrecognised` when the sign-in source is not the previous snapshot's,
    then read in full): every table ends as after full reads."""
    roots = _days(tmp_path)
    first = json.loads((roots[0] / "users.json").read_text())
    ids = [first[0]["value"][0]["id"], first[1]["value"][0]["id"]]
    for root, layout in zip(roots, days):
        LAYOUTS[layout](root, ids)
    full = _read_in_full(tmp_path, roots)
    against = str(tmp_path / "against.db")
    with HistoryStore.open(against, create=True) as store:
        for root in roots:
            _ingest(store, read_against(store, root))
        assert store.verify().ok
    assert _tables(full) == _tables(against)
