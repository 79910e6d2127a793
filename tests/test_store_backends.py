"""The same history on SQLite and PostgreSQL: end to end, and with collectors writing at once."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest

import exports
from pimtrail.collectors.exportdir import read_export
from pimtrail.errors import InputError
from pimtrail.store import HistoryStore
from pimtrail.store import engine as engine_module
from pimtrail.store.engine import lock_tenant


def check_json(cli, db: str, config: Path) -> dict:
    result = cli("check", "--db", db, "--config", config, "--format", "json", "--fail-on", "never")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def listing(cli, db: str) -> list[dict]:
    result = cli("snapshots", "--db", db, "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    for row in rows:
        row.pop("ingested_at")  # the only thing that may differ: when it was written
    return rows


@pytest.fixture(scope="module")
def sample_config(tmp_path_factory) -> Path:
    from pimtrail.demo import sample_config_text

    path = tmp_path_factory.mktemp("config") / "pimtrail.toml"
    path.write_text(sample_config_text())
    return path


@pytest.fixture(scope="module")
def sqlite_reference(tmp_path_factory, sample_config):
    """The sample quarter in SQLite: what every backend must reproduce."""
    from conftest import Cli

    cli, db = Cli(), str(tmp_path_factory.mktemp("reference") / "reference.db")
    assert cli("collect", "--source", "sample", "--db", db).exit_code == 0
    return listing(cli, db), check_json(cli, db, sample_config)


def test_sample_quarter_end_to_end(db_url, cli, sample_config, sqlite_reference):
    collected = cli("collect", "--source", "sample", "--db", db_url)
    assert collected.exit_code == 0, collected.output
    verified = cli("verify", "--db", db_url)
    assert verified.exit_code == 0 and "14 snapshot(s)" in verified.output, verified.output
    snapshots, results = sqlite_reference
    # the same chain hashes: every row, timestamp and JSON text came back byte for byte
    assert listing(cli, db_url) == snapshots
    # the same verdicts, findings and their order (string sorting does not follow the collation)
    assert check_json(cli, db_url, sample_config) == results


# -- collectors writing at once --------------------------------------------------------------

def tenant_exports(export, tenant: str, weeks: int) -> list[Path]:
    def retarget(data):
        data["_manifest"]["tenant_id"] = tenant
        data["organization"]["value"][0]["id"] = tenant

    start = datetime(2026, 7, 1, 6)
    return [export((start + timedelta(weeks=i)).strftime("%Y-%m-%dT%H:%M:%SZ"), retarget)
            for i in range(weeks)]


def run_at_once(jobs: list) -> list[list]:
    """Run each job (a list of callables) in its own thread, started together; per job, what
    each call returned or raised."""
    barrier = threading.Barrier(len(jobs))
    outcomes: list[list] = [[] for _ in jobs]

    def worker(i: int) -> None:
        barrier.wait()
        for call in jobs[i]:
            try:
                outcomes[i].append(call())
            except Exception as exc:  # noqa: BLE001 - recorded and asserted on below
                outcomes[i].append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a collector hung"
    return outcomes


def collector(db: str, paths: list[Path]) -> list:
    """One collector process's work: its own connection, one ingest per export."""
    store = HistoryStore.open(db, create=True)

    def ingest(path: Path):
        return lambda: store.ingest(read_export(path))

    return [ingest(p) for p in paths] + [store.close]


TENANTS = [f"{n}1111111-2222-4333-8444-555555555555" for n in (1, 2, 3)]


def test_collectors_of_different_tenants_write_at_once(db_url, export):
    HistoryStore.open(db_url, create=True).close()
    outcomes = run_at_once([collector(db_url, tenant_exports(export, t, 4)) for t in TENANTS])
    assert not [o for per_job in outcomes for o in per_job if isinstance(o, Exception)]
    with HistoryStore.open(db_url) as store:
        assert store.tenants() == sorted(TENANTS)
        for tenant in TENANTS:
            assert [s.seq for s in store.snapshots(tenant)] == [1, 2, 3, 4]
        report = store.verify()
    assert report.ok and len(report.checks) == 12


