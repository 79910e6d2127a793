"""Collection use cases behind `pimtrail collect` and `pimtrail demo` (the CLI stays thin)."""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from pimtrail.errors import HistoryError
from pimtrail.model import CollectedSnapshot
from pimtrail.store import HistoryStore, SnapshotInfo


@dataclass
class Collected:
    snapshot: SnapshotInfo | None  # None when the history already held it
    source_ref: str
    status: str
    gaps: list[str]
    skipped_reason: str | None = None


def read_exports(paths: list[Path], tenant: str | None = None, db: str | None = None,
                 source: str | None = None) -> list[CollectedSnapshot]:
    """Read and check every export before anything is written. One export into an existing history (a
    daily collection) is read against it: the elements its newest snapshot held are not parsed again; into a new
    SQLite history, with a worker making its audit events ready (`_read_first`). `source`: the snapshots' (as
    `read_export` takes it; "graph" for a live collection's export read back)."""
    from pimtrail.collectors.exportdir import read_export
    from pimtrail.store.engine import resolve_url, sqlite_path

    file = sqlite_path(resolve_url(db))
    if len(paths) == 1 and (file is None or file.exists()):
        try:
            store = HistoryStore.open(db)
        except HistoryError:  # no history yet (an empty PostgreSQL database): nothing to read against
            store = None
        if store is not None:
            with store:
                return [read_against(store, paths[0], tenant, source)]
    if len(paths) == 1 and file is not None:  # a new SQLite history: this is its tenant's first snapshot
        return [_read_first(paths[0], tenant, True, source=source)]
    return [read_export(path, tenant=tenant, source=source) for path in paths]


def read_against(store: HistoryStore, path: Path, tenant: str | None = None,
                 source: str | None = None) -> CollectedSnapshot:
    """Read an export with what the history holds of its tenant's newest snapshot (`HistoryStore.known`)."""
    from pimtrail.collectors.exportdir import read_export, read_manifest

    manifest = read_manifest(path)
    tenant_id = manifest["tenant_id"].lower()
    if not store.has_snapshots(tenant_id):
        return _read_first(path, tenant, store.engine.dialect.name == "sqlite", manifest, source)
    return read_export(path, tenant=tenant, source=source, known=store.known(tenant_id))


def _read_first(path: Path, tenant: str | None, sqlite: bool, manifest: dict | None = None,
                source: str | None = None) -> CollectedSnapshot:
    """Read the export of a tenant's first snapshot while a worker makes its audit events ready for the ingest
    (`pimtrail.store.appending.FirstEvents`), when its audit log is large enough to be worth one. `manifest`:
    the export's, when the caller read it already."""
    from pimtrail.collectors.datasets import AUDIT_DATASET
    from pimtrail.collectors.exportdir import audit_pages, read_export, read_manifest
    from pimtrail.store.appending import FIRST_WORKER_BYTES, FirstEvents

    manifest = manifest or read_manifest(path)
    entry = manifest["datasets"].get(AUDIT_DATASET)
    file = path / str(entry["file"]) if isinstance(entry, dict) and "file" in entry else None
    job = None
    if file is not None and file.is_file() and path.resolve() in file.resolve().parents \
            and file.stat().st_size >= FIRST_WORKER_BYTES:
        # this process grows to ~10 times the export while the worker works (the large tenant's 364 MB: 3.6 GB)
        export = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
        job = FirstEvents.start(audit_pages, file, manifest["tenant_id"].lower(), sqlite, file.stat().st_size,
                                reserve=10 * export)
    try:  # the worker reads the audit log: here its pages are left to come, made of the worker's cut (`auditcut`)
        running = job is not None and job.running
        snap = read_export(path, tenant=tenant, source=source, defer=running, cut=job.cut if running else None)
    except BaseException:
        if job is not None:
            job.cancel()
        raise
    snap.first_events = job
    return snap


def check_before_creating(db: str | None, snaps: list[CollectedSnapshot]) -> None:
    """Audit entries and per-user facts are normalised when the store asks for them (only those it
    does not hold yet: `EventRecord`, `FactRecord`). A new SQLite history is created only from a fully
    checked export, so here they are all normalised first: a bad entry then fails before any file
    exists. (Into an existing history a bad entry fails inside the ingest transaction and leaves the
    history as it was.) The audit events of a first snapshot whose worker normalised them from the same pages
    (`FirstEvents.normalised`) are not normalised here again: ~3 s of the large tenant's `pimtrail collect`."""
    from pimtrail.store.engine import resolve_url, sqlite_path

    path = sqlite_path(resolve_url(db))
    if path is None or path.exists():
        return
    try:
        for snap in snaps:
            for record in snap.facts:  # first: its worker may still be reading the audit log
                record.data  # noqa: B018 -- builds and checks it
            for record in _unvouched(snap):
                record.data  # noqa: B018
    except BaseException:  # nothing is ingested: the workers are not needed
        for snap in snaps:
            if snap.first_events is not None:
                snap.first_events.cancel()
        raise


