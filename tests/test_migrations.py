"""The Alembic migrations build exactly the schema the models declare."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from pimtrail.store import HistoryStore
from pimtrail.store.schema import metadata

HEAD = "0011"  # the newest revision


def test_migrated_schema_matches_the_models(db_url):
    with HistoryStore.open(db_url, create=True) as store:
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
            tables = set(inspect(conn).get_table_names())
            revision = MigrationContext.configure(conn).get_current_revision()
    assert diff == []
    assert {"snapshot", "coverage", "blob", "receipt_list", "item_pack", "fact", "event", "activation"} <= tables
    assert "receipt" not in tables
    assert revision == HEAD


def test_a_history_from_before_0003_keeps_its_receipts_and_verifies(db_url):
    """A history written with per-page receipts (revision 0002) is upgraded in place: its pages
    stay whole blobs in listings, the chain still verifies, and new snapshots continue it."""
    import zlib
    from datetime import datetime
    from pathlib import Path

    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, text

    import pimtrail.store.engine as store_engine
    from pimtrail.store import hashing
    from pimtrail.store.ingest import content_hash

    engine = create_engine(store_engine.resolve_url(db_url))
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(store_engine.__file__).parent / "migrations"))
    tenant, body = "t1", b'{"value":[{"id":"u1"}]}'
    sha = hashing.sha256_hex(body)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
        row = {"tenant_id": tenant, "seq": 1, "collected_at": datetime(2026, 7, 1, 6), "source": "export",
               "source_ref": "old", "tool_version": "0.1", "status": "complete", "fact_count": 0,
               "event_count": 0, "state_digest": hashing.GENESIS}
        receipt = {"dataset": "users", "page": 0, "parent": "", "request": "/v1.0/users", "sha256": sha}
        row["content_hash"] = content_hash(row, [], [receipt], hashing.events_digest([]))
        row["prev_hash"], row["chain_hash"] = hashing.GENESIS, hashing.chain(hashing.GENESIS, row["content_hash"])
        conn.execute(text("INSERT INTO snapshot (id, tenant_id, seq, collected_at, ingested_at, source, source_ref, "
                          "tool_version, status, fact_count, event_count, state_digest, content_hash, prev_hash, "
                          "chain_hash) VALUES (1, :tenant_id, :seq, :collected_at, :collected_at, :source, "
                          ":source_ref, :tool_version, :status, :fact_count, :event_count, :state_digest, "
                          ":content_hash, :prev_hash, :chain_hash)"), row)
        conn.execute(text("INSERT INTO blob (tenant_id, sha256, size, data) VALUES (:t, :s, :n, :d)"),
                     {"t": tenant, "s": sha, "n": len(body), "d": zlib.compress(body)})
        conn.execute(text("INSERT INTO receipt (tenant_id, snapshot_id, dataset, page, parent, request, sha256) "
                          "VALUES (:t, 1, 'users', 0, '', '/v1.0/users', :s)"), {"t": tenant, "s": sha})
    engine.dispose()
    with HistoryStore.open(db_url, create=True) as store:  # migrates to the newest revision
        report = store.verify()
        assert report.ok, report.first_broken
        assert store.receipt(tenant, sha) == body
        assert [r["sha256"] for r in store.receipts(tenant, 1)] == [sha]


def test_every_table_carries_the_tenant(db):
    for table in metadata.sorted_tables:
        assert "tenant_id" in table.c, table.name


def test_reopening_is_idempotent_and_uses_wal(db):
    HistoryStore.open(db, create=True).close()
    with HistoryStore.open(db) as store:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def _page_size(db: str) -> int:
    with HistoryStore.open(db) as store:
        with store.engine.connect() as conn:
            return conn.exec_driver_sql("PRAGMA page_size").scalar()


def test_a_new_history_has_large_pages_and_an_old_one_keeps_its_own(db, tmp_path, monkeypatch):
    """A new SQLite file is made with `PAGE_SIZE` pages (set before the file goes to WAL, which fixes them); a
    history made with SQLite's 4 kB pages keeps them when opened again, and takes snapshots."""
    import pimtrail.store.engine as store_engine
    from pimtrail import collect

    HistoryStore.open(db, create=True).close()
    assert _page_size(db) == store_engine.PAGE_SIZE == 16384
    old = str(tmp_path / "old.db")
    with monkeypatch.context() as patched:
        patched.setattr(store_engine, "PAGE_SIZE", 4096)
        HistoryStore.open(old, create=True).close()
    assert _page_size(old) == 4096
    with HistoryStore.open(old) as store:
        collect.ingest_all(store, collect.sample_snapshots()[:2])
        assert store.verify().ok
    assert _page_size(old) == 4096