def test_two_collectors_of_one_tenant_do_not_break_the_chain(db_url, export):
    """Both collect the same four exports: every snapshot is stored once, in order; the loser of
    each race is told the snapshot is not newer than what is stored (exit 2), nothing worse."""
    paths = tenant_exports(export, TENANTS[0], 4)
    HistoryStore.open(db_url, create=True).close()
    outcomes = run_at_once([collector(db_url, paths), collector(db_url, paths)])
    results = [o for per_job in outcomes for o in per_job[:-1]]
    unexpected = [o for o in results if isinstance(o, Exception) and not isinstance(o, InputError)]
    assert not unexpected, unexpected
    stored = [o for o in results if not isinstance(o, Exception)]
    assert sorted(s.seq for s in stored) == [1, 2, 3, 4]
    with HistoryStore.open(db_url) as store:
        snaps = store.snapshots()
        report = store.verify()
    assert [s.seq for s in snaps] == [1, 2, 3, 4]
    assert [s.collected_at for s in snaps] == sorted({s.collected_at for s in snaps})
    assert report.ok, report.first_broken


def test_a_tenant_lock_holds_back_only_that_tenant(pg_url, export):
    """PostgreSQL: while a collector of tenant 1 is mid-ingest (its lock held), tenant 2's ingest
    completes and tenant 1's second collector waits for the first to finish."""
    one, two = (read_export(tenant_exports(export, t, 1)[0]) for t in TENANTS[:2])
    with HistoryStore.open(pg_url, create=True) as holder, HistoryStore.open(pg_url) as a, \
            HistoryStore.open(pg_url) as b:
        done: dict[str, object] = {}
        with holder.engine.begin() as conn:
            lock_tenant(conn, TENANTS[0])
            other = threading.Thread(target=lambda: done.setdefault("two", b.ingest(two)))
            same = threading.Thread(target=lambda: done.setdefault("one", a.ingest(one)))
            other.start(), same.start()
            other.join(30)
            assert "two" in done, "a different tenant's ingest waited for the lock"
            same.join(1)
            assert same.is_alive() and "one" not in done, "the same tenant's ingest did not wait"
        same.join(30)
        assert "one" in done
        assert holder.verify().ok


def test_listings_sort_by_code_point_whatever_the_collation(db_url):
    """Keys that a linguistic collation (en-US: case and punctuation ignored) would reorder, such
    as FIDO2 key ids in base64, come back in the same order from both backends."""
    from pimtrail.model import CollectedSnapshot, FactRecord

    keys = ["user|a-b", "user|B", "user|ab", "user|a", "user|_z", "user|Ab"]
    snap = CollectedSnapshot(TENANTS[0], datetime(2026, 7, 1, 6), "export", "test",
                             facts=[FactRecord("fido2_key", k, {"key": k}) for k in keys])
    with HistoryStore.open(db_url, create=True) as store:
        store.ingest(snap)
        assert [f["_key"] for f in store.facts(TENANTS[0], "fido2_key", 1)] == sorted(keys)


# -- the roles docs/postgresql.md tells administrators to create ------------------------------

def doc_sql(containing: str) -> list[str]:
    """The statements of the ```sql block in docs/postgresql.md that mentions `containing`."""
    doc = (Path(__file__).parents[1] / "docs" / "postgresql.md").read_text()
    block = next(b.split("```", 1)[0] for b in doc.split("```sql\n")[1:] if containing in b.split("```", 1)[0])
    return [s.strip() for s in block.split(";") if s.strip()]


