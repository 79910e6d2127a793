"""The scratch file a first snapshot's worker hands its event rows over in (pimtrail.store.rowsfile)."""

from __future__ import annotations

import os
import tempfile
import time

import pytest
from sqlalchemy import create_engine

from pimtrail.store import rowsfile


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    folder = tmp_path / "scratch"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_the_file_is_made_in_a_directory_only_its_user_enters(scratch):
    path = rowsfile.create()
    folder = os.path.dirname(path)
    assert os.path.dirname(folder) == str(scratch) and os.path.basename(folder).startswith(rowsfile.PREFIX)
    assert os.stat(folder).st_mode & 0o777 == 0o700 and os.path.getsize(path) == 0
    rowsfile.remove(path)
    assert list(scratch.iterdir()) == []


def test_directories_left_by_a_killed_process_are_swept_and_others_kept(scratch):
    old, new, other = scratch / (rowsfile.PREFIX + "old"), scratch / (rowsfile.PREFIX + "new"), scratch / "mine"
    for folder in (old, new, other):
        folder.mkdir()
    long_ago = time.time() - rowsfile.STALE_S - 60
    os.utime(old, (long_ago, long_ago))
    os.utime(other, (long_ago, long_ago))
    path = rowsfile.create()
    assert not old.exists() and new.exists() and other.exists() and os.path.exists(path)


def test_remove_takes_only_a_rows_directory(scratch):
    elsewhere = scratch / "data"
    elsewhere.mkdir()
    (elsewhere / "rows.db").write_bytes(b"")
    rowsfile.remove(str(elsewhere / "rows.db"))
    assert (elsewhere / "rows.db").exists()


@pytest.mark.parametrize("rows, named, taken", [(3, 3, True), (2, 3, False), (3, 2, False), (0, 0, True)])
def test_a_file_is_attached_only_holding_the_rows_named(scratch, tmp_path, rows, named, taken):
    path = rowsfile.create()
    rowsfile.write(path, ("a", "b"), [(i, b"x") for i in range(rows)])
    engine = create_engine(f"sqlite:///{tmp_path / 'h.db'}")
    with engine.connect() as conn, rowsfile.detached(conn):
        with conn.begin():
            conn.exec_driver_sql("CREATE TABLE t (tenant_id, a, b)")
            assert rowsfile.attach(conn, path, named) is taken
            if taken:
                assert rowsfile.insert(conn, "t", ("a", "b"), {"tenant_id": "t1"}) == rows
                assert conn.exec_driver_sql("SELECT tenant_id, a FROM t ORDER BY rowid").all() == [
                    ("t1", i) for i in range(rows)]
    with engine.connect() as conn:  # the pooled connection: nothing attached
        assert [r[1] for r in conn.exec_driver_sql("PRAGMA database_list")] == ["main"]
    assert list(scratch.iterdir()) == []
    engine.dispose()


def test_a_file_that_is_no_database_is_not_attached(scratch, tmp_path):
    path = rowsfile.create()
    with open(path, "wb") as file:
        file.write(b"not a database" * 100)
    engine = create_engine(f"sqlite:///{tmp_path / 'h.db'}")
    with engine.connect() as conn, rowsfile.detached(conn):
        with conn.begin():
            assert not rowsfile.attach(conn, path, 1)
    engine.dispose()


def test_a_connection_that_cannot_detach_the_file_is_not_pooled(scratch, tmp_path):
    path = rowsfile.create()
    rowsfile.write(path, ("a",), [(1,), (2,)])
    engine = create_engine(f"sqlite:///{tmp_path / 'h.db'}")
    with engine.connect() as conn:
        conn.exec_driver_sql("CREATE TABLE t (tenant_id, a)")
        conn.commit()
        conn.begin()
        assert rowsfile.attach(conn, path, 2) and rowsfile.insert(conn, "t", ("a",), {"tenant_id": "x"}) == 2
        with rowsfile.detached(conn):  # still in the transaction that read it: SQLite refuses to detach it
            pass
        assert conn.invalidated
    assert not os.path.exists(os.path.dirname(path))
    with engine.connect() as conn:
        assert [r[1] for r in conn.exec_driver_sql("PRAGMA database_list")] == ["main"]
    engine.dispose()


