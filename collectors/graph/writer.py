"""Write a live collection as an export directory (docs/export-format.md), receipts byte-exact.

Every dataset file uses the third form — pages with their `request` and `parent` — and each
page's `body` is the response body exactly as Graph sent it, spliced in as bytes rather than
re-serialised, so the export *is* the raw receipt. Pages are appended to their dataset's file
as they arrive and then dropped from memory (`ExportWriter.page`): a 400 MB tenant is never
held whole. The manifest is written last (and atomically): a directory without one is an
interrupted export, never a silently incomplete one; a collection that fails removes the
files it wrote. The writes themselves happen in one background thread, in order (`_Writes`):
a file write releases the GIL, so the event loop goes on reading answers meanwhile (400 MB
written on the loop cost it ~0.5 s of a ~5 s collection).
"""

from __future__ import annotations

import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
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
from .window import AUDIT_DATASET, full_window_from

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


class _Writes:
    """File operations, run in order in one background thread. They are handed over in bundles
    of ~`BUNDLE` bytes (or when a file is finished): waking the thread for every page cost the
    loop more than the write. A failure is raised by the next call (or by `wait`). At most
    `LIMIT` bytes wait to be written: beyond that the caller waits, so that a slow disk cannot
    fill the memory."""

    BUNDLE = 4 << 20
    LIMIT = 64 << 20

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._error: BaseException | None = None
        self._bundle: list[tuple[Any, tuple[Any, ...]]] = []
        self._bundled = 0  # bytes in `_bundle`
        self._waiting = 0  # bytes handed over, not yet written
        self._lock = threading.Lock()

    def run(self, fn: Any, *args: Any, size: int = 0, now: bool = False) -> None:
        """`fn(*args)` in the background, after everything asked for before it; `now`: hand
        the bundle over at once (else when it holds `BUNDLE` bytes)."""
        self.check()
        self._bundle.append((fn, args))
        self._bundled += size
        if now or self._bundled >= self.BUNDLE:
            self._hand_over()

    def _hand_over(self) -> None:
        if not self._bundle:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="pimtrail-export")
        bundle, size = self._bundle, self._bundled
        self._bundle, self._bundled = [], 0
        with self._lock:
            self._waiting += size
        self._pool.submit(self._run, bundle, size)
        if self._waiting > self.LIMIT:
            self.wait()

    def _run(self, bundle: list[tuple[Any, tuple[Any, ...]]], size: int) -> None:
        try:
            for fn, args in bundle:
                if self._error is None:
                    fn(*args)
        except BaseException as exc:  # raised by the next call on the loop
            self._error = exc
        finally:
            with self._lock:
                self._waiting -= size

    def check(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def wait(self, check: bool = True) -> None:
        """Until every operation asked for so far is done."""
        self._hand_over()
        if self._pool is not None:
            self._pool.submit(lambda: None).result()
        if check:
            self.check()

    def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def _write_all(out: IO[bytes], *parts: bytes) -> None:
    for part in parts:
        out.write(part)


def _finish_file(out: IO[bytes], foot: bytes) -> None:
    out.write(foot)
    out.close()


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
        self._writes = _Writes()

    def _file(self, dataset: Dataset) -> tuple[IO[bytes], bytes]:
        """The dataset's open file and what goes before the next entry."""
        out = self._open.get(dataset.name)
        if out is None:
            out = self._open[dataset.name] = self._create(dataset)
            return out, _HEAD
        return out, _BETWEEN

    def _create(self, dataset: Dataset) -> IO[bytes]:
        self._made.add(dataset.file_name)
        return open(self.root / dataset.file_name, "wb")

    def page(self, dataset: Dataset, page: FetchedPage) -> None:
        """Append the page to its dataset's file, and drop its bytes."""
        try:
            body = _body_bytes(page.raw)
        except ValueError:
            try:
                body = json.dumps(json.loads(page.raw), ensure_ascii=False, separators=(",", ":")).encode()
            except ValueError:
                raise GraphError(200, "UnexpectedBody", f"not UTF-8 JSON: the answer to {page.request}") from None
        out, before = self._file(dataset)
        self._writes.run(_write_all, out, before + _entry_head(page), body, b"}", size=len(body))
        page.raw = b""

    def close(self, dataset: Dataset) -> None:
        out = self._open.pop(dataset.name, None)
        foot = _FOOT
        if out is None:  # no page at all (no parents): an empty list of pages
            out, foot = self._create(dataset), _HEAD + _FOOT
        self._writes.run(_finish_file, out, foot, now=True)
        self._written.add(dataset.name)

    def discard(self, dataset: Dataset) -> None:
        """Forget a dataset that failed (rare: this waits for the writes asked for so far)."""
        self._writes.wait()
        out = self._open.pop(dataset.name, None)
        if out is not None:
            out.close()
        self._written.discard(dataset.name)
        if dataset.file_name in self._made:
            self._made.discard(dataset.file_name)
            (self.root / dataset.file_name).unlink(missing_ok=True)

    def flush(self) -> None:
        """Wait until every page and file asked for so far is on disk (`finish` does)."""
        self._writes.wait()

    def finish(self, tenant_id: str, collected_at: datetime, outcomes: dict[str, Outcome]) -> Path:
        """Write the manifest: the export is complete."""
        self._writes.wait()  # every dataset file written and closed
        self._writes.stop()
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
            if dataset.name == AUDIT_DATASET:  # the window asked for (window.py)
                entry["window"] = {"from": iso(outcome.since or full_window_from(collected_at)),
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
        self._writes.wait(check=False)
        self._writes.stop()
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
