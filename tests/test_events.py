"""Events are append-only and de-duplicated across overlapping collections."""

from __future__ import annotations

import exports
from pimtrail.activations import join_activations
from pimtrail.collectors.exportdir import read_export
from pimtrail.store import HistoryStore


def add_completion(data):
    data["directory_audits"]["value"].append(exports._audit(
        "audit-3", "2026-06-29T01:30:00Z", "Add member to role completed (PIM activation)", "corr-1",
        exports.BOB, exports.BOB, StartTime="2026-06-29T01:30:00Z", ExpirationTime="2026-06-29T02:30:00Z"))


def test_overlapping_exports_store_each_event_once(export, db_url):
    with HistoryStore.open(db_url, create=True) as store:
        first = store.ingest(read_export(export("2026-07-01T06:00:00Z")))
        second = store.ingest(read_export(export("2026-07-08T06:00:00Z", add_completion)))
        third = store.ingest(read_export(export("2026-07-15T06:00:00Z", add_completion)))
        events = store.events(exports.TENANT, "audit")
    assert (first.event_count, second.event_count, third.event_count) == (2, 1, 0)
    assert sorted(e["_source_id"] for e in events) == ["audit-1", "audit-2", "audit-3"]


def test_activation_joins_across_collections(export, db_url):
    with HistoryStore.open(db_url, create=True) as store:
        store.ingest(read_export(export("2026-07-01T06:00:00Z")))
        store.ingest(read_export(export("2026-07-08T06:00:00Z", add_completion)))
        activations = join_activations(store.events(exports.TENANT, "audit"))
    assert len(activations) == 1
    act = activations[0]
    assert act.principal_id == exports.BOB and act.role_id == exports.GA
    assert act.approval == "approved" and act.approvers[0]["id"] == exports.ALICE
    assert act.justification == "incident 42"
    assert (act.start, act.end, act.duration_hours) == ("2026-06-29T01:30:00Z", "2026-06-29T02:30:00Z", 1.0)
    assert act.outcome == "activated" and not act.self_approved


def test_self_approval_is_recognised(export, db_url):
    def self_approve(data):
        data["directory_audits"]["value"][1]["initiatedBy"]["user"]["id"] = exports.BOB

    with HistoryStore.open(db_url, create=True) as store:
        store.ingest(read_export(export(change=self_approve)))
        [act] = join_activations(store.events(exports.TENANT, "audit"))
    assert act.self_approved


def test_an_activations_times_are_stored_as_their_parsed_moments_are():
    """The ingest writes an activation's `at` and `asked` into SQLite from their texts without parsing a canonical
    one (`newacts._sqlite_time`): the text the driver would be given for the moment parsed (a year past 999)."""
    from pimtrail.store.newacts import _sqlite_time
    from pimtrail.store.driver import time_param
    from pimtrail.timeutil import parse_iso

    for text in ("2026-07-14T01:27:00Z", "2024-02-29T23:59:59Z", "2026-07-14T01:27:00.1234567Z",
                 "2026-07-14T03:27:00+02:00"):
        assert _sqlite_time(text) == time_param(True, parse_iso(text))
    assert _sqlite_time(None) is None


def test_an_events_activity_is_read_from_its_dict_as_from_its_text():
    """`activation_rows` finds each new event's activity kind from the dict its text encodes (`activity_value`),
    as `activity_of` finds it from the text: missing, null, not text, escaped."""
    from pimtrail.activations import activity_of
    from pimtrail.activations import activity_value as _activity
    from pimtrail.store.hashing import encode

    for data in ({}, {"activity": None}, {"activity": 7}, {"activity": ["x"]}, {"activity": ""},
                 {"activity": 'Add member to role completed (PIM activation) "\\'},
                 {"activity": "Add member to role requested (PIM activation)", "category": "RoleManagement"}):
        assert _activity(data.get("activity")) == activity_of(encode(data)[0])


def test_an_events_columns_are_built_once_and_read_as_its_fields():
    """`EventRecord.columns` gives what its four built fields give, building them on first use, once."""
    from datetime import datetime

    from pimtrail.model import EventRecord

    calls = []

    def build():
        calls.append(1)
        return {"id": "e1"}, "p1", "r1", "c1"

    lazy = EventRecord("audit", "e1", datetime(2026, 7, 1), build=build)
    assert lazy.columns() == ({"id": "e1"}, "p1", "r1", "c1") and calls == [1]
    assert (lazy.data, lazy.principal_id, lazy.role_id, lazy.correlation_id) == lazy.columns() and calls == [1]
    given = EventRecord("audit", "e2", datetime(2026, 7, 1), {"id": "e2"}, None, "r2", None)
    assert given.columns() == ({"id": "e2"}, None, "r2", None)
