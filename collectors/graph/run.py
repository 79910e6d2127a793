"""One live collection, end to end: sign in, read every dataset, write the export, read it back.

The snapshot is built by `read_export` from the export directory the collection just wrote, so
a live collection and "export, then collect offline" give the same facts by construction — there
is one reader. Without `--export` the directory is temporary. The pages are written to it as
they arrive (writer.ExportWriter), so the collection holds only what later requests need.
"""

from __future__ import annotations

import asyncio
import gc
import tempfile
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator

from pimtrail.collectors.datasets import GUID
from pimtrail.collectors.exportdir import read_export
from pimtrail.model import CollectedSnapshot
from pimtrail.timeutil import utcnow

from .client import GraphHttp, HttpSettings, RetryRecord
from .collector import Collection, Outcome, Reporter, default_datasets, tenant_of
from .credentials import CredentialConfig, build_credential, close_credential
from .errors import GraphRunError
from .fetch import BATCH_LIMIT
from .window import audit_since
from .writer import ExportWriter



@dataclass
class GraphSettings:
    http: HttpSettings = field(default_factory=HttpSettings)
    batch_size: int = BATCH_LIMIT  # per-parent requests per $batch; 1 sends plain GETs
    also: tuple[str, ...] = ()  # datasets not read by default (see collector.default_datasets)
    # per tenant id: where the newest ok audit window in the history ended
    # (window.previous_audit_windows); the audit log is then read from there (less an overlap)
    # rather than whole. Empty: the whole retention window.
    previous_audit: dict[str, datetime] = field(default_factory=dict)
    # the break-glass accounts of pimtrail.toml (ids or UPNs): their sign-in activity is read as well
    break_glass: tuple[str, ...] = ()


@dataclass
class GraphRun:
    snapshot: CollectedSnapshot
    outcomes: dict[str, Outcome]
    retries: list[RetryRecord]
    export_dir: Path | None  # None when the export was temporary


async def _read(credential: Any, settings: GraphSettings, reporter: Reporter | None, owned: bool,
                sink: ExportWriter, collected_at: datetime | None = None,
                tenant: str | None = None) -> dict[str, Outcome]:
    http = GraphHttp(credential, settings.http)  # imports the SDK
    previous = {t.lower(): at for t, at in settings.previous_audit.items()}

    def since(tenant_id: str | None) -> datetime | None:
        return audit_since(previous.get(tenant_id or ""), collected_at) if collected_at else None

    try:
        with gc_for_collection():
            return await Collection(http, default_datasets(settings.also), settings.batch_size, reporter,
                                    sink, audit_since=since if previous else None,
                                    tenant=tenant.lower() if tenant and GUID.match(tenant) else None,
                                    break_glass=settings.break_glass).run()
    finally:
        await http.close()
        if owned:
            await close_credential(credential)


def _tenant_id(outcomes: dict[str, Outcome], asked: str | None) -> str:
    found = tenant_of(outcomes.get("organization"))
    if found:
        return found
    if asked and GUID.match(asked):
        return asked.lower()
    raise GraphRunError("cannot tell which tenant this is: /organization could not be read "
                        "(grant Organization.Read.All) and no tenant id (GUID) was given with --tenant")


@contextmanager
def gc_for_collection() -> Iterator[None]:
    """The cyclic garbage collector while Graph is read. It stays on: httpx keeps every response
    in a reference cycle (the response and its body stream), so with the collector off every
    body read - 400 MB on a large tenant - would stay in memory until it was switched back on
    (measured: 521 MB instead of 153 MB when the last request ends). What it costs is its full
    passes over the objects that exist before the collection (the SDK's modules, the caller's
    data); those are frozen (`gc.freeze`) for the collection and unfrozen after, unless the
    caller froze objects already. (The pages are no longer parsed into millions of objects, which
    is what made the collector cost a third of the time: docs/benchmarks.md.)"""
    mine = gc.get_freeze_count() == 0
    if mine:
        gc.freeze()
    try:
        yield
    finally:
        if mine:
            gc.unfreeze()


def collect_graph(credential: CredentialConfig | Any, settings: GraphSettings | None = None, *,
                  export: Path | None = None, tenant: str | None = None,
                  progress: Any = None, read_back: Callable[[Path, str | None], CollectedSnapshot] | None = None,
                  scratch: Path | None = None) -> GraphRun:
    """Collect one snapshot from Graph. `credential` is a CredentialConfig (built and closed
    here) or any credential object with `get_token` (the caller's to close).

    Each page goes to the export directory as it arrives (`export`, or a temporary one); the
    snapshot is then read back from it. Rows of pages that were not parsed while collecting
    are counted by that read-back, before `progress.summary` is called. `read_back(root, tenant)` reads it (default:
    `read_export` alone); `pimtrail collect` reads it against the history it goes into (`collect.read_exports`:
    the elements the newest snapshot held not parsed again, a first snapshot's audit log read by a worker).
    `scratch`: without `export`, an empty directory of the caller's to write the export into, which the caller keeps
    until the snapshot is written (a worker may still read it, and a refused read is read again from it); else a
    temporary one, gone when this returns."""
    settings = settings or GraphSettings()
    collected_at = utcnow()
    with ExitStack() as stack:
        root = Path(export) if export is not None else Path(scratch) if scratch is not None else \
            Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pimtrail-graph-")))
        writer = ExportWriter(root)  # refuses a folder that holds an export, before any request
        owned = isinstance(credential, CredentialConfig)
        outcomes: dict[str, Outcome] | None = None
        try:
            if owned:
                tenant = tenant or credential.tenant_id
                credential = build_credential(credential)
            try:
                outcomes = asyncio.run(_read(credential, settings, progress, owned, writer, collected_at, tenant))
            finally:
                if progress is not None and hasattr(progress, "close"):
                    progress.close()
            if not any(o.ok for o in outcomes.values()):
                first = next(iter(outcomes.values()), None)
                raise GraphRunError("nothing could be read from Graph" +
                                    (f": {first.explanation}" if first else ""))
            writer.finish(_tenant_id(outcomes, tenant), collected_at, outcomes)
        except BaseException:
            writer.abort()
            if outcomes is not None:
                _summary(progress, outcomes)
            raise
        check = tenant.lower() if tenant and GUID.match(tenant) else None
        try:
            snap = read_back(root, check) if read_back is not None else read_export(root, tenant=check, source="graph")
            counted = {c.dataset: c.rows for c in snap.coverage}
            for name, outcome in outcomes.items():
                if outcome.ok and name in counted:
                    outcome.counted = counted[name]
        finally:
            _summary(progress, outcomes)
        snap.source_ref = str(root.resolve()) if export is not None else f"graph:{settings.http.base_url}"
    return GraphRun(snap, outcomes, list(settings.http.retries), export)


def _summary(progress: Any, outcomes: dict[str, Outcome]) -> None:
    if progress is not None and hasattr(progress, "summary"):
        progress.summary(outcomes)
