"""The emulated tenant: an export directory's objects, regrouped per request chain.

The recorded page boundaries are dropped: the emulator pages the objects itself, the way Graph
chooses page sizes on the server. A dataset recorded with an `error` in the manifest is answered
with that error, so an export of a partial collection replays as one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pimtrail.collectors.exportdir import read_manifest


@dataclass
class Chain:
    """What one request (and its nextLinks) returns: the objects and the @odata.context."""

    items: list[dict[str, Any]] = field(default_factory=list)
    context: str | None = None


@dataclass
class Tenant:
    tenant_id: str
    chains: dict[str, dict[str, Chain]]  # dataset -> parent id ("" when none) -> chain
    errors: dict[str, dict[str, Any]]  # dataset -> {"http_status", "code", "message"}

    def chain(self, dataset: str, parent: str) -> Chain | None:
        """None when the export does not hold the dataset; an empty chain for a parent it does
        not name (Graph answers an empty collection, e.g. a user without security keys)."""
        per_parent = self.chains.get(dataset)
        if per_parent is None:
            return None
        return per_parent.get(parent) or Chain()


def _bodies(content: Any) -> list[tuple[str, dict[str, Any]]]:
    """(parent, body) for each page, whatever form the file has."""
    if isinstance(content, dict) and "pages" in content:
        return [(entry.get("parent") or "", entry["body"]) for entry in content["pages"]]
    return [("", body) for body in (content if isinstance(content, list) else [content])]


def load_tenant(root: Path) -> Tenant:
    root = Path(root)
    manifest = read_manifest(root)
    chains: dict[str, dict[str, Chain]] = {}
    errors: dict[str, dict[str, Any]] = {}
    for name, entry in manifest["datasets"].items():
        if "error" in entry:
            errors[name] = entry["error"] if isinstance(entry["error"], dict) else {}
            continue
        content = json.loads((root / entry["file"]).read_text(encoding="utf-8"))
        per_parent: dict[str, Chain] = {}
        for parent, body in _bodies(content):
            chain = per_parent.setdefault(parent, Chain())
            chain.items.extend(body.get("value", []))
            chain.context = chain.context or body.get("@odata.context")
        chains[name] = per_parent
    return Tenant(manifest["tenant_id"], chains, errors)
