"""Fixtures and helpers of the first-ingest tests (tests/test_first_ingest.py, tests/test_first_ingest_handover.py,
tests/test_deferred_audit.py): two days of the small tenant, the rows the events write, spies on the worker's parts
(registered in conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from pimtrail import collect
from pimtrail.collectors.exportdir import read_export
from pimtrail.model import EventRecord
from pimtrail.store import HistoryStore
from pimtrail.store import appending
from pimtrail.store.engine import resolve_url
from pimtrail.store.worker import Worker
from pimtrail.synthetic import generate

_ROWS = {  # what the events write, in a stable order, and each snapshot's hashes
    "event": "SELECT tenant_id, kind, source_id, occurred_at, principal_id, role_id, correlation_id, zdata, "
             "first_seen FROM event ORDER BY id",
    "activation": "SELECT tenant_id, correlation_id, first_at, last_at, at, asked, approved, denied, state, joined "
                  "FROM activation ORDER BY tenant_id, correlation_id",
    "event_dict": "SELECT tenant_id, dict_id, data FROM event_dict ORDER BY tenant_id, dict_id",
    "snapshot": "SELECT seq, event_count, fact_count, state_digest, content_hash, chain_hash FROM snapshot ORDER BY id",
}


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("first-ingest"), "small", days=2, churn=0.05)


def _rows(url: str) -> dict[str, list[tuple]]:
    engine = create_engine(resolve_url(url))
    try:
        with engine.connect() as conn:
            return {name: [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                           for row in conn.execute(text(sql))] for name, sql in _ROWS.items()}
    finally:
        engine.dispose()


class Given(list):
    """The rows each worker gave the ingest (None: no worker, or none the ingest takes); `raw`: each worker's first
    part, taken or not; `acts`: what each worker made after the rows taken (None: nothing, the ingest made it);
    `begun`: where each began, "reading" (sent the audit log's file) or "ingest"."""

    def __init__(self):
        super().__init__()
        self.raw, self.acts, self.begun = [], [], []


@pytest.fixture
def results(monkeypatch):
    given = Given()
    taken, made, part = appending.FirstEvents.rows, appending.FirstEvents.activations, Worker.part
    start = appending.FirstEvents.start.__func__

    def spy(self, page_shas, conn=None):
        value = taken(self, page_shas, conn)
        given.append(value)
        return value

    def spy_made(self, conn=None):
        value = made(self, conn)
        given.acts.append(value)
        return value

    def spy_raw(self):
        value = part(self)
        if not appending.is_cut(value):  # for the reader
            given.raw.append(value)
        return value

    def spy_start(cls, remake, source, *args, **kwargs):
        given.begun.append("reading" if isinstance(source, Path) else "ingest")
        return start(cls, remake, source, *args, **kwargs)

    monkeypatch.setattr(appending.FirstEvents, "rows", spy)
    monkeypatch.setattr(appending.FirstEvents, "activations", spy_made)
    monkeypatch.setattr(Worker, "part", spy_raw)
    monkeypatch.setattr(appending.FirstEvents, "start", classmethod(spy_start))
    return given


@pytest.fixture
def workers(monkeypatch):
    """Workers for the small tenant's first snapshots (made for large ones only)."""
    monkeypatch.setattr(appending, "FIRST_WORKER_MIN", 1)
    monkeypatch.setattr(appending, "FIRST_WORKER_BYTES", 0)


def _ingest(url: str, roots, *extra: EventRecord, early: bool = False) -> None:
    """Ingest the exports: read as `pimtrail collect --source DIR` reads them (`early`: the worker begins with
    the reading), or by `read_export` alone (a worker, if any, begins with the ingest)."""
    with HistoryStore.open(url, create=True) as store:
        for n, root in enumerate(roots):
            snap = collect.read_against(store, root) if early else read_export(root)
            if n == 0:
                snap.events.extend(extra)
            store.ingest(snap)
        assert store.verify().ok


def _same(url: str, plain: str) -> None:
    made_by_worker, made = _rows(url), _rows(plain)
    if not url.startswith("postgresql"):
        assert made_by_worker == made
    else:  # times come back as datetimes from PostgreSQL: the hashes and the frames are compared
        assert made_by_worker["snapshot"] == made["snapshot"]
        assert [r[7] for r in made_by_worker["event"]] == [r[7] for r in made["event"]]
        assert [r[8:] for r in made_by_worker["activation"]] == [r[8:] for r in made["activation"]]
        assert made_by_worker["event_dict"] == made["event_dict"]


@pytest.fixture(scope="module")
def plain(roots, tmp_path_factory):
    """The same exports ingested with no worker."""
    path = str(tmp_path_factory.mktemp("plain") / "plain.db")
    _ingest(path, roots)
    return path
