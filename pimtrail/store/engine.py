"""Opening the history database: URL resolution, SQLite pragmas, PostgreSQL checks, migrations.

Both backends get the same schema from the same migrations. Dialect differences the rest of the
store needs (per-tenant write locks, byte-order sorting) are small helpers at the end of this file.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import ColumnElement, create_engine, event, inspect, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from pimtrail.errors import HistoryError

DEFAULT_DB = "pimtrail.db"
ENV_DB = "PIMTRAIL_DB"
# Namespace (first key) of pimtrail's PostgreSQL advisory locks, so they cannot collide with the
# locks of other applications sharing the database: "pimt" as a 32-bit integer.
LOCK_NAMESPACE = 0x70696D74

# libpq also takes a password from the query (`?password=`); sslpassword unlocks a client key
_SECRET_PARAMETERS = ("password", "sslpassword")


def shown_url(url: URL) -> str:
    """A database URL as pimtrail prints it: `***` for the password in its user part and in its query, and for a
    host that holds an "@" (a password with an "@" left unencoded, so the URL's host begins with the rest of it)."""
    query = {k: "***" if k.lower() in _SECRET_PARAMETERS else v for k, v in url.query.items()}
    url = url.set(query=query, host="***" if url.host and "@" in url.host else url.host)
    return url.render_as_string(hide_password=True).replace("%2A%2A%2A", "***")


def scrubbed(text: str, url: URL) -> str:
    """`text` (a driver's message about `url`) without the secrets `shown_url` hides, should it repeat them."""
    secrets = [url.password, url.host if url.host and "@" in url.host else None]
    for key, value in url.query.items():  # a parameter given twice has a tuple of values
        if key.lower() in _SECRET_PARAMETERS:
            secrets += [value] if isinstance(value, str) else list(value)
    return _masked(text, secrets)


def _masked(text: str, secrets: list) -> str:
    """`text` with each secret of four characters or more as `***` (a shorter one would mask letters of the
    message, and gives little away)."""
    for secret in secrets:
        if secret and len(str(secret)) >= 4:
            text = text.replace(str(secret), "***")
    return text


def resolve_url(db: str | None) -> str:
    """`--db` value (or $PIMTRAIL_DB, or ./pimtrail.db) -> SQLAlchemy URL. A plain path means SQLite."""
    value = db or os.environ.get(ENV_DB) or DEFAULT_DB
    if "://" in value:
        # A bare postgresql:// URL would pick psycopg2, which pimtrail does not install; psycopg 3 it is.
        for prefix in ("postgresql://", "postgres://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix):]
        return value
    return f"sqlite:///{Path(value).expanduser().resolve()}"


def sqlite_path(url: str) -> Path | None:
    try:
        parsed = make_url(url)
    except (ValueError, ArgumentError):  # a malformed URL: open_engine reports it
        return None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return Path(parsed.database)
    return None


BUSY_MS = 30000  # how long a SQLite connection waits for another's lock
# bytes a page of a new SQLite history (SQLite's default is 4096). A file keeps the size it was made with: the
# pragma changes nothing in a file that holds a table. The large first snapshot with 16 kB pages: its commit
# 0.75 -> 0.5 s, its fact rows' inserts ~0.3 s less, the file 432 -> 412 MB; a daily ingest writes whole pages to
# the WAL, 4 times larger, and was no slower (docs/benchmarks.md, "First ingest, round 16"). The header written
# when a new file goes to WAL fixes its page size
PAGE_SIZE = 16384


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={BUSY_MS}")
    cursor.execute(f"PRAGMA page_size={PAGE_SIZE}")  # before WAL: switching a new file to it writes its header
    # WAL lets readers (check, pack) work while a snapshot is written; NORMAL is safe under WAL.
    _journal(cursor, "WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _journal(cursor, mode: str) -> str:
    """PRAGMA journal_mode; the mode the file is in after it. Switching to or from WAL needs an exclusive lock, and
    SQLite answers "database is locked" at once, without waiting, when another connection (a second collector
    creating the same file) holds one: tried again until BUSY_MS."""
    import sqlite3
    import time

    deadline = time.monotonic() + BUSY_MS / 1000
    while True:
        try:
            return str(cursor.execute(f"PRAGMA journal_mode={mode}").fetchone()[0]).lower()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def open_engine(db: str | None, *, create: bool) -> Engine:
    """Open (and with `create`, create and migrate) the history. Without `create` a missing
    SQLite file is an error rather than a new empty database."""
    url = resolve_url(db)
    path = sqlite_path(url)
    if path is not None and not path.exists():
        if not create:
            raise HistoryError(
                f"{path}: no history database here (run `pimtrail collect` first, or pass --db / set {ENV_DB})")
        if not path.parent.exists():
            raise HistoryError(f"{path}: folder {path.parent} does not exist (create it or pass another --db)")
    try:
        parsed = make_url(url)
        # PostgreSQL: talk UTF8 whatever PGCLIENTENCODING says, so text arrives as text (a SQL_ASCII
        # database would hand psycopg bytes) and `_check_postgresql` gets to say what is wrong.
        connect_args = {"client_encoding": "utf8"} if parsed.get_backend_name() == "postgresql" else {}
        engine = create_engine(parsed, connect_args=connect_args)
    except Exception as exc:  # bad URL, missing driver
        shown = url.split("://")[0] + "://..." if "://" in url else url  # never echo a password
        # the parser's words may quote the user part (user and password), which it could not read apart
        reason = _masked(str(exc), url.split("://", 1)[-1].rpartition("@")[0].replace("@", ":").split(":"))
        raise HistoryError(f"--db {shown}: cannot open database ({reason})") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        if engine.dialect.name == "postgresql":
            _check_postgresql(engine)
        migrate(engine, create=create)
    except DBAPIError as exc:  # server down, wrong password, no such database, no privilege
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        raise HistoryError(f"{shown_url(engine.url)}: cannot use this database ({scrubbed(reason, engine.url)})") \
            from exc
    except BaseException:
        engine.dispose()
        raise
    return engine


def _check_postgresql(engine: Engine) -> None:
    """Fact and event data are hashed as the text the database returns; a database that is not
    UTF8 (SQL_ASCII, LATIN1) would hand back other bytes, or refuse characters, so refuse it."""
    with engine.connect() as conn:
        encoding = conn.exec_driver_sql("SHOW server_encoding").scalar()
    if str(encoding).upper() not in ("UTF8", "UTF-8"):
        raise HistoryError(f"{shown_url(engine.url)}: database encoding is {encoding}, pimtrail needs UTF8 "
                           "(CREATE DATABASE ... ENCODING 'UTF8' TEMPLATE template0; see docs/postgresql.md)")


def migrate(engine: Engine, *, create: bool) -> None:
    """Bring the schema to the newest migration. Read-only opens only check it is there."""
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
        if current == head:
            return
        if not create:
            if current is None and not inspect(conn).get_table_names():
                raise HistoryError(f"{shown_url(engine.url)}: empty database (run `pimtrail collect` first)")
        if current is None and inspect(conn).has_table("snapshot"):
            raise HistoryError(f"{shown_url(engine.url)}: tables exist but carry no schema version; "
                               "not a pimtrail history")
    with engine.begin() as conn:
        # Two collectors opening a new database at once: the second waits here, then finds the
        # schema built (DDL is transactional on both) and Alembic has nothing left to do.
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:ns, 0)"), {"ns": LOCK_NAMESPACE})
        elif conn.dialect.name == "sqlite":  # the driver would run the DDL outside any transaction
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


INGEST_CACHE_KB = 256 * 1024  # SQLite page cache while a snapshot is written


@contextmanager
def ingest_cache(conn: Connection) -> Iterator[None]:
    """A larger SQLite page cache while a snapshot is written, then the default again (readers such as
    the pack have their memory targets). A first large snapshot updates ~550 MB of table and index pages;
    with the default 2 MB cache each index insert reads its page back from the OS: 8.6 s of system time,
    4.0 s with 256 MB (docs/benchmarks.md, round 6)."""
    if conn.dialect.name != "sqlite":
        yield
        return
    raw = conn.connection.driver_connection  # the driver's own: no transaction begun for a PRAGMA
    before = raw.execute("PRAGMA cache_size").fetchone()[0]
    raw.execute(f"PRAGMA cache_size = -{INGEST_CACHE_KB}")
    try:
        yield
    finally:
        raw.execute(f"PRAGMA cache_size = {int(before)}")


@contextmanager
def new_file_journal(conn: Connection) -> Iterator[None]:
    """A new SQLite history's first snapshot written through a rollback journal, then WAL again (outside any
    transaction). WAL writes every page twice, to the log and at the checkpoint into the file; a rollback journal
    keeps a copy of only the pages the file held before the transaction, and a history with no snapshot holds
    next to none: the large tenant's 432 MB are written once (docs/benchmarks.md, "First ingest, round 12").
    synchronous=FULL meanwhile: NORMAL is safe from power loss under WAL only. While it is written, other
    connections wait (up to BUSY_MS), readers too: under WAL they would read the empty history meanwhile. When one
    has the file open already, the switch does not happen and nothing changes. Not for PostgreSQL, nor for a file
    holding a snapshot."""
    import sqlite3

    from pimtrail.store.driver import raw_rows

    if conn.dialect.name != "sqlite" or raw_rows(conn, "SELECT 1 FROM snapshot LIMIT 1", ()):
        yield
        return
    try:
        switched = raw_rows(conn, "PRAGMA journal_mode=DELETE", ())[0][0].lower() == "delete"
    except sqlite3.OperationalError:  # another connection holds the file
        switched = False
    if not switched:
        yield
        return
    raw_rows(conn, "PRAGMA synchronous=FULL", ())
    try:
        yield
    finally:
        cursor = conn.connection.driver_connection.cursor()
        try:
            _journal(cursor, "WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error:  # locked past BUSY_MS, or the connection lost: what is written stands (or was
            pass  # rolled back), and the next connection opened switches the file to WAL (`_sqlite_pragmas`)
        finally:
            cursor.close()


def read_consistently(conn: Connection) -> Connection:
    """One snapshot of the database for every statement `conn` runs until it closes. PostgreSQL: REPEATABLE
    READ. SQLite (WAL): a read transaction, which the driver would not open for SELECTs by itself."""
    if conn.dialect.name == "postgresql":
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
    elif conn.dialect.name == "sqlite" and not conn.connection.dbapi_connection.in_transaction:
        conn.exec_driver_sql("BEGIN")
    return conn


def lock_tenant(conn: Connection, tenant: str) -> None:
    """Serialise the writers of one tenant's chain until the transaction ends; call it first.

    Each snapshot builds on the tenant's newest one (its seq, state digest and chain hash), so two
    collectors of the same tenant must not both read the same newest snapshot: the second waits
    here and then builds on the first's. PostgreSQL: an advisory lock per tenant, so collectors of
    different tenants still write at once. SQLite has one writer at a time anyway, but takes its
    write lock only at the first write, after that read: BEGIN IMMEDIATE takes it now."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:ns, hashtext(:tenant))"),
                     {"ns": LOCK_NAMESPACE, "tenant": tenant})
    elif conn.dialect.name == "sqlite" and not conn.connection.dbapi_connection.in_transaction:
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # waits up to busy_timeout for another writer


def byte_order(column: ColumnElement, dialect: str) -> ColumnElement:
    """Sort strings by code point on every backend. SQLite compares bytes; PostgreSQL uses the
    database's collation (en_US ignores case and punctuation), which would reorder keys and with
    them listings and reports, so the same history would read differently on the two."""
    return column.collate("C") if dialect == "postgresql" else column
