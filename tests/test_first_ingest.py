"""A tenant's first snapshot: its events made ready in a forked child while the receipts and facts are written
(`pimtrail.store.appending`, `pimtrail.store.forked`) store exactly what the ingest making them itself stores,
and a child that gives nothing changes nothing but the time taken."""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime

import pytest
from sqlalchemy import create_engine, text

from pimtrail.collectors.exportdir import read_export
from pimtrail.errors import InputError
from pimtrail.model import EventRecord
from pimtrail.store import HistoryStore
from pimtrail.store import appending
from pimtrail.store.engine import resolve_url
from pimtrail.store.forked import Forked
from pimtrail.synthetic import generate

_ROWS = {  # what the events write, in a stable order, and each snapshot's hashes
    "event": "SELECT tenant_id, kind, source_id, occurred_at, principal_id, role_id, correlation_id, zdata, "
             "first_seen FROM event ORDER BY id",
    "activation": "SELECT tenant_id, correlation_id, first_at, last_at, at, asked, approved, denied, state, joined "
                  "FROM activation ORDER BY tenant_id, correlation_id",
    "event_dict": "SELECT tenant_id, dict_id, data FROM event_dict ORDER BY tenant_id, dict_id",
    "snapshot": "SELECT seq, event_count, fact_count, state_digest, content_hash, chain_hash FROM snapshot ORDER BY id",
}


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("first-ingest"), "small", days=2, churn=0.05)


def _rows(url: str) -> dict[str, list[tuple]]:
    engine = create_engine(resolve_url(url))
    try:
        with engine.connect() as conn:
            return {name: [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                           for row in conn.execute(text(sql))] for name, sql in _ROWS.items()}
    finally:
        engine.dispose()


@pytest.fixture
def results(monkeypatch):
    """What each child gave (None: no child, or it gave nothing)."""
    given = []
    real = Forked.result

    def spy(self):
        value = real(self)
        given.append(value)
        return value

    monkeypatch.setattr(Forked, "result", spy)
    return given


def _ingest(url: str, roots, *extra: EventRecord) -> None:
    with HistoryStore.open(url, create=True) as store:
        for n, root in enumerate(roots):
            snap = read_export(root)
            if n == 0:
                snap.events.extend(extra)
            store.ingest(snap)
        assert store.verify().ok


def test_events_made_ready_in_a_child_are_stored_as_the_ingest_makes_them(roots, db_url, tmp_path, monkeypatch,
                                                                          results):
    monkeypatch.setattr(appending, "FIRST_FORK_MIN", 1)
    _ingest(db_url, roots)
    # the first snapshot's events came from a child; the second snapshot made its own (it reads the history)
    assert [type(r) for r in results] == [appending.Prepared, type(None)]
    assert len(results[0].rows) > 1000 and results[0].new and results[0].trained is not None
    monkeypatch.setattr(appending, "FIRST_FORK_MIN", 10 ** 9)
    plain = str(tmp_path / "plain.db")
    _ingest(plain, roots)
    forked, made = _rows(db_url), _rows(plain)
    if not db_url.startswith("postgresql"):
        assert forked == made
    else:  # times come back as datetimes from PostgreSQL: the hashes and the frames are compared
        assert forked["snapshot"] == made["snapshot"]
        assert [r[7] for r in forked["event"]] == [r[7] for r in made["event"]]
        assert [r[8:] for r in forked["activation"]] == [r[8:] for r in made["activation"]]
        assert forked["event_dict"] == made["event_dict"]


def test_a_bad_event_fails_as_it_would_without_a_child_and_leaves_the_history(roots, tmp_path, monkeypatch, results):
    monkeypatch.setattr(appending, "FIRST_FORK_MIN", 1)
    db = str(tmp_path / "h.db")
    HistoryStore.open(db, create=True).close()
    bad = EventRecord("audit", "bad-event", datetime(2026, 6, 30, 12), {"id": "bad-event"}, principal_id="p" * 200)
    with pytest.raises(InputError, match="event.principal_id is longer than 64 characters"):
        _ingest(db, roots[:1], bad)
    assert results == [None]  # the child raised too: the ingest made the events itself and raised that
    with HistoryStore.open(db) as store:
        assert store.snapshots() == []


