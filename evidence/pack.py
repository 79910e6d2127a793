"""`pimtrail pack`: the evidence pack for one tenant and period, with a manifest and SHA256SUMS."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from pimtrail.config import Config
from pimtrail.controls.profiles import Profile
from pimtrail.errors import InputError
from pimtrail.evidence.pack_model import build_pack
from pimtrail.evidence.rows import Rows
from pimtrail.evidence.period import Period
from pimtrail.store import HistoryStore

FORMATS = ("pdf", "xlsx", "json")


@dataclass
class PackResult:
    directory: Path
    files: list[dict[str, Any]]
    pdf_pages: int | None
    model: dict[str, Any]


def parse_formats(text: str) -> tuple[str, ...]:
    chosen = tuple(f.strip().lower() for f in text.split(",") if f.strip())
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        raise InputError(f"unknown format(s) {unknown or text!r}", field="--format", fix="a comma list of pdf, xlsx, json")
    return chosen


def _plain(value: Any) -> Any:
    """JSON for what json does not know: a listing kept as `Rows` is a list of its rows, the rest as text."""
    return list(value) if isinstance(value, Rows) else str(value)


def _encoder() -> json.JSONEncoder:
    return json.JSONEncoder(indent=1, sort_keys=True, ensure_ascii=False, default=_plain)


def export_json(model: dict[str, Any]) -> str:
    """The model for machines: everything but the private (`_`) keys, keys sorted."""
    return _encoder().encode({k: v for k, v in model.items() if not k.startswith("_")}) + "\n"


def write_json(model: dict[str, Any], path: Path) -> None:
    """`export_json(model)` written to `path` piece by piece (the large tenant's is ~100 MB of text)."""
    chunks = _encoder().iterencode({k: v for k, v in model.items() if not k.startswith("_")})
    with path.open("w", encoding="utf-8") as out:
        while batch := list(islice(chunks, 20_000)):
            out.write("".join(batch))
        out.write("\n")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_pack(store: HistoryStore, tenant: str, period: Period, profile: Profile, config: Config, out: Path,
               formats: tuple[str, ...] = FORMATS, template_dir: Path | None = None) -> PackResult:
    model = build_pack(store, tenant, period, profile, config)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"pimtrail-{tenant}-{period.label}"
    written: list[Path] = []
    pages = None
    if "pdf" in formats:
        from pimtrail.evidence.pdf import write_pdf

        pages = write_pdf(model, out / f"{stem}.pdf", template_dir)
        written.append(out / f"{stem}.pdf")
    if "xlsx" in formats:
        from pimtrail.evidence.workbook import write_workbook

        write_workbook(model, out / f"{stem}.xlsx")
        written.append(out / f"{stem}.xlsx")
    if "json" in formats:
        write_json(model, out / f"{stem}.json")
        written.append(out / f"{stem}.json")
    files = [{"name": p.name, "size": p.stat().st_size, "sha256": sha256_file(p)} for p in written]
    cover = model["cover"]
    manifest = {
        "format": "pimtrail-pack/1", "tenant_id": tenant, "tenant_name": cover["tenant_name"],
        "period": {"label": period.label, "start": cover["start"], "end": cover["end"]},
        "generated_at": cover["generated_at"], "run_id": cover["run_id"], "tool_version": cover["tool_version"],
        "profile": profile.name, "pdf_pages": pages, "files": files,
        "snapshots": cover["snapshots"], "hash_chain": model["completeness"]["chain"],
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    sums = [(f["sha256"], f["name"]) for f in files] + [(sha256_file(out / "manifest.json"), "manifest.json")]
    (out / "SHA256SUMS").write_text("".join(f"{sha}  {name}\n" for sha, name in sums), encoding="utf-8")
    files.append({"name": "manifest.json", "size": (out / "manifest.json").stat().st_size, "sha256": sums[-1][0]})
    return PackResult(out, files, pages, model)
