"""Write a live collection as an export directory (docs/export-format.md), receipts byte-exact.

Every dataset file uses the third form — pages with their `request` and `parent` — and each
page's `body` is the response body exactly as Graph sent it, spliced in as bytes rather than
re-serialised, so the export *is* the raw receipt. The manifest is written last (and atomically):
a directory without one is an interrupted export, never a silently incomplete one.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pimtrail import __version__
from pimtrail.collectors.datasets import DATASETS
from pimtrail.collectors.exportdir import FORMAT
from pimtrail.errors import InputError
from pimtrail.timeutil import iso

from .collector import Outcome
from .fetch import FetchedPage

AUDIT_RETENTION_DAYS = 30  # what Entra keeps (P1/P2): the window a directory_audits read covers


def _body_bytes(page: FetchedPage) -> bytes:
    """The received bytes when they can stand inside a UTF-8 JSON file as they are."""
    raw = page.raw.strip()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        raw = b""
    if not raw.startswith(b"{"):  # a BOM or another encoding: keep the content, not the bytes
        raw = json.dumps(json.loads(page.raw), ensure_ascii=False, separators=(",", ":")).encode()
    return raw


def _dataset_file(pages: list[FetchedPage]) -> bytes:
    entries = [b'{"request":' + json.dumps(p.request).encode() + b',"parent":' + json.dumps(p.parent).encode()
               + b',"body":' + _body_bytes(p) + b"}" for p in pages]
    return b'{"pages":[\n' + b",\n".join(entries) + b"\n]}\n"


def _error_entry(outcome: Outcome) -> dict[str, Any]:
    assert outcome.error is not None
    error: dict[str, Any] = {"code": outcome.error.code, "message": outcome.explanation or outcome.error.message}
    if outcome.error.status is not None:
        error["http_status"] = outcome.error.status
    return error


def write_export(root: Path, tenant_id: str, collected_at: datetime, outcomes: dict[str, Outcome]) -> Path:
    root = Path(root)
    if (root / "manifest.json").exists():
        raise InputError("already holds an export", path=str(root), field="--export",
                         fix="choose a new folder; exports are kept, never overwritten")
    root.mkdir(parents=True, exist_ok=True)
    entries: dict[str, Any] = {}
    for dataset in DATASETS:
        outcome = outcomes.get(dataset.name)
        if outcome is None:
            continue  # not requested: absent from the manifest, i.e. "not collected"
        if outcome.error is not None:
            entry: dict[str, Any] = {"error": _error_entry(outcome)}
        else:
            (root / dataset.file_name).write_bytes(_dataset_file(outcome.pages))
            entry = {"file": dataset.file_name}
        if dataset.name == "directory_audits":
            entry["window"] = {"from": iso(collected_at - timedelta(days=AUDIT_RETENTION_DAYS)),
                               "to": iso(collected_at)}
        entries[dataset.name] = entry
    manifest = {"format": FORMAT, "tenant_id": tenant_id, "collected_at": iso(collected_at),
                "source": "graph", "generator": f"pimtrail {__version__}", "datasets": entries}
    partial = root / "manifest.json.part"
    partial.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, root / "manifest.json")
    return root
