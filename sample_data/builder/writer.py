"""Dataset file shapes (one body, pages, pages per parent) and the export directory itself."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pimtrail.collectors.datasets import BY_NAME, DATASETS

from .ids import GRAPH, Ids, iso

FORMAT = "pimtrail-export/1"


def body(context: str, value: list[dict[str, Any]]) -> dict[str, Any]:
    return {"@odata.context": context, "value": value}


def pages(name: str, context: str, items: list[dict[str, Any]], size: int, ids: Ids,
          t: datetime) -> list[dict[str, Any]]:
    """The pages of one request, each but the last with an @odata.nextLink to follow verbatim."""
    chunks = [items[i:i + size] for i in range(0, len(items), size)] or [[]]
    request = quote(BY_NAME[name].request(), safe="/?&=$,()")
    out = []
    for n, chunk in enumerate(chunks):
        page = body(context, chunk)
        if n + 1 < len(chunks):
            page["@odata.nextLink"] = f"{GRAPH}{request}&$skiptoken={ids.token('skip', name, iso(t), n + 1, length=96)}"
        out.append(page)
    return out


def per_parent(name: str, bodies: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The wrapper for datasets requested once per parent object (a set of users, `Parent.USERS`: their ids
    joined by commas, named in the request and not as the page's parent)."""
    dataset = BY_NAME[name]
    return {"pages": [{"request": dataset.request(parent), "parent": parent if dataset.parent.named_in_pages else "",
                       "body": b} for parent, b in bodies]}


def write_export(root: Path, t: datetime, tenant_id: str, generator: str, window_days: int,
                 contents: dict[str, Any]) -> Path:
    """Write one export directory (manifest last) and return it."""
    unknown = set(contents) - set(BY_NAME)
    if unknown:
        raise ValueError(f"datasets not declared in collectors/datasets.py: {sorted(unknown)}")
    export = root / t.date().isoformat()
    export.mkdir(parents=True, exist_ok=True)
    manifest_sets: dict[str, Any] = {}
    for dataset in DATASETS:  # manifest in the declared order
        if dataset.name not in contents:
            continue
        entry: dict[str, Any] = {"file": dataset.file_name}
        if dataset.name == "directory_audits":
            entry["window"] = {"from": iso(t - timedelta(days=window_days)), "to": iso(t)}
        _dump(export / dataset.file_name, contents[dataset.name])
        manifest_sets[dataset.name] = entry
    _dump(export / "manifest.json", {
        "format": FORMAT,
        "tenant_id": tenant_id,
        "collected_at": iso(t),
        "source": "sample",
        "generator": generator,
        "datasets": manifest_sets,
    })
    return export


def _dump(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
