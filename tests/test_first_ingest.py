"""A tenant's first snapshot: its events made ready in a worker process while the receipts and facts are written
(`pimtrail.store.appending.FirstEvents`, `pimtrail.store.worker`) store exactly what the ingest making them itself
stores, whether the worker began with the export's reading (from the audit log's file) or with the ingest (from
the pages' texts); and a worker that gives nothing, or made its events of other pages, changes nothing but the
time taken."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path

import pytest
from first_ingest import _ingest, _same, plain, results, roots, workers  # noqa: F401 -- fixtures

from pimtrail import collect
from pimtrail.collectors.exportdir import read_export
from pimtrail.errors import InputError
from pimtrail.model import EventRecord
from pimtrail.store import HistoryStore
from pimtrail.store import appending


@pytest.mark.parametrize("early", [True, False], ids=["with-the-reading", "with-the-ingest"])
def test_events_made_ready_in_a_worker_are_stored_as_the_ingest_makes_them(roots, db_url, workers, results, plain,
                                                                           early):
    _ingest(db_url, roots, early=early)
    # the first snapshot's events came from a worker; the second snapshot made its own (it reads the history)
    assert [type(r) for r in results] == [appending.Prepared, type(None)]
    assert results.begun == ["reading" if early else "ingest"]
    rows = results[0].rows_in[1] if results[0].rows_in else len(results[0].rows)  # into SQLite: in a file
    assert (results[0].rows_in is not None) == (not db_url.startswith("postgresql")) and (results[0].rows == []) == (
        results[0].rows_in is not None)
    assert rows > 1000 and results[0].trained is not None
    updated, new, acts_in, digest = results.acts[0]  # the activations, made while the rows went in
    acts = acts_in[1] if acts_in else len(new)  # into SQLite: in the file beside the rows'
    assert (acts_in is not None) == (not db_url.startswith("postgresql")) and (new == []) == (acts_in is not None)
    # the worker sends no triples: it counted the events, and digested them (the plain ingest's events_digest,
    # `_same`: the snapshots' content hashes) before it gave the rows through the pipe; or, the rows in a file with
    # their digests, after the activations, unless the ingest digested them first (`FirstEvents.counted`)
    assert updated == [] and acts > 100 and results[0].added == [] and results[0].digested[0] == rows
    if db_url.startswith("postgresql"):
        assert isinstance(results[0].digested[1], str) and digest is None
    else:
        assert results[0].digested[1] is None and (digest is None or isinstance(digest, str))
    _same(db_url, plain)


def test_digests_of_other_texts_or_of_another_cut_are_not_taken():
    from pimtrail.model import Page
    from pimtrail.store import receipts

    text = '{"value":[{"id":"a"},{"id":"b"}]}'
    page = Page("directory_audits", 0, "", "/x", text, ((10, 20), (21, 31)))
    sha, cut = receipts._hashed(page)[1], receipts._Cut(page)
    joined = b"".join(cut.digests)
    assert receipts._given(([sha], [joined]), page, sha) == cut.digests
    assert receipts._given((["0" * 64], [joined]), page, sha) is None  # another text's
    assert receipts._given(([sha], [joined[:16]]), page, sha) is None  # another cut's: as many as its elements
    assert receipts._given(([sha], [None]), page, sha) is None
    assert receipts._Cut(page, given=([sha], [bytes(32)])).digests == [bytes(16)] * 2  # taken as given


def test_a_worker_that_read_other_pages_is_not_taken(roots, tmp_path, workers, results, plain, monkeypatch):
    """The audit log's file changed between the worker's reading and the export's: what it made is dropped."""
    monkeypatch.setattr(appending, "prepare_audit", _other_pages)
    db = str(tmp_path / "h.db")
    _ingest(db, roots, early=True)
    assert results.begun == ["reading"] and results.raw[0][0] == appending.NORMALISED
    assert isinstance(results.raw[1][2], appending.Prepared)  # it gave rows
    assert results == [None, None] and results.acts == []  # which were not taken, nor what came after
    _same(db, plain)