def test_a_history_from_before_0004_gets_its_activations_and_verifies(db_url, tmp_path):
    """A history written before the `activation` table (revision 0003) is upgraded in place: the rows are
    folded from its stored audit events, equal to those ingest keeps, no snapshot hash changes, the chain
    still verifies and the trend counts the same weeks as from the events."""
    from datetime import timedelta

    from sqlalchemy import create_engine, select, text

    import pimtrail.store.engine as store_engine
    from pimtrail.collectors.exportdir import read_export
    from pimtrail.config import load_config
    from pimtrail.evidence.series import range_weeks, read_weeks
    from pimtrail.store.schema import snapshot_table
    from pimtrail.synthetic import generate

    roots = generate(tmp_path / "exports", "small", days=2, churn=0.05, seed=3)
    config = load_config(roots[0].parent / "pimtrail.toml")
    with HistoryStore.open(db_url, create=True) as store:
        for root in roots:
            store.ingest(read_export(root))
        with store.engine.connect() as conn:
            kept = activation_rows(conn)
            hashes = list(conn.execute(select(snapshot_table.c.content_hash, snapshot_table.c.chain_hash)))
    assert len(kept) > 100
    downgrade(db_url, "0004")
    engine = create_engine(store_engine.resolve_url(db_url))
    with engine.begin() as conn:  # the history as 0003 left it
        conn.execute(text("DROP TABLE activation"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0003'"))
    engine.dispose()
    with HistoryStore.open(db_url, create=True) as store:  # migrates to the newest revision
        with store.engine.connect() as conn:
            assert activation_rows(conn) == kept
            assert list(conn.execute(select(snapshot_table.c.content_hash, snapshot_table.c.chain_hash))) == hashes
            revision = MigrationContext.configure(conn).get_current_revision()
        assert revision == HEAD
        report = store.verify()
        assert report.ok, report.first_broken
        tenant = store.tenant(None)
        snaps = store.snapshots(tenant)
        start, end = snaps[0].collected_at, snaps[-1].collected_at + timedelta(seconds=1)
        assert range_weeks(store, tenant, config, start, end) == read_weeks(store, tenant, config, start, end) != []


def activation_rows(conn) -> list[tuple]:
    """The `activation` rows, each activation's stored join decompressed (its frame depends on the tenant's
    dictionary, which a migration through 0005 trains anew)."""
    from sqlalchemy import select

    from pimtrail.store.eventdata import Codec
    from pimtrail.store.schema import activation_table

    codecs: dict = {}
    rows = []
    for row in conn.execute(select(activation_table)).mappings():
        codec = codecs.get(row["tenant_id"]) or codecs.setdefault(row["tenant_id"], Codec.load(conn, row["tenant_id"]))
        rows.append(tuple(dict(row, joined=row["joined"] and codec.decompress(row["joined"])).values()))
    return sorted(rows)


def test_a_history_from_before_0007_gets_its_activations_joined_and_verifies(db_url, tmp_path):
    """A history whose `activation` rows have no stored join (revision 0006) is upgraded in place: each
    activation joined from all its stored events, as the ingest joins it (an activation whose events came in
    two collections included); it verifies, and a tampered join does not."""
    from sqlalchemy import create_engine, func, select, update

    import pimtrail.store.engine as store_engine
    from pimtrail.activations import join_activations
    from pimtrail.collectors.exportdir import read_export
    from pimtrail.store import joined
    from pimtrail.store.eventdata import Codec
    from pimtrail.store.schema import activation_table
    from pimtrail.synthetic import generate

    roots = generate(tmp_path / "exports", "small", days=3, churn=0.05, seed=5)
    with HistoryStore.open(db_url, create=True) as store:
        for root in roots:
            store.ingest(read_export(root))
        tenant = store.tenant(None)
        with store.engine.connect() as conn:
            kept = activation_rows(conn)
            codec = Codec.load(conn, tenant)
            stored = {c: joined.decode(c, codec.decompress(z)) for c, z in conn.execute(
                select(activation_table.c.correlation_id, activation_table.c.joined))}
        plain = {a.correlation_id: a for a in join_activations(store.events(tenant, "audit"))}
    assert len(kept) > 100 and stored == plain
    assert any(len(a.events) > 1 for a in plain.values())
    downgrade(db_url, "0006")
    with HistoryStore.open(db_url, create=True) as store:  # migrates to the newest revision
        with store.engine.connect() as conn:
            assert activation_rows(conn) == kept
        assert store.verify().ok
        engine = create_engine(store_engine.resolve_url(db_url))
        with engine.begin() as conn:  # one activation's join changed: its justification
            some = conn.execute(select(func.min(activation_table.c.correlation_id))).scalar()
            act = stored[some]
            act.justification = "edited"
            conn.execute(update(activation_table).where(activation_table.c.correlation_id == some)
                         .values(joined=codec.compress(joined.encode(act))))
        engine.dispose()
        report = store.verify()
    assert not report.ok and "1 activation row(s) differ" in " ".join(report.first_broken.problems)


def downgrade(db_url: str, revision: str) -> None:
    """Take a history back to an earlier revision with the migrations' own downgrades."""
    from pathlib import Path

    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine

    import pimtrail.store.engine as store_engine

    engine = create_engine(store_engine.resolve_url(db_url))
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(store_engine.__file__).parent / "migrations"))
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, revision)
    finally:
        engine.dispose()


