"""Stream one export directory (docs/export-format.md) to disk, one Graph object at a time.

Objects are serialised as they come from a generator and written in pages, so no dataset is ever
held in memory as a list of dicts. The manifest is written last: a folder without one is unfinished.

Two layouts of a body's elements: `lines`, one element a line (as before, and the sample tenant's), and `graph`,
each body on one line as Graph sends it and the live collector writes it (`collectors.graph.writer`). The same
objects either way; the reader must be as fast on both (`collectors.compact`).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import quote

from pimtrail.collectors.datasets import BY_NAME, DATASETS

from .presets import GRAPH, Ids

FORMAT = "pimtrail-export/1"
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def dumps(value: Any) -> str:
    return _encode(value)


LAYOUTS = ("lines", "graph")


class ExportWriter:
    def __init__(self, root: Path, tenant_id: str, collected_at: datetime, generator: str, ids: Ids,
                 layout: str = "lines") -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, not {layout!r}")
        self.root, self.tenant_id, self.collected_at = root, tenant_id, collected_at
        self.generator, self.ids = generator, ids
        # before an element: the first of a body, the others (after the last, before `]`: `self.last`)
        self.first, self.sep, self.last = ("", ",", "") if layout == "graph" else ("\n", ",\n", "\n")
        self.entries: dict[str, dict[str, Any]] = {}
        self.rows: dict[str, int] = {}
        root.mkdir(parents=True, exist_ok=True)
        if (root / "manifest.json").exists():
            (root / "manifest.json").unlink()  # rewritten last

    def _open(self, name: str):
        if name not in BY_NAME:
            raise ValueError(f"dataset not declared in collectors/datasets.py: {name}")
        self.entries[name] = {"file": BY_NAME[name].file_name}
        return (self.root / BY_NAME[name].file_name).open("w", encoding="utf-8", newline="\n")

    def body(self, name: str, context: str, items: Iterable[dict[str, Any]]) -> None:
        """Form 1: one response body."""
        with self._open(name) as out:
            out.write('{"@odata.context":' + dumps(context) + ',"value":[')
            count = self._items(out, items)
            out.write(self.last + "]}\n")
        self.rows[name] = count

    def pages(self, name: str, context: str, items: Iterable[dict[str, Any] | str], size: int) -> None:
        """Form 2: the pages of one request, each but the last with an @odata.nextLink. An item
        may come as JSON text already (the audit log keeps its days serialised)."""
        request = quote(BY_NAME[name].request(), safe="/?&=$,()'")
        stamp = self.collected_at.strftime("%Y%m%d")
        count, number = 0, 0
        with self._open(name) as out:
            out.write("[\n")
            page: list[str] = []
            for item in items:
                if len(page) == size:
                    number += 1
                    link = f"{GRAPH}{request}&$skiptoken={self.ids.token('skip', name, stamp, number, length=96)}"
                    self._page(out, context, page, link)
                    out.write(",\n")
                    page = []
                page.append(item if isinstance(item, str) else dumps(item))
                count += 1
            self._page(out, context, page, None)
            out.write("\n]\n")
        self.rows[name] = count

    def _page(self, out, context: str, page: list[str], link: str | None) -> None:
        out.write('{"@odata.context":' + dumps(context) + ',"value":[')
        if page:
            out.write(self.first + self.sep.join(page) + self.last)
        out.write("]" + (',"@odata.nextLink":' + dumps(link) if link else "") + "}")

    def per_parent(self, name: str, bodies: Iterable[tuple[str, str, Iterable[dict[str, Any]]]]) -> None:
        """Form 3: one body per parent object: (parent id, @odata.context, items). A dataset asked for a set of
        users (`Parent.USERS`, parent: their ids joined by commas) names them in its request, not as parent."""
        dataset = BY_NAME[name]
        count, first = 0, True
        with self._open(name) as out:
            out.write('{"pages":[')
            for parent, context, items in bodies:
                named = parent if dataset.parent.named_in_pages else ""
                out.write(("\n" if first else ",\n") + '{"request":' + dumps(dataset.request(parent))
                          + ',"parent":' + dumps(named) + ',"body":{"@odata.context":' + dumps(context)
                          + ',"value":[')
                count += self._items(out, items)
                out.write("]}}")
                first = False
            out.write("\n]}\n")
        self.rows[name] = count

    def _items(self, out, items: Iterable[dict[str, Any]]) -> int:
        count, first, sep = 0, self.first, self.sep
        for item in items:
            out.write((first if count == 0 else sep) + dumps(item))
            count += 1
        return count

    def window(self, name: str, days: int, since: datetime | None = None) -> None:
        """The time window a dataset covers: `days` back from collection, or from `since` when later."""
        start = self.collected_at - timedelta(days=days)
        self.entries[name]["window"] = {"from": _iso(max(start, since) if since else start),
                                        "to": _iso(self.collected_at)}

    def close(self) -> Path:
        ordered = {d.name: self.entries[d.name] for d in DATASETS if d.name in self.entries}
        manifest = {"format": FORMAT, "tenant_id": self.tenant_id, "collected_at": _iso(self.collected_at),
                    "source": "sample", "generator": self.generator, "datasets": ordered}
        (self.root / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        return self.root


def _iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")
