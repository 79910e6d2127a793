"""A tenant's first snapshot: how the worker hands over what it made (`pimtrail.store.appending.FirstEvents`): its
event rows and activations through scratch files (`pimtrail.store.rowsfile`) or through its pipe, taken only whole
and from the file the ingest made; what the ingest makes itself when the worker gives only part; and the steps either
can make, made by whichever comes to them first (`rowsfile.claim`). Each way, the history is what the ingest makes
without a worker."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from first_ingest import _ingest, _same, plain, results, roots, workers  # noqa: F401 -- fixtures

from pimtrail import collect
from pimtrail.collectors.exportdir import read_export
from pimtrail.store import HistoryStore
from pimtrail.store import appending


def test_the_workers_rows_file_is_detached_and_removed(roots, tmp_path, workers, results, monkeypatch):
    import tempfile

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    db = str(tmp_path / "h.db")
    _ingest(db, roots, early=True)
    assert results[0].rows_in is not None and results[0].rows_in[0].startswith(str(scratch))
    acts_in = results.acts[0][2]  # the activations came through the file beside the rows'
    assert acts_in is not None and acts_in[0] == str(Path(results[0].rows_in[0]).with_name("acts.db"))
    assert list(scratch.iterdir()) == []
    with HistoryStore.open(db) as store, store.engine.connect() as conn:  # the pooled connection the ingest used
        assert [row[1] for row in conn.exec_driver_sql("PRAGMA database_list")] == ["main"]


def test_a_second_tenants_first_snapshot_takes_its_rows_file_into_a_history_in_wal(roots, tmp_path, results,
                                                                                     monkeypatch):
    """The rows file attached beside a history already in WAL (another tenant's snapshot made it so)."""
    from pimtrail.synthetic import generate

    other = generate(tmp_path / "other", "small", days=1, seed=2)[0]

    def both(url: str) -> None:
        with HistoryStore.open(url, create=True) as store:
            for root in (roots[0], other):
                store.ingest(collect.read_against(store, root))
            assert store.verify().ok

    plain = str(tmp_path / "plain.db")
    both(plain)  # no worker: the small tenant's snapshots are below the sizes worth one
    assert results == [None, None] and results.begun == []
    del results[:]
    monkeypatch.setattr(appending, "FIRST_WORKER_MIN", 1)
    monkeypatch.setattr(appending, "FIRST_WORKER_BYTES", 0)
    db = str(tmp_path / "h.db")
    both(db)
    assert len(results) == 2 and all(r is not None and r.rows_in is not None for r in results)
    _same(db, plain)
    with sqlite3.connect(db) as conn:  # as the history was when the second tenant's snapshot came
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize("worker_fn", ["_short_rows_file", "_another_rows_file", "_miscounted_rows"])
def test_a_rows_file_not_whole_or_not_ours_is_not_taken(roots, tmp_path, workers, results, plain, monkeypatch,
                                                        worker_fn):
    """The rows are taken from the file the ingest made for them, holding as many as the worker named: else the
    ingest makes them itself, the same."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the files go, whoever made them
    monkeypatch.setattr(appending, "prepare_audit", globals()[worker_fn])
    db = str(tmp_path / "h.db")
    _ingest(db, roots, early=True)
    assert isinstance(results.raw[1][2], appending.Prepared) and results.raw[1][2].rows_in is not None
    assert results == [None, None]
    _same(db, plain)


def test_a_worker_that_cannot_write_the_rows_file_gives_them_through_the_pipe(roots, tmp_path, workers, results, plain,
                                                                              monkeypatch):
    monkeypatch.setattr(appending, "prepare_audit", _unwritable_rows_file)
    db = str(tmp_path / "h.db")
    _ingest(db, roots, early=True)
    assert isinstance(results[0], appending.Prepared) and results[0].rows_in is None and len(results[0].rows) > 1000
    _same(db, plain)


def test_rows_given_through_the_pipe_are_taken_only_as_many_as_counted(roots, tmp_path, workers, results, plain,
                                                                       monkeypatch):
    monkeypatch.setattr(appending, "prepare_audit", _miscounted_piped_rows)
    db = str(tmp_path / "h.db")
    _ingest(db, roots, early=True)
    assert isinstance(results.raw[1][2], appending.Prepared) and results.raw[1][2].rows_in is None
    assert results == [None, None]
    _same(db, plain)


def _miscounted_piped_rows(remake, source, tenant, sqlite, rows_file=None):
    """`_miscounted_rows` through the pipe (in the worker: a module's)."""
    counted = appending.Prepared.counted
    appending.Prepared.counted = lambda self: (counted(self)[0] + 1, counted(self)[1])
    return _unwritable_rows_file(remake, source, tenant, sqlite, rows_file)


def _unwritable_rows_file(remake, source, tenant, sqlite, rows_file=None):
    """`prepare_audit` whose rows file cannot be written (a full temporary directory; in the worker: a module's)."""
    def full(*args):
        raise sqlite3.OperationalError("database or disk is full")

    appending._rowsfile.write = full
    return appending.prepare_audit(remake, source, tenant, sqlite, rows_file)


def _short_rows_file(remake, source, tenant, sqlite, rows_file=None):
    """`prepare_audit` writing all rows but the last (in the worker: a module's)."""
    write = appending._rowsfile.write
    appending._rowsfile.write = lambda path, columns, rows: write(path, columns, list(rows)[:-1])
    return appending.prepare_audit(remake, source, tenant, sqlite, rows_file)


def _miscounted_rows(remake, source, tenant, sqlite, rows_file=None):
    """`prepare_audit` counting one event fewer than the rows it writes (in the worker: a module's)."""
    from pimtrail.store import worker

    def give(value):
        if isinstance(value[-1], appending.Prepared):
            value[-1].digested = (value[-1].digested[0] - 1, value[-1].digested[1])
        worker.give(value)

    appending.give = give
    return appending.prepare_audit(remake, source, tenant, sqlite, rows_file)


def _another_rows_file(remake, source, tenant, sqlite, rows_file=None):
    """`prepare_audit` writing its rows into a file the ingest did not make (in the worker: a module's)."""
    return appending.prepare_audit(remake, source, tenant, sqlite, rows_file and rows_file + ".other")


def test_an_activations_file_not_whole_or_not_written_is_not_taken(roots, tmp_path, workers, results, plain,
                                                                    monkeypatch):
    """The activations too: from the file beside the rows', holding as many as the worker named, else the ingest
    makes them itself; a worker that cannot write that file gives them through the pipe. Either way the same."""
    for worker_fn, taken in ((_short_acts_file, None), (_unwritable_acts_file, "pipe")):
        results.acts.clear()
        monkeypatch.setattr(appending, "prepare_audit", worker_fn)
        db = str(tmp_path / f"{worker_fn.__name__}.db")
        _ingest(db, roots, early=True)
        assert results[-2] is not None and results[-2].rows_in is not None  # the rows came through their file
        if taken is None:
            assert results.acts == [None]
        else:
            updated, new, acts_in, _ = results.acts[0]
            assert updated == [] and len(new) > 100 and acts_in is None
        _same(db, plain)


def _short_acts_file(remake, source, tenant, sqlite, rows_file=None):
    """`prepare_audit` writing all activations but the last into their file (in the worker: a module's)."""
    write = appending._rowsfile.write
    appending._rowsfile.write = lambda path, columns, rows: write(
        path, columns, list(rows)[:-1] if path.endswith("acts.db") else rows)
    return appending.prepare_audit(remake, source, tenant, sqlite, rows_file)


def _unwritable_acts_file(remake, source, tenant, sqlite, rows_file=None):
    """`prepare_audit` whose activations' file cannot be written (in the worker: a module's)."""
    write = appending._rowsfile.write

    def full(path, columns, rows):
        if path.endswith("acts.db"):
            raise OSError(28, "No space left on device")
        write(path, columns, rows)

    appending._rowsfile.write = full
    return appending.prepare_audit(remake, source, tenant, sqlite, rows_file)


@pytest.mark.parametrize("claims", [True, False], ids=["digested-by-the-ingest", "left-to-the-worker"])
def test_a_worker_that_gave_the_rows_only_has_the_rest_made_by_the_ingest(roots, tmp_path, workers, results, plain,
                                                                          monkeypatch, claims):
    """The activations made by the ingest; and the events' digest, when it left that to the worker."""
    monkeypatch.setattr(appending, "prepare_audit", _rows_only)
    if not claims:
        monkeypatch.setattr(appending._rowsfile, "claim", lambda path, step, otherwise: False)
    db = str(tmp_path / "h.db")
    _ingest(db, roots, early=True)
    assert [type(r) for r in results] == [appending.Prepared, type(None)] and results.acts == [None]
    _same(db, plain)


def test_events_the_ingest_makes_otherwise_than_the_worker_are_refused(roots, tmp_path, workers, results,
                                                                       monkeypatch):
    """The worker gave the rows but not their digest, and the ingest, making the events again, counts others: the
    snapshot is refused, nothing written."""
    from pimtrail.errors import HistoryError

    monkeypatch.setattr(appending, "prepare_audit", _rows_only)
    monkeypatch.setattr(appending._rowsfile, "claim", lambda path, step, otherwise: False)
    counted = appending.Prepared.counted
    monkeypatch.setattr(appending.Prepared, "counted", lambda self: (counted(self)[0] + 1, counted(self)[1]))
    db = str(tmp_path / "h.db")
    with pytest.raises(HistoryError, match="made otherwise than by its worker"):
        _ingest(db, roots[:1], early=True)
    with HistoryStore.open(db) as store:
        assert store.snapshots() == []


def _rows_only(remake, source, tenant, sqlite, rows_file=None):
    """`prepare_audit` failing after it gave the rows (in the worker: a module's)."""
    def failing(*args):
        raise RuntimeError("after the rows")

    appending.activation_rows = failing
    return appending.prepare_audit(remake, source, tenant, sqlite, rows_file)


@pytest.mark.parametrize("early", [True, False], ids=["with-the-reading", "with-the-ingest"])
@pytest.mark.parametrize("first", ["worker", "ingest", "neither"])
def test_steps_either_can_take_are_taken_by_the_first_to_claim_them(roots, tmp_path, workers, results, plain,
                                                                    monkeypatch, early, first):
    """The audit log's element digests (`FirstEvents.digests`) and the events' digest (`FirstEvents.counted`): the
    worker makes them when it comes to them first, the ingest takes each audit page's digests and the events'
    digest from it; when the ingest comes to them first (`rowsfile.claim`), it makes them itself and the worker does
    not. Either way, and when neither claims them (the worker gives none, the ingest makes them after all), the
    history is what the ingest makes without a worker."""
    from pimtrail.store import receipts

    taken, real = [], receipts._given

    def spy(given, page, sha):
        digests = real(given, page, sha)
        taken.append((page.dataset, digests is not None))
        return digests

    monkeypatch.setattr(receipts, "_given", spy)
    if first != "ingest":  # the ingest claims nothing
        monkeypatch.setattr(appending._rowsfile, "claim", lambda path, step, otherwise: False)
    if first != "worker":
        monkeypatch.setattr(appending, "prepare_audit", _claiming_nothing)
    db = str(tmp_path / "h.db")
    _ingest(db, roots, early=early)
    audit_pages = sum(p.dataset == "directory_audits" for p in read_export(roots[0]).pages)
    given, digest = results.raw[0][4], results.acts[0][3]
    if first == "worker":
        assert audit_pages > 1 and [name for name, ok in taken if ok] == ["directory_audits"] * audit_pages
        assert isinstance(given, list) and len(given) == audit_pages and isinstance(digest, str)
    else:
        assert given is None and digest is None and not any(ok for _, ok in taken)
    _same(db, plain)


def _claiming_nothing(remake, source, tenant, sqlite, rows_file=None):
    """`prepare_audit` that claims no step (in the worker: a module's)."""
    appending._rowsfile.claim = lambda path, step, otherwise: False
    return appending.prepare_audit(remake, source, tenant, sqlite, rows_file)