def _other_pages(remake, source, tenant, sqlite, rows_file=None):
    """`prepare_audit`, as if the file had been rewritten after the worker read it (in the worker: a module's)."""
    from pimtrail.store import worker

    appending.give = lambda value: worker.give(value if value[0] in (appending.NORMALISED, appending.CUT) else
                                               (value[0][:-1] + ["0" * 64], *value[1:]))
    return appending.prepare_audit(remake, source, tenant, sqlite, rows_file)


def test_a_bad_event_fails_as_it_would_without_a_worker_and_leaves_the_history(roots, tmp_path, workers, results):
    db = str(tmp_path / "h.db")
    HistoryStore.open(db, create=True).close()
    bad = EventRecord("audit", "bad-event", datetime(2026, 6, 30, 12), {"id": "bad-event"}, principal_id="p" * 200)
    with pytest.raises(InputError, match="event.principal_id is longer than 64 characters"):
        _ingest(db, roots[:1], bad, early=True)
    # the worker began with the reading, normalised its audit events and then raised too: the ingest made the
    # events itself and raised that
    assert results.begun == ["reading"] and results.raw[0][0] == appending.NORMALISED
    assert results.raw[1:] == [None] and results == [None]
    with HistoryStore.open(db) as store:
        assert store.snapshots() == []


def test_a_worker_begun_with_the_reading_is_stopped_when_not_taken_on(roots, tmp_path, workers, monkeypatch):
    """A second snapshot of the tenant, or one already in the history: the worker begun for it is stopped."""
    db = str(tmp_path / "h.db")
    stopped = []
    real = appending.FirstEvents.cancel
    monkeypatch.setattr(appending.FirstEvents, "cancel", lambda self: (stopped.append(self), real(self)))
    (snap,) = collect.read_exports([roots[0]], db=db)  # a new SQLite history: begun with the reading
    job = snap.first_events
    assert job is not None
    proc = job._worker._proc
    assert proc is not None and proc.poll() is None  # working, or waiting for the rest
    with HistoryStore.open(db, create=True) as store:
        store.ingest(read_export(roots[0]))  # another reading of it went first
        assert collect.ingest_all(store, [snap])[0].skipped_reason == "already in the history"
    assert job in stopped and proc.returncode is not None  # killed and reaped


def _joined_after(export, db_url, monkeypatch, results, where: str, details: list[dict], n: int):
    """The stored join of an activation whose completion has `details` (its additionalDetails), the completion
    brought by a first snapshot (its events made in a worker, or in the ingest itself) or by a later one; the
    history verified, so `verify`, joining the stored texts again, found the same."""
    import tenant as t

    from pimtrail.timeutil import parse_iso

    def with_details(data):
        events = t.activation(n, t.BOB, t.EXCHANGE_ADMIN, parse_iso("2026-06-30T10:00:00Z"), None)
        events[-1]["additionalDetails"] = details
        data["directory_audits"]["value"] += events

    monkeypatch.setattr(appending, "FIRST_WORKER_MIN", 1 if where == "first-worker" else 10 ** 9)
    roots = [export("2026-07-01T06:00:00Z", None if where == "later" else with_details)]
    if where == "later":
        roots.append(export("2026-07-02T06:00:00Z", with_details))
    with HistoryStore.open(db_url, create=True) as store:
        for root in roots:
            store.ingest(read_export(root))
        tenant = store.tenant(None)
        assert isinstance(results[0], appending.Prepared) == (where == "first-worker")  # a worker's rows taken
        whole, _ = store.joined_activations(tenant, datetime(2026, 6, 1), datetime(2026, 7, 3))
        assert store.verify().ok
    return {a.correlation_id: a for a in whole}[f"corr-{n}"]


@pytest.mark.parametrize("where", ["first-worker", "first-here", "later"])
def test_an_event_naming_its_start_twice_is_joined_as_its_stored_text_reads(export, db_url, monkeypatch, results, where):
    """The join of new events reads each event's dict, not its stored text decoded again (`activations.joinable`).
    A completion naming its start under two keys that sort otherwise than they came: the stored join takes the
    start its canonical text gives (keys sorted: "StartTime" before "startDateTime")."""
    joined = _joined_after(export, db_url, monkeypatch, results, where, [
        {"key": "startDateTime", "value": "2026-06-30T09:00:00Z"}, {"key": "StartTime", "value": "2026-06-30T10:00:00Z"},
        {"key": "ExpirationTime", "value": "2026-06-30T11:00:00Z"}], 900)
    assert (joined.start, joined.end) == ("2026-06-30T10:00:00Z", "2026-06-30T11:00:00Z")


