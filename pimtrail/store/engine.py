"""Opening the history database: URL resolution, SQLite pragmas, migrations."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import Engine, make_url

from pimtrail.errors import HistoryError

DEFAULT_DB = "pimtrail.db"
ENV_DB = "PIMTRAIL_DB"


def resolve_url(db: str | None) -> str:
    """`--db` value (or $PIMTRAIL_DB, or ./pimtrail.db) -> SQLAlchemy URL. A plain path means SQLite."""
    value = db or os.environ.get(ENV_DB) or DEFAULT_DB
    if "://" in value:
        return value
    return f"sqlite:///{Path(value).expanduser().resolve()}"


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return Path(parsed.database)
    return None


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (check, pack) work while a snapshot is written; NORMAL is safe under WAL.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


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
        engine = create_engine(url)
    except Exception as exc:  # bad URL, missing driver
        raise HistoryError(f"--db {db}: cannot open database ({exc})") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    migrate(engine, create=create)
    return engine


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
                raise HistoryError(f"{engine.url}: empty database (run `pimtrail collect` first)")
        if current is None and inspect(conn).has_table("snapshot"):
            raise HistoryError(f"{engine.url}: tables exist but carry no schema version; not a pimtrail history")
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
