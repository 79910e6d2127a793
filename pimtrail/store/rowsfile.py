"""A first snapshot's event rows (and then its activations) handed from the worker to a SQLite ingest through
scratch SQLite files.

The worker (`pimtrail.store.appending.prepare_audit`) made the large tenant's 180,000 event rows as Python tuples,
pickled them (0.25 s), and pushed 76 MB through its stdout pipe; the ingest drained and unpickled them (~0.7 s,
its main thread holding the GIL the draining thread needed) and bound each value again for `executemany` (1.0 s).
Now the worker writes them into a file of its own (`write`: no journal, no sync, 64 kB pages, ~0.4 s), without
the tenant id and the seq, which every row has, and the ingest copies them into `event` with one `INSERT ...
SELECT` from that file attached to its connection, adding its own tenant id and seq (`insert`: C all the way,
~0.6 s), where the same rows in the same order get the same ids. Only the file's path and row count cross the pipe.
The worker counts the events (`appending.Prepared.digested`) and writes their (kind, source id, digest) triples into
the file's `added` table (`write_added`, ~0.15 s); their digest (~0.35 s) is made by whichever of the two comes to it
first (`claim`): the worker after the activations, the ingest from that table (`added_digest`) once the rows are
in, where it would otherwise wait for the activations. The
activations the worker makes next go the same way, through a second file beside the first (`activations`): the
first stays attached, so read-locked, until the ingest commits. Pickled, piped and bound again, the large tenant's
58,000 activations took ~0.7 s at the ingest's very end, after the worker had made them; ~0.2 s so.

- **The caller's file.** The ingest's process makes the file (`create`) in a directory of its own (`mkdtemp`:
  mode 0700, so no other user can put a journal beside it for SQLite to replay) before the worker starts, and
  takes rows only from that path (`appending.FirstEvents`), holding as many as the worker named (`attach`).
- **Never needed.** A worker that cannot write a file (a full or small temporary directory) gives its rows
  through the pipe; a file the ingest cannot attach, or that holds other than the rows named, is not taken, and
  the ingest makes those rows itself (`FirstEvents.rows`, `FirstEvents.activations` give None).
- **Removed.** The file is attached inside the ingest's transaction (SQLite allows that, but cannot detach it in
  the transaction that read it) and detached after it (`detached`, around the transaction: a connection that does
  not detach is invalidated, not pooled). Their directory is removed once the worker is done with (`FirstEvents`:
  stopped or dropped, which the ingest does once it has the activations; a system that lets an open file go
  removes it while still attached, else `detached` does), and directories left by a process killed meanwhile are
  swept by the next `create` (`_sweep`).
PostgreSQL ingests take the rows through the pipe as before.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

from pimtrail.errors import HistoryError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

SCHEMA = "pimtrail_first_rows"  # the attached file's name in the ingest's connection
ACTS_SCHEMA = "pimtrail_first_acts"  # the activations' file's
PREFIX = "pimtrail-first-rows-"  # their directory's, in the temporary directory
STALE_S = 6 * 3600  # a directory of ours this old is left by a process that was killed: swept
_ATTACHED = "pimtrail_first_rows_files"  # conn.info key: {schema: path} attached, detached and removed after


def create() -> str | None:
    """An empty scratch file for the worker's rows (an empty file is an empty SQLite database) in a new directory
    of its own, and one beside it for its activations (`activations`); the rows file's path, or None when the
    temporary directory takes none (the rows then come through the pipe)."""
    try:
        _sweep()
        folder = tempfile.mkdtemp(prefix=PREFIX)
    except OSError:
        return None
    path = os.path.join(folder, "rows.db")
    try:
        for name in (path, activations(path)):
            with open(name, "xb"):
                pass
    except OSError:
        shutil.rmtree(folder, ignore_errors=True)
        return None
    return path


def activations(path: str) -> str:
    """The activations' file beside the rows file at `path`."""
    return os.path.join(os.path.dirname(path), "acts.db")


def _sweep() -> None:
    """Remove this user's rows directories older than `STALE_S` (a process killed before it removed its own)."""
    now, me = time.time(), os.getuid() if hasattr(os, "getuid") else None
    for folder in Path(tempfile.gettempdir()).glob(PREFIX + "*"):
        try:
            stat = folder.lstat()
            if folder.is_dir() and not folder.is_symlink() and now - stat.st_mtime > STALE_S \
                    and (me is None or stat.st_uid == me):
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue


def write(path: str, columns: tuple[str, ...], rows: Iterable[tuple]) -> None:
    """In the worker: `rows` into table `rows` of the file at `path`, in their order (rowid). Raises sqlite3.Error
    or OSError when it cannot (the caller then gives the rows otherwise)."""
    _write(path, "rows", columns, rows)


def write_added(path: str, added: list[tuple[str, str, str]]) -> None:
    """In the worker: the (kind, source id, digest) of the events whose rows `write` put in the file at `path`, into
    its table `added`, from which the ingest digests them when it takes that step on (`added_digest`). Raises as
    `write` does."""
    _write(path, "added", ("kind", "source_id", "digest"), added)


