"""The evidence pack for one quarter, PDF and workbook each built in its own process (for its RSS).

    python bench/pack.py DB CONFIG PERIOD FORMAT OUT_DIR   -> one JSON line: model_s, render_s, pages, rss_mb
                                                             (PERIOD: 2026-Q3, or FROM..TO as 2026-04-04..2026-07-03)
    python bench/pack.py --synthetic ROWS OUT_DIR          -> the workbook writer alone on ROWS synthetic rows
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Row, median, run_child, say, vm_hwm_mb  # noqa: E402


def child(db: str, config: str, period: str, fmt: str, out: Path) -> None:
    from pimtrail.config import load_config
    from pimtrail.controls.profiles import load_profile
    from pimtrail.evidence.pack_model import build_pack
    from pimtrail.evidence.period import parse_period
    from pimtrail.store import HistoryStore

    began = time.perf_counter()
    settings = load_config(config)
    out.mkdir(parents=True, exist_ok=True)
    with HistoryStore.open(db) as store:
        tenant = store.tenant(None)
        chosen = parse_period(None, *period.split("..")) if ".." in period else parse_period(period)
        model = build_pack(store, tenant, chosen, load_profile(None, settings), settings)
        built, model_rss = time.perf_counter(), vm_hwm_mb()
        pages = None
        if fmt == "pdf":
            from pimtrail.evidence.pdf import write_pdf

            pages = write_pdf(model, out / "pack.pdf")
            size = (out / "pack.pdf").stat().st_size
        else:
            from pimtrail.evidence.workbook import write_workbook

            write_workbook(model, out / "pack.xlsx")
            size = (out / "pack.xlsx").stat().st_size
    done = time.perf_counter()
    rows = {k: len(model[k]) for k in ("population", "activations", "approvals") if k in model}
    print(json.dumps({"model_s": round(built - began, 3), "render_s": round(done - built, 3),
                      "total_s": round(done - began, 3), "pages": pages, "bytes": size, "rows": rows,
                      "snapshots": len(model["cover"]["snapshots"]), "model_rss_mb": round(model_rss, 1),
                      "rss_mb": round(vm_hwm_mb(), 1)}))


def synthetic(rows: int, out: Path) -> None:
    """The workbook's sheet writer on `rows` generated holdings (14 columns: text, ints, booleans, timestamps,
    some text to escape), streamed from a generator: its time per cell and what it adds to the RSS."""
    from pimtrail.evidence import workbook
    from pimtrail.evidence.xlsx_stream import XlsxBook

    def holdings():
        for i in range(rows):
            yield {"principal": f"user{i}@contoso.example", "principal_type": "user", "tier": i % 3,
                   "role": "Helpdesk & <Support> Administrator" if i % 2 else "User Administrator",  # half to escape
                   "state": "eligible" if i % 4 else "active", "permanent": i % 7 == 0, "via": "direct",
                   "outside_pim": False, "assignment_type": "Assigned", "start": f"2026-07-{1 + i % 28:02}T06:00:00Z",
                   "end": None if i % 3 else "2026-12-31T00:00:00Z", "principal_id": f"{i:08}-aaaa-bbbb-cccc-dddddddddddd",
                   "role_id": "62e90394-69f5-4237-9190-012177145e10", "group_id": None}

    out.mkdir(parents=True, exist_ok=True)
    path = out / "synthetic.xlsx"
    before = vm_hwm_mb()
    began = time.perf_counter()
    book = XlsxBook(path)
    counts = workbook.SheetWriter(book, "Population", [workbook.Block(workbook.cols(workbook.HOLDING),
                                                                      holdings())]).write()
    book.save()
    took = time.perf_counter() - began
    cells = 14 * sum(counts.values())
    print(json.dumps({"render_s": round(took, 3), "rows": sum(counts.values()), "cells": cells,
                      "us_per_cell": round(took / cells * 1e6, 3), "bytes": path.stat().st_size,
                      "rss_added_mb": round(vm_hwm_mb() - before, 1), "rss_mb": round(vm_hwm_mb(), 1)}))


def measure(db: Path, config: Path, period: str, work: Path, runs: int) -> list[Row]:
    out: dict[str, list[dict]] = {"pdf": [], "xlsx": []}
    for fmt in out:
        for n in range(runs):
            report, wall, rss = run_child([str(Path(__file__)), str(db), str(config), period, fmt,
                                           str(work / f"pack-{fmt}-{n}")])
            report["wall_s"], report["rss_mb"] = round(wall, 3), rss
            out[fmt].append(report)
            say(f"  pack {fmt} run {n + 1}: {report}")
    synth = [run_child([str(Path(__file__)), "--synthetic", str(SYNTHETIC_ROWS), str(work / f"pack-synthetic-{n}")])[0]
             for n in range(runs)]
    say(f"  workbook writer, synthetic: {synth}")
    pdf, xlsx = out["pdf"], out["xlsx"]
    first = pdf[0]
    def scope(reports: list[dict]) -> str:
        return (f"{period}: {first['snapshots']} snapshots in the period, rows {first['rows']}; model "
                f"{median([r['model_s'] for r in reports]):.1f} s + render {median([r['render_s'] for r in reports]):.1f} s")

    return [
        Row("evidence pack PDF (model + render), one quarter", median([r["wall_s"] for r in pdf]), "s", "<= 60 s",
            60, runs, scope(pdf), [r["wall_s"] for r in pdf]),
        Row("evidence pack PDF pages", median([r["pages"] for r in pdf]), "pages", "<= 150 pages", 150, runs,
            f"{first['bytes'] / 1e6:.1f} MB", [r["pages"] for r in pdf]),
        Row("evidence pack workbook (model + render), one quarter", median([r["wall_s"] for r in xlsx]), "s",
            "<= 90 s", 90, runs, scope(xlsx) + f"; {xlsx[0]['bytes'] / 1e6:.1f} MB", [r["wall_s"] for r in xlsx]),
        Row("evidence pack workbook: render alone (model built)", median([r["render_s"] for r in xlsx]), "s",
            "<= 30 s", 30, runs, "write_workbook after build_pack, same process", [r["render_s"] for r in xlsx]),
        Row(f"workbook writer: {SYNTHETIC_ROWS:,} synthetic rows x 14 columns", median([r["render_s"] for r in synth]),
            "s", "", None, runs, f"{median([r['us_per_cell'] for r in synth])} us a cell; adds "
            f"{median([r['rss_added_mb'] for r in synth])} MB to the RSS; {synth[0]['bytes'] / 1e6:.1f} MB",
            [r["render_s"] for r in synth]),
        Row("evidence pack workbook: peak RSS of the process", median([r["rss_mb"] for r in xlsx]), "MB",
            "<= 600 MB", 600, runs, "model and workbook built in one process, as `pimtrail pack --format xlsx`; "
            f"peak once the model is built {median([r['model_rss_mb'] for r in xlsx])} MB",
            [r["rss_mb"] for r in xlsx]),
    ]


SYNTHETIC_ROWS = 200_000

if __name__ == "__main__":
    if sys.argv[1] == "--synthetic":
        synthetic(int(sys.argv[2]), Path(sys.argv[3]))
        sys.exit()
    child(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], Path(sys.argv[5]))
