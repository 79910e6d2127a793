"""Events past the tenant's audit window are kept as one batch per kind and day (`pimtrail.store.event_archive`,
migration 0009). Every reader gives what it gave when they were rows of `event`: the sample quarter (30-day
audit windows, weekly snapshots: two thirds of its events archived) is read, taken back to 0008 by the
migration's own downgrade (each archived event a row again), and read again."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from pimtrail import collect
from pimtrail.model import EventRecord
from pimtrail.store import HistoryStore, event_archive
from test_migrations import downgrade


@pytest.fixture
def sample_quarter(db_url):
    with HistoryStore.open(db_url, create=True) as store:
        collect.ingest_all(store, collect.sample_snapshots())
    return db_url


def _canon(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _archived_count(store, tenant: str) -> int:
    with store.engine.connect() as conn:
        return sum(count for _, _, count, _ in event_archive.batches(conn, tenant))


def readings(store) -> dict:
    """What every reader of events gives, over the whole history and over ranges across the archive's edge."""
    tenant = store.tenant(None)
    everything = store.events(tenant, "audit")
    times = sorted(datetime.fromisoformat(e["time"].rstrip("Z")) for e in everything)
    first, last = times[0], times[-1] + timedelta(seconds=1)
    middle = first + (last - first) / 2
    principals = sorted({e["principal"]["id"] for e in everything if e.get("principal")})[::3]
    correlations = sorted({e["correlation_id"] for e in everything if e.get("correlation_id")})[::4]
    out: dict = {"all": everything}
    for name, (start, end) in {"whole": (first, last), "early": (first, middle), "late": (middle, last),
                               "open": (None, middle)}.items():
        out[name] = store.events(tenant, "audit", start, end)
        out[name, "principals"] = store.events(tenant, "audit", start, end, principal_ids=iter(principals))
        out[name, "correlations"] = store.events(tenant, "audit", start, end, correlation_ids=correlations)
        out[name, "contains"] = store.events(tenant, "audit", start, end, contains=["approve", "Activat"])
        out[name, "streamed"] = list(store.iter_events(tenant, "audit", start, end, contains=["role"]))
        if start is not None:
            out[name, "texts"] = list(store.event_texts(tenant, "audit", start, end, ["pim activation", "approv"]))
            out[name, "activities"] = sorted(store.audit_activities(tenant, start, end))
            hours, across = store.activation_hours(tenant, start, end, start, end)
            out[name, "hours"] = (sorted(hours), sorted(across))
            whole, others = store.joined_activations(tenant, start, end)
            out[name, "joined"] = (sorted(map(_canon, whole)), sorted(others))
            spans = [(c, f, la) for c, f, la in across]
            out[name, "activation events"] = sorted(store.activation_events(tenant, start, end, spans))
    return out


def test_every_reader_gives_what_rows_gave(sample_quarter):
    with HistoryStore.open(sample_quarter) as store:
        tenant = store.tenant(None)
        archived = _archived_count(store, tenant)
        with store.engine.connect() as conn:
            rows = conn.execute(text("SELECT count(*) FROM event")).scalar()
            edge = event_archive.edge(conn, tenant, "audit")
        assert archived > 150 and rows > 50  # both places are read
        read = readings(store)
        assert store.verify().ok
    assert len(read["all"]) == archived + rows
    assert read["early"] and read["late"] and read["early", "activities"] and read["late", "hours"][0]
    times = [e["time"] for e in read["all"]]
    assert times == sorted(times) and min(times) < edge.isoformat() < max(times)  # the edge is crossed
    downgrade(sample_quarter, "0008")
    with HistoryStore.open(sample_quarter) as store:  # migrated again; the next ingest would archive again
        assert _archived_count(store, store.tenant(None)) == 0
        again = readings(store)
        assert store.verify().ok
    assert again.keys() == read.keys()
    for key in read:
        assert again[key] == read[key], key


def test_an_ingest_archives_the_days_past_the_widest_window(sample_quarter):
    with HistoryStore.open(sample_quarter) as store:
        tenant = store.tenant(None)
        newest = store.snapshots(tenant)[-1]
        with store.engine.connect() as conn:
            edge = event_archive.edge(conn, tenant, "audit")
            oldest_row = conn.execute(text("SELECT min(occurred_at) FROM event")).scalar()
            days = [day for _, day, _, _ in event_archive.batches(conn, tenant)]
    # the sample's audit windows are 30 days: the newest snapshot archived the days before its window (the
    # last of them with events is where the rows begin)
    horizon = datetime.combine((newest.collected_at - timedelta(days=30)).date(), datetime.min.time())
    assert datetime.fromisoformat(str(oldest_row)) >= horizon >= edge
    assert days == sorted(set(days)) and max(days) == (edge - timedelta(days=1)).date().isoformat()