def test_documented_roles_can_do_what_the_docs_promise(postgres_server, export, cli):
    """The owner role builds and writes the history; the reader role lists, verifies and checks
    (storing results) but cannot write snapshots. Names are made unique for the shared test server:
    the role and database `pimtrail` become pt_<n>, `pimtrail_reader` pt_<n>_reader."""
    import re

    import pgserver

    name = pgserver.new_database(postgres_server)
    postgres_server.admin(f'DROP DATABASE "{name}"')  # only its unique name is wanted: the docs create it

    def rename(sql: str) -> str:
        return re.sub(r"\bpimtrail\b", name, sql.replace("pimtrail_reader", f"{name}_reader"))

    try:
        for statement in doc_sql("CREATE DATABASE"):
            postgres_server.admin(rename(statement))
        owner = postgres_server.url(name).replace("postgres@", f"{name}@")
        with HistoryStore.open(owner, create=True) as store:
            store.ingest(read_export(export()))
        for statement in doc_sql("pimtrail_reader"):
            postgres_server.admin(rename(statement), database=name)
        reader = postgres_server.url(name).replace("postgres@", f"{name}_reader@")
        assert cli("snapshots", "--db", reader).exit_code == 0
        assert cli("verify", "--db", reader).exit_code == 0
        checked = cli("check", "--db", reader, "--fail-on", "never")
        assert checked.exit_code == 0, checked.output
        with HistoryStore.open(reader) as store, pytest.raises(Exception, match="permission denied"):
            store.ingest(read_export(export("2026-07-08T06:00:00Z")))
        with HistoryStore.open(owner) as store:
            assert len(store.control_posture(exports.TENANT, "pimtrail")) == 1  # the reader's check was stored
    finally:
        postgres_server.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        postgres_server.admin(f'DROP ROLE IF EXISTS "{name}_reader"')
        postgres_server.admin(f'DROP ROLE IF EXISTS "{name}"')


def test_a_database_that_is_not_utf8_is_refused(postgres_server, cli):
    """Data is hashed as the text the database returns: SQL_ASCII or LATIN1 would change it."""
    import pgserver

    name = pgserver.new_database(postgres_server)
    postgres_server.admin(f'DROP DATABASE "{name}"')
    postgres_server.admin(f"CREATE DATABASE \"{name}\" ENCODING 'SQL_ASCII' TEMPLATE template0 "
                          "LOCALE_PROVIDER libc LC_COLLATE 'C' LC_CTYPE 'C'")
    try:
        result = cli("collect", "--source", "sample", "--db", postgres_server.url(name))
        assert result.exit_code == 2
        assert "database encoding is SQL_ASCII, pimtrail needs UTF8" in result.output
    finally:
        pgserver.drop_database(postgres_server, name)


def test_collectors_creating_a_new_history_at_once(db_url, export):
    """Both run the migrations on an empty database: one builds the schema, the other waits."""
    def open_and_ingest(path: Path):
        with HistoryStore.open(db_url, create=True) as store:
            return store.ingest(read_export(path))

    paths = [tenant_exports(export, t, 1)[0] for t in TENANTS[:2]]
    outcomes = run_at_once([[lambda p=p: open_and_ingest(p)] for p in paths])
    assert not [o for per_job in outcomes for o in per_job if isinstance(o, Exception)], outcomes
    with HistoryStore.open(db_url) as store:
        assert store.tenants() == sorted(TENANTS[:2]) and store.verify().ok


def test_an_ingest_leaves_the_page_cache_as_it_was(tmp_path, export):
    """A snapshot is written with a larger SQLite page cache (`engine.ingest_cache`); the connection goes back
    to the pool with the default, for readers with memory targets."""
    with HistoryStore.open(str(tmp_path / "h.db"), create=True) as store:
        with store.engine.connect() as conn:
            default = conn.exec_driver_sql("PRAGMA cache_size").scalar()
        store.ingest(read_export(export("2026-07-01T06:00:00Z")))
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == default
    assert default != -engine_module.INGEST_CACHE_KB