def test_the_activations_file_beside_the_rows_is_attached_as_its_own_schema(scratch, tmp_path):
    path = rowsfile.create()
    acts = rowsfile.activations(path)
    assert os.path.dirname(acts) == os.path.dirname(path) and os.path.getsize(acts) == 0
    rowsfile.write(path, ("a",), [(1,), (2,)])
    rowsfile.write(acts, ("c",), [("x",)])
    engine = create_engine(f"sqlite:///{tmp_path / 'h.db'}")
    with engine.connect() as conn, rowsfile.detached(conn):
        with conn.begin():
            conn.exec_driver_sql("CREATE TABLE t (tenant_id, a)")
            conn.exec_driver_sql("CREATE TABLE u (tenant_id, c)")
            assert rowsfile.attach(conn, path, 2)
            assert not rowsfile.attach(conn, acts, 1)  # another file under the name the rows' has: not taken
            assert rowsfile.attach(conn, acts, 1, rowsfile.ACTS_SCHEMA)
            assert rowsfile.insert(conn, "t", ("a",), {"tenant_id": "t1"}) == 2
            assert rowsfile.insert(conn, "u", ("c",), {"tenant_id": "t1"}, rowsfile.ACTS_SCHEMA) == 1
            assert conn.exec_driver_sql("SELECT tenant_id, c FROM u").all() == [("t1", "x")]
    with engine.connect() as conn:  # both detached
        assert [r[1] for r in conn.exec_driver_sql("PRAGMA database_list")] == ["main"]
    assert list(scratch.iterdir()) == []
    engine.dispose()


def test_a_directory_that_takes_no_second_file_is_removed(scratch, monkeypatch):
    monkeypatch.setattr(rowsfile, "activations", lambda path: os.path.join(os.path.dirname(path), "no", "acts.db"))
    assert rowsfile.create() is None
    assert list(scratch.iterdir()) == []


def test_a_step_is_claimed_once_and_removed_with_the_directory(scratch):
    """`claim`: the first caller takes the step, the other is told it is taken; without a directory (PostgreSQL),
    or one gone, each gets its own default (the worker makes the step, the ingest waits for it)."""
    path = rowsfile.create()
    assert rowsfile.claim(path, "counted", False) is True
    assert rowsfile.claim(path, "counted", True) is False and rowsfile.claim(path, "counted", False) is False
    assert rowsfile.claim(path, "digests", False) is True  # another step: its own claim
    assert rowsfile.claim(None, "counted", True) is True and rowsfile.claim(None, "counted", False) is False
    rowsfile.remove(path)
    assert list(scratch.iterdir()) == []
    assert rowsfile.claim(path, "other", True) is True and rowsfile.claim(path, "other", False) is False


@pytest.mark.parametrize("named, digested", [(3, True), (2, False), (4, False)])
def test_the_events_digest_is_made_of_the_added_table_holding_as_many_as_counted(scratch, tmp_path, named,
                                                                                  digested):
    from pimtrail.store.hashing import events_digest

    added = [("audit", f"id-{i}", f"{i:064x}") for i in (2, 0, 1)]
    path = rowsfile.create()
    rowsfile.write(path, ("a",), [(1,), (2,), (3,)])
    rowsfile.write_added(path, added)
    engine = create_engine(f"sqlite:///{tmp_path / 'h.db'}")
    with engine.connect() as conn, rowsfile.detached(conn):
        with conn.begin():
            assert rowsfile.attach(conn, path, 3)
            assert rowsfile.added_digest(conn, named) == (events_digest(added) if digested else None)
    engine.dispose()


def test_no_events_digest_without_the_added_table(scratch, tmp_path):
    path = rowsfile.create()
    rowsfile.write(path, ("a",), [(1,)])
    engine = create_engine(f"sqlite:///{tmp_path / 'h.db'}")
    with engine.connect() as conn, rowsfile.detached(conn):
        with conn.begin():
            assert rowsfile.attach(conn, path, 1) and rowsfile.added_digest(conn, 1) is None
    engine.dispose()
