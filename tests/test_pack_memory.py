"""The pack model built for a low peak of memory (docs/benchmarks.md, "Round 3") gives what the plain
computation gives: the period's activations joined from compact events equal the plain join's, the roll-forward over
light views taken two at a time and fed one window of events at a time equals the one over a list of views
with every event, and the listings kept as `Rows` read as the lists of dicts they replace."""

from __future__ import annotations

import copy
import json
import tomllib
from dataclasses import asdict
from datetime import timedelta
from importlib import resources

import pytest

from pimtrail.config import parse_config
from pimtrail.controls.profiles import load_profile
from pimtrail.activations import join_activations
from pimtrail.evidence import pack_model
from pimtrail.controls.period_events import event_time, period_activations
from pimtrail.controls.view import HoldingsHistory, build_view
from pimtrail.evidence import rollforward as rf
from pimtrail.evidence.pack import export_json, write_json
from pimtrail.evidence.rows import Rows
from pimtrail.evidence.period import parse_period, period_snapshots
from pimtrail.store import HistoryStore
from conftest import synthetic_history


@pytest.fixture(scope="module")
def sample(sample_history):
    config = parse_config(tomllib.loads((resources.files("pimtrail.sample_data") / "pimtrail.toml").read_text()))
    with HistoryStore.open(sample_history) as store:
        yield store, store.tenant(None), load_profile(None, config), config


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """Three days of the small synthetic tenant, with its 90 days of audit events (activations, approvals)."""
    db, config = synthetic_history(tmp_path_factory, 5)
    with HistoryStore.open(db) as store:
        yield store, store.tenant(None), load_profile(None, config), config


def plain_join(store, tenant, start, end):
    """The period's activations and outside-PIM events as a view kept them before: every event a dict."""
    joining, audit = [], []
    for event in store.iter_events(tenant, "audit", start - timedelta(days=1), end):
        activity = (event.get("activity") or "").lower()
        if "outside of pim" in activity and start <= event_time(event["time"]) < end:
            audit.append(event)
        if "(pim activation)" in activity:
            joining.append(event)
    return [a for a in join_activations(joining) if start <= event_time(a.requested_at or a.start) < end], audit


def same_join(lean, plain) -> None:
    assert [a.as_dict() for a in lean[0]] == [a.as_dict() for a in plain[0]]
    assert lean[1] == plain[1]


@pytest.mark.parametrize("period", ["2026-Q3", "2026-08", "2026-09"])
def test_compact_join_equals_the_plain_one_on_the_sample(sample, period):
    store, tenant, profile, config = sample
    chosen = parse_period(period)
    lean = period_activations(store, tenant, chosen.start, chosen.end)
    assert lean[0] and any(a.approvers for a in lean[0])
    same_join(lean, plain_join(store, tenant, chosen.start, chosen.end))


def test_compact_join_equals_the_plain_one_on_a_synthetic_tenant(synthetic):
    store, tenant, profile, config = synthetic
    snapshot = store.snapshots(tenant)[-1]
    start = snapshot.collected_at - timedelta(days=60)
    plain = plain_join(store, tenant, start, snapshot.collected_at)
    assert len(plain[0]) > 100 and any(a.approvers for a in plain[0]) and any(a.duration_hours for a in plain[0])
    same_join(period_activations(store, tenant, start, snapshot.collected_at), plain)


def test_roll_forward_two_views_at_a_time_with_windowed_events_equals_the_plain_one(sample):
    store, tenant, profile, config = sample
    period = parse_period("2026-Q3")
    bounds = period_snapshots(store, tenant, period)
    since, until = period.start - timedelta(days=1), period.end
    closing = build_view(store, tenant, bounds.closing, profile, config, period.start, period.end)
    history = HoldingsHistory(store, tenant, bounds.inside, profile, config)
    # as the pack was built before: a list of light views and the closing full view, every event of the period
    plain = rf.roll_forward([history.view(s) for s in bounds.inside[:-1]] + [closing],
                            store.events(tenant, "audit", since, until))
    asked = []

    def window(who, lo, hi):
        asked.append((lo, hi))
        return store.events(tenant, "audit", max(lo, since), min(hi + timedelta(seconds=1), until), principal_ids=who)

    applied = [d for d in closing.facts["access_review_decision"] if d.get("applied_at")]
    lean = rf.roll_forward((history.view(s) for s in bounds.inside), decisions=applied, window_events=window)
    assert rf.movement_rows(lean) == rf.movement_rows(plain) and rf.as_rows(lean) == rf.as_rows(plain)
    moves = rf.movement_rows(plain)
    assert any(m["explained"] and not m["event"].startswith("review decision") for m in moves)  # by an audit entry
    assert len(asked) > 3 and len(set(asked)) == len(asked)  # one read per pair of snapshots with movements


def test_rows_read_as_a_list_of_dicts():
    dicts = [{"a": i, "b": f"x{i}", "sub": {"p": i, "q": None}, "e": {"k": [i]}} for i in range(5)]
    rows = Rows.of(iter(dicts), nested=("sub",))
    assert len(rows) == 5 and list(rows) == dicts and rows == dicts and rows[2] == dicts[2] and rows[-1] == dicts[-1]
    assert rows[1:3] == dicts[1:3] and isinstance(rows[1:3], list)
    assert [r["b"] for r in rows] == [d["b"] for d in dicts]
    assert len(rows.data[0]) == 5  # the nested dict's values kept in the row's tuple
    row = rows[0]
    row["a"] = 99  # a copy: the listing is unchanged
    assert rows[0]["a"] == 0
    rows.sort(key=lambda r: -r["a"])
    assert [r["a"] for r in rows] == [4, 3, 2, 1, 0]
    assert copy.deepcopy(rows) == rows and Rows.of([]) == [] and len(Rows.of([], ("a",))) == 0
    with pytest.raises(ValueError):
        Rows.of([{"a": 1}, {"a": 1, "b": 2}])
    for unlike in ([{"a": 1}, {"b": 1}], [{"s": {"p": 1}}, {"s": {"q": 1, "p": 2}}], [{"s": {"p": 1}}, {"s": None}],
                   [{"s": {"p": 1}}, {"s": {"q": 1}}]):
        with pytest.raises(ValueError):
            Rows.of(unlike, nested=("s",))


def test_the_model_keeps_its_long_listings_as_rows_and_exports_them_as_lists(sample, tmp_path):
    store, tenant, profile, config = sample
    model = pack_model.build_pack(store, tenant, parse_period("2026-Q3"), profile, config)
    for listing in (model["population"], model["activations"], model["approvals"], model["reviews"]["decisions"],
                    model["rollforward"]["movements"], model["controls"][0]["findings"]):
        assert isinstance(listing, Rows) and len(listing) > 0
    finding = model["controls"][0]["findings"][0]
    assert set(finding) == {"status", "message", "subject", "evidence"} and "principal_id" in finding["subject"]
    text = export_json(model)
    write_json(model, tmp_path / "pack.json")
    assert (tmp_path / "pack.json").read_text(encoding="utf-8") == text
    doc = json.loads(text)
    assert doc["activations"] == list(model["activations"]) and doc["population"] == list(model["population"])
    assert doc["controls"][0]["findings"] == list(model["controls"][0]["findings"])
    assert doc["summary"]["standing"]["closing"] == asdict(model["_series"].points[-1])
