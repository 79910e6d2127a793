"""The incremental audit window: a collection into a history reads the audit log from the previous
collection on (less an overlap), through the real SDK and the emulator, and the history ends up
holding the same events as full collections would give it."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from pimtrail.collectors.datasets import get
from pimtrail.collectors.exportdir import read_export
from pimtrail.collectors.graph import GraphSettings, HttpSettings, StaticTokenCredential, collect_graph
from pimtrail.collectors.graph import run as graph_run
from pimtrail.collectors.graph.window import (AUDIT_OVERLAP, audit_since, incremental,
                                              previous_audit_windows)
from pimtrail.emulator import Emulator, permission_missing

TOKEN = "window-token-3e9a"
T0 = datetime(2026, 7, 1, 6, 0)  # the synthetic tenant's first day (its clock, not today's)
CATEGORIES = "category eq 'RoleManagement' or category eq 'GroupManagement'"


@pytest.fixture(scope="module")
def days(tmp_path_factory) -> list[Path]:
    """Two daily exports of the small synthetic tenant (each with the whole 30-day audit window)."""
    from pimtrail.synthetic import Generator

    out = tmp_path_factory.mktemp("synthetic")
    gen = Generator("small", seed=3)
    first = gen.write(out / "day-0")
    gen.advance(0.01)
    return [first, gen.write(out / "day-1")]


def at(monkeypatch, when: datetime) -> None:
    """The collection's clock (`collected_at`): the synthetic day's, not today's."""
    monkeypatch.setattr(graph_run, "utcnow", lambda: when)


def collect(graph: Emulator, db: str | None, export: Path | None = None):
    previous = previous_audit_windows(db) if db else {}
    settings = GraphSettings(http=HttpSettings(base_url=graph.base_url, time_scale=0.001), previous_audit=previous)
    return collect_graph(StaticTokenCredential(TOKEN), settings, export=export)


def ingest(db: str, snap) -> None:
    from pimtrail import collect as service
    from pimtrail.store import HistoryStore

    with HistoryStore.open(db, create=True) as store:
        service.ingest_all(store, [snap])


def audit_times(root: Path) -> list[str]:
    pages = json.loads((root / "directory_audits.json").read_text())
    return [item["activityDateTime"] for page in pages for item in page["value"]]


def events(db: str) -> set[tuple]:
    """Every event (its data as text) with the snapshot that first brought it."""
    from pimtrail.store import HistoryStore
    from pimtrail.store.eventdata import Codec

    store = HistoryStore.open(db)
    try:
        with store.engine.connect() as conn:
            rows = conn.exec_driver_sql("select e.tenant_id, e.kind, e.source_id, e.occurred_at, e.zdata, s.seq "
                                        "from event e join snapshot s on s.id = e.first_seen").fetchall()
            codecs = {t: Codec.load(conn, t) for t in {r[0] for r in rows}}
    finally:
        store.close()
    return {(kind, source, at, codecs[t].decompress(z), seq) for t, kind, source, at, z, seq in rows}


