"""Write a live collection as an export directory (docs/export-format.md), receipts byte-exact.

Every dataset file uses the third form — pages with their `request` and `parent` — and each
page's `body` is the response body exactly as Graph sent it, spliced in as bytes rather than
re-serialised, so the export *is* the raw receipt. Pages are appended to their dataset's file
as they arrive and then dropped from memory (`ExportWriter.page`): a 400 MB tenant is never
held whole. The manifest is written last (and atomically): a directory without one is an
interrupted export, never a silently incomplete one; a collection that fails removes the
files it wrote.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from pimtrail import __version__
from pimtrail.collectors.datasets import DATASETS, Dataset
from pimtrail.collectors.exportdir import FORMAT
from pimtrail.errors import InputError
from pimtrail.timeutil import iso

from .collector import Outcome
from .errors import GraphError
from .fetch import FetchedPage

AUDIT_RETENTION_DAYS = 30  # what Entra keeps (P1/P2): the window a directory_audits read covers
_HEAD, _BETWEEN, _FOOT = b'{"pages":[\n', b",\n", b"\n]}\n"


def _body_bytes(raw: bytes) -> bytes:
    """The received bytes when they can stand inside a UTF-8 JSON file as they are."""
    raw = raw.strip()
    if not raw.isascii():
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            raw = b""
    if not raw.startswith(b"{"):  # a BOM or another encoding: keep the content, not the bytes
        raise ValueError
    return raw


def _entry_head(page: FetchedPage) -> bytes:
    return b'{"request":' + json.dumps(page.request).encode() + b',"parent":' + json.dumps(page.parent).encode() \
        + b',"body":'


def _error_entry(outcome: Outcome) -> dict[str, Any]:
    assert outcome.error is not None
    error: dict[str, Any] = {"code": outcome.error.code, "message": outcome.explanation or outcome.error.message}
    if outcome.error.status is not None:
        error["http_status"] = outcome.error.status
    return error


class ExportWriter:
    """An export directory written while the collection runs (collector.Sink)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        if (self.root / "manifest.json").exists():
            raise InputError("already holds an export", path=str(self.root), field="--export",
                             fix="choose a new folder; exports are kept, never overwritten")
        self._created = not self.root.exists()
        self.root.mkdir(parents=True, exist_ok=True)
        self._open: dict[str, IO[bytes]] = {}
        self._written: set[str] = set()  # complete dataset files
        self._made: set[str] = set()  # every file this writer created

    def _file(self, dataset: Dataset) -> IO[bytes]:
        out = self._open.get(dataset.name)
        if out is None:
            out = self._open[dataset.name] = self._create(dataset)
        else:
            out.write(_BETWEEN)
        return out

    def _create(self, dataset: Dataset) -> IO[bytes]:
        self._made.add(dataset.file_name)
        out = open(self.root / dataset.file_name, "wb")
        out.write(_HEAD)
        return out

    def page(self, dataset: Dataset, page: FetchedPage) -> None:
        """Append the page to its dataset's file, and drop its bytes."""
        try:
            body = _body_bytes(page.raw)
        except ValueError:
            try:
                body = json.dumps(json.loads(page.raw), ensure_ascii=False, separators=(",", ":")).encode()
            except ValueError:
                raise GraphError(200, "UnexpectedBody", f"not UTF-8 JSON: the answer to {page.request}") from None
        out = self._file(dataset)
        out.write(_entry_head(page))
        out.write(body)
        out.write(b"}")
        page.raw = b""

    def close(self, dataset: Dataset) -> None:
        out = self._open.pop(dataset.name, None)
        if out is None:  # no page at all (no parents): an empty list of pages
            out = self._create(dataset)
        out.write(_FOOT)
        out.close()
        self._written.add(dataset.name)

    def discard(self, dataset: Dataset) -> None:
        out = self._open.pop(dataset.name, None)
        if out is not None:
            out.close()
        self._written.discard(dataset.name)
        if dataset.file_name in self._made:
            self._made.discard(dataset.file_name)
            (self.root / dataset.file_name).unlink(missing_ok=True)

    def finish(self, tenant_id: str, collected_at: datetime, outcomes: dict[str, Outcome]) -> Path:
        """Write the manifest: the export is complete."""
        entries: dict[str, Any] = {}
        for dataset in DATASETS:
            outcome = outcomes.get(dataset.name)
            if outcome is None:
                continue  # not requested: absent from the manifest, i.e. "not collected"
            if outcome.error is not None:
                entry: dict[str, Any] = {"error": _error_entry(outcome)}
            else:
                if dataset.name not in self._written:
                    raise RuntimeError(f"{dataset.name} was read but its file was not completed")
                entry = {"file": dataset.file_name}
            if dataset.name == "directory_audits":
                entry["window"] = {"from": iso(collected_at - timedelta(days=AUDIT_RETENTION_DAYS)),
                                   "to": iso(collected_at)}
            entries[dataset.name] = entry
        manifest = {"format": FORMAT, "tenant_id": tenant_id, "collected_at": iso(collected_at),
                    "source": "graph", "generator": f"pimtrail {__version__}", "datasets": entries}
        partial = self.root / "manifest.json.part"
        partial.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        os.replace(partial, self.root / "manifest.json")
        return self.root

    def abort(self) -> None:
        """The collection failed: remove what was written (and the folder, if made here and empty)."""
        for out in self._open.values():
            out.close()
        self._open.clear()
        for name in self._made:
            (self.root / name).unlink(missing_ok=True)
        self._made.clear()
        self._written.clear()
        (self.root / "manifest.json.part").unlink(missing_ok=True)
        if self._created:
            try:
                self.root.rmdir()
            except OSError:
                pass