def test_a_history_from_before_0005_gets_its_event_data_compressed_and_verifies(db_url, tmp_path):
    """A history whose events hold their JSON as text (revision 0004) is upgraded in place: each event's data
    becomes a zstd frame made with a dictionary trained from the tenant's events, reading gives the same
    events, no snapshot hash changes and the chain still verifies; new snapshots continue it."""
    from sqlalchemy import create_engine, func, inspect, select, text

    import pimtrail.store.engine as store_engine
    from pimtrail.collectors.exportdir import read_export
    from pimtrail.store import hashing
    from pimtrail.store.schema import event_dict_table, event_table, snapshot_table
    from pimtrail.synthetic import generate

    roots = generate(tmp_path / "exports", "small", days=3, churn=0.05, seed=5)
    with HistoryStore.open(db_url, create=True) as store:
        for root in roots[:2]:
            store.ingest(read_export(root))
        tenant = store.tenant(None)
        events = store.events(tenant, "audit")
        with store.engine.connect() as conn:
            hashes = list(conn.execute(select(snapshot_table.c.content_hash, snapshot_table.c.chain_hash)))
    assert len(events) > 1000
    downgrade(db_url, "0004")
    engine = create_engine(store_engine.resolve_url(db_url))
    with engine.connect() as conn:  # the history as 0004 left it: text and its digest
        assert "event_dict" not in inspect(conn).get_table_names()
        rows = conn.execute(text("SELECT data, digest FROM event")).all()
        assert len(rows) == len(events) and all(hashing.text_digest(d) == h for d, h in rows)
        text_bytes = sum(len(d.encode()) for d, _ in rows)
    engine.dispose()
    with HistoryStore.open(db_url, create=True) as store:  # migrates to the newest revision
        with store.engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == HEAD
            assert list(conn.execute(select(snapshot_table.c.content_hash, snapshot_table.c.chain_hash))) == hashes
            assert conn.execute(select(func.count()).select_from(event_dict_table)
                                .where(event_dict_table.c.tenant_id == tenant)).scalar() == 1
            stored = conn.execute(select(func.sum(func.length(event_table.c.zdata)))).scalar()
        assert stored < text_bytes / 4
        assert store.events(tenant, "audit") == events
        report = store.verify()
        assert report.ok, report.first_broken
        store.ingest(read_export(roots[2]))
        assert store.verify().ok
        assert len(store.events(tenant, "audit")) > len(events)
