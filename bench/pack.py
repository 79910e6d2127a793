"""The evidence pack for one quarter, PDF and workbook each built in its own process (for its RSS).

    python bench/pack.py DB CONFIG PERIOD FORMAT OUT_DIR   -> one JSON line: model_s, render_s, pages, rss_mb
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
        model = build_pack(store, tenant, parse_period(period), load_profile(None, settings), settings)
        built = time.perf_counter()
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
    rows = {k: len(model[k]) for k in ("population", "activations", "approvals") if isinstance(model.get(k), list)}
    print(json.dumps({"model_s": round(built - began, 3), "render_s": round(done - built, 3),
                      "total_s": round(done - began, 3), "pages": pages, "bytes": size, "rows": rows,
                      "snapshots": len(model["cover"]["snapshots"]), "rss_mb": round(vm_hwm_mb(), 1)}))


def measure(db: Path, config: Path, period: str, work: Path, runs: int) -> list[Row]:
    out: dict[str, list[dict]] = {"pdf": [], "xlsx": []}
    for fmt in out:
        for n in range(runs):
            report, wall, rss = run_child([str(Path(__file__)), str(db), str(config), period, fmt,
                                           str(work / f"pack-{fmt}-{n}")])
            report["wall_s"], report["rss_mb"] = round(wall, 3), rss
            out[fmt].append(report)
            say(f"  pack {fmt} run {n + 1}: {report}")
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
        Row("evidence pack workbook: peak RSS of the process", median([r["rss_mb"] for r in xlsx]), "MB",
            "<= 600 MB", 600, runs, "model and workbook built in one process, as `pimtrail pack --format xlsx`",
            [r["rss_mb"] for r in xlsx]),
    ]


if __name__ == "__main__":
    child(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], Path(sys.argv[5]))
