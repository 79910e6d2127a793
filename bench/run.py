"""`make bench`: pimtrail at large-tenant size (issue 7 §2). Prints one table, writes bench/results.json.

    .venv/bin/python bench/run.py                      # the "large" preset (see docs/benchmarks.md)
    .venv/bin/python bench/run.py --preset small --repeat 1 --history-days 2    # a quick smoke run

Every measure is the median of several runs: `--repeat` (default 3) for the quick ones, `--slow-repeat`
(default 2) for the slow ones (live collection, the evidence pack); the daily history is one run of
`--history-days` days (each day's ingest and check is a sample). The table says how many runs each value
is. Values marked EXTRAPOLATED are computed from measured ones, as their note says.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import live, measures, pack  # noqa: E402
from bench.common import BENCH, Row, median, say, timed  # noqa: E402

QUARTER_END = date(2026, 9, 30)  # the history ends on the last day of 2026-Q3: the pack's quarter


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="large", help="large (default) or small")
    parser.add_argument("--repeat", type=int, default=3, help="runs per quick measure (default 3)")
    parser.add_argument("--slow-repeat", type=int, default=2,
                        help="runs per slow measure: live collection and each pack format (default 2)")
    parser.add_argument("--history-days", type=int, default=6,
                        help="daily snapshots ingested for the 365-day measures (default 6; the rest is extrapolated)")
    parser.add_argument("--churn", type=float, default=0.005, help="daily churn of the history (default 0.005)")
    parser.add_argument("--signin-share", type=float, default=0.0,
                        help="share of enabled users whose sign-in times move each day (default 0; a real tenant "
                             "~0.8: docs/benchmarks.md, \"Sign-in activity at real churn\")")
    parser.add_argument("--latency", type=float, default=0.02, help="emulator latency per request (default 0.02 s)")
    parser.add_argument("--concurrency", type=int, default=4, help="collector requests in flight (default 4, "
                                                                    "the `pimtrail collect` default)")
    parser.add_argument("--layout", choices=("graph", "lines"), default="graph",
                        help="how the exports' bodies are written: graph, each on one line as Graph sends it and the "
                             "live collector writes it (default); lines, one element a line (rounds 1-23)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip", default="", help="comma list of: live, pack (to leave out)")
    parser.add_argument("--workdir", type=Path, help="where exports and databases go (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--results", type=Path, default=BENCH / "results.json")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.slow_repeat < 1 or args.history_days < 2 or not 0 <= args.signin_share <= 1:
        parser.error("--repeat and --slow-repeat must be at least 1, --history-days at least 2, "
                     "--signin-share in [0, 1]")
    return args


def table(rows: list[Row]) -> str:
    lines = [f"{'measure':<64} {'value':>12} {'target':<30} {'met?':<5} runs  note", "-" * 150]
    for r in rows:
        value = "-" if r.value is None else f"{r.value:,.3f}".rstrip("0").rstrip(".") + f" {r.unit}"
        met = {True: "yes", False: "NO", None: ""}[r.met]
        lines.append(f"{r.measure[:64]:<64} {value:>12} {r.target[:30]:<30} {met:<5} {r.runs:>4}  {r.note}")
    return "\n".join(lines)


LAYOUT_NOTE = {"graph": "as Graph sends them, one a line", "lines": "one element a line"}


def run(args: argparse.Namespace) -> list[Row]:
    from pimtrail.config import parse_config
    from pimtrail.store import HistoryStore
    from pimtrail.synthetic import AUDIT_OVERLAP, PRESETS, Generator
    import tomllib

    preset = PRESETS[args.preset]
    measures.TENANT = preset.name
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    work = args.workdir or Path(tempfile.mkdtemp(prefix="pimtrail-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    start = QUARTER_END - timedelta(days=args.history_days - 1)
    say(f"pimtrail bench: preset {preset.name}, work folder {work}")

    gen = Generator(preset, seed=args.seed, start=start)
    config_path = work / "pimtrail.toml"
    config_path.write_text(gen.config_toml(), encoding="utf-8")
    config = parse_config(tomllib.loads(config_path.read_text()), str(config_path))
    gen_s, day0 = timed(lambda: gen.write(work / "exports" / gen.collected_at.date().isoformat(), layout=args.layout))
    size = sum(p.stat().st_size for p in day0.iterdir())
    rows.append(Row(f"generate the {preset.name} tenant's export (day 0)", round(gen_s, 2), "s", "< 60 s (brief)", 60,
                    1, f"{size / 1e6:.0f} MB, {preset.users:,} users, {preset.eligible:,} eligible, "
                    f"{preset.active:,} active, {preset.audit_per_day * preset.audit_days:,} audit events "
                    f"(pimtrail.synthetic); bodies written {LAYOUT_NOTE[args.layout]}"))
    say(f"generated {day0} in {gen_s:.1f} s")

    rows += measures.cli_help(max(5, args.repeat))
    if "live" not in skip:
        say("live collection through the emulator ...")
        rows += live.measure(day0, work, page_size=preset.page_size, latency=args.latency,
                             concurrency=args.concurrency, runs=args.slow_repeat)
        shutil.rmtree(work / "live-0", ignore_errors=True)

    say(f"history of {args.history_days} daily snapshots (day 0 is also the first ingest run) ...")
    db = work / "history.db"
    days, checks = [], []
    previous, full_window = None, None
    for n in range(args.history_days):
        if n:
            gen.advance(args.churn, signin_share=args.signin_share)
        # a daily collection asks for the audit events since the previous one (`pimtrail collect graph
        # --db`); the last day is also ingested from an export holding the whole 90-day window
        since = previous - AUDIT_OVERLAP if previous is not None else None
        export = day0 if n == 0 else gen.write(work / "exports" / gen.collected_at.date().isoformat(), since,
                                               args.layout)
        previous = gen.collected_at
        if n and n == args.history_days - 1:
            full_window = measures.full_window_ingest(gen, db, work, args.layout)
            say(f"  day {n} with the whole audit window: read {full_window[0]:.1f} s, write {full_window[1]:.1f} s")
        stored_before = measures.pack_bytes(db)
        read_s, write_s, snap, info = measures.ingest_once(export, db)
        del snap
        with HistoryStore.open(str(db)) as store:
            checks.append(measures.check(store, config))
        days.append({"day": n, "read_s": read_s, "write_s": write_s, "new_events": info.event_count,
                     "db_bytes": measures.size_now(db)})
        say(f"  day {n}: read {read_s:.1f} s, write {write_s:.1f} s, check {checks[-1]['view_s']:.1f} + "
            f"{checks[-1]['evaluate_s']:.1f} s, db {days[-1]['db_bytes'] / 1e6:.0f} MB")
        if n == 0:
            say("ingest of one snapshot, more runs into a new database each, and the executemany baseline ...")
            ingest_rows, snap = measures.ingest(day0, work, args.repeat, first=(read_s, write_s))
            rows += ingest_rows
            rows += measures.baseline(snap, work, median(ingest_rows[2].values), args.repeat)
            del snap
            for name in ("ingest.db", "baseline.db"):
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{work / name}{suffix}").unlink(missing_ok=True)
        shutil.rmtree(export)
    rows += measures.history_rows(days, args.churn, measures.growth(db, stored_before), full_window, args.signin_share)
    rows += measures.check_rows(checks)
    say("trend series ...")
    rows += measures.series(db, config, args.repeat, preset.audit_per_day)
    if "pack" not in skip:
        say("evidence pack ...")
        quarter = f"{QUARTER_END.year}-Q{(QUARTER_END.month - 1) // 3 + 1}"
        rows += pack.measure(db, config_path, quarter, work, args.slow_repeat)
    if not args.keep and not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.perf_counter()
    rows = run(args)
    elapsed = time.perf_counter() - began
    text = table(rows)
    print(text)
    missed = [r.measure for r in rows if r.met is False]
    print(f"\n{len(missed)} target(s) missed; bench took {elapsed / 60:.1f} min. Details: {args.results}")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps({
        "preset": args.preset, "repeat": args.repeat, "slow_repeat": args.slow_repeat,
        "history_days": args.history_days, "churn": args.churn, "signin_share": args.signin_share,
        "latency": args.latency, "layout": args.layout,
        "concurrency": args.concurrency, "seed": args.seed, "elapsed_s": round(elapsed, 1),
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": __import__("os").cpu_count()},
        "rows": [r.as_dict() for r in rows], "table": text}, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