def states(db: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute("select seq, fact_count, event_count, state_digest from snapshot order by seq").fetchall()


# -- the window ----------------------------------------------------------------------------------
def test_the_window_starts_an_overlap_before_the_previous_one_ended():
    now = datetime(2026, 7, 2, 6, 0)
    assert audit_since(None, now) is None  # no previous collection: the full window
    assert audit_since(T0, now) == T0 - AUDIT_OVERLAP == datetime(2026, 7, 1, 5, 0)
    assert audit_since(now - timedelta(days=29), now) == now - timedelta(days=29) - AUDIT_OVERLAP
    assert audit_since(now - timedelta(days=31), now) is None  # older than Entra keeps: read all it has
    assert audit_since(now + timedelta(hours=3), now) == now - AUDIT_OVERLAP  # a clock ahead of ours
    asked = incremental(get("directory_audits"), T0 - AUDIT_OVERLAP).request()
    assert asked == ("/v1.0/auditLogs/directoryAudits?$filter=(category eq 'RoleManagement' or "
                     "category eq 'GroupManagement') and activityDateTime ge 2026-07-01T05:00:00Z")
    assert get("directory_audits").request() == f"/v1.0/auditLogs/directoryAudits?$filter={CATEGORIES}"


# -- over HTTP, into a history -------------------------------------------------------------------
def test_a_second_collection_reads_only_the_audit_events_since_the_first(days, tmp_path, monkeypatch):
    db, full_db = str(tmp_path / "incremental.db"), str(tmp_path / "full.db")
    runs, logs = [], []
    for n, root in enumerate(days):
        at(monkeypatch, T0 + timedelta(days=n))
        with Emulator(root) as graph:
            runs.append(collect(graph, db, export=tmp_path / f"live-{n}"))
            logs.append(graph.requests("directory_audits"))
        ingest(db, runs[-1].snapshot)
    first, second = runs
    since = T0 - AUDIT_OVERLAP
    # 1st: no history yet, the whole window; 2nd: from the first's end, less the overlap.
    assert [r.query for r in logs[0][:1]] == [f"$filter={CATEGORIES}"]
    wanted = f"$filter=({CATEGORIES}) and activityDateTime ge 2026-07-01T05:00:00Z"
    assert {r.query.split("&$skiptoken=")[0] for r in logs[1]} == {wanted}  # every page keeps it
    assert first.outcomes["directory_audits"].since is None and second.outcomes["directory_audits"].since == since
    # The emulator answered only the events from then on, and the export holds just those.
    newer = [t for t in audit_times(days[1]) if t >= "2026-07-01T05:00:00Z"]
    assert 0 < len(newer) < len(audit_times(days[1])) / 10
    cov = {c.dataset: c for c in second.snapshot.coverage}["directory_audits"]
    assert (cov.status, cov.rows) == ("ok", len(newer))
    assert (cov.window_from, cov.window_to) == (since, T0 + timedelta(days=1))
    manifest = json.loads((tmp_path / "live-1" / "manifest.json").read_text())
    assert manifest["datasets"]["directory_audits"]["window"] == {"from": "2026-07-01T05:00:00Z",
                                                                  "to": "2026-07-02T06:00:00Z"}
    first_cov = {c.dataset: c for c in first.snapshot.coverage}["directory_audits"]
    assert (first_cov.window_from, first_cov.window_to) == (T0 - timedelta(days=30), T0)
    # Two full collections give the history the same events (each first seen in the same
    # snapshot) and the same state.
    for root in days:
        ingest(full_db, read_export(root))
    assert events(db) == events(full_db) and len(events(db)) > len(newer)
    assert states(db) == states(full_db)
    print(f"\nincremental audit window: {len(audit_times(days[1]))} events in the full window, "
          f"{len(newer)} read the second day; {len(events(db))} events in the history either way")


def test_full_audit_or_no_usable_previous_window_reads_the_whole_window(days, tmp_path, monkeypatch):
    db = str(tmp_path / "history.db")
    at(monkeypatch, T0)
    with Emulator(days[0]) as graph:
        graph.inject("directory_audits", permission_missing())
        refused = collect(graph, db)
    ingest(db, refused.snapshot)  # a snapshot whose audit coverage is an error
    assert previous_audit_windows(db) == {}
    at(monkeypatch, T0 + timedelta(days=1))
    with Emulator(days[1]) as graph:
        whole = collect(graph, db)
        asked = graph.requests("directory_audits")[0].query
    assert asked == f"$filter={CATEGORIES}" and whole.outcomes["directory_audits"].since is None
    ingest(db, whole.snapshot)
    tenant = whole.snapshot.tenant_id
    assert previous_audit_windows(db) == {tenant: T0 + timedelta(days=1)}
    # The newest ok window is used even when a later collection could not read the audit log.
    at(monkeypatch, T0 + timedelta(days=2))
    with Emulator(days[1]) as graph:
        graph.inject("directory_audits", permission_missing())
        ingest(db, collect(graph, db).snapshot)
    assert previous_audit_windows(db) == {tenant: T0 + timedelta(days=1)}
    # A previous window ended longer ago than Entra keeps events: the whole window.
    at(monkeypatch, T0 + timedelta(days=40))
    with Emulator(days[1]) as graph:
        assert collect(graph, db).outcomes["directory_audits"].since is None
    # A history of another tenant says nothing about this one.
    at(monkeypatch, T0 + timedelta(days=3))
    settings = GraphSettings(http=HttpSettings(time_scale=0.001), previous_audit={"someone-else": T0})
    with Emulator(days[1]) as graph:
        settings.http.base_url = graph.base_url
        assert collect_graph(StaticTokenCredential(TOKEN), settings).outcomes["directory_audits"].since is None


def test_no_history_file_is_created_to_look_for_a_window(tmp_path):
    missing = tmp_path / "none.db"
    assert previous_audit_windows(str(missing)) == {} and not missing.exists()


def test_the_cli_reads_incrementally_into_its_history_unless_told_full_audit(cli, days, tmp_path, monkeypatch):
    db = str(tmp_path / "history.db")
    monkeypatch.setenv("PIMTRAIL_GRAPH_TOKEN", TOKEN)
    asked = []
    for n, (root, extra) in enumerate(((days[0], ()), (days[1], ()), (days[1], ("--full-audit",)))):
        at(monkeypatch, T0 + timedelta(days=n))
        with Emulator(root) as graph:
            result = cli("collect", "--source", "graph", "--graph-url", graph.base_url, "--db", db, *extra)
            asked.append(graph.requests("directory_audits")[0].query)
        assert result.exit_code == 0, result.output
        if n == 1:
            assert "ok (since 2026-07-01T05:00:00Z: the previous collection)" in result.output
    assert asked == [f"$filter={CATEGORIES}",
                     f"$filter=({CATEGORIES}) and activityDateTime ge 2026-07-01T05:00:00Z",
                     f"$filter={CATEGORIES}"]
    listing = json.loads(cli("snapshots", "--db", db, "--format", "json").output)
    windows = [next(c["window"] for c in s["coverage"] if c["dataset"] == "directory_audits") for s in listing]
    assert windows == [{"from": "2026-06-01T06:00:00Z", "to": "2026-07-01T06:00:00Z"},
                       {"from": "2026-07-01T05:00:00Z", "to": "2026-07-02T06:00:00Z"},
                       {"from": "2026-06-03T06:00:00Z", "to": "2026-07-03T06:00:00Z"}]