@contextmanager
def removed_if_failed(db: str | None) -> Iterator[None]:
    """Around opening and writing a history: a SQLite file that did not exist before and holds no snapshot when
    the block fails is removed (with its journal). `check_before_creating` finds most bad input before the file
    exists; what only the ingest finds (an identifier too long or holding NUL, `store.columns`) failed after it, and
    left an empty history behind."""
    from pimtrail.store.engine import resolve_url, sqlite_path

    path = sqlite_path(resolve_url(db))
    new = path is not None and not path.exists()
    try:
        yield
    except BaseException:
        if new and path is not None:
            _remove_empty(path)
        raise


def _remove_empty(path: Path) -> None:
    """Remove the SQLite file at `path` and its journal files when it holds no snapshot (another process may have
    written one meanwhile: then it stays)."""
    import sqlite3

    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            held = conn.execute("SELECT 1 FROM snapshot LIMIT 1").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:  # no snapshot table yet: made no further; unreadable or locked: left as it is
        held = None if "no such table" in str(exc) else True
    if held is None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def _unvouched(snap: CollectedSnapshot) -> list:
    """The snapshot's events but those its worker normalised from the same pages; a deferred audit log is read
    here when the worker did not."""
    from pimtrail.store.receipts import cut_pages

    job, remake = snap.first_events, snap.remake
    if job is not None and remake is not None:
        # the receipts' cut, which the ingest takes on, and the pages' sha256; the audit log's element digests as
        # the worker found them (`FirstEvents.digests`)
        snap.cuts = cut_pages(snap.pages, given=job.digests(snap))
        if job.normalised(snap, [c.sha for c in snap.cuts.get(remake.dataset, [])]):
            return snap.events[remake.count:]
    snap.undefer()
    return snap.events


def ingest_all(store: HistoryStore, snaps: list[CollectedSnapshot],
               progress: Callable[[Collected], None] | None = None) -> list[Collected]:
    """Ingest in time order; a snapshot whose time is already in the history is skipped, so
    running the same collection twice is harmless."""
    results = []
    existing = {(s.tenant_id, s.collected_at) for s in store.snapshots()}
    for snap in sorted(snaps, key=lambda s: s.collected_at):
        gaps = [c.dataset for c in snap.gaps]
        if (snap.tenant_id, snap.collected_at) in existing:
            if snap.first_events is not None:  # not ingested: its worker is not needed
                snap.first_events.cancel()
            outcome = Collected(None, snap.source_ref, snap.status, gaps, "already in the history")
        else:
            outcome = Collected(_ingest(store, snap), snap.source_ref, snap.status, gaps)
        results.append(outcome)
        if progress:
            progress(outcome)
    return results


def _ingest(store: HistoryStore, snap: CollectedSnapshot) -> SnapshotInfo:
    """`store.ingest`; a snapshot read against a newest snapshot that is no longer the newest (another
    collector wrote one meanwhile) is read again in full first."""
    from pimtrail.collectors.exportdir import read_export
    from pimtrail.store.receipts import Unrecognised

    try:
        return store.ingest(snap)
    except Unrecognised:
        if snap.based_on is None:
            raise
        again = read_export(snap.root or Path(snap.source_ref), tenant=snap.tenant_id, source=snap.source)
        again.source_ref = snap.source_ref  # a live collection's is Graph's address, not the folder it was read from
        return store.ingest(again)


def sample_snapshots(tenant: str | None = None) -> list[CollectedSnapshot]:
    """The sample quarter, built as export directories and read through the offline path."""
    from pimtrail.sample_data import build_exports

    with tempfile.TemporaryDirectory(prefix="pimtrail-sample-") as tmp:
        snaps = read_exports(build_exports(Path(tmp)), tenant=tenant)
    for snap in snaps:  # the temporary folder is gone: name the export by its date instead
        snap.source, snap.source_ref = "sample", f"sample:{snap.collected_at.date().isoformat()}"
    return snaps
