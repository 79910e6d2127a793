"""One live collection, end to end: sign in, read every dataset, write the export, read it back.

The snapshot is built by `read_export` from the export directory the collection just wrote, so
a live collection and "export, then collect offline" give the same facts by construction — there
is one reader. Without `--export` the directory is temporary.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pimtrail.collectors.exportdir import read_export
from pimtrail.model import CollectedSnapshot
from pimtrail.timeutil import utcnow

from .client import GraphHttp, HttpSettings, RetryRecord
from .collector import Collection, Outcome, Reporter, default_datasets
from .credentials import CredentialConfig, build_credential, close_credential
from .errors import GraphRunError
from .fetch import BATCH_LIMIT
from .writer import write_export

GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


@dataclass
class GraphSettings:
    http: HttpSettings = field(default_factory=HttpSettings)
    batch_size: int = BATCH_LIMIT  # per-parent requests per $batch; 1 sends plain GETs
    also: tuple[str, ...] = ()  # datasets not read by default (see collector.default_datasets)


@dataclass
class GraphRun:
    snapshot: CollectedSnapshot
    outcomes: dict[str, Outcome]
    retries: list[RetryRecord]
    export_dir: Path | None  # None when the export was temporary


async def _read(credential: Any, settings: GraphSettings, reporter: Reporter | None,
                owned: bool) -> dict[str, Outcome]:
    http = GraphHttp(credential, settings.http)
    try:
        return await Collection(http, default_datasets(settings.also), settings.batch_size, reporter).run()
    finally:
        await http.close()
        if owned:
            await close_credential(credential)


def _tenant_id(outcomes: dict[str, Outcome], asked: str | None) -> str:
    organization = outcomes.get("organization")
    if organization is not None and organization.ok:
        for _, item in organization.items():
            if item.get("id"):
                return str(item["id"]).lower()
    if asked and GUID.match(asked):
        return asked.lower()
    raise GraphRunError("cannot tell which tenant this is: /organization could not be read "
                        "(grant Organization.Read.All) and no tenant id (GUID) was given with --tenant")


def collect_graph(credential: CredentialConfig | Any, settings: GraphSettings | None = None, *,
                  export: Path | None = None, tenant: str | None = None,
                  progress: Any = None) -> GraphRun:
    """Collect one snapshot from Graph. `credential` is a CredentialConfig (built and closed
    here) or any credential object with `get_token` (the caller's to close)."""
    settings = settings or GraphSettings()
    collected_at = utcnow()
    owned = isinstance(credential, CredentialConfig)
    if owned:
        tenant = tenant or credential.tenant_id
        credential = build_credential(credential)
    try:
        outcomes = asyncio.run(_read(credential, settings, progress, owned))
    finally:
        if progress is not None and hasattr(progress, "close"):
            progress.close()
    if progress is not None and hasattr(progress, "summary"):
        progress.summary(outcomes)
    if not any(o.ok for o in outcomes.values()):
        first = next(iter(outcomes.values()), None)
        raise GraphRunError("nothing could be read from Graph" + (f": {first.explanation}" if first else ""))
    tenant_id = _tenant_id(outcomes, tenant)
    check = tenant.lower() if tenant and GUID.match(tenant) else None
    if export is not None:
        root = write_export(export, tenant_id, collected_at, outcomes)
        snap = read_export(root, tenant=check, source="graph")
        snap.source_ref = str(root.resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="pimtrail-graph-") as tmp:
            snap = read_export(write_export(Path(tmp), tenant_id, collected_at, outcomes),
                               tenant=check, source="graph")
        snap.source_ref = f"graph:{settings.http.base_url}"
    return GraphRun(snap, outcomes, list(settings.http.retries), export)