def _again(snaps, *extra: EventRecord):
    """A later snapshot whose audit read brings every event of the quarter again (a full read after a gap),
    plus `extra`."""
    last = snaps[-1]
    events = [e for snap in snaps for e in snap.events] + list(extra)
    return replace(last, collected_at=last.collected_at + timedelta(days=1), events=events, pages=[],
                   based_on=None, coverage=copy.deepcopy(last.coverage))


def test_an_event_of_an_archived_day_is_stored_once_and_a_late_one_joins_its_day(db_url):
    snaps = collect.sample_snapshots()
    with HistoryStore.open(db_url, create=True) as store:
        collect.ingest_all(store, snaps)
        tenant = store.tenant(None)
        before = store.events(tenant, "audit")
        archived = _archived_count(store, tenant)
        old = next(e for snap in snaps for e in snap.events
                   if e.occurred_at < datetime.fromisoformat(before[len(before) // 4]["time"].rstrip("Z")))
        late = EventRecord(old.kind, old.source_id + "-late", old.occurred_at + timedelta(seconds=1),
                           dict(old.data, id=old.source_id + "-late"), old.principal_id, old.role_id,
                           old.correlation_id)
        row = store.ingest(_again(snaps, late))
        after = store.events(tenant, "audit")
        report = store.verify()
    assert row.event_count == 1  # only the late one: every other event was found, in a batch or a row
    assert report.ok, report.first_broken
    with HistoryStore.open(db_url) as store, store.engine.connect() as conn:
        held = {e.source_id: day for kind, day, _, data in event_archive.batches(conn, tenant)
                for e in event_archive.unpack(kind, day, data)}
    assert held[late.source_id] == late.occurred_at.date().isoformat()  # in its day's batch
    assert len(held) >= archived + 1
    assert [e["_source_id"] for e in after].count(late.source_id) == 1
    assert len(after) == len(before) + 1
    assert [(e["time"], e["_source_id"]) for e in after] == sorted((e["time"], e["_source_id"]) for e in after)


@pytest.mark.parametrize("change, problem", [
    ("UPDATE event_archive SET data = :junk WHERE day = (SELECT min(day) FROM event_archive)",
     "batch(es) of archived events do not read as stored"),
    ("UPDATE event_archive SET count = count + 1 WHERE day = (SELECT min(day) FROM event_archive)",
     "batch(es) of archived events hold other than their count"),
    ("UPDATE event SET occurred_at = :early WHERE id = (SELECT min(id) FROM event)",
     "event row(s) of days the archive holds"),
], ids=["unreadable", "count", "row-before-the-edge"])
def test_an_archive_readers_would_misread_does_not_verify(sample_quarter, change, problem):
    with HistoryStore.open(sample_quarter) as store:
        with store.engine.begin() as conn:
            early = conn.execute(text("SELECT min(occurred_at) FROM event")).scalar()
            conn.execute(text(change), {"junk": b"not zstd", "early": datetime.fromisoformat(str(early)) - timedelta(days=40)})
        report = store.verify()
    assert not report.ok
    assert any(problem in p for check in report.checks for p in check.problems), report.checks


def test_an_edited_archived_event_breaks_the_chain(sample_quarter):
    with HistoryStore.open(sample_quarter) as store:
        tenant = store.tenant(None)
        with store.engine.begin() as conn:
            kind, day, _, data = next(event_archive.batches(conn, tenant))
            events = event_archive.unpack(kind, day, data)
            events[0] = events[0]._replace(text=events[0].text.replace('"success"', '"failure"', 1))
            assert events[0].text != event_archive.unpack(kind, day, data)[0].text
            conn.execute(text("UPDATE event_archive SET data = :d WHERE day = :day"),
                         {"d": event_archive.pack(events), "day": day})
        report = store.verify()
    assert not report.ok
    assert "content hash does not match the stored rows" in report.first_broken.problems


def test_an_unreadable_batch_is_a_one_line_error_not_a_pass(sample_quarter):
    with HistoryStore.open(sample_quarter) as store:
        with store.engine.begin() as conn:
            day = conn.execute(text("SELECT min(day) FROM event_archive")).scalar()
            conn.execute(text("UPDATE event_archive SET data = :d WHERE day = :day"), {"d": b"junk", "day": day})
        with pytest.raises(event_archive.EventArchiveError, match=f"the audit events of {day} do not read"):
            store.events(store.tenant(None), "audit")


def test_a_reader_sees_one_snapshot_while_an_ingest_commits(db_url, monkeypatch):
    """A reader reads the archived days, then the rows: an ingest moving rows into the archive in between must
    not make it miss them, so both reads see one snapshot of the database."""
    snaps = collect.sample_snapshots()
    with HistoryStore.open(db_url, create=True) as store:
        collect.ingest_all(store, snaps[:-1])
        tenant = store.tenant(None)
        before, archived = store.events(tenant, "audit"), _archived_count(store, tenant)
    read_archive, done = event_archive.read, []

    def ingest_after_reading(*args, **kwargs):
        out = list(read_archive(*args, **kwargs))
        if not done:
            with HistoryStore.open(db_url) as writer:
                done.append(writer.ingest(snaps[-1]))
        return iter(out)

    monkeypatch.setattr(event_archive, "read", ingest_after_reading)
    with HistoryStore.open(db_url) as reader:
        seen = reader.events(tenant, "audit")
        assert _archived_count(reader, tenant) > archived  # the ingest moved rows the reader had not read yet
    assert done and done[0].seq == len(snaps)
    assert seen == before


def test_verify_while_an_ingest_moves_rows_sees_one_snapshot(db_url, monkeypatch):
    """verify reads the batches and the rows in one read transaction: an ingest archiving rows in between
    must not make old snapshots look tampered with."""
    snaps = collect.sample_snapshots()
    with HistoryStore.open(db_url, create=True) as store:
        collect.ingest_all(store, snaps[:-1])
    read_batches, done = event_archive.batches, []

    def ingest_first(conn, tenant):
        if not done:
            with HistoryStore.open(db_url) as writer:
                done.append(writer.ingest(snaps[-1]))
        return read_batches(conn, tenant)

    monkeypatch.setattr(event_archive, "batches", ingest_first)
    with HistoryStore.open(db_url) as store:
        report = store.verify()
    assert done and [c.seq for c in report.checks] == list(range(1, len(snaps)))  # as it stood before
    assert report.ok, report.first_broken


def test_a_row_that_does_not_read_stops_the_move_before_its_day_not_the_ingest(db_url):
    snaps = collect.sample_snapshots()
    with HistoryStore.open(db_url, create=True) as store:
        collect.ingest_all(store, snaps[:-1])
        tenant = store.tenant(None)
        with store.engine.begin() as conn:
            edge = event_archive.edge(conn, tenant, "audit")
            bad_id, bad_at = conn.execute(text("SELECT id, occurred_at FROM event ORDER BY occurred_at LIMIT 1")).one()
            conn.execute(text("UPDATE event SET zdata = :junk WHERE id = :id"),
                         {"junk": b"\x28\xb5\x2f\xfd not a frame", "id": bad_id})
        store.ingest(snaps[-1])  # its horizon is past the bad row's day
        report = store.verify()
        with store.engine.connect() as conn:
            after = event_archive.edge(conn, tenant, "audit")
            still = conn.execute(text("SELECT count(*) FROM event WHERE id = :id"), {"id": bad_id}).scalar()
    bad_day = datetime.fromisoformat(str(bad_at)).date()
    assert still == 1 and edge <= after <= datetime.combine(bad_day, datetime.min.time())
    assert any("event(s) whose stored data does not decompress" in p for c in report.checks for p in c.problems)


def test_an_archived_event_stored_again_under_another_time_is_named_by_verify(db_url):
    """An archived event is looked for in the batch of its own day (an audit event's time does not change):
    one brought again under another time is stored again, and `verify` says so."""
    snaps = collect.sample_snapshots()
    with HistoryStore.open(db_url, create=True) as store:
        collect.ingest_all(store, snaps)
        tenant = store.tenant(None)
        with store.engine.connect() as conn:
            kind, day, _, data = next(event_archive.batches(conn, tenant))
            old = event_archive.unpack(kind, day, data)[0]
        src = next(e for s in snaps for e in s.events if e.source_id == old.source_id)
        last = snaps[-1]
        moved = EventRecord(src.kind, src.source_id, last.collected_at - timedelta(hours=2), src.data,
                            src.principal_id, src.role_id, src.correlation_id)
        store.ingest(replace(last, collected_at=last.collected_at + timedelta(days=1), events=[moved], pages=[],
                             based_on=None))
        report = store.verify()
    assert not report.ok
    assert report.first_broken.seq == len(snaps) + 1
    assert "1 event(s) stored again under a kind and source id stored before" in report.first_broken.problems


def test_an_id_that_names_nothing_finds_no_archived_event(sample_quarter):
    with HistoryStore.open(sample_quarter) as store:
        tenant = store.tenant(None)
        assert _archived_count(store, tenant) > 0
        assert store.events(tenant, "audit", principal_ids=[None, ""]) == []  # as the rows read
        assert store.events(tenant, "audit", correlation_ids=[None]) == []


def test_events_are_read_one_text_at_a_time(sample_quarter):
    """A reader filtering a quarter of a large tenant's events must not hold all their texts at once (~230 MB)."""
    import tracemalloc

    with HistoryStore.open(sample_quarter) as store:
        tenant = store.tenant(None)
        texts = sum(len(json.dumps(e)) for e in store.events(tenant, "audit"))
        store.events(tenant, "audit", contains=["no event holds this"])  # SQL compiled and cached before measuring
        tracemalloc.start()
        try:
            assert store.events(tenant, "audit", contains=["no event holds this"]) == []
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < texts / 3