def _write(path: str, table: str, columns: tuple[str, ...], rows: Iterable[tuple]) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode = OFF")  # a scratch file: a failed write is thrown away whole
        db.execute("PRAGMA synchronous = OFF")
        db.execute("PRAGMA page_size = 65536")  # a new file: fewer, larger pages (0.45 -> 0.41 s for 180,000 rows)
        db.execute("BEGIN")
        db.execute(f"CREATE TABLE {table} ({', '.join(columns)})")
        db.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(columns))})", rows)
        db.execute("COMMIT")
    finally:
        db.close()


def added_digest(conn: Connection, count: int, schema: str = SCHEMA) -> str | None:
    """`hashing.events_digest` of the `added` table (`write_added`) of the file attached as `schema`, when it holds
    `count` triples; else None."""
    from pimtrail.store.hashing import events_digest

    try:
        added = conn.connection.driver_connection.execute(f"SELECT kind, source_id, digest FROM {schema}.added"
                                                          ).fetchall()
    except sqlite3.Error:
        return None
    return events_digest(added) if len(added) == count else None


def claim(path: str | None, step: str, otherwise: bool) -> bool:
    """Whether this process takes on `step`, which the worker and the ingest can each make: the first to claim it
    does (a file created in the directory of the rows file at `path`, which only one of them can create: False for
    the other); `otherwise` where there is no such directory (`path` None: into PostgreSQL) or the claim cannot be
    made. The worker claims a step where its own order comes to it, the ingest where it would otherwise wait for
    the worker: whichever process is ahead makes it (`appending.DIGESTS`, `COUNTED`)."""
    if path is None:
        return otherwise
    try:
        os.close(os.open(os.path.join(os.path.dirname(path), f"claim-{step}"), os.O_CREAT | os.O_EXCL | os.O_WRONLY,
                         0o600))
    except FileExistsError:
        return False
    except OSError:
        return otherwise
    return True


def attach(conn: Connection, path: str, count: int, schema: str = SCHEMA) -> bool:
    """Attach the file to the ingest's SQLite connection (in the transaction it is in) as `schema` and say whether
    it holds `count` rows numbered 1 to `count` (found by their rowids, not by reading them all); False when it
    cannot be attached or read, or holds otherwise. Attached, it stays so until `detached`, whatever it holds."""
    raw = conn.connection.driver_connection
    attached = conn.info.setdefault(_ATTACHED, {})
    try:
        if attached.get(schema) != path:
            if schema in attached:  # another file under that name (not done by the ingest): not taken
                return False
            raw.execute(f"ATTACH DATABASE ? AS {schema}", (path,))
            attached[schema] = path
        first, last = raw.execute(f"SELECT min(rowid), max(rowid) FROM {schema}.rows").fetchone()
    except sqlite3.Error:
        return False
    return (first, last) == ((1, count) if count else (None, None))


def insert(conn: Connection, table: str, columns: tuple[str, ...], same: dict[str, object],
           schema: str = SCHEMA) -> int:
    """Copy the rows (`columns`) of the file attached as `schema` into `table`, in the transaction the connection is
    in, with the values every row has (`same`, by column: the caller's own, not the file's); returns how many."""
    names = ", ".join((*same, *columns))
    values = ", ".join(("?",) * len(same) + columns)
    return conn.connection.driver_connection.execute(
        f"INSERT INTO {table} ({names}) SELECT {values} FROM {schema}.rows ORDER BY rowid",
        tuple(same.values())).rowcount


def copy(conn: Connection, table: str, columns: tuple[str, ...], same: dict[str, object], count: int,
         schema: str = SCHEMA) -> None:
    """`insert`, raising HistoryError when it copied other than the `count` rows `attach` found."""
    if insert(conn, table, columns, same, schema) != count:
        raise HistoryError(f"the first snapshot's {table} rows were not all copied from the worker's file")


@contextmanager
def detached(conn: Connection) -> Iterator[None]:
    """Around an ingest's transaction: the files `attach` attached are detached after it, and removed. A
    connection that cannot detach one is invalidated (closed, not pooled)."""
    try:
        yield
    finally:
        attached = conn.info.pop(_ATTACHED, None) or {}
        try:
            for schema in attached:
                conn.connection.driver_connection.execute(f"DETACH DATABASE {schema}")
        except Exception:  # noqa: BLE001 -- whatever it is, the connection must not go back to the pool attached
            try:
                conn.invalidate()
            except Exception:  # noqa: BLE001 -- not to hide the error the transaction may be raising
                pass
        for path in attached.values():
            remove(path)


def remove(path: str | None) -> None:
    """Remove a rows file's directory, the activations' file with it (`create`'s: only such a directory)."""
    if path is not None and os.path.basename(os.path.dirname(path)).startswith(PREFIX):
        shutil.rmtree(os.path.dirname(path), ignore_errors=True)