@pytest.mark.parametrize("where", ["first-worker", "first-here", "later"])
@pytest.mark.parametrize("details", [[{"key": 7, "value": "seven"}],
                                     [{"key": "StartTime", "value": "2026-06-30T10:30:00Z"}, {"key": 7, "value": "7"},
                                      {"key": True, "value": "t"}, {"key": 1.5e-7, "value": "f"}]])
def test_a_detail_not_named_by_a_string_is_joined_as_its_stored_text_reads(export, db_url, monkeypatch, results, where,
                                                                           details):
    """JSON names every member with a string: an audit detail keyed 7 is "7" in the stored text, which is what the
    join reads then. Named so beside a detail named by text, it was a traceback (no canonical JSON sorts a number
    among texts): it is named as JSON names it ("7", "true", "1.5e-07") when it is normalised."""
    joined = _joined_after(export, db_url, monkeypatch, results, where, details, 901)
    assert joined.start == ("2026-06-30T10:00:00Z" if len(details) == 1 else "2026-06-30T10:30:00Z")
    assert joined.outcome == "activated"


def _journal_spy(monkeypatch) -> list[tuple[str, int]]:
    """(journal mode, synchronous) of the file as each ingest writes it."""
    from pimtrail.store import ingest as ingest_module

    seen, real = [], ingest_module.ingest

    def spy(conn, snap):
        seen.append((conn.exec_driver_sql("PRAGMA journal_mode").scalar(),
                     conn.exec_driver_sql("PRAGMA synchronous").scalar()))
        return real(conn, snap)

    monkeypatch.setattr(ingest_module, "ingest", spy)
    return seen


def _mode(db: str) -> str:
    """The file's journal mode, and that it is one file (a connection left open would leave its WAL beside it)."""
    import sqlite3

    files = sorted(p.name for p in Path(db).parent.iterdir())
    conn = sqlite3.connect(db)
    try:
        return conn.execute("PRAGMA journal_mode").fetchone()[0] + ("" if files == [Path(db).name] else f" {files}")
    finally:
        conn.close()


def test_a_new_historys_first_snapshot_is_written_through_a_rollback_journal(roots, tmp_path, monkeypatch):
    """`new_file_journal`: the first snapshot of a history with none goes through a rollback journal (its pages are
    written once, not to the WAL and again into the file), synchronous FULL; the file is in WAL again after, for
    the next snapshot and for another tenant's first, and closes into one file."""
    seen = _journal_spy(monkeypatch)
    db = str(tmp_path / "h.db")
    _ingest(db, roots)  # verified
    with HistoryStore.open(db) as store:  # another tenant's first snapshot: the file holds one already
        snap = read_export(roots[0])
        snap.tenant_id = "11111111-2222-3333-4444-555555555555"
        store.ingest(snap)
        assert store.verify().ok
    assert seen == [("delete", 2), ("wal", 1), ("wal", 1)]
    assert _mode(db) == "wal"


def test_a_failed_first_snapshot_leaves_the_new_history_in_wal_and_empty(roots, tmp_path, monkeypatch):
    seen = _journal_spy(monkeypatch)
    real = appending.insert

    def failing(conn, table, columns, rows):
        if table.name == "event":
            raise InputError("a failure while the rows go in")
        return real(conn, table, columns, rows)

    monkeypatch.setattr(appending, "insert", failing)
    db = str(tmp_path / "h.db")
    with pytest.raises(InputError, match="a failure while the rows go in"):
        _ingest(db, roots[:1])
    assert seen == [("delete", 2)] and _mode(db) == "wal"
    with HistoryStore.open(db) as store:
        assert store.snapshots() == [] and store.verify().ok
    assert _mode(db) == "wal"


