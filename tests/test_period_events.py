"""The period's audit events as a view reads them (controls/period_events.py): the store's activity filter
on the stored text, the join one event at a time, and its decoding of an event without `targets` give what
the plain reading gives (every event decoded whole, filtered on its decoded activity, joined sorted)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import exports
from sqlalchemy import delete, update

from pimtrail.activations import decode_for_join, join_activations
from pimtrail.collectors.exportdir import read_export
from pimtrail.controls.period_events import ACTIVATION_TEXT, OUTSIDE_PIM_TEXT, period_activations
from pimtrail.store import HistoryStore
from pimtrail.store.hashing import canonical
from pimtrail.store.schema import activation_table, event_table
from test_pack_memory import plain_join, same_join

START, END = datetime(2026, 6, 28), datetime(2026, 7, 1)
JOIN_READS = ("activity", "category", "correlation_id", "details", "group_id", "id", "initiated_by", "principal",
              "result", "result_reason", "role_id", "role_name", "time")


def more_audits(data):
    audits = data["directory_audits"]["value"]
    audits.append(exports._audit(
        "audit-3", "2026-06-29T01:30:00Z", "Add member to role completed (PIM activation)", "corr-1",
        exports.BOB, exports.BOB, StartTime="2026-06-29T01:30:00Z", ExpirationTime="2026-06-29T02:30:00Z"))
    # the phrase in its text but not in its activity: read by a filter on the text, not by one on the activity
    mention = exports._audit("audit-4", "2026-06-29T02:00:00Z", "Update user", "corr-2", exports.ALICE, exports.BOB)
    mention["resultReason"] = "cleanup after (PIM activation) and outside of PIM"
    audits.append(mention)
    audits.append(exports._audit("audit-5", "2026-06-29T03:00:00Z", "Add member to role outside of PIM", "corr-3",
                                 exports.ALICE, exports.BOB))
    # an activity with a quote: escaped in the stored JSON, so the activity is decoded to be read
    audits.append(exports._audit("audit-6", "2026-06-29T04:00:00Z", 'Add member to role "X" requested (PIM activation)',
                                 "corr-4", exports.BOB, exports.BOB))
    audits.append(exports._audit("audit-7", "2026-06-29T05:00:00Z", "Remove member from role (PIM activation expired)",
                                 "corr-1", exports.BOB, exports.BOB))


def test_the_activity_filter_reads_what_the_decoded_activity_says(export, db_url):
    with HistoryStore.open(db_url, create=True) as store:
        store.ingest(read_export(export(change=more_audits)))
        wanted = (ACTIVATION_TEXT.lower(), OUTSIDE_PIM_TEXT.lower())
        plain = [(e["_source_id"], e["activity"]) for e in store.iter_events(exports.TENANT, "audit", START, END)
                 if any(w in (e.get("activity") or "").lower() for w in wanted)]
        texts = list(store.event_texts(exports.TENANT, "audit", START, END, (ACTIVATION_TEXT, OUTSIDE_PIM_TEXT)))
        assert [(s, a) for s, _, a, _ in texts] == plain
        assert [s for s, _, _, _ in texts] == ["audit-1", "audit-2", "audit-3", "audit-5", "audit-6"]
        assert all(json.loads(t)["id"] == s and json.loads(t)["correlation_id"] == c for s, c, _, t in texts)
        lean, whole = period_activations(store, exports.TENANT, START, END), plain_join(store, exports.TENANT, START, END)
    same_join(lean, whole)
    assert [a.correlation_id for a in lean[0]] == ["corr-1", "corr-4"]
    assert [e["_source_id"] for e in lean[1]] == ["audit-5"]


def test_an_activation_whose_events_come_out_of_order_is_joined_from_them_sorted(export, db_url):
    with HistoryStore.open(db_url, create=True) as store:
        store.ingest(read_export(export(change=more_audits)))
        # the request stored as if it came after the completion: the store gives it last, its `time` says first;
        # and no stored join, so that the view joins the activation from the events
        with store.engine.begin() as conn:
            conn.execute(update(event_table).where(event_table.c.source_id == "audit-1")
                         .values(occurred_at=datetime(2026, 6, 29, 1, 31)))
            conn.execute(update(activation_table).where(activation_table.c.correlation_id == "corr-1")
                         .values(joined=None))
        assert "corr-1" in store.joined_activations(exports.TENANT, START, END)[1]
        assert [e["_source_id"] for e in store.iter_events(exports.TENANT, "audit", START, END)][:3] == \
            ["audit-2", "audit-3", "audit-1"]
        lean, whole = period_activations(store, exports.TENANT, START, END), plain_join(store, exports.TENANT, START, END)
    same_join(lean, whole)
    act = next(a for a in lean[0] if a.correlation_id == "corr-1")
    assert act.events == ["audit-1", "audit-2", "audit-3"] and act.requested_at == "2026-06-29T01:27:00Z"
    assert (act.start, act.end, act.duration_hours, act.approval) == \
        ("2026-06-29T01:30:00Z", "2026-06-29T02:30:00Z", 1.0, "approved")


def test_an_activation_cut_by_the_period_is_joined_from_the_events_in_it(export, db_url):
    with HistoryStore.open(db_url, create=True) as store:
        store.ingest(read_export(export(change=more_audits)))
        whole, others = store.joined_activations(exports.TENANT, START, END)
        assert {a.correlation_id for a in whole} == {"corr-1", "corr-4"} and not others
        until = datetime(2026, 6, 29, 1, 29, 30)  # after the approval, before the completion
        assert store.joined_activations(exports.TENANT, START, until)[1] == {"corr-1"}
        lean, plain = period_activations(store, exports.TENANT, START, until), plain_join(store, exports.TENANT, START, until)
        full = period_activations(store, exports.TENANT, START, END)
        with store.engine.begin() as conn:  # an activation with no row at all is joined from its events too
            conn.execute(delete(activation_table).where(activation_table.c.correlation_id == "corr-4"))
        assert [a.correlation_id for a in store.joined_activations(exports.TENANT, START, END)[0]] == ["corr-1"]
        same_join(period_activations(store, exports.TENANT, START, END), plain_join(store, exports.TENANT, START, END))
    same_join(lean, plain)
    [cut] = lean[0]
    assert (cut.outcome, cut.approval, cut.start, cut.events) == ("requested", "approved", None, ["audit-1", "audit-2"])
    assert next(a for a in full[0] if a.correlation_id == "corr-1").outcome == "activated"


def test_the_stored_join_follows_events_that_come_in_a_later_collection(export, db_url):
    def first(data):
        more_audits(data)
        del data["directory_audits"]["value"][2]  # the completion comes later

    with HistoryStore.open(db_url, create=True) as store:
        store.ingest(read_export(export("2026-07-01T06:00:00Z", first)))
        assert next(a for a in store.joined_activations(exports.TENANT, START, END)[0]
                    if a.correlation_id == "corr-1").outcome == "requested"
        store.ingest(read_export(export("2026-07-08T06:00:00Z", more_audits)))
        stored = {a.correlation_id: a for a in store.joined_activations(exports.TENANT, START, END)[0]}
        plain = {a.correlation_id: a for a in join_activations(store.events(exports.TENANT, "audit"))}
        assert store.verify().ok
    assert stored == plain and stored["corr-1"].events == ["audit-1", "audit-2", "audit-3"]


def event(**changes):
    base = {"activity": "Add member to role completed (PIM activation)", "category": "RoleManagement",
            "correlation_id": "c-1", "details": {"StartTime": "2026-06-29T01:30:00Z"}, "group_id": None, "id": "e-1",
            "initiated_by": {"id": "u-1", "type": "user", "upn": "a@x"}, "operation": "Add",
            "principal": {"id": "u-1", "name": "A", "type": "User", "upn": "a@x"}, "result": "success",
            "result_reason": "why", "role_id": "r-1", "role_name": "Role", "service": "PIM",
            "targets": [{"id": "r-1", "name": "Role", "type": "Role", "upn": None}], "time": "2026-06-29T01:30:00Z"}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not ...}


def test_an_event_decoded_for_the_join_lacks_only_what_the_join_does_not_read():
    plain = event()
    assert decode_for_join(canonical(plain).decode()) == {k: v for k, v in plain.items() if k != "targets"}
    tricky = [
        event(targets=[{"targets": [1], "time": "x"}, {"a": "],\"time\":\"y"}]),  # the phrases inside targets
        event(details={"targets": [], "time": "t", "StartTime": "2026-06-29T01:30:00Z"}),  # ... inside details
        event(principal={"id": "u-2", "targets": ["p"], "tz": "z"}, targets=...),  # no targets of its own
        event(time=None),  # the text does not end in a string
        event(time=...),  # no time
        event(tenant=[1, 2], result_reason='quote " and ],"time":"'),  # a member between targets and time
        event(targets="not a list"),
        event(zone={"a": [1], "time": "x"}),  # the last `],"time":"` not the outermost object's
        event(targets=..., tags=["a"], details={"targets": [1], "x": "y"}),  # the only `,"targets":[` nested
    ]
    for data in tricky:
        text = canonical(data).decode()
        decoded, whole = decode_for_join(text), json.loads(text)
        assert {k: decoded.get(k, ...) for k in JOIN_READS} == {k: whole.get(k, ...) for k in JOIN_READS}, text
        assert set(decoded) <= set(whole) and set(whole) - set(decoded) <= {"targets", "tenant"}


def test_a_month_of_a_synthetic_tenant_reads_as_the_plain_join(synthetic_small):
    db, _ = synthetic_small
    with HistoryStore.open(db) as store:
        tenant = store.tenant(None)
        end = store.snapshots(tenant)[-1].collected_at
        for days in (1, 31):
            lean = period_activations(store, tenant, end - timedelta(days=days), end)
            same_join(lean, plain_join(store, tenant, end - timedelta(days=days), end))
        assert len(lean[0]) > 50


def test_graphs_utc_form_is_checked_as_the_full_pattern_checks_it():
    """`canonical_time` returns Graph's `YYYY-MM-DDTHH:MM:SSZ` as it is after checking its day once and its time by
    its digits: the same texts pass, and the same fail, as when every one was built into a datetime."""
    import random

    from pimtrail.collectors.normalize.base import _UTC, canonical_time

    def built(value):
        datetime(*map(int, _UTC.fullmatch(value).groups()))
        return value

    rng = random.Random(5)
    texts = ["2024-02-29T23:59:59Z", "2023-02-29T00:00:00Z", "0000-01-01T00:00:00Z", "2026-07-14T24:00:00Z",
             "2026-07-14T23:60:00Z", "2026-07-14T23:59:60Z", "2026-04-31T00:00:00Z", "9999-12-31T23:59:59Z"]
    years = ["0000", "0001", "2024", "2026", "9999"]
    texts += [f"{rng.choice(years)}-{rng.randint(0, 13):02d}-{rng.randint(0, 32):02d}"
              f"T{rng.randint(0, 25):02d}:{rng.randint(0, 61):02d}:{rng.randint(0, 61):02d}Z" for _ in range(20_000)]
    for text in texts:
        outcomes = []
        for check in (built, canonical_time):
            try:
                outcomes.append(check(text))
            except ValueError:
                outcomes.append(ValueError)
        assert outcomes[0] == outcomes[1], text
    assert canonical_time("2026-07-14T01:27:38.1234567Z") == "2026-07-14T01:27:38Z"


def test_canonical_times_parse_as_the_general_path_does():
    from pimtrail.controls.period_events import event_time
    from pimtrail.timeutil import parse_iso

    for canonical in ("2026-06-30T14:20:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2024-02-29T12:00:00Z"):
        general = canonical[:-1] + "+00:00"  # the same moment, read by the general path (zone converted)
        assert parse_iso(canonical) == parse_iso(general) == event_time(canonical)
        assert parse_iso(canonical).tzinfo is None
    for bad in ("2026-02-30T00:00:00Z", "2026-01-01T24:00:00Z", "2026-13-01T00:00:00Z", "2026-06-30T14:20:60Z",
                "2026-0６-30T14:20:00Z"):
        for parse in (parse_iso, event_time):
            try:
                parse(bad)
            except ValueError:
                continue
            raise AssertionError(f"{bad} parsed")
    assert event_time(None) == event_time("") == datetime.min
    assert parse_iso("2026-06-30T16:20:00.1234567+02:00") == datetime(2026, 6, 30, 14, 20, 0, 123456)
