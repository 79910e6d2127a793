"""The trend's weekly activations counted from the `activation` table (migration 0004) equal the counts
folded from the audit events themselves, and the table is what the stored events make of it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import create_engine, select, text

from pimtrail.activations import fold, outline_activations
from pimtrail.collectors.exportdir import read_export
from pimtrail.config import load_config, parse_config
from pimtrail.evidence.series import range_weeks, read_weeks
from pimtrail.store import HistoryStore
from pimtrail.store.engine import resolve_url
from pimtrail.store.schema import activation_table
from pimtrail.synthetic import generate

HOURS = [None, {"time_zone": "Asia/Kolkata"},  # +05:30: local hours begin at half past
         {"time_zone": "Europe/Berlin", "start": "08:30", "end": "17:45"},  # bounds within the hour
         {"time_zone": "America/New_York", "start": "00:00", "end": "23:59", "days": ["Sat", "Sun"]}]


@pytest.fixture(scope="module")
def synthetic(synthetic_small):
    """Three days of the small synthetic tenant (500 users, 60 privileged): most users hold nothing."""
    return synthetic_small


def with_hours(config, hours):
    """`config` with other business hours."""
    return config if hours is None else \
        config.model_copy(update={"business_hours": parse_config({"business_hours": hours}, "x").business_hours})


def ranges(store, tenant):
    """The whole history, and ranges whose edges cut through activations (fractional bounds included)."""
    snaps = store.snapshots(tenant)
    first, last = snaps[0].collected_at, snaps[-1].collected_at + timedelta(seconds=1)
    with store.engine.connect() as conn:  # moments at which some activation has events on both sides
        cuts = [r.first_at + (r.last_at - r.first_at) / 2 for r in conn.execute(
            select(activation_table).where(activation_table.c.tenant_id == tenant,
                                           activation_table.c.last_at > activation_table.c.first_at)
            .order_by(activation_table.c.correlation_id).limit(40))][::8]
    out = [(first, last), (last - timedelta(days=400), last)]
    out += [(cut + timedelta(days=1, microseconds=250), cut + timedelta(days=9)) for cut in cuts]
    out += [(cut - timedelta(days=6), cut) for cut in cuts]
    return out


def test_weekly_counts_from_the_table_equal_those_folded_from_the_events(sample_history, sample_config, synthetic):
    crossed = 0
    for db, config in ((sample_history, sample_config), synthetic):
        with HistoryStore.open(db) as store:
            tenant = store.tenant(None)
            for start, end in ranges(store, tenant):
                crossed += len(store.activation_hours(tenant, start - timedelta(days=1), end, start, end)[1])
                for hours in HOURS:
                    shaped = with_hours(config, hours)
                    assert range_weeks(store, tenant, shaped, start, end) == \
                        read_weeks(store, tenant, shaped, start, end), (db, start, end, hours)
            first, last = ranges(store, tenant)[0]
            assert sum(w.activations for w in range_weeks(store, tenant, config, first, last)) > 10
    assert crossed > 0  # some ranges had activations with events on both sides of an edge


def test_weekly_counts_on_postgresql_too(db_url, tmp_path):
    roots = generate(tmp_path / "exports", "small", days=2, churn=0.05, seed=5)
    config = load_config(roots[0].parent / "pimtrail.toml")
    with HistoryStore.open(db_url, create=True) as store:
        for root in roots:
            store.ingest(read_export(root))
        tenant = store.tenant(None)
        for start, end in ranges(store, tenant):
            for hours in HOURS:
                shaped = with_hours(config, hours)
                assert range_weeks(store, tenant, shaped, start, end) == read_weeks(store, tenant, shaped, start, end)
        assert store.verify().ok


def test_an_activation_split_over_collections_is_folded_on(db_url, export):
    """Its request and approval in one collection, its completion in the next: one row, as if read at once."""
    import exports

    def complete(data):
        data["directory_audits"]["value"].append(exports._audit(
            "audit-3", "2026-06-29T01:31:00Z", "Add member to role completed (PIM activation)", "corr-1",
            exports.BOB, exports.BOB, StartTime="2026-06-29T01:35:00Z"))

    with HistoryStore.open(db_url, create=True) as store:
        store.ingest(read_export(export("2026-07-01T06:00:00Z")))
        store.ingest(read_export(export("2026-07-08T06:00:00Z", complete)))
        tenant = store.tenant(None)
        with store.engine.connect() as conn:
            [row] = conn.execute(select(activation_table)).mappings().all()
        assert (row["correlation_id"], str(row["at"]), str(row["asked"]), row["approved"], row["denied"]) == \
            ("corr-1", "2026-06-29 01:35:00", "2026-06-29 01:27:00", True, False)
        [folded] = outline_activations(store.audit_activities(tenant))
        assert (folded.start, folded.requested_at, folded.approved, folded.denied) == \
            ("2026-06-29T01:35:00Z", "2026-06-29T01:27:00Z", True, False)
        assert store.verify().ok


@pytest.mark.parametrize("sql", ["UPDATE activation SET denied = NOT denied",
                                 "UPDATE activation SET asked = last_at",
                                 "DELETE FROM activation"])
def test_a_changed_activation_row_fails_verify(db_url, export, cli, sql):
    with HistoryStore.open(db_url, create=True) as store:
        store.ingest(read_export(export("2026-07-01T06:00:00Z")))  # corr-1: requested and approved
        store.ingest(read_export(export("2026-07-08T06:00:00Z")))
    assert cli("verify", "--db", db_url).exit_code == 0
    engine = create_engine(resolve_url(db_url))
    with engine.begin() as conn:
        assert conn.execute(text(sql)).rowcount == 1
    engine.dispose()
    result = cli("verify", "--db", db_url)
    assert result.exit_code == 1
    assert "snapshot #1 " in result.output and "activation row(s) differ" in result.output, result.output


def test_folding_in_parts_or_in_any_order_gives_one_entry():
    """Ties within a second included: the latest event of each kind is the one with the greatest source id."""
    events = [("requested", "2026-07-01T10:00:00Z", "e1", None),
              ("approved", "2026-07-01T10:05:00Z", "e2", None),
              ("completed", "2026-07-01T10:06:00Z", "e3", '{"details":{"StartTime":"2026-07-01T10:07:00Z"}}'),
              ("completed", "2026-07-01T10:06:00Z", "e4", '{"details":{"StartTime":"2026-07-01T10:06:30Z"}}'),
              ("denied", "2026-07-01T10:06:00Z", "e5", None),
              ("requested", "2026-07-01T09:00:00Z", "e6", None)]
    whole = [None] * 7
    for kind, time, source, data in events:
        fold(whole, kind, time, source, data)
    for split in range(len(events) + 1):
        part = [None] * 7
        for kind, time, source, data in reversed(events[:split]):
            fold(part, kind, time, source, data)
        for kind, time, source, data in events[split:][::-1]:
            fold(part, kind, time, source, data)
        assert part == whole
    assert (whole[4], whole[5], whole[6]) == ("2026-07-01T10:00:00Z", "denied", "2026-07-01T10:06:30Z")


@pytest.mark.parametrize("details", [
    {}, {"RoleDefinitionOriginId": "x", "ExpirationTime": "2026-07-01T10:00:00Z"},
    {"StartTime": "2026-07-01T10:07:00Z"}, {"StartTime": "2026-02-30T10:07:00Z"},
    {"StartTime": "2026-07-01T10:07:00.5+02:00"}, {"Start time": "2026-07-01T10:06:30Z", "StartTime": "x"},
    {"startDateTime": "2026-07-01T10:06:30Z"}, {"a": "so}\"StartTime\":\"2026-07-01T10:07:00Z\"", "b": "c"},
    {"note": "starting soon", "StartTime": "2026-07-01T10:07:00Z"}, {"StartTime": ""},
    {"nested": {"StartTime": "2026-07-01T10:07:00Z"}}, {"Ｓtarttime": "2026-07-01T10:07:00Z"},
    {"z": "} \"start time\"", "start time": "2026-07-01T11:00:00Z"}, {"StartTime": 20260701},
])
def test_start_and_activity_cut_from_the_stored_text_equal_the_decoded_event(details):
    from pimtrail.activations import START_KEYS, _detail, activity_of, start_detail
    from pimtrail.store.hashing import encode

    for activity in ("Add member to role completed (PIM activation)", 'say "hi"', None, ""):
        text, _ = encode({"activity": activity, "category": "RoleManagement", "correlation_id": "c",
                          "details": details, "id": "e1", "time": "2026-07-01T10:00:00Z"})
        assert start_detail(text) == _detail(details, START_KEYS)
        assert activity_of(text) == (activity or "")


def test_a_first_snapshots_fold_made_in_its_join_pass_equals_the_fold_of_its_events():
    """`joined.join_first` takes each completion's start from the join (`fold`'s `started`): the slots it makes
    equal `fold_kind`'s of the same events in any order, and the activations equal `join_activations`' of them,
    whatever the details name (the start cases `start_detail` reads from the text), with ties within a second."""
    from datetime import datetime

    from pimtrail.activations import activity_kind, fold_kind, join_activations
    from pimtrail.store.hashing import encode
    from pimtrail.store.joined import join_first

    details = [{}, {"StartTime": "2026-07-01T10:07:00Z", "ExpirationTime": "2026-07-01T18:07:00Z"},
               {"StartTime": "2026-02-30T10:07:00Z"}, {"StartTime": "2026-07-01T10:07:00.5+02:00"},
               {"Start time": "2026-07-01T10:06:30Z", "StartTime": "x"}, {"startDateTime": "2026-07-01T10:06:30Z"},
               {"note": "starting soon", "StartTime": "2026-07-01T10:08:00Z"}, {"StartTime": ""},
               {"z": "} \"start time\"", "start time": "2026-07-01T11:00:00Z"}, {"StartTime": 20260701}]
    acts = {"requested": "Add member to role requested (PIM activation)",
            "approved": "Add member to role request approved (PIM activation)",
            "denied": "Add member to role request denied (PIM activation)",
            "completed": "Add member to role completed (PIM activation)"}
    events = []
    for n, detail in enumerate(details):
        for i, (kind, minute, extra) in enumerate([("requested", 0, {}), ("approved", 5, {}),
                                                    ("completed", 6, detail), ("completed", 4, {}),
                                                    ("denied", 6 + n % 2, {})]):
            source = f"e{n}-{i}"
            data = {"activity": acts[kind], "category": "RoleManagement", "correlation_id": f"c{n}",
                    "details": extra, "id": source, "time": f"2026-07-01T10:{minute:02d}:00Z",
                    "principal": {"id": "u1", "upn": "a@x"}, "initiated_by": {"id": "u2", "upn": "b@x"}}
            events.append((f"c{n}", source, datetime(2026, 7, 1, 10, minute), encode(data)[0], data,
                           activity_kind(acts[kind])))
    # times written otherwise than the fold's (`iso(occurred_at)`), which a start not in the details falls back to:
    # the fold reads those from the text. "+02:00" also sorts after a later event's time: that activation's events
    # come to the join out of order, and it is joined again from them sorted
    ten_six, eleven = datetime(2026, 7, 1, 10, 6), datetime(2026, 7, 1, 11, 0)
    for correlation, source, kind, at, time in [("cx", "x1", "completed", ten_six, "2026-07-01T10:06:00.000Z"),
                                                ("cy", "y1", "completed", ten_six, "2026-07-01T12:06:00+02:00"),
                                                ("cy", "y2", "requested", eleven, "2026-07-01T11:00:00Z")]:
        data = {"activity": acts[kind], "category": "RoleManagement", "correlation_id": correlation, "details": {},
                "id": source, "time": time, "principal": {"id": "u1", "upn": "a@x"}}
        events.append((correlation, source, at, encode(data)[0], data, kind))
    for order in (events, events[::-1], events[1::2] + events[::2]):
        joins, slots = join_first(order)
        folded: dict = {}
        for correlation, source, at, stored, _, kind in order:
            fold_kind(folded, correlation, source, at, stored, kind)
        assert slots == folded
        assert sorted(joins.values(), key=lambda a: a.correlation_id) == \
            sorted(join_activations(data for *_, data, _ in order), key=lambda a: a.correlation_id)
    assert [slots[f"c{n}"][2][6] for n in (1, 3, 6)] + [slots["cx"][2][6], slots["cy"][2][6]] == \
        ["2026-07-01T10:07:00Z", "2026-07-01T08:07:00Z", "2026-07-01T10:08:00Z", "2026-07-01T10:06:00Z",
         "2026-07-01T10:06:00Z"]


def test_a_completion_reads_its_details_in_any_order_as_sorted():
    """`ActivationJoin.add` takes the start and end the details give in key order (as canonical JSON sorts them)
    whatever order the dict has them in: of the names that match, the least (`joinable` no longer sorts a copy)."""
    from itertools import permutations

    from pimtrail.activations import ActivationJoin

    details = [("startDateTime", "2026-06-30T09:00:00Z"), ("StartTime", "2026-06-30T10:00:00Z"),
               ("start time", ""), ("endDateTime", "2026-06-30T12:00:00Z"), ("ExpirationTime", "2026-06-30T11:00:00Z"),
               ("Other", "x")]
    seen = set()
    for order in permutations(details):
        join = ActivationJoin()
        join.add({"id": "e1", "time": "2026-06-30T10:00:00Z", "correlation_id": "c1", "details": dict(order),
                  "activity": "Add member to role completed (PIM activation)"})
        (act,) = join.activations()
        seen.add((act.start, act.end))
    assert seen == {("2026-06-30T10:00:00Z", "2026-06-30T11:00:00Z")}  # "StartTime" < "startDateTime", "E" < "e"