def test_a_new_history_another_connection_holds_open_is_written_in_wal(roots, tmp_path, monkeypatch):
    """Switching out of WAL needs the file to itself: with a reader's connection open, nothing changes."""
    import sqlite3

    seen = _journal_spy(monkeypatch)
    db = str(tmp_path / "h.db")
    HistoryStore.open(db, create=True).close()
    reader = sqlite3.connect(db)
    try:
        assert reader.execute("SELECT count(*) FROM snapshot").fetchone() == (0,)
        _ingest(db, roots[:1])
        assert reader.execute("SELECT count(*) FROM snapshot").fetchone() == (1,)
    finally:
        reader.close()
    assert seen == [("wal", 1)] and _mode(db) == "wal"


def test_a_new_history_is_made_once_the_worker_vouched_for_its_audit_log(roots, tmp_path, workers, results, plain,
                                                                         monkeypatch):
    """`check_before_creating` normalises what a new history's first snapshot holds before the file exists, but for
    the audit events its worker normalised from the same pages (`FirstEvents.normalised`): those were not even read
    here (`CollectedSnapshot.deferred`). While the worker reads, it cuts the pages for the receipts, which the
    ingest takes on (`CollectedSnapshot.cuts`)."""
    from pimtrail.store import receipts

    db = str(tmp_path / "h.db")
    (snap,) = collect.read_exports([roots[0]], db=db)
    collect.check_before_creating(db, [snap])
    assert snap.deferred is not None and snap.remake.count == 0  # left to the worker
    assert all(f._build is None for f in snap.facts) and results.raw[0][0] == appending.NORMALISED
    assert snap.cuts is not None
    cut, real = [], receipts.cut_pages
    monkeypatch.setattr(receipts, "cut_pages", lambda pages, *a, **k: cut.append(1) or real(pages, *a, **k))
    with HistoryStore.open(db, create=True) as store:
        collect.ingest_all(store, [snap])
        assert cut == []  # the check's cut taken on
        store.ingest(read_export(roots[1]))
        assert store.verify().ok
    assert [type(r) for r in results] == [appending.Prepared, type(None)] and cut == [1]
    _same(db, plain)


def test_pages_cut_before_are_not_taken_for_other_pages(roots, tmp_path, plain, monkeypatch):
    """`CollectedSnapshot.cuts` made of other page objects (the same texts read again) are cut again by the ingest."""
    from pimtrail.store import receipts

    db = str(tmp_path / "h.db")
    cut, real = [], receipts.cut_pages
    with HistoryStore.open(db, create=True) as store:
        for root in roots:
            snap = read_export(root)
            snap.cuts = real(read_export(root).pages)
            monkeypatch.setattr(receipts, "cut_pages", lambda pages, *a, **k: cut.append(1) or real(pages, *a, **k))
            store.ingest(snap)
            monkeypatch.setattr(receipts, "cut_pages", real)
        assert store.verify().ok
    assert cut == [1, 1]
    _same(db, plain)


def test_a_page_the_worker_did_not_read_is_checked_before_the_history_is_made(roots, tmp_path, workers, results):
    db = str(tmp_path / "h.db")
    (snap,) = collect.read_exports([roots[0]], db=db)
    at = next(i for i, p in enumerate(snap.pages) if p.dataset == snap.remake.dataset)
    # as if the file had changed between the worker's reading and this one
    snap.pages[at] = dataclasses.replace(snap.pages[at], text=snap.pages[at].text + " ")
    collect.check_before_creating(db, [snap])
    assert all(ev._build is None for ev in snap.events)  # normalised here
    snap.first_events.cancel()


@pytest.mark.parametrize("field, value", [("activityDisplayName", ["x"]), ("id", None)])
def test_a_bad_audit_entry_fails_before_the_history_is_made_with_a_worker(export, tmp_path, workers, results, cli,
                                                                         field, value):
    def change(data):
        body = data["directory_audits"][0] if isinstance(data["directory_audits"], list) else data["directory_audits"]
        body["value"][0][field] = value

    target = tmp_path / "new.db"
    result = cli("collect", "--source", export(change=change), "--db", target)
    assert result.exit_code == 2 and f"directory_audits.json: value[0].{field}" in result.output
    assert not target.exists() and results.begun == ["reading"]
