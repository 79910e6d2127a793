from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))  # tests/exports.py

import exports  # noqa: E402
from pimtrail.cli import app  # noqa: E402


class Cli:
    def __init__(self):
        self.runner = CliRunner()

    def __call__(self, *args: str):
        return self.runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def cli() -> Cli:
    return Cli()


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "history.db")


@pytest.fixture
def export(tmp_path: Path):
    """Write the tiny baseline export (optionally changed by `change`) and return its folder."""
    counter = iter(range(1000))

    def make(collected_at: str = "2026-07-01T06:00:00Z", change=None) -> Path:
        data = exports.baseline(collected_at)
        if change:
            change(data)
        return exports.write(tmp_path / f"export-{next(counter)}", data)

    return make


def file_digest(path: str | Path) -> str | None:
    path = Path(path)
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


@pytest.fixture(scope="session")
def sample_history(tmp_path_factory) -> str:
    """The sample quarter collected once into a database shared by read-only tests."""
    from pimtrail import collect
    from pimtrail.store import HistoryStore

    path = str(tmp_path_factory.mktemp("sample") / "sample.db")
    with HistoryStore.open(path, create=True) as store:
        collect.ingest_all(store, collect.sample_snapshots())
    return path


@pytest.fixture(scope="session")
def sample_config():
    """The sample tenant's configuration (its break-glass accounts)."""
    import tomllib
    from importlib import resources

    from pimtrail.config import parse_config

    text = (resources.files("pimtrail.sample_data") / "pimtrail.toml").read_text()
    return parse_config(tomllib.loads(text), "sample_data/pimtrail.toml")


def synthetic_history(tmp_path_factory, seed: int):
    """Three days of the small synthetic tenant (500 users, 60 privileged; 90 days of audit events)
    collected into a new database: (its path, the tenant's configuration)."""
    from pimtrail.collectors.exportdir import read_export
    from pimtrail.config import load_config
    from pimtrail.store import HistoryStore
    from pimtrail.synthetic import generate

    roots = generate(tmp_path_factory.mktemp("synthetic"), "small", days=3, churn=0.05, seed=seed)
    db = str(tmp_path_factory.mktemp("synthetic-db") / "h.db")
    with HistoryStore.open(db, create=True) as store:
        for root in roots:
            store.ingest(read_export(root))
    return db, load_config(roots[0].parent / "pimtrail.toml")


@pytest.fixture(scope="session")
def synthetic_small(tmp_path_factory):
    return synthetic_history(tmp_path_factory, 11)


# -- the store on SQLite and PostgreSQL --------------------------------------------------------
# `db_url` runs a test once per backend. The PostgreSQL server is started once per session from
# Debian's binaries (tests/pgserver.py); without them the PostgreSQL runs are skipped locally and
# fail in CI (CI=true), where `make test` has installed them.

@pytest.fixture(scope="session")
def postgres_server():
    import pgserver

    def unavailable(reason: str):
        if pgserver.in_ci():
            pytest.fail(f"PostgreSQL is required in CI: {reason}", pytrace=False)
        pytest.skip(f"PostgreSQL tests skipped: {reason}")

    try:
        import psycopg  # noqa: F401
    except ImportError:
        unavailable("the psycopg driver is not installed (pip install -e '.[dev]')")
    bindir = pgserver.find_bin()
    if bindir is None:
        unavailable("no server binaries in /usr/lib/postgresql/*/bin (apt-get install postgresql, or make test)")
    server = pgserver.start_server(bindir)
    yield server
    server.stop()


@pytest.fixture
def pg_url(request) -> str:
    """A new, empty PostgreSQL database for this test (a SQLAlchemy URL), dropped afterwards."""
    import pgserver

    server = request.getfixturevalue("postgres_server")
    name = pgserver.new_database(server)
    yield server.url(name)
    pgserver.drop_database(server, name)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, db) -> str:
    """A `--db` value for a new, empty history: a SQLite file path, or a PostgreSQL URL."""
    if request.param == "sqlite":
        return db
    return request.getfixturevalue("pg_url")