def test_a_child_gives_its_value_or_nothing():
    assert Forked(sum, [1, 2, 3]).result() == 6
    assert Forked(len, None).result() is None  # it raised
    assert Forked(None).result() is None
    assert Forked(os.getpid).result() != os.getpid()  # it ran elsewhere


def test_no_child_is_forked_while_another_thread_runs():
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        job = Forked(os.getpid)
        assert job._pid is None and job.result() is None
    finally:
        stop.set()
        thread.join()


def test_no_child_is_forked_without_memory_for_its_copy(monkeypatch):
    from pimtrail.store import forked

    assert forked.room_for_a_copy()  # a test process is small
    monkeypatch.setattr(forked, "room_for_a_copy", lambda: False)
    job = Forked(os.getpid)
    assert job._pid is None and job.result() is None


def test_a_child_no_longer_needed_is_stopped():
    with Forked(time.sleep, 60) as job:
        pid = job._pid
        assert pid is not None
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # killed and reaped: no such child left
    assert job.result() is None


def _joined_after(export, db_url, monkeypatch, where: str, details: list[dict], n: int):
    """The stored join of an activation whose completion has `details` (its additionalDetails), the completion
    brought by a first snapshot (its events made in the child, or in the ingest itself) or by a later one; the
    history verified, so `verify`, joining the stored texts again, found the same."""
    import tenant as t

    from pimtrail.timeutil import parse_iso

    def with_details(data):
        events = t.activation(n, t.BOB, t.EXCHANGE_ADMIN, parse_iso("2026-06-30T10:00:00Z"), None)
        events[-1]["additionalDetails"] = details
        data["directory_audits"]["value"] += events

    monkeypatch.setattr(appending, "FIRST_FORK_MIN", 1 if where == "first-child" else 10 ** 9)
    roots = [export("2026-07-01T06:00:00Z", None if where == "later" else with_details)]
    if where == "later":
        roots.append(export("2026-07-02T06:00:00Z", with_details))
    with HistoryStore.open(db_url, create=True) as store:
        for root in roots:
            store.ingest(read_export(root))
        tenant = store.tenant(None)
        whole, _ = store.joined_activations(tenant, datetime(2026, 6, 1), datetime(2026, 7, 3))
        assert store.verify().ok
    return {a.correlation_id: a for a in whole}[f"corr-{n}"]


@pytest.mark.parametrize("where", ["first-child", "first-here", "later"])
def test_an_event_naming_its_start_twice_is_joined_as_its_stored_text_reads(export, db_url, monkeypatch, where):
    """The join of new events reads each event's dict, not its stored text decoded again (`activations.joinable`).
    A completion naming its start under two keys that sort otherwise than they came: the stored join takes the
    start its canonical text gives (keys sorted: "StartTime" before "startDateTime")."""
    joined = _joined_after(export, db_url, monkeypatch, where, [
        {"key": "startDateTime", "value": "2026-06-30T09:00:00Z"}, {"key": "StartTime", "value": "2026-06-30T10:00:00Z"},
        {"key": "ExpirationTime", "value": "2026-06-30T11:00:00Z"}], 900)
    assert (joined.start, joined.end) == ("2026-06-30T10:00:00Z", "2026-06-30T11:00:00Z")


@pytest.mark.parametrize("where", ["first-child", "first-here", "later"])
def test_a_detail_not_named_by_a_string_is_joined_as_its_stored_text_reads(export, db_url, monkeypatch, where):
    """JSON names every member with a string: an audit detail keyed 7 is "7" in the stored text, which is what the
    join reads then (`joinable` falls back to the text)."""
    joined = _joined_after(export, db_url, monkeypatch, where, [{"key": 7, "value": "seven"}], 901)
    assert joined.start == "2026-06-30T10:00:00Z" and joined.outcome == "activated"
